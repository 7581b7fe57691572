//! The gRPC surface of the graph service: validates requests, calls the
//! store, and turns rows into protobuf messages.

use chirp_domain::input;
use chirp_domain::paging::{self, PageSize};
use std::collections::HashMap;

use chirp_proto::graph::{
    BatchGetUsersRequest, CreateUserRequest, CreateUserResponse, FollowRequest, FollowResponse,
    GetUserByHandleRequest, GetUserRequest, ImportFollowsRequest, ImportFollowsResponse,
    ImportGraphChunk, ImportGraphSummary, ListFollowedCelebritiesRequest, ListFollowsRequest,
    ListPopularUsersRequest, PopularUsers, UnfollowResponse, User, UserIdPage, UserList,
    graph_service_server::GraphService,
};
use tonic::{Request, Response, Status};

use crate::GraphError;
use crate::celebrity::Marks;
use crate::handle::{DisplayName, Handle};
use crate::pending_drops::PendingDrops;
use crate::popular;
use crate::sign_up::{self, SignedUp};
use crate::store::{Direction, ReadFrom, Store, UserRow};

/// Page size when the caller asks for none, and the most one page may hold.
const PAGE: PageSize = PageSize {
    default: 100,
    max: 5_000,
};
/// Page size of `ListFollowedCelebrities`. The default is the whole list
/// clients written before it was paged got (they read one page); the reader
/// that pages through it (the timeline service) bounds how many it reads.
const CELEBRITY_PAGE: PageSize = PageSize {
    default: 1_000,
    max: 5_000,
};
/// The most edges one `ImportFollows` call may carry: large enough that a
/// batch amortises its transaction, small enough that it holds its row locks
/// for a moment only and its message stays far below gRPC's 4 MB limit.
const MAX_IMPORT: usize = 10_000;

pub struct Graph {
    store: Store,
    /// The timelines a follow, an unfollow or a crossing makes stale.
    drops: PendingDrops,
    /// Where an author becomes a celebrity, and where they stop being one.
    marks: Marks,
}

impl Graph {
    pub fn new(store: Store, drops: PendingDrops, marks: Marks) -> Self {
        Self {
            store,
            drops,
            marks,
        }
    }

    /// Drops the timelines of `author_id`'s followers now, as queued by the
    /// transaction that took the author across the threshold. If this
    /// attempt fails the background loop finishes it, so the call that
    /// crossed need not fail.
    async fn drop_followers(&self, author_id: i64) {
        if let Err(error) = self.drops.drop_followers(author_id).await {
            tracing::warn!(%error, author_id, "timeline drop left for the retry loop");
        }
    }

    /// Drops `follower_id`'s cached home timeline after their follows
    /// changed; the next read rebuilds it from the graph as it is now. A
    /// failure fails the call, so that a client that goes on to read has not
    /// been told its follow is in while the old timeline is still served; the
    /// drop stays queued and is done without the client, too.
    async fn drop_own(&self, follower_id: i64) -> Result<(), GraphError> {
        self.drops.drop_own(&[follower_id]).await
    }

    async fn list(
        &self,
        direction: Direction,
        request: ListFollowsRequest,
    ) -> Result<Response<UserIdPage>, Status> {
        let limit = PAGE.resolve(request.limit);
        // A profile page's followers tolerate the replica's lag; the
        // fan-out's must not (it asks for a consistent listing), nor the
        // followees that feed the rebuild right after a follow. See `store`.
        let from = match direction {
            Direction::Followers if !request.consistent => ReadFrom::Replica,
            Direction::Followers | Direction::Following => ReadFrom::Primary,
        };
        if request.with_following_counts {
            let rows = self
                .store
                .edges_with_following_counts(
                    from,
                    direction,
                    request.user_id,
                    request.after_user_id,
                    limit as i64 + 1,
                )
                .await?;
            let (ids, counts): (Vec<i64>, Vec<i64>) = rows.into_iter().unzip();
            let mut page = page(ids, limit);
            page.following_counts = counts;
            page.following_counts.truncate(page.user_ids.len());
            return Ok(Response::new(page));
        }
        let ids = self
            .store
            .edges(
                from,
                direction,
                request.user_id,
                request.after_user_id,
                limit as i64 + 1,
            )
            .await?;
        Ok(Response::new(page(ids, limit)))
    }

