//! Bearer tokens: who is calling.
//!
//! Tokens are JWTs signed with HMAC-SHA256 and carry only the user id and an
//! expiry, so the gateway checks them with no database round trip on any
//! request. The trade-off: a token cannot be revoked before it expires, which
//! is why its lifetime is bounded by config.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string per RFC 7519.
    sub: String,
    iat: u64,
    exp: u64,
}

/// Issues and verifies tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user_id: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HMAC signing cannot fail")
    }

    /// The user id a valid token speaks for.
    pub fn verify(&self, token: &str) -> Result<i64, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => ApiError::unauthenticated("the token has expired"),
                _ => ApiError::unauthenticated("the token is invalid"),
            })?;
        data.claims
            .sub
            .parse()
            .map_err(|_| ApiError::unauthenticated("the token is invalid"))
    }
}

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
        state.tokens.verify(token.trim()).map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_speaks_for_its_user_only_with_the_right_key() {
        let tokens = Tokens::new(SECRET, Duration::from_secs(60));
        let token = tokens.issue(42);
        assert_eq!(tokens.verify(&token).unwrap(), 42);
        let other = Tokens::new(
            b"another key, another key, another",
            Duration::from_secs(60),
        );
        assert!(other.verify(&token).is_err());
        assert!(tokens.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let tokens = Tokens::new(SECRET, Duration::from_secs(60));
        let expired = Claims {
            sub: "1".into(),
            iat: 0,
            exp: 1,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &tokens.encoding)
                .unwrap();
        let error = tokens.verify(&token).unwrap_err();
        assert!(format!("{error:?}").contains("expired"));
    }
}
