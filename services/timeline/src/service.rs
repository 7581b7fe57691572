//! The gRPC surface of the timeline service: one page of ids from Redis,
//! hydrated into tweets with one call to the tweet service.

use std::collections::HashMap;

use chirp_common::proto::timeline::GetHomeTimelineRequest;
use chirp_common::proto::timeline::timeline_service_server::TimelineService;
use chirp_common::proto::tweet::tweet_service_client::TweetServiceClient;
use chirp_common::proto::tweet::{BatchGetTweetsRequest, Tweet, TweetPage};
use chirp_common::timelines::HomeTimelines;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::TimelineError;

/// Page size when the caller asks for none, and the most one page may hold.
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

pub struct Timeline {
    timelines: HomeTimelines,
    /// Cloned for each call: a tonic client is a cheap handle on one shared,
    /// lazily connected channel.
    tweets: TweetServiceClient<Channel>,
}

impl Timeline {
    pub fn new(timelines: HomeTimelines, tweets: TweetServiceClient<Channel>) -> Self {
        Self { timelines, tweets }
    }

    /// The tweets behind `ids`, in the order of `ids`. Ids the tweet service
    /// does not know were deleted after they reached the timeline: dropped.
    async fn hydrate(&self, ids: Vec<i64>) -> Result<Vec<Tweet>, TimelineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self
            .tweets
            .clone()
            .batch_get_tweets(BatchGetTweetsRequest {
                tweet_ids: ids.clone(),
            })
            .await
            .map_err(TimelineError::Tweet)?
            .into_inner()
            .tweets;
        let mut by_id: HashMap<i64, Tweet> = found
            .into_iter()
            .map(|tweet| (tweet.tweet_id, tweet))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}

#[tonic::async_trait]
impl TimelineService for Timeline {
    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().user_id))]
    async fn get_home_timeline(
        &self,
        request: Request<GetHomeTimelineRequest>,
    ) -> Result<Response<TweetPage>, Status> {
        let request = request.into_inner();
        if request.user_id <= 0 {
            return Err(TimelineError::InvalidArgument("user_id must be positive".into()).into());
        }
        if request.before_tweet_id.is_some_and(|id| id <= 0) {
            return Err(
                TimelineError::InvalidArgument("before_tweet_id must be positive".into()).into(),
            );
        }
        let limit = page_size(request.limit);
        let mut ids = self
            .timelines
            .page(request.user_id, request.before_tweet_id, limit + 1)
            .await
            .map_err(TimelineError::from)?;
        let next_before_tweet_id = next_cursor(&mut ids, limit);
        let tweets = self.hydrate(ids).await?;
        Ok(Response::new(TweetPage {
            tweets,
            next_before_tweet_id,
        }))
    }
}

fn page_size(requested: u32) -> usize {
    let size = if requested == 0 {
        DEFAULT_PAGE
    } else {
        requested.min(MAX_PAGE)
    };
    size as usize
}

/// Truncates `ids`, read with one id more than the page, to the page, and
/// returns the cursor when that extra id showed there is more. The cursor is
/// the last id *read*, not the last tweet returned: when the oldest ids of a
/// page were deleted, the next page must still start after them.
fn next_cursor(ids: &mut Vec<i64>, limit: usize) -> Option<i64> {
    let has_more = ids.len() > limit;
    ids.truncate(limit);
    if has_more { ids.last().copied() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(0), 20);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(u32::MAX), 100);
    }

    #[test]
    fn a_cursor_only_when_more_ids_exist() {
        let mut ids = vec![9, 8, 7];
        assert_eq!(next_cursor(&mut ids, 2), Some(8));
        assert_eq!(ids, [9, 8]);
        let mut ids = vec![9, 8];
        assert_eq!(next_cursor(&mut ids, 2), None);
        assert_eq!(ids, [9, 8]);
        assert_eq!(next_cursor(&mut Vec::new(), 2), None);
    }
}
