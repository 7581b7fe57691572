//! Validated user input: a handle and a display name are checked once, here,
//! by the shared rules of `chirp_domain::input`, and trusted everywhere after.

use chirp_domain::input;

use crate::GraphError;

/// 1–15 ASCII letters, digits or underscores, as on Twitter. Case is kept for
/// display; uniqueness ignores it (see the migration's index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(String);

impl Handle {
    pub fn parse(raw: &str) -> Result<Self, GraphError> {
        let handle = input::handle(raw).map_err(GraphError::InvalidArgument)?;
        Ok(Self(handle.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1–50 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, GraphError> {
        let name = input::display_name(raw).map_err(GraphError::InvalidArgument)?;
        Ok(Self(name.to_owned()))
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
