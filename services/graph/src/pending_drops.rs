//! Durable "drop these followers' timelines" work, for an author who crossed
//! the celebrity threshold, either way.
//!
//! Each follower's cached timeline is stored with the list of celebrities
//! it pulls (`chirp_timelines`), and crossing the threshold makes
//! that list wrong. An author who fell below it was pulled, never pushed, so
//! the timeline lacks their recent tweets, and from now on nothing pulls
//! them either. An author who rose above it is no longer pushed, and is not
//! in the stored list either, so their new tweets would reach no one. Each
//! of those timelines must be dropped and rebuilt, list and all. The work is
//! bounded: at that moment the author has the threshold's number of
//! followers, give or take one.
//!
//! Doing that after the follow or unfollow committed, as a plain follow-up
//! call, loses it for good when Redis fails in between: the client's retry
//! finds the edge as it wanted it and drops nothing. So the change's own
//! transaction queues the work as a row here ([`queue`]); the request then
//! tries it at once, and a loop in
//! every graph instance ([`PendingDrops::run`]) retries whatever is left
//! until it is done. `FOR UPDATE SKIP LOCKED` lets several instances share
//! the queue without doing one author twice at the same moment; doing one
//! twice in a row is harmless anyway, since dropping a timeline is
//! idempotent. The cost is one small table and a poll every few seconds.

use std::future::Future;
use std::time::Duration;

use chirp_timelines::TimelineDrops;

use crate::GraphError;
use crate::invalidate;
use crate::store::{Direction, ReadFrom, Store};

/// How often each instance looks for drops left undone.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// Followers' timelines dropped per Redis call.
const PAGE: i64 = 5_000;

/// Queues a drop of `author_id`'s followers' timelines, inside the
/// transaction that took the author across the threshold.
pub async fn queue(tx: &mut sqlx::PgConnection, author_id: i64) -> Result<(), GraphError> {
    sqlx::query(
        "INSERT INTO pending_timeline_drops (author_id) VALUES ($1) ON CONFLICT DO NOTHING",
    )
    .bind(author_id)
    .execute(tx)
    .await?;
    Ok(())
}

#[derive(Clone)]
pub struct PendingDrops {
    store: Store,
    timelines: TimelineDrops,
}

impl PendingDrops {
    pub fn new(store: Store, timelines: TimelineDrops) -> Self {
        Self { store, timelines }
    }

    /// Does `author_id`'s queued drop now, unless another instance holds it,
    /// and dequeues it once every timeline is gone.
    pub async fn run_one(&self, author_id: i64) -> Result<(), GraphError> {
        let mut tx = self.store.pool().begin().await?;
        let queued: Option<i64> = sqlx::query_scalar(
            "SELECT author_id FROM pending_timeline_drops WHERE author_id = $1 \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(author_id)
        .fetch_optional(&mut *tx)
        .await?;
        if queued.is_some() {
            self.drop_followers_timelines(author_id).await?;
            sqlx::query("DELETE FROM pending_timeline_drops WHERE author_id = $1")
                .bind(author_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Retries queued drops until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.run_queued().await {
                tracing::warn!(%error, "pending timeline drops failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }

    async fn run_queued(&self) -> Result<(), GraphError> {
        let queued: Vec<i64> = sqlx::query_scalar(
            "SELECT author_id FROM pending_timeline_drops ORDER BY queued_at LIMIT 100",
        )
        .fetch_all(self.store.pool())
        .await?;
        for author_id in queued {
            self.run_one(author_id).await?;
        }
        Ok(())
    }

    /// Dropping those timelines (about the threshold's number, so the work
    /// is bounded) makes each one rebuild on its next read, with the list of
    /// celebrities as it is now: a fallen author's tweets pushed into it, a
    /// risen one's pulled. A rebuild that ran across the change cannot
    /// complete: the drop deleted its token.
    async fn drop_followers_timelines(&self, author_id: i64) -> Result<(), GraphError> {
        let mut after = None;
        loop {
            let page = self
                .store
                .edges(
                    ReadFrom::Primary,
                    Direction::Followers,
                    author_id,
                    after,
                    PAGE,
                )
                .await?;
            invalidate::timelines(&self.timelines, &page).await?;
            match page.last() {
                Some(&last) if page.len() == PAGE as usize => after = Some(last),
                _ => break,
            }
        }
        tracing::info!(
            author_id,
            "author crossed the celebrity threshold; followers' timelines dropped"
        );
        Ok(())
    }
}
