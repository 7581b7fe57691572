//! Step 1 of a page, the pushed ids: the ids the fan-out worker pushed into
//! the reader's timeline in Redis, and the list of authors step 2 pulls,
//! which the timeline's rebuild stored beside it ([`crate::followed`] says
//! why), read in one round trip. When Redis does not hold the timeline
//! complete, [`crate::rebuild`] writes it again and answers this step
//! instead.

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

/// Up to `want` ids older than `before` from `user_id`'s cached timeline,
/// or `None` when Redis does not hold it complete (it must be rebuilt).
pub async fn cached(
    timelines: &HomeTimelines,
    user_id: i64,
    before: Option<i64>,
    want: usize,
) -> Result<Option<PushedIds>, TimelineError> {
    let cached = timelines.read(user_id, before, want).await?;
    Ok(match cached.state {
        State::Complete { cut } => Some(PushedIds {
            ids: cached
                .ids
                .into_iter()
                .map(|id| (id, ItemSource::Pushed))
                .collect(),
            cut,
            cache: TimelineCache::Hit,
            pulled_authors: cached.pulled.into(),
        }),
        State::Missing | State::Rebuilding => None,
    })
}
