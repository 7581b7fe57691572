//! Durable "drop these timelines" work: a follower's own timeline after a
//! follow or an unfollow, and every follower's timeline of an author who
//! crossed the celebrity threshold, either way.
//!
//! A follower's cached timeline holds the tweets of whom they followed when
//! it was built; after a follow or an unfollow it must be dropped, to be
//! rebuilt on the next read. Each cached timeline is also stored with the
//! list of celebrities it pulls (`chirp_timeline_store`), and a crossing makes
//! that list wrong. An author who fell below the threshold was pulled, never
//! pushed, so the timeline lacks their recent tweets, and from now on nothing
//! pulls them either. An author who rose above it is no longer pushed, and is
//! not in the stored list either, so their new tweets would reach no one.
//! Each of those timelines must be dropped and rebuilt, list and all. The
//! work is bounded: at that moment the author has about the threshold's
//! number of followers.
//!
//! Doing either after the change committed, as a plain follow-up call, loses
//! it when Redis fails in between: a client that never retries leaves the
//! stale timeline to live on (every read refreshes its expiry), and the
//! retry of a crossing finds the edge as it wanted it and crosses nothing.
//! So the change's own transaction queues the work as a row here
//! ([`queue`]); the request then does it at once, and a loop in every graph
//! instance ([`PendingDrops::run`]) retries whatever is left until it is
//! done.
//!
//! Each piece of work is a row of its own, and doing it deletes exactly the
//! rows it read before it started ([`claim`], [`finish`]). A crossing queued
//! while an earlier one of the same author is being done, perhaps after some
//! of the followers' timelines were dropped and rebuilt the old way, is a
//! new row that work does not delete: it is done again. Doing one user's
//! work locks its rows (`FOR UPDATE`), so two instances never do the same
//! rows at once: the second waits, then finds them gone. Doing a drop twice
//! in a row is harmless anyway, since dropping a timeline is idempotent. The
//! cost is one small table, a row written and deleted per follow (three more
//! round trips to Postgres), and a poll every few seconds.

use std::future::Future;
use std::time::Duration;

use chirp_timeline_store::TimelineDrops;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::GraphError;
use crate::invalidate;
use crate::store::{Direction, ReadFrom, Store};

/// How often each instance looks for drops left undone.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// Followers' timelines dropped per Redis call, and own drops per loop round.
const PAGE: i64 = 5_000;

/// Whose timelines a queued drop is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The user's own: their follows changed.
    Own,
    /// Every follower's of the user: they crossed the threshold.
    Followers,
}

impl Whose {
    /// As stored in `pending_timeline_drops.whose`.
    fn as_str(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Followers => "followers",
        }
    }
}

/// Queues a drop of `whose` timelines of `user_id`, inside the transaction
/// of the change that calls for it.
pub async fn queue(tx: &mut PgConnection, whose: Whose, user_id: i64) -> Result<(), GraphError> {
    sqlx::query("INSERT INTO pending_timeline_drops (user_id, whose) VALUES ($1, $2)")
        .bind(user_id)
        .bind(whose.as_str())
        .execute(tx)
        .await?;
    Ok(())
}

/// The rows one piece of work took on.
struct Claimed {
    /// Their sequence numbers: what [`finish`] dequeues.
    seqs: Vec<i64>,
    /// The users they name, each once.
    users: Vec<i64>,
}

/// Locks the rows queued so far for `whose` timelines of `user_ids`, oldest
/// first (one order for every caller, so two never deadlock), waiting for
/// anyone doing them now, who leaves them deleted. Rows queued after this
/// statement began are not among them.
async fn claim(
    tx: &mut PgConnection,
    whose: Whose,
    user_ids: &[i64],
) -> Result<Claimed, GraphError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT seq, user_id FROM pending_timeline_drops \
         WHERE whose = $1 AND user_id = ANY($2) ORDER BY seq FOR UPDATE",
    )
    .bind(whose.as_str())
    .bind(user_ids)
    .fetch_all(&mut *tx)
    .await?;
    let (seqs, mut users): (Vec<i64>, Vec<i64>) = rows.into_iter().unzip();
    users.sort_unstable();
    users.dedup();
    Ok(Claimed { seqs, users })
}

