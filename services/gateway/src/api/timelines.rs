//! The home timeline: what the people a user follows have posted, and, on
//! request, why each item is there.
//!
//! It is private: only its owner may read it, which is why the route needs
//! a token even though it is a GET; the token also puts it under a per-user
//! read limit (`crate::read_limit`).
//!
//! Every item says where it came from (`source`: pushed into the cached
//! timeline, pulled from a followed celebrity, written by a rebuild, or read
//! from the tweet store), because the timeline service says so for free. How
//! the page was assembled (the strategy, cache hit or rebuild, the authors
//! pulled, the time of each step) costs the service a little to measure, so
//! it comes only with `?explain=true`. Every response carries a
//! `Server-Timing` header, which browsers' developer tools draw next to the
//! request: the gateway's own steps, plus the service's steps when explained.
//!
//! A first page the timeline service answered without waiting for a rebuild
//! of the timeline (`ANSWER_WHILE_REBUILDING` there) is a 206 with
//! `"partial": true`: a page, not an error, that may lack newer tweets.

use std::fmt::Write;
use std::time::{Duration, Instant};

use axum::Json as JsonResponse;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chirp_proto::timeline::{
    GetHomeTimelineRequest, HomeTimelinePage, ItemSource, PageExplain, TimelineCache,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Path, Query};
use super::hydrate::{self, TweetView};
use super::pages::PageQuery;
use crate::AppState;
use crate::cursor::CursorKind;
use crate::error::{ApiError, RateLimited};
use crate::read_limit::Reader;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(home_timeline))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TimelineQuery {
    /// `next_cursor` of the previous page; omit for the first page.
    cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Also say how the page was assembled (`explain` in the body).
    explain: Option<bool>,
}

/// A page of the home timeline.
#[derive(Debug, Serialize, ToSchema)]
struct HomePage {
    items: Vec<TimelineItem>,
    /// Opaque; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// Only with `?explain=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<Explain>,
    /// Present, and true, when the page was answered while the timeline is
    /// being rebuilt, with what the cache held (possibly nothing): newer
    /// tweets may be missing, and a later read has them. The status is
    /// then 206.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

#[derive(Debug, Serialize, ToSchema)]
struct TimelineItem {
    #[serde(flatten)]
    tweet: TweetView,
    /// Absent if the timeline service did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
}

/// Where an item came from.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Source {
    /// Written into the cached timeline by the fan-out worker when posted.
    Pushed,
    /// Merged in at read time from a followed author who is not pushed.
    Pulled,
    /// Written into the cached timeline by the rebuild this read ran.
    Rebuilt,
    /// Older than the cached timeline reaches: read from the tweet store.
    Store,
}

/// How the page was assembled.
#[derive(Debug, Serialize, ToSchema)]
struct Explain {
    /// `push`, `pull` or `hybrid`.
    strategy: String,
    /// How the cached half of the page was found: `hit`, `rebuilt`,
    /// `partial` (answered while the timeline is rebuilt), or `none` under
    /// the pull strategy; absent if the service did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<&'static str>,
    /// The followed authors whose tweets were pulled and merged in.
    pulled_authors: Vec<Author>,
    /// Each step, in the order it ran: the timeline service's, then the gateway's.
    hops: Vec<Hop>,
    /// What the page leaves out on purpose, in words (e.g. followed authors
    /// past the most a page pulls from); absent when nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Author {
    id: String,
    handle: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct Hop {
    /// Which process ran it: `timeline` or `gateway`.
    service: &'static str,
    name: String,
    micros: u64,
}

/// The user's home timeline, newest first; only its owner may read it.
#[utoipa::path(get, path = "/users/{id}/timeline", operation_id = "get_home_timeline", tag = "timelines",
    params(("id" = i64, Path, description = "user id, the caller's own"), TimelineQuery),
    security(("bearer" = [])),
    responses((status = OK, description = "a page of tweets", body = HomePage,
        headers(("Server-Timing" = String,
            description = "the time of each step, in milliseconds (W3C Server Timing)"))),
        (status = PARTIAL_CONTENT, description = "a page answered while the timeline is rebuilt, \
            with what the cache held (possibly nothing); `partial` is true", body = HomePage),
        (status = TOO_MANY_REQUESTS, response = RateLimited)))]