    fn to_proto(&self, row: UserRow) -> User {
        User {
            is_celebrity: row.is_celebrity,
            user_id: row.user_id,
            handle: row.handle,
            display_name: row.display_name,
            follower_count: row.follower_count,
            following_count: row.following_count,
            created_at_ms: row.created_at_ms,
        }
    }
}

#[tonic::async_trait]
impl GraphService for Graph {
    #[tracing::instrument(skip_all, fields(handle = %request.get_ref().handle))]
    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        let request = request.into_inner();
        let handle = Handle::parse(&request.handle)?;
        let display_name = DisplayName::parse(&request.display_name)?;
        let key = input::idempotency_key(&request.idempotency_key)
            .map_err(GraphError::InvalidArgument)?;
        let SignedUp { user, created } =
            sign_up::create_user(&self.store, &handle, &display_name, key).await?;
        if created {
            tracing::info!(user_id = user.user_id, "user created");
        } else {
            tracing::info!(user_id = user.user_id, "sign-up replayed");
        }
        Ok(Response::new(CreateUserResponse {
            user: Some(self.to_proto(user)),
            created,
        }))
    }

    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let row = self.store.user(request.into_inner().user_id).await?;
        Ok(Response::new(self.to_proto(row)))
    }

    async fn batch_get_users(
        &self,
        request: Request<BatchGetUsersRequest>,
    ) -> Result<Response<UserList>, Status> {
        let user_ids = request.into_inner().user_ids;
        if user_ids.len() > PAGE.max as usize {
            return Err(GraphError::InvalidArgument(format!(
                "at most {} user ids at once, got {}",
                PAGE.max,
                user_ids.len()
            ))
            .into());
        }
        let mut rows: HashMap<i64, UserRow> = self
            .store
            .users(&user_ids)
            .await?
            .into_iter()
            .map(|row| (row.user_id, row))
            .collect();
        let users = user_ids
            .iter()
            .filter_map(|id| rows.remove(id))
            .map(|row| self.to_proto(row))
            .collect();
        Ok(Response::new(UserList { users }))
    }

    async fn get_user_by_handle(
        &self,
        request: Request<GetUserByHandleRequest>,
    ) -> Result<Response<User>, Status> {
        let row = self
            .store
            .user_by_handle(&request.into_inner().handle)
            .await?;
        Ok(Response::new(self.to_proto(row)))
    }

    #[tracing::instrument(skip_all, fields(follower_id = request.get_ref().follower_id, followee_id = request.get_ref().followee_id))]
    async fn follow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<FollowResponse>, Status> {
        let FollowRequest {
            follower_id,
            followee_id,
        } = request.into_inner();
        if follower_id == followee_id {
            return Err(GraphError::SelfFollow.into());
        }
        let followed = self
            .store
            .follow(follower_id, followee_id, self.marks)
            .await?;
        if followed.rose {
            self.drop_followers(followee_id).await;
        }
        self.drop_own(follower_id).await?;
        Ok(Response::new(FollowResponse {
            created: followed.created,
        }))
    }

    #[tracing::instrument(skip_all, fields(follower_id = request.get_ref().follower_id, followee_id = request.get_ref().followee_id))]
    async fn unfollow(
        &self,
        request: Request<FollowRequest>,
    ) -> Result<Response<UnfollowResponse>, Status> {
        let FollowRequest {
            follower_id,
            followee_id,
        } = request.into_inner();
        let unfollowed = self
            .store
            .unfollow(follower_id, followee_id, self.marks)
            .await?;
        if unfollowed.fell {
            self.drop_followers(followee_id).await;
        }
        self.drop_own(follower_id).await?;
        Ok(Response::new(UnfollowResponse {
            removed: unfollowed.removed,
        }))
    }

    #[tracing::instrument(skip_all, fields(edges = request.get_ref().follows.len()))]
    async fn import_follows(
        &self,
        request: Request<ImportFollowsRequest>,
    ) -> Result<Response<ImportFollowsResponse>, Status> {
        let follows = request.into_inner().follows;
        if follows.len() > MAX_IMPORT {
            return Err(GraphError::InvalidArgument(format!(
                "at most {MAX_IMPORT} follows per call, got {}",
                follows.len()
            ))
            .into());
        }
        if follows.iter().any(|f| f.follower_id == f.followee_id) {
            return Err(GraphError::SelfFollow.into());
        }
        let edges: Vec<(i64, i64)> = follows
            .iter()
            .map(|f| (f.follower_id, f.followee_id))
            .collect();
        let imported = self.store.import_follows(&edges, self.marks).await?;
        for author_id in imported.rose {
            self.drop_followers(author_id).await;
        }
        let mut followers: Vec<i64> = edges.iter().map(|&(follower, _)| follower).collect();
        followers.sort_unstable();
        followers.dedup();
        self.drops.drop_own(&followers).await?;
        tracing::info!(created = imported.created, "follows imported");
        Ok(Response::new(ImportFollowsResponse {
            created: imported.created,
        }))
    }

    async fn import_graph(
        &self,
        request: Request<tonic::Streaming<ImportGraphChunk>>,
    ) -> Result<Response<ImportGraphSummary>, Status> {
        let summary = crate::import::import_graph(
            self.store.pool(),
            request.into_inner(),
            self.marks.rise_at,
        )
        .await?;
        Ok(Response::new(summary))
    }

    async fn list_followers(
        &self,
        request: Request<ListFollowsRequest>,
    ) -> Result<Response<UserIdPage>, Status> {
        self.list(Direction::Followers, request.into_inner()).await
    }

    async fn list_following(
        &self,
        request: Request<ListFollowsRequest>,
    ) -> Result<Response<UserIdPage>, Status> {
        self.list(Direction::Following, request.into_inner()).await
    }

    async fn list_followed_celebrities(
        &self,
        request: Request<ListFollowedCelebritiesRequest>,
    ) -> Result<Response<UserIdPage>, Status> {
        let request = request.into_inner();
        let limit = CELEBRITY_PAGE.resolve(request.limit);
        let ids = self
            .store
            .followed_celebrities(request.user_id, request.after_user_id, limit as i64 + 1)
            .await?;
        Ok(Response::new(page(ids, limit)))
    }

    async fn list_popular_users(
        &self,
        request: Request<ListPopularUsersRequest>,
    ) -> Result<Response<PopularUsers>, Status> {
        let limit = popular::PAGE.resolve(request.into_inner().limit);
        let rows = self.store.most_followed(limit as i64).await?;
        let users = rows.into_iter().map(|row| self.to_proto(row)).collect();
        Ok(Response::new(PopularUsers { users }))
    }
}

/// The page of `ids`, read with one row more than `limit`.
fn page(mut ids: Vec<i64>, limit: usize) -> UserIdPage {
    UserIdPage {
        next_after_user_id: paging::cut(&mut ids, limit, |&id| id),
        user_ids: ids,
        following_counts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_only_when_more_rows_exist() {
        assert_eq!(page(vec![1, 2, 3], 2).next_after_user_id, Some(2));
        assert_eq!(page(vec![1, 2, 3], 2).user_ids, vec![1, 2]);
        assert_eq!(page(vec![1, 2], 2).next_after_user_id, None);
        assert_eq!(page(vec![], 2).next_after_user_id, None);
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PAGE.resolve(0), 100);
        assert_eq!(PAGE.resolve(7), 7);
        assert_eq!(PAGE.resolve(u32::MAX), 5_000);
    }
}
