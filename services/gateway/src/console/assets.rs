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
const FILES: [(&str, &str, &str); 24] = [
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
        "/console/drawing.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/drawing.js"),
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
        "/console/interview.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/interview.js"),
    ),
    (
        "/console/steps.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/steps.js"),
    ),
    (
        "/console/answers.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/answers.js"),
    ),
    (
        "/console/estimate.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/estimate.js"),
    ),
    (
        "/console/explorer.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/explorer.js"),
    ),
    (
        "/console/policies.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/policies.js"),
    ),
    (
        "/console/policies.json",
        "application/json",
        include_str!("../../console/policies.json"),
    ),
    (
        "/console/flows.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/flows.js"),
    ),
    (
        "/console/plan.js",
        "text/javascript; charset=utf-8",
        include_str!("../../console/plan.js"),
    ),
    (
        "/console/capacity.json",
        "application/json",
        include_str!("../../console/capacity.json"),
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

    /// The lab's data is a strategies.json as `experiment strategies` writes
    /// it, with a note saying where it comes from. That it is the committed
    /// run's, figure for figure, is the docs check's to prove
    /// (deploy/check-docs.py, which deploy/render-docs.py satisfies).
    #[test]
    fn the_strategy_results_say_where_they_come_from() {
        let (path, _, body) = FILES[FILES.len() - 1];
        assert_eq!(path, "/console/strategies.json");
        let results: serde_json::Value =
            serde_json::from_str(body).expect("strategies.json parses");
        assert!(
            results["note"]
                .as_str()
                .is_some_and(|note| !note.is_empty())
        );
        let rows = results["strategies"].as_array().expect("a strategies list");
        assert!(
            rows.is_empty() || rows.len() == 3,
            "push, pull and hybrid, or none"
        );
    }

    /// The lab's policies are the committed runs of `experiment policies`
    /// (policies.json as deploy/render-docs.py writes it): a note saying
    /// where they come from, and two runs of five policies each, or none.
    #[test]
    fn the_policy_results_say_where_they_come_from() {
        let (_, _, body) = FILES
            .iter()
            .find(|(path, _, _)| *path == "/console/policies.json")
            .expect("policies.json is served");
        let results: serde_json::Value = serde_json::from_str(body).expect("policies.json parses");
        assert!(
            results["note"]
                .as_str()
                .is_some_and(|note| !note.is_empty())
        );
        let runs = results["runs"].as_array().expect("a list of runs");
        assert!(runs.is_empty() || runs.len() == 2, "two runs, or none");
        for run in runs {
            assert!(
                run["policies"]
                    .as_array()
                    .is_some_and(|rows| !rows.is_empty())
            );
        }
    }

    /// The interview's capacity plan is planned from a capacity.json as
    /// deploy/render-docs.py writes it from the committed bench run: a
    /// note saying where it comes from, and the CPU per page by process
    /// with the fan-out worker's inserts/s, or neither.
    #[test]
    fn the_measured_capacity_figures_say_where_they_come_from() {
        let (_, _, body) = FILES
            .iter()
            .find(|(path, _, _)| *path == "/console/capacity.json")
            .expect("capacity.json is served");
        let measured: serde_json::Value = serde_json::from_str(body).expect("capacity.json parses");
        assert!(
            measured["note"]
                .as_str()
                .is_some_and(|note| !note.is_empty())
        );
        assert_eq!(
            measured["cpu_us_per_page"].is_object(),
            measured["fanout_worker_inserts_per_sec"].is_number()
        );
    }
}
