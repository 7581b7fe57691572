//! Validated user input: a handle and a display name are checked once, here,
//! and trusted everywhere after.

use crate::GraphError;

/// 1–15 ASCII letters, digits or underscores, as on Twitter. Case is kept for
/// display; uniqueness ignores it (see the migration's index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(String);

impl Handle {
    pub const MAX_LEN: usize = 15;

    pub fn parse(raw: &str) -> Result<Self, GraphError> {
        let valid_chars = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !valid_chars {
            return Err(GraphError::InvalidArgument(format!(
                "handle must be 1-{} letters, digits or underscores",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1–50 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, GraphError> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(GraphError::InvalidArgument(format!(
                "display_name must be 1-{} characters without control characters",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles() {
        for ok in ["a", "alice", "Bob_42", "fifteen_chars_x"] {
            assert!(Handle::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "sixteen_chars_xx",
            "with space",
            "émile",
            "a-b",
            "@alice",
        ] {
            assert!(Handle::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Alice  ").unwrap().as_str(), "Alice");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\nb").is_err());
        assert!(DisplayName::parse(&"é".repeat(50)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(51)).is_err());
    }
}
