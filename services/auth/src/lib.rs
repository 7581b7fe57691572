//! Bearer tokens: who is calling.
//!
//! Tokens are JWTs signed with HMAC-SHA256 and carry only the user id and an
//! expiry, so the gateway checks them with no database round trip on any
//! request. The trade-off: a token cannot be revoked before it expires, which
//! is why its lifetime is bounded by config.
//!
//! A crate of its own, apart from the gateway that verifies tokens, because
//! the load tool signs them too (for users it seeded, who never signed up):
//! both call this one code, so they cannot drift apart, and the load tool
//! links no service. The HTTP side (reading `Authorization`, the 401 it
//! answers) stays in the gateway's `auth` module.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

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

/// Why a token speaks for nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Well signed, but past its expiry: the caller should sign in again.
    Expired,
    /// Not signed with this key, malformed, or naming no user.
    Invalid,
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
    pub fn verify(&self, token: &str) -> Result<i64, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        data.claims.sub.parse().map_err(|_| TokenError::Invalid)
    }
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub const MIN_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() < Self::MIN_LEN {
            return Err(format!("must be at least {} bytes", Self::MIN_LEN));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
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
        assert_eq!(tokens.verify(&token), Ok(42));
        let other = Tokens::new(
            b"another key, another key, another",
            Duration::from_secs(60),
        );
        assert_eq!(other.verify(&token), Err(TokenError::Invalid));
        assert_eq!(tokens.verify("not.a.token"), Err(TokenError::Invalid));
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
        assert_eq!(tokens.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn secrets_are_long_and_never_printed() {
        assert!(Secret::parse("short").is_err());
        let secret = Secret::parse(&"s".repeat(32)).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }
}
