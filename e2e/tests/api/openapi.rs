//! The API describes itself: the OpenAPI document is served by the gateway,
//! and schemathesis fuzzes a live stack from it.

use std::process::Command;

use reqwest::{Method, StatusCode};

use crate::helpers::{handle, spawn_stack, spawn_stack_with};

#[tokio::test]
async fn the_gateway_serves_its_openapi_document() {
    let stack = spawn_stack().await;
    let (status, document) = stack
        .call(stack.request(Method::GET, "/openapi.json", None))
        .await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(document["openapi"], "3.1.0");
    for path in ["/tweets", "/users/{id}/timeline", "/follow"] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}

/// Generates requests from the document (valid and invalid ones) and fails
/// on any 5xx or any response the document does not describe. Needs the
/// schemathesis CLI, so it runs from `deploy/fuzz-api.sh`, which installs it
/// and names it in `SCHEMATHESIS`.
#[tokio::test]
#[ignore = "needs schemathesis: run deploy/fuzz-api.sh"]
async fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let st = std::env::var("SCHEMATHESIS").expect("SCHEMATHESIS names the `st` binary");
    let examples = std::env::var("CHIRP_FUZZ_EXAMPLES").unwrap_or_else(|_| "50".to_owned());
    // Generous limits: the fuzzer should reach the handlers, not the limiter.
    let stack = spawn_stack_with(&["--rate-limit-burst", "1000000"]).await;
    let user = stack.sign_up(&handle("fuzz")).await;
    let schema = format!("{}/openapi.json", stack.gateway.base_url());
    let auth = format!("Authorization: Bearer {}", user.token);
    let status = tokio::task::spawn_blocking(move || {
        Command::new(st)
            // Its cache and reports go to cargo's scratch folder, not the checkout.
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .args([
                "run",
                &schema,
                "--checks",
                "not_a_server_error,response_schema_conformance",
            ])
            .args([
                "--max-examples",
                &examples,
                "--header",
                &auth,
                // One worker: with two threads, hypothesis's ast.parse of its own lambdas
                // races on Python 3.11 ("AST constructor recursion depth mismatch"), seen
                // as a runtime error in a CI run after 1 161 cases passed.
                "--workers",
                "1",
            ])
            .args(["--generation-database", "none", "--no-color"])
            .status()
    })
    .await
    .expect("the fuzzer's thread")
    .expect("schemathesis starts");
    assert!(
        status.success(),
        "schemathesis found failures (see its report above)"
    );
}