/// Dequeues the `claimed` rows, and only those, once their work is done.
async fn finish(mut tx: Transaction<'_, Postgres>, claimed: &Claimed) -> Result<(), GraphError> {
    sqlx::query("DELETE FROM pending_timeline_drops WHERE seq = ANY($1)")
        .bind(&claimed.seqs)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
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

    /// Drops the timelines of `user_ids` now, and dequeues their own drops
    /// queued so far. Done whether or not anything is queued, so that after
    /// a follow that answered, the reader's timeline is gone whatever became
    /// of earlier attempts; one `DEL` is cheap.
    pub async fn drop_own(&self, user_ids: &[i64]) -> Result<(), GraphError> {
        let mut tx = self.store.pool().begin().await?;
        let claimed = claim(&mut tx, Whose::Own, user_ids).await?;
        invalidate::timelines(&self.timelines, user_ids).await?;
        finish(tx, &claimed).await
    }

    /// Drops the timelines of those of `user_ids` whose own drops are still
    /// queued, and dequeues them: the retry loop's half of [`Self::drop_own`],
    /// which leaves alone a timeline rebuilt since its drop was done.
    async fn drop_queued_own(&self, user_ids: &[i64]) -> Result<(), GraphError> {
        let mut tx = self.store.pool().begin().await?;
        let claimed = claim(&mut tx, Whose::Own, user_ids).await?;
        if claimed.seqs.is_empty() {
            return Ok(());
        }
        invalidate::timelines(&self.timelines, &claimed.users).await?;
        finish(tx, &claimed).await
    }

    /// Drops the timelines of `author_id`'s followers now if a crossing
    /// queued it and nobody has done it since, and dequeues it.
    pub async fn drop_followers(&self, author_id: i64) -> Result<(), GraphError> {
        let mut tx = self.store.pool().begin().await?;
        let claimed = claim(&mut tx, Whose::Followers, &[author_id]).await?;
        if claimed.seqs.is_empty() {
            return Ok(());
        }
        self.drop_followers_timelines(author_id).await?;
        finish(tx, &claimed).await
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
        let own = self.queued(Whose::Own, PAGE).await?;
        if !own.is_empty() {
            self.drop_queued_own(&own).await?;
        }
        for author_id in self.queued(Whose::Followers, 100).await? {
            self.drop_followers(author_id).await?;
        }
        Ok(())
    }

    /// Up to `limit` users with `whose` drops queued, those queued longest
    /// first.
    async fn queued(&self, whose: Whose, limit: i64) -> Result<Vec<i64>, GraphError> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM pending_timeline_drops WHERE whose = $1 \
             GROUP BY user_id ORDER BY min(seq) LIMIT $2",
        )
        .bind(whose.as_str())
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?)
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

/// The queue's own guarantee, against a real database: the service offers
/// no point at which a test could hold a drop between reading its followers
/// and dequeuing it (the Redis client times out any call it holds).
#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, defect 5: a crossing queued while an earlier one of the
    /// same author is being done survives that work's dequeue.
    #[tokio::test]
    async fn a_crossing_queued_during_the_work_on_an_earlier_one_stays_queued() {
        let url = chirp_test_support::fresh_database().await;
        let store = Store::connect(&url, None, 4).await.unwrap();
        let author: i64 = sqlx::query_scalar(
            "INSERT INTO users (handle, display_name) VALUES ('a', 'A') RETURNING user_id",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        let queue_one = || async {
            let mut tx = store.pool().begin().await.unwrap();
            queue(&mut tx, Whose::Followers, author).await.unwrap();
            tx.commit().await.unwrap();
        };
        queue_one().await;

        let mut work = store.pool().begin().await.unwrap();
        let claimed = claim(&mut work, Whose::Followers, &[author]).await.unwrap();
        queue_one().await;
        finish(work, &claimed).await.unwrap();

        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pending_timeline_drops WHERE user_id = $1")
                .bind(author)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(left, 1, "the second crossing is still to be done");
    }
}
