//! Step 1 of a page, the pushed page: the ids the fan-out worker pushed
//! into the reader's timeline in Redis, or, when Redis does not hold that
//! timeline complete, the ids its rebuild ([`crate::rebuild`]) wrote; and,
//! below the oldest id Redis holds, the same authors' older ids from the
//! stores. With the ids comes the list of authors step 2 pulls, which the
//! rebuild stored beside the timeline ([`crate::followed`] says why).
//!
//! Redis holds at most `TIMELINE_CAPACITY` ids. A page that runs past the
//! oldest of them continues from the stores, reading the authors a rebuild
//! would, so paging down never ends early nor skips a pushed author.

use std::collections::HashSet;
use std::sync::Arc;

use chirp_common::grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_proto::timeline::{ItemSource, TimelineCache};
use chirp_proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_timelines::{HomeTimelines, State};

use crate::TimelineError;
use crate::authors;
use crate::rebuild::Rebuilt;

/// The pushed half of a page: ids newest first, each with its source.
pub struct Pushed {
    pub ids: Vec<(i64, ItemSource)>,
    /// Redis holds older ids than it keeps: below the last, read the stores.
    pub cut: bool,
    pub cache: TimelineCache,
    /// The authors whose tweets were not pushed, stored with the timeline:
    /// step 2 pulls them.
    pub pulled_authors: Arc<[i64]>,
}

/// Up to `want` ids older than `before` from `user_id`'s cached timeline,
/// or `None` when Redis does not hold it complete (it must be rebuilt).
pub async fn cached(
    timelines: &HomeTimelines,
    user_id: i64,
    before: Option<i64>,
    want: usize,
) -> Result<Option<Pushed>, TimelineError> {
    let cached = timelines.read(user_id, before, want).await?;
    Ok(match cached.state {
        State::Complete { cut } => Some(Pushed {
            ids: tag(cached.ids, ItemSource::Pushed),
            cut,
            cache: TimelineCache::Hit,
            pulled_authors: cached.pulled.into(),
        }),
        State::Missing | State::Rebuilding => None,
    })
}

/// The page of a timeline just rebuilt: the rebuilt ids older than
/// `before`, and the ids Redis holds there (the rebuilt ones, plus pushes
/// that landed during the rebuild; or nothing, if the rebuild could not
/// complete), merged.
pub async fn rebuilt(
    timelines: &HomeTimelines,
    rebuilt: &Rebuilt,
    user_id: i64,
    before: Option<i64>,
    want: usize,
) -> Result<Pushed, TimelineError> {
    let landed = timelines.page(user_id, before, want).await?;
    Ok(Pushed {
        ids: with_rebuilt(&rebuilt.ids, landed, before, want),
        cut: rebuilt.cut,
        cache: TimelineCache::Rebuilt,
        pulled_authors: Arc::clone(&rebuilt.pulled),
    })
}

/// Up to `count` ids older than `below` of the authors pushed to
/// `user_id` (all they follow but the `pulled`), from the stores.
pub async fn from_stores(
    graph: &GraphServiceClient<Channel>,
    tweets: &TweetServiceClient<Channel>,
    user_id: i64,
    pulled: &[i64],
    below: Option<i64>,
    count: usize,
) -> Result<Vec<(i64, ItemSource)>, TimelineError> {
    let authors = authors::pushed_to(graph, user_id, pulled).await?;
    let older = authors::newest(tweets, &authors, below, count, count).await?;
    Ok(tag(older.ids, ItemSource::Store))
}

fn tag(ids: Vec<i64>, source: ItemSource) -> Vec<(i64, ItemSource)> {
    ids.into_iter().map(|id| (id, source)).collect()
}

/// The rebuilt ids older than `before` and the `landed` ones, up to `want`,
/// newest first.
fn with_rebuilt(
    rebuilt: &[i64],
    landed: Vec<i64>,
    before: Option<i64>,
    want: usize,
) -> Vec<(i64, ItemSource)> {
    let rebuilt: HashSet<i64> = rebuilt
        .iter()
        .copied()
        .filter(|&id| before.is_none_or(|before| id < before))
        .collect();
    let mut ids: Vec<i64> = landed.into_iter().chain(rebuilt.iter().copied()).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.dedup();
    ids.truncate(want);
    ids.into_iter()
        .map(|id| {
            let source = if rebuilt.contains(&id) {
                ItemSource::Rebuilt
            } else {
                ItemSource::Pushed
            };
            (id, source)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuilt_page_merges_the_pushes_that_landed_meanwhile() {
        let page = with_rebuilt(&[9, 7, 5, 3], vec![8, 7, 5], Some(9), 3);
        assert_eq!(
            page,
            [
                (8, ItemSource::Pushed),
                (7, ItemSource::Rebuilt),
                (5, ItemSource::Rebuilt)
            ]
        );
        let page = with_rebuilt(&[9, 7], vec![10, 9, 7], None, 5);
        assert_eq!(page[0], (10, ItemSource::Pushed));
        assert_eq!(page.len(), 3);
    }
}
