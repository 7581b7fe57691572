//! The web console: a page served at `/` for people studying chirp, built
//! on the public API plus read-only views of the system (`live`), of the
//! strategy experiment (`strategies.json`), of the policies experiment
//! (`policies.json`) and of the committed bench run's figures the
//! interview's capacity plan scales (`capacity.json`).
//!
//! The assets are plain HTML, CSS and ES modules, compiled into the binary
//! with `include_str!`: no build step, no npm in the image, no CDN, so the
//! console works offline and always matches the API of the binary serving
//! it. The price is no framework and no type checking of the script; the
//! browser test (`e2e/browser/`) is what keeps it honest.

mod assets;
pub mod live;

use axum::Router;

use crate::AppState;

/// The console's routes that are not part of the documented API: the
/// assets. (`live` documents itself in the OpenAPI document.)
pub fn router() -> Router<AppState> {
    assets::router()
}
