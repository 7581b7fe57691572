//! Step 1 of a page, the pushed ids: the ids the fan-out worker pushed into
//! the reader's timeline in Redis, and the list of authors step 2 pulls,
//! which the timeline's rebuild stored beside it ([`crate::followed`] says
//! why), read in one round trip. When Redis does not hold the timeline
//! complete, or holds it stale (its reader returns after the activity
//! window, `ACTIVE_WINDOW_SECS`: pushes skipped them meanwhile),
//! [`crate::rebuild`] writes it again and answers this step instead, or,
//! with `ANSWER_WHILE_REBUILDING`, the page is answered at once with what
//! Redis holds (`crate::home`).

use std::sync::Arc;

use chirp_proto::timeline::{ItemSource, TimelineCache};
use chirp_timeline_store::{HomeTimelines, State};

use crate::TimelineError;

/// The pushed half of a page: ids newest first, each with its source.
pub struct PushedIds {
    pub ids: Vec<(i64, ItemSource)>,
    /// Redis holds older ids than it keeps: below the last, read the stores.
    pub cut: bool,
    pub cache: TimelineCache,
    /// The authors whose tweets were not pushed, stored with the timeline:
    /// step 2 pulls them.
    pub pulled_authors: Arc<[i64]>,
}

impl PushedIds {
    /// The pushed half of a page under the pull strategy: nothing.
    pub fn none() -> Self {
        Self {
            ids: Vec::new(),
            cut: false,
            cache: TimelineCache::None,
            pulled_authors: Arc::default(),
        }
    }
}

/// What Redis held of a timeline for step 1.
pub enum Found {
    /// Complete and fresh: the page is served from it.
    Served(PushedIds),
    /// Missing, being rebuilt, or stale (its reader returns after the
    /// activity window): a rebuild must write it. `held` is
    /// what Redis holds of it meanwhile, possibly nothing, which a page
    /// answered while rebuilding serves.
    Rebuild { held: PushedIds },
}

/// Up to `want` ids older than `before` from `user_id`'s cached timeline,
/// and whether they may be served as they are.
pub async fn cached(
    timelines: &HomeTimelines,
    user_id: i64,
    before: Option<i64>,
    want: usize,
) -> Result<Found, TimelineError> {
    let cached = timelines.read(user_id, before, want).await?;
    let ids = cached
        .ids
        .into_iter()
        .map(|id| (id, ItemSource::Pushed))
        .collect();
    Ok(match cached.state {
        State::Complete { cut } if !cached.returning => Found::Served(PushedIds {
            ids,
            cut,
            cache: TimelineCache::Hit,
            pulled_authors: cached.pulled.into(),
        }),
        State::Complete { .. } | State::Missing | State::Rebuilding => Found::Rebuild {
            held: PushedIds {
                ids,
                // What lies past what Redis holds is the rebuild's to say.
                cut: false,
                cache: TimelineCache::Partial,
                pulled_authors: cached.pulled.into(),
            },
        },
    })
}
