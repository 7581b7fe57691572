//! The gateway's public HTTP API, as the load tool calls it: exactly what a
//! client sends, so a load test measures the whole path (HTTP, auth, rate
//! limits, gRPC hops) and nothing the tool could shortcut.
//!
//! Each call either succeeds or returns a [`Failure`] named the way the
//! report groups failures: `http 429 rate_limited` (status and the problem
//! document's stable `code`) or `transport: connect`. Calls set no timeout of
//! their own: the scheduler's `--timeout` decides when to give up, so a
//! timeout is counted once, as a timeout.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::schedule::Failure;

/// A client for one gateway. Cloning is cheap and shares the connection
/// pool, which keeps connections open between requests as real clients do.
#[derive(Debug, Clone)]
pub struct Gateway {
    http: reqwest::Client,
    base_url: String,
}

/// A new account, as sign-up returns it.
#[derive(Debug, Deserialize)]
pub struct SignedUp {
    #[serde(deserialize_with = "string_id")]
    pub user_id: i64,
    pub token: String,
}

/// One page of tweets. Of each tweet only the id is kept: enough to count
/// them and to see whether a given tweet has arrived.
#[derive(Debug, Deserialize)]
pub struct Page {
    pub items: Vec<Listed>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Listed {
    #[serde(deserialize_with = "string_id")]
    pub id: i64,
}

/// A page of profiles, of which the load tool keeps the ids.
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

/// The stable part of an RFC 9457 problem document.
#[derive(Debug, Deserialize)]
struct Problem {
    code: String,
}

/// Ids travel as JSON strings (they are 64-bit).
fn string_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let raw = String::deserialize(deserializer)?;
    raw.parse().map_err(serde::de::Error::custom)
}

impl Gateway {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(format!("{}{path}", self.base_url))
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(format!("{}{path}", self.base_url))
    }

    /// `POST /users`: an account and the bearer token that speaks for it.
    pub async fn sign_up(&self, handle: &str, display_name: &str) -> Result<SignedUp, Failure> {
        let body = json!({ "handle": handle, "display_name": display_name });
        json_body(self.post("/users").json(&body)).await
    }

    /// `GET /users/{id}/timeline`: a page of `user_id`'s home timeline, of
    /// `limit` tweets or the gateway's default.
    pub async fn home_timeline(
        &self,
        user_id: i64,
        token: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page, Failure> {
        let request = self
            .get(&format!("/users/{user_id}/timeline"))
            .bearer_auth(token)
            .query(&[("cursor", cursor)])
            .query(&[("limit", limit)]);
        json_body(request).await
    }

    /// `GET /users/{id}/tweets`: a page of `user_id`'s own tweets.
    pub async fn user_tweets(&self, user_id: i64) -> Result<Page, Failure> {
        json_body(self.get(&format!("/users/{user_id}/tweets"))).await
    }

    /// `POST /tweets` with an idempotency key, so that a retry cannot post
    /// twice; returns the tweet's id. A replay (200) succeeds like a
    /// creation (201).
    pub async fn post_tweet(
        &self,
        token: &str,
        content: &str,
        idempotency_key: &str,
    ) -> Result<i64, Failure> {
        let request = self
            .post("/tweets")
            .bearer_auth(token)
            .header("idempotency-key", idempotency_key)
            .json(&json!({ "content": content }));
        let posted: Listed = json_body(request).await?;
        Ok(posted.id)
    }

    /// `GET /users/{id}/tweets` from `cursor`, `limit` at a time: how a
    /// check walks an author's whole history.
    pub async fn user_tweets_page(
        &self,
        user_id: i64,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page, Failure> {
        let request = self
            .get(&format!("/users/{user_id}/tweets"))
            .query(&[("cursor", cursor)])
            .query(&[("limit", limit)]);
        json_body(request).await
    }

    /// `DELETE /tweets/{id}`: one of the caller's tweets leaves every
    /// timeline.
    pub async fn delete_tweet(&self, token: &str, tweet_id: i64) -> Result<(), Failure> {
        let request = self
            .http
            .delete(format!("{}/tweets/{tweet_id}", self.base_url))
            .bearer_auth(token);
        send(request).await.map(drop)
    }

    /// `POST /follow`: the caller follows `target` (also if already).
    pub async fn follow(&self, token: &str, target: i64) -> Result<(), Failure> {
        let body = json!({ "target_user_id": target.to_string() });
        send(self.post("/follow").bearer_auth(token).json(&body))
            .await
            .map(drop)
    }

    /// `DELETE /follow/{id}`: the caller stops following `target` (also if
    /// never did).
    pub async fn unfollow(&self, token: &str, target: i64) -> Result<(), Failure> {
        let request = self
            .http
            .delete(format!("{}/follow/{target}", self.base_url))
            .bearer_auth(token);
        send(request).await.map(drop)
    }

    /// `GET /users/{id}`: a profile with its follower and following counts.
    pub async fn user(&self, user_id: i64) -> Result<Profile, Failure> {
        json_body(self.get(&format!("/users/{user_id}"))).await
    }

    /// `GET /users/{id}/followers`: a page of `user_id`'s followers.
    pub async fn followers(
        &self,
        user_id: i64,
        cursor: Option<&str>,
    ) -> Result<ProfilePage, Failure> {
        let request = self
            .get(&format!("/users/{user_id}/followers"))
            .query(&[("limit", "100")])
            .query(&[("cursor", cursor)]);
        json_body(request).await
    }
}

/// Sends `request`; any status but 2xx is a failure, named by its status
/// and the problem document's `code`.
async fn send(request: RequestBuilder) -> Result<Response, Failure> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = response
        .json::<Problem>()
        .await
        .map(|problem| problem.code)
        .ok();
    Err(http_failure(status, code.as_deref()))
}

async fn json_body<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, Failure> {
    send(request).await?.json().await.map_err(transport)
}

fn http_failure(status: StatusCode, code: Option<&str>) -> Failure {
    match code {
        Some(code) => Failure(format!("http {} {code}", status.as_u16())),
        None => Failure(format!("http {}", status.as_u16())),
    }
}

fn transport(error: reqwest::Error) -> Failure {
    let kind = if error.is_connect() {
        "connect"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_decode() {
        "decode"
    } else if error.is_body() {
        "body"
    } else if error.is_request() {
        "request"
    } else {
        "other"
    };
    Failure(format!("transport: {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_by_status_and_code() {
        let failure = http_failure(StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"));
        assert_eq!(failure.0, "http 429 rate_limited");
        assert_eq!(http_failure(StatusCode::BAD_GATEWAY, None).0, "http 502");
    }

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
}
