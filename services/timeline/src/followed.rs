//! Which celebrities a reader follows, from the graph service: read by a
//! rebuild, which stores the list in Redis beside the timeline it rebuilds.
//!
//! Under the hybrid strategy every page merges in the newest tweets of the
//! celebrities its reader follows, so every page needs that list. Asking the
//! graph for it each time costs a call and a Postgres query per page, more
//! than the Redis read it complements; keeping it in each timeline service's
//! memory for a TTL missed at a million users (each of 100 000 active
//! readers came back less often than the TTL: docs/BENCHMARKS.md) and left
//! a followee *rising* above the threshold unseen until it expired. So the
//! list is read here only when a timeline is rebuilt, and lives with the
//! timeline (`chirp_timelines`): exact, shared by every instance,
//! and read in the page's one round trip to Redis. Every change to it drops
//! the timeline: the reader's follows and unfollows, and a followee crossing
//! the threshold either way (the graph queues those drops).
//!
//! The list is read a page at a time, up to
//! [`MAX_AUTHORS_SCANNED`](crate::authors::MAX_AUTHORS_SCANNED)
//! celebrities, the bound a rebuild puts on the followees it reads: a page
//! then merges at most that many pulled authors. A reader following more
//! celebrities than that does not see the tweets of the ones past it (by
//! user id): none are pushed, and none pulled.

use chirp_common::grpc::Channel;
use chirp_proto::graph::ListFollowedCelebritiesRequest;
use chirp_proto::graph::graph_service_client::GraphServiceClient;

use crate::TimelineError;
use crate::authors::scan_user_ids;

/// Celebrities fetched per `ListFollowedCelebrities` call.
const CELEBRITIES_PAGE: u32 = 1_000;

/// The celebrities `user_id` follows, by user id, up to
/// [`MAX_AUTHORS_SCANNED`](crate::authors::MAX_AUTHORS_SCANNED).
pub async fn celebrities(
    graph: &GraphServiceClient<Channel>,
    user_id: i64,
) -> Result<Vec<i64>, TimelineError> {
    scan_user_ids(|after_user_id| {
        let mut graph = graph.clone();
        async move {
            let request = ListFollowedCelebritiesRequest {
                user_id,
                after_user_id,
                limit: CELEBRITIES_PAGE,
            };
            graph.list_followed_celebrities(request).await
        }
    })
    .await
}
