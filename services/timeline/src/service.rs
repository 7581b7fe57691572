//! The gRPC surface of the timeline service: one page of ids, assembled by
//! [`crate::home`], hydrated into tweets through [`crate::hydrate`], each
//! tweet labelled with where it came from and, on request, the page with how
//! it was assembled.

use std::time::Instant;

use chirp_common::paging::PageSize;
use chirp_proto::timeline::timeline_service_server::TimelineService;
use chirp_proto::timeline::{
    GetHomeTimelineRequest, HomeTimelinePage, Hop, ItemSource, PageExplain,
};
use chirp_timelines::Strategy;
use clap::ValueEnum;
use tonic::{Request, Response, Status};

use crate::TimelineError;
use crate::home::Home;
use crate::hydrate::CachedTweets;

/// Page size when the caller asks for none, and the most one page may hold.
const PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};

pub struct Timeline {
    home: Home,
    tweets: CachedTweets,
    /// Named in the explanation of a page.
    strategy: Strategy,
}

impl Timeline {
    pub fn new(home: Home, tweets: CachedTweets, strategy: Strategy) -> Self {
        Self {
            home,
            tweets,
            strategy,
        }
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
        let page = self
            .home
            .page(request.user_id, request.before_tweet_id, limit)
            .await?;
        let hydrating = Instant::now();
        let tweets = self.tweets.hydrate(&page.ids).await?;
        let sources = tweets
            .iter()
            .map(|tweet| {
                let source = page.sources.get(&tweet.tweet_id);
                source.copied().unwrap_or(ItemSource::Unspecified) as i32
            })
            .collect();
        let explain = request.explain.then(|| {
            let mut hops = page.hops.into_vec();
            hops.push(Hop {
                name: "hydrate".to_owned(),
                micros: hydrating.elapsed().as_micros() as u64,
            });
            PageExplain {
                strategy: self
                    .strategy
                    .to_possible_value()
                    .map_or_else(String::new, |value| value.get_name().to_owned()),
                cache: page.cache as i32,
                pulled_author_ids: page.pulled_authors.to_vec(),
                hops,
            }
        });
        Ok(Response::new(HomeTimelinePage {
            tweets,
            next_before_tweet_id: page.next_before,
            sources,
            explain,
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
