//! The console's files, compiled in, and the headers they are served with.
//!
//! `Cache-Control: no-cache` makes a browser revalidate on every load, so a
//! rebuilt gateway never serves yesterday's script to a tab that has it
//! cached. The `Content-Security-Policy` allows only this origin: the page
//! cannot load anything from elsewhere, which is also the proof that it
//! needs nothing from elsewhere.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::AppState;

/// Only this origin, for scripts, styles, images and `fetch`.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                      script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'";

/// (path, content type, body)
const FILES: [(&str, &str, &str); 13] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../console/index.html"),
    ),
    (
        "/console/style.css",
        "text/css; charset=utf-8",
        include_str!("../../console/style.css"),
    ),
    (
        "/console/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/app.js"),
    ),
    (
        "/console/api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/api.js"),
    ),
    (
        "/console/dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/dom.js"),
    ),
    (
        "/console/pager.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/pager.js"),
    ),
    (
        "/console/tweets.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/tweets.js"),
    ),
    (
        "/console/home.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/home.js"),
    ),
    (
        "/console/people.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/people.js"),
    ),
    (
        "/console/system.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/system.js"),
    ),
    (
        "/console/lab.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/lab.js"),
    ),
    (
        "/console/charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/charts.js"),
    ),
    (
        "/console/strategies.json",
        "application/json",
        include_str!("../../console/strategies.json"),
    ),
];

pub fn router() -> Router<AppState> {
    FILES
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            router.route(path, get(move || serve(content_type, body)))
        })
}

async fn serve(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module a script imports is served, and nothing is loaded
    /// from another origin.
    #[test]
    fn every_import_is_served_and_nothing_comes_from_elsewhere() {
        let served: Vec<&str> = FILES.iter().map(|(path, _, _)| *path).collect();
        for (path, _, body) in FILES {
            for import in body.split("from './").skip(1) {
                let name = import.split('\'').next().unwrap_or_default();
                let target = format!("/console/{name}");
                assert!(
                    served.contains(&target.as_str()),
                    "{path} imports {target}, not served"
                );
            }
            // The SVG namespace is a name, not a place anything is loaded from.
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !body.contains("https://") && !body.contains("http://"),
                "{path} names another origin"
            );
        }
        assert!(FILES[0].2.contains("/console/app.js"));
        assert!(FILES[0].2.contains("/console/style.css"));
    }

    /// The lab's numbers are the ones docs/BENCHMARKS.md reports: each
    /// strategy's row of its table, cell for cell.
    #[test]
    fn the_strategy_results_match_the_benchmarks_table() {
        let results: serde_json::Value =
            serde_json::from_str(FILES[FILES.len() - 1].2).expect("strategies.json parses");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/BENCHMARKS.md");
        let benchmarks = std::fs::read_to_string(path).expect("read docs/BENCHMARKS.md");
        let rows = results["strategies"].as_array().expect("strategies");
        assert_eq!(rows.len(), 3);
        for row in rows {
            let n = |pointer: &str| {
                row.pointer(pointer)
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(f64::NAN)
            };
            let thousands = |value: f64| {
                let digits = format!("{value:.0}");
                match digits.len() {
                    4.. => format!(
                        "{} {}",
                        &digits[..digits.len() - 3],
                        &digits[digits.len() - 3..]
                    ),
                    _ => digits,
                }
            };
            let line = format!(
                "| {} | {:.1} | {} | {} | {:.1} / {:.1} | {} / {} | {} / {} |",
                row["strategy"].as_str().expect("a name"),
                n("/load/per_tweet"),
                thousands(n("/ordinary/writes/per_tweet")),
                thousands(n("/celebrity/writes/per_tweet")),
                n("/home_timeline/p50_ms"),
                n("/home_timeline/p99_ms"),
                thousands(n("/ordinary/visible/p50_ms")),
                thousands(n("/ordinary/visible/p99_ms")),
                thousands(n("/celebrity/visible/p50_ms")),
                thousands(n("/celebrity/visible/p99_ms")),
            );
            assert!(
                benchmarks.contains(&line),
                "docs/BENCHMARKS.md has no row {line}"
            );
        }
    }
}
