//! The rules of user input, written once: the gateway applies them to answer
//! a 400 before it calls anyone, and the service that owns the data applies
//! them again when it parses the request into its own types, since it trusts
//! no caller. A rule written twice would drift; a peer's `InvalidArgument`
//! then reaches the gateway only through a bug, and the gateway treats it as
//! one (`gateway::error`).
//!
//! Each function returns the value as it is to be stored, or a message
//! written for the client.

use unicode_normalization::UnicodeNormalization;

/// The most characters a tweet holds.
pub const MAX_TWEET_CHARS: usize = 280;
/// The longest idempotency key: a UUID or a ULID with a prefix fits.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// The longest handle, as on Twitter.
pub const MAX_HANDLE: usize = 15;
/// The most characters of a display name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 50;

/// Tweet content: 1–280 Unicode scalar values after NFC normalisation, not
/// all whitespace; returned normalised.
pub fn tweet_content(raw: &str) -> Result<String, String> {
    let normalized: String = raw.nfc().collect();
    if normalized.chars().all(char::is_whitespace) {
        return Err("content must not be empty or only whitespace".to_owned());
    }
    let length = normalized.chars().count();
    if length > MAX_TWEET_CHARS {
        return Err(format!(
            "content must be at most {MAX_TWEET_CHARS} characters, got {length}"
        ));
    }
    Ok(normalized)
}

/// An idempotency key: empty (no deduplication) or 1–128 printable ASCII
/// characters.
pub fn idempotency_key(raw: &str) -> Result<Option<&str>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let printable = raw.chars().all(|c| (' '..='~').contains(&c));
    if raw.len() > MAX_IDEMPOTENCY_KEY || !printable {
        return Err(format!(
            "idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        ));
    }
    Ok(Some(raw))
}

/// A handle: 1–15 ASCII letters, digits or underscores.
pub fn handle(raw: &str) -> Result<&str, String> {
    let valid_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if raw.is_empty() || raw.len() > MAX_HANDLE || !valid_chars {
        return Err(format!(
            "handle must be 1-{MAX_HANDLE} letters, digits or underscores"
        ));
    }
    Ok(raw)
}

/// A display name: 1–50 characters once trimmed, no control characters;
/// returned trimmed.
pub fn display_name(raw: &str) -> Result<&str, String> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length == 0 || length > MAX_DISPLAY_NAME_CHARS || trimmed.chars().any(char::is_control) {
        return Err(format!(
            "display_name must be 1-{MAX_DISPLAY_NAME_CHARS} characters without control characters"
        ));
    }
    Ok(trimmed)
}
