//! A typed HTTP client of chirp's REST API: exactly what any client sends to
//! the gateway, and nothing it could shortcut. The load tool measures the
//! whole path through it (HTTP, auth, rate limits, gRPC hops), and the
//! end-to-end and SIGTERM tests drive the gateway with it, so there is one
//! place that knows the routes, how ids travel (as strings) and what a
//! failure is ([`Error`]).
//!
//! What it does not do, on purpose:
//!
//! - **No retries.** Whether a retry is safe depends on the call and on how
//!   it failed ([`Error`] says how); the load tool's chaos workload and the
//!   tests each decide for themselves.
//! - **No timeout of its own** (beyond connecting): the caller decides when
//!   to give up, so a load test counts a timeout once, as a timeout. Hand a
//!   `reqwest::Client` with a timeout to [`Gateway::with_http`] to have one.
//! - **Not the whole API typed.** A call is typed once a caller needs it,
//!   and a response type keeps only the fields someone reads. Tests that
//!   assert on exact statuses and JSON bodies use [`Gateway::request`]: the
//!   same base URL and connection pool, the bytes left to them.
//! - **No service crate.** It speaks to the gateway as an outsider does, so
//!   it cannot lean on the server's types and drift with them unnoticed.

mod error;
mod model;

pub use error::Error;
pub use model::{Delivery, Listed, Page, Profile, ProfilePage, SignedUp, Tweet};
/// The HTTP client underneath, for [`Gateway::with_http`] and
/// [`Gateway::request`], so callers need not agree on its version.
pub use reqwest;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// A client for one gateway. Cloning is cheap and shares the connection
/// pool, which keeps connections open between requests as real clients do.
#[derive(Debug, Clone)]
pub struct Gateway {
    http: reqwest::Client,
    /// Without a trailing slash: every path starts with one.
    base_url: String,
}

impl Gateway {
    /// A client for the gateway at `base_url` (`http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self::with_http(http, base_url))
    }

    /// A client that sends through `http`, configured as the caller likes
    /// (e.g. with a timeout per request).
    pub fn with_http(http: reqwest::Client, base_url: &str) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request to `path` (with its query string, if any), with `token` as
    /// its bearer token: for calls not typed here, and for tests that check
    /// statuses and bodies to the byte.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST /users`: an account and the bearer token that speaks for it.
    pub async fn sign_up(&self, handle: &str, display_name: &str) -> Result<SignedUp, Error> {
        let body = json!({ "handle": handle, "display_name": display_name });
        json_body(self.request(Method::POST, "/users", None).json(&body)).await
    }

    /// `GET /users/{id}/timeline`: a page of `user_id`'s home timeline, of
    /// `limit` tweets or the gateway's default.
    pub async fn home_timeline(
        &self,
        user_id: i64,
        token: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page, Error> {
        let request = self
            .request(
                Method::GET,
                &format!("/users/{user_id}/timeline"),
                Some(token),
            )
            .query(&[("cursor", cursor)])
            .query(&[("limit", limit)]);
        json_body(request).await
    }

    /// `GET /users/{id}/tweets`: the first page of `user_id`'s own tweets.
    pub async fn user_tweets(&self, user_id: i64) -> Result<Page, Error> {
        json_body(self.request(Method::GET, &format!("/users/{user_id}/tweets"), None)).await
    }

    /// `GET /users/{id}/tweets` from `cursor`, `limit` at a time: how a
    /// check walks an author's whole history.
    pub async fn user_tweets_page(
        &self,
        user_id: i64,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page, Error> {
        let request = self
            .request(Method::GET, &format!("/users/{user_id}/tweets"), None)
            .query(&[("cursor", cursor)])
            .query(&[("limit", limit)]);
        json_body(request).await
    }

    /// `POST /tweets`. With an `idempotency_key` a retry cannot post twice:
    /// a replay (200) succeeds like a creation (201), with the same tweet.
    pub async fn post_tweet(
        &self,
        token: &str,
        content: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Tweet, Error> {
        let mut request = self
            .request(Method::POST, "/tweets", Some(token))
            .json(&json!({ "content": content }));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        json_body(request).await
    }

    /// `GET /tweets/{id}`: one tweet.
    pub async fn tweet(&self, tweet_id: i64) -> Result<Tweet, Error> {
        json_body(self.request(Method::GET, &format!("/tweets/{tweet_id}"), None)).await
    }

    /// `GET /tweets/{id}/delivery`: how far the tweet's fan-out has got.
    pub async fn delivery(&self, tweet_id: i64) -> Result<Delivery, Error> {
        let path = format!("/tweets/{tweet_id}/delivery");
        json_body(self.request(Method::GET, &path, None)).await
    }

    /// `DELETE /tweets/{id}`: one of the caller's tweets leaves every
    /// timeline.
    pub async fn delete_tweet(&self, token: &str, tweet_id: i64) -> Result<(), Error> {
        let path = format!("/tweets/{tweet_id}");
        send(self.request(Method::DELETE, &path, Some(token)))
            .await
            .map(drop)
    }

    /// `POST /follow`: the caller follows `target` (also if already).
    pub async fn follow(&self, token: &str, target: i64) -> Result<(), Error> {
        let body = json!({ "target_user_id": target.to_string() });
        send(
            self.request(Method::POST, "/follow", Some(token))
                .json(&body),
        )
        .await
        .map(drop)
    }

    /// `DELETE /follow/{id}`: the caller stops following `target` (also if
    /// never did).
    pub async fn unfollow(&self, token: &str, target: i64) -> Result<(), Error> {
        let path = format!("/follow/{target}");
        send(self.request(Method::DELETE, &path, Some(token)))
            .await
            .map(drop)
    }

    /// `GET /users/{id}`: a profile with its follower and following counts.
    pub async fn user(&self, user_id: i64) -> Result<Profile, Error> {
        json_body(self.request(Method::GET, &format!("/users/{user_id}"), None)).await
    }

    /// `GET /users/{id}/followers`: a page of `user_id`'s followers, 100 at
    /// a time.
    pub async fn followers(
        &self,
        user_id: i64,
        cursor: Option<&str>,
    ) -> Result<ProfilePage, Error> {
        let request = self
            .request(Method::GET, &format!("/users/{user_id}/followers"), None)
            .query(&[("limit", "100")])
            .query(&[("cursor", cursor)]);
        json_body(request).await
    }
}

/// Sends `request`; any status but 2xx is an [`Error::Status`].
async fn send(request: RequestBuilder) -> Result<Response, Error> {
    let response = request.send().await.map_err(Error::Unanswered)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.bytes().await.unwrap_or_default();
    Err(Error::status_with_body(status, &body))
}

async fn json_body<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, Error> {
    let response = send(request).await?;
    let status = response.status();
    response
        .json()
        .await
        .map_err(|source| Error::Body { status, source })
}