async fn home_timeline(
    State(state): State<AppState>,
    Reader(caller): Reader,
    Path(user_id): Path<i64>,
    Query(query): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    caller.must_be(user_id)?;
    let page_query = PageQuery::new(query.cursor, query.limit);
    let explain = query.explain.unwrap_or(false);
    let request = GetHomeTimelineRequest {
        user_id,
        before_tweet_id: page_query.position(&state.cursors, CursorKind::Tweets)?,
        limit: page_query.limit()?,
        explain,
    };
    let started = Instant::now();
    let HomeTimelinePage {
        tweets,
        next_before_tweet_id,
        sources,
        explain: explained,
        partial,
    } = state
        .timeline
        .clone()
        .get_home_timeline(request)
        .await?
        .into_inner();
    let timeline_took = started.elapsed();
    let started = Instant::now();
    let views = hydrate::views(&state, tweets).await?;
    let mut gateway_hops = vec![
        ("timeline call", timeline_took),
        ("author handles", started.elapsed()),
    ];
    let explain = match explained.filter(|_| explain) {
        Some(explained) => {
            let started = Instant::now();
            let explain = explanation(&state, explained, &gateway_hops).await?;
            gateway_hops.push(("explain", started.elapsed()));
            Some(explain)
        }
        None => None,
    };
    let timing = server_timing(explain.as_ref(), &gateway_hops);
    let items = views
        .into_iter()
        .enumerate()
        .map(|(index, tweet)| TimelineItem {
            tweet,
            source: sources.get(index).and_then(|&raw| source(raw)),
        })
        .collect();
    let body = HomePage {
        items,
        next_cursor: next_before_tweet_id.map(|id| state.cursors.encode(CursorKind::Tweets, id)),
        explain,
        partial,
    };
    let status = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = (status, JsonResponse(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&timing) {
        response.headers_mut().insert("server-timing", value);
    }
    Ok(response)
}

fn source(raw: i32) -> Option<Source> {
    match ItemSource::try_from(raw).ok()? {
        ItemSource::Pushed => Some(Source::Pushed),
        ItemSource::Pulled => Some(Source::Pulled),
        ItemSource::Rebuilt => Some(Source::Rebuilt),
        ItemSource::Store => Some(Source::Store),
        ItemSource::Unspecified => None,
    }
}

/// The service's explanation, with handles for the pulled authors.
async fn explanation(
    state: &AppState,
    explained: PageExplain,
    gateway_hops: &[(&'static str, Duration)],
) -> Result<Explain, ApiError> {
    let cache = match TimelineCache::try_from(explained.cache).ok() {
        Some(TimelineCache::Hit) => Some("hit"),
        Some(TimelineCache::Rebuilt) => Some("rebuilt"),
        Some(TimelineCache::None) => Some("none"),
        Some(TimelineCache::Partial) => Some("partial"),
        Some(TimelineCache::Unspecified) | None => None,
    };
    let handles = hydrate::handles(state, &explained.pulled_author_ids).await?;
    let pulled_authors = explained
        .pulled_author_ids
        .iter()
        .map(|id| Author {
            id: id.to_string(),
            handle: handles.get(id).map_or_else(String::new, |h| h.to_string()),
        })
        .collect();
    let service_hops = explained.hops.into_iter().map(|hop| Hop {
        service: "timeline",
        name: hop.name,
        micros: hop.micros,
    });
    let gateway_hops = gateway_hops.iter().map(|&(name, took)| Hop {
        service: "gateway",
        name: name.to_owned(),
        micros: took.as_micros() as u64,
    });
    Ok(Explain {
        strategy: explained.strategy,
        cache,
        pulled_authors,
        hops: service_hops.chain(gateway_hops).collect(),
        notes: explained.notes,
    })
}

/// `Server-Timing`: each step as `name;dur=<ms>;desc="…"`. Metric names
/// must be tokens, so a hop's name has its spaces turned into dashes, and
/// the original goes in `desc`.
fn server_timing(explain: Option<&Explain>, gateway_hops: &[(&str, Duration)]) -> String {
    let service_hops = explain
        .into_iter()
        .flat_map(|explain| &explain.hops)
        .filter(|hop| hop.service == "timeline")
        .map(|hop| ("timeline", hop.name.as_str(), hop.micros as f64 / 1000.0));
    let gateway_hops = gateway_hops
        .iter()
        .map(|&(name, took)| ("gateway", name, took.as_secs_f64() * 1000.0));
    // Written into one string: this header is on every response.
    let mut header = String::with_capacity(128);
    for (index, (service, name, ms)) in service_hops.chain(gateway_hops).enumerate() {
        if index > 0 {
            header.push_str(", ");
        }
        header.push_str(service);
        header.push('-');
        header.extend(
            name.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
        );
        let _ = write!(header, ";dur={ms:.3};desc=\"{service} ");
        header.extend(
            name.chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .filter(|c| *c != '"' && *c != '\\'),
        );
        header.push('"');
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_names_are_tokens_and_carry_every_step() {
        let explain = Explain {
            strategy: "hybrid".to_owned(),
            cache: Some("hit"),
            pulled_authors: Vec::new(),
            hops: vec![Hop {
                service: "timeline",
                name: "redis page".to_owned(),
                micros: 1500,
            }],
            notes: Vec::new(),
        };
        let header = server_timing(
            Some(&explain),
            &[("author handles", Duration::from_micros(250))],
        );
        assert_eq!(
            header,
            "timeline-redis-page;dur=1.500;desc=\"timeline redis page\", \
             gateway-author-handles;dur=0.250;desc=\"gateway author handles\""
        );
        assert!(HeaderValue::from_str(&header).is_ok());
    }
}
