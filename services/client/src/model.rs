//! What the gateway answers, as far as its callers read it.
//!
//! Each type keeps only the fields some caller needs, and ignores the rest,
//! so the gateway may add fields without breaking a client; callers that
//! must see a whole response use [`Gateway::request`](crate::Gateway::request)
//! and read the JSON themselves.

use serde::{Deserialize, Deserializer};

/// A new account, as sign-up returns it.
#[derive(Debug, Deserialize)]
pub struct SignedUp {
    #[serde(deserialize_with = "string_id")]
    pub user_id: i64,
    /// The bearer token that speaks for the new user.
    pub token: String,
}

/// A tweet, as posting or reading one returns it.
#[derive(Debug, Deserialize)]
pub struct Tweet {
    #[serde(deserialize_with = "string_id")]
    pub id: i64,
    #[serde(deserialize_with = "string_id")]
    pub author_id: i64,
    pub content: String,
}

/// One page of tweets. Of each tweet only the id is kept: enough to count
/// them and to see whether a given tweet has arrived.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub items: Vec<Listed>,
    /// Opaque; `None` on the last page.
    pub next_cursor: Option<String>,
    /// A home-timeline page answered while the timeline is rebuilt, with
    /// what the cache held (status 206; `ANSWER_WHILE_REBUILDING`).
    #[serde(default)]
    pub partial: bool,
}

#[derive(Debug, Deserialize)]
pub struct Listed {
    #[serde(deserialize_with = "string_id")]
    pub id: i64,
}

/// A page of profiles.
#[derive(Debug, Deserialize)]
pub struct ProfilePage {
    pub items: Vec<Profile>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Profile {
    #[serde(deserialize_with = "string_id")]
    pub id: i64,
    pub follower_count: i64,
    pub following_count: i64,
}

/// How far a tweet's fan-out has got (`GET /tweets/{id}/delivery`).
#[derive(Debug, Deserialize)]
pub struct Delivery {
    /// `pending`, `delivering`, `delivered`, or `pulled` (a celebrity's
    /// tweet, which followers pull when they read).
    pub state: String,
    pub followers_pushed: u64,
}

impl Delivery {
    /// Nothing is left to push: every follower is handled, or the author's
    /// followers pull the tweet.
    pub fn done(&self) -> bool {
        matches!(self.state.as_str(), "delivered" | "pulled")
    }
}

/// Ids travel as JSON strings: they are 64-bit, and JavaScript's numbers
/// are exact only to 53 bits.
fn string_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let raw = String::deserialize(deserializer)?;
    raw.parse().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_profiles_parse_string_ids() {
        let page: ProfilePage = serde_json::from_str(
            r#"{"items":[{"id":"7","handle":"a","display_name":"A","follower_count":3,
                "following_count":1,"created_at":"2026-01-01T00:00:00Z"}],"next_cursor":"c"}"#,
        )
        .unwrap();
        assert_eq!(page.items[0].id, 7);
        assert_eq!(page.next_cursor.as_deref(), Some("c"));
        let page: Page = serde_json::from_str(r#"{"items":[{"id":"1"},{"id":"2"}]}"#).unwrap();
        assert_eq!((page.items.len(), page.next_cursor), (2, None));
    }

    #[test]
    fn an_id_is_a_string_of_digits() {
        let tweet: Tweet =
            serde_json::from_str(r#"{"id":"9007199254740993","author_id":"5","content":"hi"}"#)
                .unwrap();
        assert_eq!((tweet.id, tweet.author_id), (9_007_199_254_740_993, 5));
        for bad in [r#"{"id":7}"#, r#"{"id":"7x"}"#, r#"{"id":""}"#] {
            assert!(serde_json::from_str::<Listed>(bad).is_err(), "{bad}");
        }
    }
}
