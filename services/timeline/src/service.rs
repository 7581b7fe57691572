//! The gRPC surface of the timeline service: one page of ids, assembled by
//! [`crate::home`], hydrated into tweets through [`crate::hot_tweets`].

use chirp_common::paging::PageSize;
use chirp_common::proto::timeline::{GetHomeTimelineRequest, HomeTimelinePage};
use chirp_common::proto::timeline::timeline_service_server::TimelineService;
use tonic::{Request, Response, Status};

use crate::TimelineError;
use crate::home::Home;
use crate::hot_tweets::HotTweets;

/// Page size when the caller asks for none, and the most one page may hold.
const PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};

pub struct Timeline {
    home: Home,
    tweets: HotTweets,
}

impl Timeline {
    pub fn new(home: Home, tweets: HotTweets) -> Self {
        Self { home, tweets }
    }
}

#[tonic::async_trait]
impl TimelineService for Timeline {
    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().user_id))]
    async fn get_home_timeline(
        &self,
        request: Request<GetHomeTimelineRequest>,
    ) -> Result<Response<HomeTimelinePage>, Status> {
        let request = request.into_inner();
        if request.user_id <= 0 {
            return Err(TimelineError::InvalidArgument("user_id must be positive".into()).into());
        }
        if request.before_tweet_id.is_some_and(|id| id <= 0) {
            return Err(
                TimelineError::InvalidArgument("before_tweet_id must be positive".into()).into(),
            );
        }
        let limit = PAGE.resolve(request.limit);
        let (ids, next_before_tweet_id) = self
            .home
            .page(request.user_id, request.before_tweet_id, limit)
            .await?;
        let tweets = self.tweets.hydrate(&ids).await?;
        Ok(Response::new(HomeTimelinePage {
            tweets,
            next_before_tweet_id,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PAGE.resolve(0), 20);
        assert_eq!(PAGE.resolve(7), 7);
        assert_eq!(PAGE.resolve(u32::MAX), 100);
    }
}
