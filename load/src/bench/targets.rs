//! The read path, layer by layer, as [`Target`]s for the same driver that
//! loads the gateway: Redis alone, the timeline service over gRPC. Every
//! layer is measured by the same scheduler and recorder, so the ratios
//! between them compare like with like.

use chirp_grpc::Channel;
use chirp_proto::timeline::GetHomeTimelineRequest;
use chirp_proto::timeline::timeline_service_client::TimelineServiceClient;
use chirp_timeline_store::HomeTimelines;

use crate::schedule::{Failure, Outcome, Target};

pub const REDIS_PAGE: &str = "redis: page_if_complete";
pub const GRPC_PAGE: &str = "grpc: GetHomeTimeline";

/// The Redis commands of one cached home-timeline page, and nothing else:
/// the very call the timeline service makes (`HomeTimelines::
/// read`, as `page_if_complete`: the markers, the page (ZRANGE BYLEX REV), the
/// stored list of pulled authors (GET) and both keys' EXPIRE, in one
/// pipelined round trip) through the same client, on one multiplexed
/// connection shared by every concurrent request, as in the service.
pub struct RedisPage {
    pub timelines: HomeTimelines,
    pub readers: Vec<i64>,
    /// Ids per page: the page size and the one more that tells whether
    /// there is a next page, as the service asks.
    pub want: usize,
}

impl Target for RedisPage {
    async fn call(&self, n: u64) -> Outcome {
        let user_id = self.readers[(n % self.readers.len() as u64) as usize];
        let result = match self
            .timelines
            .page_if_complete(user_id, None, self.want)
            .await
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Failure("redis: timeline not cached".to_owned())),
            Err(error) => Err(Failure(format!("redis: {:?}", error.kind()))),
        };
        Outcome {
            operation: REDIS_PAGE,
            result,
        }
    }
}

/// `GetHomeTimeline` straight at the timeline service, as the gateway calls
/// it: one HTTP/2 connection, every request multiplexed on it.
pub struct TimelineGrpc {
    pub client: TimelineServiceClient<Channel>,
    pub readers: Vec<i64>,
    /// 0 for the service's default page size.
    pub limit: u32,
}

impl Target for TimelineGrpc {
    async fn call(&self, n: u64) -> Outcome {
        let user_id = self.readers[(n % self.readers.len() as u64) as usize];
        let request = GetHomeTimelineRequest {
            user_id,
            before_tweet_id: None,
            limit: self.limit,
            ..Default::default()
        };
        let result = match self.client.clone().get_home_timeline(request).await {
            Ok(_) => Ok(()),
            Err(status) => Err(Failure(format!("grpc {:?}", status.code()))),
        };
        Outcome {
            operation: GRPC_PAGE,
            result,
        }
    }
}
