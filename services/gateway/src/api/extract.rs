//! axum's extractors, with their rejections turned into the API's problem
//! responses instead of plain-text bodies, and the `Idempotency-Key` header
//! of the POSTs that accept one.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chirp_domain::input;

use crate::error::ApiError;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// The `Idempotency-Key` header (the IETF draft's name), checked by the
/// services' own rules (their refusals are not passed on to clients:
/// `crate::error`); empty when the request has none.
pub struct IdempotencyKey(pub String);

impl<S: Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let key = match parts.headers.get("idempotency-key") {
            None => String::new(),
            Some(value) => value
                .to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key must be printable ASCII"))?
                .to_owned(),
        };
        input::idempotency_key(&key).map_err(ApiError::invalid)?;
        Ok(Self(key))
    }
}
