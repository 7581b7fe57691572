//! Step 2 of a page, the authors it pulls: whose tweets are merged in at
//! read time because fan-out did not push them. Under hybrid, the
//! celebrities the reader follows, as a rebuild stored them in Redis beside
//! the timeline (read with the pushed ids in step 1); under pull, everyone
//! the reader follows and themselves; under push, nobody.
//!
//! Under the hybrid strategy every page merges in the newest tweets of the
//! celebrities its reader follows, so every page needs that list. Asking the
//! graph for it each time costs a call and a Postgres query per page, more
//! than the Redis read it complements; keeping it in each timeline service's
//! memory for a TTL missed at a million users (each of 100 000 active
//! readers came back less often than the TTL: docs/BENCHMARKS.md) and left
//! a followee *rising* above the threshold unseen until it expired. So the
//! list is read from the graph only when a timeline is rebuilt, and lives with the
//! timeline (`chirp_timeline_store`): exact, shared by every instance,
//! and read in the page's one round trip to Redis. Every change to it drops
//! the timeline: the reader's follows and unfollows, and a followee crossing
//! the threshold either way (the graph queues those drops).
//!
//! The list is read from the graph a page at a time
//! ([`crate::stores::celebrities`]), up to
//! [`MAX_AUTHORS_SCANNED`](crate::stores::MAX_AUTHORS_SCANNED)
//! celebrities, the bound a rebuild puts on the followees it reads: a page
//! then merges at most that many pulled authors. A reader following more
//! celebrities than that does not see the tweets of the ones past it (by
//! user id): none are pushed, and none pulled.

use std::sync::Arc;

use chirp_grpc::Channel;
use chirp_proto::graph::graph_service_client::GraphServiceClient;
use chirp_timeline_store::Strategy;
use metrics::histogram;

use crate::{TimelineError, stats, stores};

/// The authors `user_id`'s page pulls under `strategy`, given those
/// `stored` with the pushed ids.
pub async fn pulled_authors(
    strategy: Strategy,
    graph: &GraphServiceClient<Channel>,
    user_id: i64,
    stored: Arc<[i64]>,
) -> Result<Arc<[i64]>, TimelineError> {
    let authors = match strategy {
        Strategy::Hybrid => stored,
        Strategy::Pull => {
            let mut authors = stores::following(graph, user_id).await?;
            authors.push(user_id);
            authors.into()
        }
        Strategy::Push => Arc::default(),
    };
    histogram!(stats::PULLED_AUTHORS).record(authors.len() as f64);
    Ok(authors)
}
