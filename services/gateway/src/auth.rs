//! Bearer tokens: who is calling.
//!
//! Tokens are JWTs signed with HMAC-SHA256 and carry only the user id and an
//! expiry, so the gateway checks them with no database round trip on any
//! request. The trade-off: a token cannot be revoked before it expires, which
//! is why its lifetime is bounded by config. Signing and verifying live in
//! `chirp-auth`, which the load tool shares; this module is the HTTP side:
//! the `Authorization` header and the 401 a bad token gets.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chirp_auth::TokenError;

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller. Taking it as a handler argument is what makes a
/// route require `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub i64);

impl Caller {
    /// Fails unless the caller is `user_id`: users act only for themselves.
    pub fn must_be(self, user_id: i64) -> Result<(), ApiError> {
        if self.0 == user_id {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "you can only do this for your own account",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated("missing Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthenticated("expected Authorization: Bearer <token>"))?;
        state
            .tokens
            .verify(token.trim())
            .map(Caller)
            .map_err(|error| match error {
                TokenError::Expired => ApiError::unauthenticated("the token has expired"),
                TokenError::Invalid => ApiError::unauthenticated("the token is invalid"),
            })
    }
}
