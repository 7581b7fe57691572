//! Validated user input: tweet content and idempotency keys are checked once,
//! here, by the shared rules of `chirp_domain::input`, and trusted everywhere
//! after.
//!
//! Content is stored in Unicode normal form C, so the same visible text is the
//! same bytes whichever way a keyboard composed it: "é" typed as one code point
//! or as "e" plus a combining accent counts as one character against the limit,
//! and a retry whose text was composed differently still matches its first
//! attempt.

use chirp_domain::input;

use crate::TweetError;

/// 1–280 Unicode scalar values after NFC normalisation, not all whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TweetContent(String);

impl TweetContent {
    pub fn parse(raw: &str) -> Result<Self, TweetError> {
        input::tweet_content(raw)
            .map(Self)
            .map_err(TweetError::InvalidArgument)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen token that makes retrying a create safe: 1–128 printable
/// ASCII characters. Long enough for a UUID or a ULID with a prefix, short
/// enough to keep the idempotency partition key small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` for an empty key: the client opted out of deduplication.
    pub fn parse(raw: &str) -> Result<Option<Self>, TweetError> {
        let key = input::idempotency_key(raw).map_err(TweetError::InvalidArgument)?;
        Ok(key.map(|key| Self(key.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_bounded_in_characters_not_bytes() {
        assert!(TweetContent::parse("hello").is_ok());
        assert!(TweetContent::parse(&"a".repeat(280)).is_ok());
        assert!(TweetContent::parse(&"a".repeat(281)).is_err());
        // 4 bytes each in UTF-8, one scalar value each.
        assert!(TweetContent::parse(&"🐦".repeat(280)).is_ok());
        assert!(TweetContent::parse(&"🐦".repeat(281)).is_err());
    }

    #[test]
    fn blank_content_is_refused() {
        for blank in ["", " ", "\n\t ", "\u{3000}"] {
            assert!(TweetContent::parse(blank).is_err(), "{blank:?}");
        }
        assert_eq!(TweetContent::parse("  hi  ").unwrap().as_str(), "  hi  ");
    }

    #[test]
    fn content_is_stored_composed() {
        let decomposed = "e\u{301}";
        let content = TweetContent::parse(decomposed).unwrap();
        assert_eq!(content.as_str(), "\u{e9}");
        assert_eq!(content, TweetContent::parse("\u{e9}").unwrap());
        // 280 decomposed "é"s are 560 code points but 280 characters once composed.
        assert!(TweetContent::parse(&decomposed.repeat(280)).is_ok());
    }

    #[test]
    fn parsing_normalized_content_changes_nothing() {
        for raw in ["e\u{301}", "Å", "한국어", "plain", "🐦 + e\u{301}"] {
            let once = TweetContent::parse(raw).unwrap();
            assert_eq!(TweetContent::parse(once.as_str()).unwrap(), once, "{raw:?}");
        }
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(IdempotencyKey::parse("").unwrap(), None);
        for ok in ["k", "3f2c-9a1b", "retry 1", &"k".repeat(128)] {
            assert!(IdempotencyKey::parse(ok).unwrap().is_some(), "{ok}");
        }
        for bad in [&"k".repeat(129), "tab\tkey", "clé", "new\nline"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    mod properties {
        use proptest::prelude::*;
        use unicode_normalization::{UnicodeNormalization, is_nfc};

        use super::super::TweetContent;

        proptest! {
            /// Whatever arrives, the validator answers without panicking, and
            /// what it accepts is NFC, 1-280 characters and not blank.
            #[test]
            fn accepted_content_keeps_every_promise(raw in "\\PC{0,300}|\\s{0,5}") {
                if let Ok(content) = TweetContent::parse(&raw) {
                    let text = content.as_str();
                    prop_assert!(is_nfc(text));
                    prop_assert!((1..=chirp_domain::input::MAX_TWEET_CHARS).contains(&text.chars().count()));
                    prop_assert!(!text.chars().all(char::is_whitespace));
                }
            }

            /// Parsing is idempotent, and two spellings of the same text (NFC
            /// and NFD) are the same tweet.
            #[test]
            fn normal_forms_agree(raw in "\\PC{1,280}") {
                let decomposed: String = raw.nfd().collect();
                match (TweetContent::parse(&raw), TweetContent::parse(&decomposed)) {
                    (Ok(a), Ok(b)) => {
                        prop_assert_eq!(&a, &b);
                        prop_assert_eq!(TweetContent::parse(a.as_str()).ok(), Some(a.clone()));
                    }
                    (Err(_), Err(_)) => {}
                    (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
                }
            }

            /// Length is counted in characters, not bytes: 280 of any one
            /// non-blank, composed character are accepted, 281 are not.
            #[test]
            fn the_limit_counts_characters(c in any::<char>().prop_filter("composed, visible", |c| {
                !c.is_whitespace() && !c.is_control() && is_nfc(&c.to_string()) && c.to_string().nfc().count() == 1
            })) {
                prop_assert!(TweetContent::parse(&c.to_string().repeat(280)).is_ok());
                prop_assert!(TweetContent::parse(&c.to_string().repeat(281)).is_err());
            }
        }
    }
}
