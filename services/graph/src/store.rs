//! The SQL behind the graph: one method per question, each a single indexed
//! query or one short transaction.
//!
//! Reads that tolerate a little staleness can go to a streaming replica
//! (`DATABASE_READ_URL`): the followers a profile page lists. A replica
//! applies the primary's WAL a little later (milliseconds when healthy, more
//! under load, for as long as replay is paused or the network cut), so those
//! reads may miss a follow or still show an unfollow for that long.
//! Everything whose answer a write depends on stays on the primary: the
//! writes themselves, users and their follower counts (the celebrity
//! threshold), the followed-celebrity list, whom a user follows (the rebuild
//! right after a follow must see it), the followers whose timelines must be
//! dropped when an author crosses the threshold, and the followers a
//! fan-out pushes a tweet to (a `consistent` listing).
//!
//! The fan-out's listing is the heaviest read of the graph, yet it reads the
//! primary. On a replica, a follow made just before a tweet could be missing
//! from it: the follow dropped the follower's timeline, their next read
//! rebuilt it from the stores before the tweet existed, and the push that
//! should have brought the tweet skipped them, for good. Waiting for the
//! replica to replay the primary's WAL position instead would cost a primary
//! round trip per page anyway, and a replica that falls behind would hold
//! every fan-out back by its lag, or fall back to the primary — which must
//! then carry the fan-out's reads all the same. Each listing is one keyset
//! page of the `follows` primary key, so the primary serves it cheaply; the
//! primary scales for it as for the writes (docs/SCALING.md).

use std::time::Duration;

use anyhow::Context;
use chirp_runtime::redact::url_credentials;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::GraphError;
use crate::celebrity::Marks;
use crate::pending_drops::{self, Whose};

/// A user as stored; the service layer adds what depends on config.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: i64,
    pub handle: String,
    pub display_name: String,
    pub follower_count: i64,
    pub following_count: i64,
    pub created_at_ms: i64,
    pub is_celebrity: bool,
}

/// The columns of [`UserRow`], spliced into queries with `concat!`: sqlx only
/// takes `&'static str` SQL, which keeps user input out of it by construction.
macro_rules! user_columns {
    () => {
        "user_id, handle, display_name, follower_count, following_count, \
         (extract(epoch from created_at) * 1000)::bigint AS created_at_ms, is_celebrity"
    };
}
pub(crate) use user_columns;

/// Postgres' error code for a unique-constraint violation.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";

/// Which side of a user's edges a list walks.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Who follows the user: the question fan-out asks for every tweet.
    Followers,
    /// Whom the user follows.
    Following,
}

/// Where a read may be served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The primary: the read must see every committed write.
    Primary,
    /// The read replica, when one is configured (else the primary): the read
    /// tolerates the replica's lag.
    Replica,
}

/// What [`Store::follow`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    /// The edge is new (an existing one changes nothing).
    pub created: bool,
    /// It made the followee a celebrity.
    pub rose: bool,
}

/// What [`Store::unfollow`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unfollowed {
    /// There was an edge to remove.
    pub removed: bool,
    /// Removing it made the followee no longer a celebrity.
    pub fell: bool,
}

/// What [`Store::import_follows`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// How many of the edges were new.
    pub created: u64,
    /// The followees the batch made celebrities.
    pub rose: Vec<i64>,
}

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: PgPool,
    /// The replica's pool, or a clone of `pool` when there is no replica.
    read_pool: PgPool,
}

impl Store {
    /// Connects and brings the schema up to date. Concurrent instances are
    /// safe: sqlx serialises migrations with an advisory lock. With
    /// `read_url`, lag-tolerant reads go to that replica ([`ReadFrom`]).
    pub async fn connect(
        database_url: &str,
        read_url: Option<&str>,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        let pool = connect_pool(database_url, max_connections).await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("apply graph migrations")?;
        let read_pool = match read_url {
            Some(url) => connect_pool(url, max_connections).await?,
            None => pool.clone(),
        };
        Ok(Self { pool, read_pool })
    }

    fn reader(&self, from: ReadFrom) -> &PgPool {
        match from {
            ReadFrom::Primary => &self.pool,
            ReadFrom::Replica => &self.read_pool,
        }
    }

    /// The pool of the lag-tolerant reads: the replica's, or the primary's
    /// when there is none. [`crate::replica_lag`] measures through it.
    pub fn read_pool(&self) -> &PgPool {
        &self.read_pool
    }

    /// The primary's pool, for the transactions of [`crate::import`] and of
    /// the pending-drops queue.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn user(&self, user_id: i64) -> Result<UserRow, GraphError> {
        sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(GraphError::UserNotFound(user_id))
    }

    /// The users among `user_ids` that exist, in no particular order.
    pub async fn users(&self, user_ids: &[i64]) -> Result<Vec<UserRow>, GraphError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE user_id = ANY($1)"
        ))
        .bind(user_ids)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn user_by_handle(&self, handle: &str) -> Result<UserRow, GraphError> {
        sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE lower(handle) = lower($1)"
        ))
        .bind(handle)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| GraphError::HandleNotFound(handle.to_owned()))
    }

    /// Adds the edge and bumps both counters in one transaction; an
    /// existing edge changes nothing. A new edge queues, in the same
    /// transaction, the drop of the follower's timeline and, when it makes
    /// the followee a celebrity, that of their followers' timelines.
    pub async fn follow(
        &self,
        follower_id: i64,
        followee_id: i64,
        marks: Marks,
    ) -> Result<Followed, GraphError> {
        let mut tx = self.pool.begin().await?;
        lock_users(&mut tx, &[follower_id, followee_id]).await?;
        let inserted = sqlx::query(
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(follower_id)
        .bind(followee_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let mut rose = false;
        if inserted {
            let flag = adjust_counts(&mut tx, follower_id, followee_id, 1, marks).await?;
            rose = flag.is && !flag.was;
            pending_drops::queue(&mut tx, Whose::Own, follower_id).await?;
            if rose {
                pending_drops::queue(&mut tx, Whose::Followers, followee_id).await?;
            }
        }
        tx.commit().await?;
        Ok(Followed {
            created: inserted,
            rose,
        })
    }

    /// Removes the edge and lowers both counters. A removed edge queues, in
    /// the same transaction, the drop of the follower's timeline and, when
    /// the followee is no longer a celebrity, that of their remaining
    /// followers' timelines.
    pub async fn unfollow(
        &self,
        follower_id: i64,
        followee_id: i64,
        marks: Marks,
    ) -> Result<Unfollowed, GraphError> {
        let mut tx = self.pool.begin().await?;
        lock_users(&mut tx, &[follower_id, followee_id]).await?;
        let removed =
            sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
                .bind(follower_id)
                .bind(followee_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        let mut fell = false;
        if removed {
            let flag = adjust_counts(&mut tx, follower_id, followee_id, -1, marks).await?;
            fell = flag.was && !flag.is;
            pending_drops::queue(&mut tx, Whose::Own, follower_id).await?;
            if fell {
                pending_drops::queue(&mut tx, Whose::Followers, followee_id).await?;
            }
        }
        tx.commit().await?;
        Ok(Unfollowed { removed, fell })
    }

    /// Adds many edges in one transaction, queueing the drops
    /// [`Self::follow`] queues: each new edge's follower's timeline, and the
    /// followers' timelines of each followee the batch makes a celebrity.
    /// The users involved are locked first, in id
    /// order as [`Self::follow`] does and for the same reason; then a single
    /// statement inserts the edges and moves every counter they touch, so a
    /// batch of ten thousand edges costs one round trip instead of ten
    /// thousand transactions.
    pub async fn import_follows(
        &self,
        edges: &[(i64, i64)],
        marks: Marks,
    ) -> Result<Imported, GraphError> {
        let (followers, followees): (Vec<i64>, Vec<i64>) = edges.iter().copied().unzip();
        let users: Vec<i64> = followers.iter().chain(&followees).copied().collect();
        let mut tx = self.pool.begin().await?;
        lock_users(&mut tx, &users).await?;
        let (created, rose): (i64, Vec<i64>) = sqlx::query_as(IMPORT_FOLLOWS)
            .bind(&followers)
            .bind(&followees)
            .bind(marks.rise_at)
            .bind(marks.fall_below)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Imported {
            created: created.unsigned_abs(),
            rose,
        })
    }

    /// Up to `limit` ids on one side of `user_id`'s edges greater than
    /// `after`, ascending: a keyset page, as cheap on page 10 000 as on page 1.
    pub async fn edges(
        &self,
        from: ReadFrom,
        direction: Direction,
        user_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<i64>, GraphError> {
        let sql = match direction {
            Direction::Followers => {
                "SELECT follower_id FROM follows WHERE followee_id = $1 AND follower_id > $2 \
                 ORDER BY follower_id LIMIT $3"
            }
            Direction::Following => {
                "SELECT followee_id FROM follows WHERE follower_id = $1 AND followee_id > $2 \
                 ORDER BY followee_id LIMIT $3"
            }
        };
        let ids = sqlx::query_scalar(sql)
            .bind(user_id)
            .bind(after.unwrap_or(i64::MIN))
            .bind(limit)
            .fetch_all(self.reader(from))
            .await?;
        Ok(ids)
    }

    /// As [`Self::edges`], with how many accounts each listed user follows
    /// (their row's `following_count`), for the lossy fan-out.
    pub async fn edges_with_following_counts(
        &self,
        from: ReadFrom,
        direction: Direction,
        user_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, GraphError> {
        let sql = match direction {
            Direction::Followers => {
                "SELECT f.follower_id, u.following_count FROM follows f \
                 JOIN users u ON u.user_id = f.follower_id \
                 WHERE f.followee_id = $1 AND f.follower_id > $2 \
                 ORDER BY f.follower_id LIMIT $3"
            }
            Direction::Following => {
                "SELECT f.followee_id, u.following_count FROM follows f \
                 JOIN users u ON u.user_id = f.followee_id \
                 WHERE f.follower_id = $1 AND f.followee_id > $2 \
                 ORDER BY f.followee_id LIMIT $3"
            }
        };
        let rows = sqlx::query_as(sql)
            .bind(user_id)
            .bind(after.unwrap_or(i64::MIN))
            .bind(limit)
            .fetch_all(self.reader(from))
            .await?;
        Ok(rows)
    }

    /// The users `user_id` follows who are celebrities, ascending, greater
    /// than `after`, at most `limit`. The primary key of `follows` finds the
    /// edges, and each followee's row is a primary-key lookup.
    pub async fn followed_celebrities(
        &self,
        user_id: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<i64>, GraphError> {
        let ids = sqlx::query_scalar(
            "SELECT f.followee_id FROM follows f JOIN users u ON u.user_id = f.followee_id \
             WHERE f.follower_id = $1 AND f.followee_id > $2 AND u.is_celebrity \
             ORDER BY f.followee_id LIMIT $3",
        )
        .bind(user_id)
        .bind(after.unwrap_or(i64::MIN))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}

/// Inserts the edges of two parallel arrays (followers, followees), skipping
/// those that exist, and adds to each user's counters the new edges on each
/// side of them. One `UPDATE` moves both counters of a user: Postgres does not
/// let one statement update the same row twice, and in a batch a user is
/// often a follower and a followee at once. The flag moves with the count
/// (marks `$3`, `$4`); `deltas` reads it as it was, since every part of one
/// statement sees the rows as they were before it. The followers of new
/// edges get their own drops queued, and the followees the batch makes
/// celebrities their followers' drops; those followees are returned.
const IMPORT_FOLLOWS: &str = "\
    WITH new_edges AS ( \
        INSERT INTO follows (follower_id, followee_id) \
        SELECT DISTINCT * FROM unnest($1::bigint[], $2::bigint[]) \
        ON CONFLICT DO NOTHING \
        RETURNING follower_id, followee_id \
    ), deltas AS ( \
        SELECT per_user.*, users.is_celebrity AS was FROM ( \
            SELECT user_id, sum(followers) AS followers, sum(following) AS following FROM ( \
                SELECT followee_id AS user_id, 1 AS followers, 0 AS following FROM new_edges \
                UNION ALL \
                SELECT follower_id, 0, 1 FROM new_edges \
            ) AS per_edge GROUP BY user_id \
        ) AS per_user JOIN users USING (user_id) \
    ), counted AS ( \
        UPDATE users SET follower_count = users.follower_count + deltas.followers, \
                         following_count = users.following_count + deltas.following, \
                         is_celebrity = celebrity_flag(users.is_celebrity, \
                             users.follower_count + deltas.followers, $3, $4) \
        FROM deltas WHERE users.user_id = deltas.user_id \
        RETURNING users.user_id, users.is_celebrity, deltas.was \
    ), rose AS ( \
        SELECT user_id FROM counted WHERE is_celebrity AND NOT was \
    ), queued AS ( \
        INSERT INTO pending_timeline_drops (user_id, whose) \
        SELECT DISTINCT follower_id, 'own' FROM new_edges \
        UNION ALL \
        SELECT user_id, 'followers' FROM rose \
    ) \
    SELECT (SELECT count(*) FROM new_edges), \
           (SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') FROM rose)";

/// Locks the rows of `user_ids` in id order before their edges change.
/// Taking the locks in one global order is what keeps "A follows B" and
/// "B follows A", running at once, from deadlocking; it also tells us whether
/// every user exists.
async fn lock_users(tx: &mut sqlx::PgConnection, user_ids: &[i64]) -> Result<(), GraphError> {
    let found: Vec<i64> = sqlx::query_scalar(
        "SELECT user_id FROM users WHERE user_id = ANY($1) ORDER BY user_id FOR NO KEY UPDATE",
    )
    .bind(user_ids)
    .fetch_all(tx)
    .await?;
    match user_ids.iter().find(|id| found.binary_search(id).is_err()) {
        Some(&missing) => Err(GraphError::UserNotFound(missing)),
        None => Ok(()),
    }
}

/// The followee's celebrity flag before and after a change of their count.
struct Flag {
    was: bool,
    is: bool,
}

/// Moves both counters by `delta`, and the followee's flag with their count
/// as `marks` say.
async fn adjust_counts(
    tx: &mut sqlx::PgConnection,
    follower_id: i64,
    followee_id: i64,
    delta: i64,
    marks: Marks,
) -> Result<Flag, GraphError> {
    sqlx::query("UPDATE users SET following_count = following_count + $2 WHERE user_id = $1")
        .bind(follower_id)
        .bind(delta)
        .execute(&mut *tx)
        .await?;
    // `old` sees the row as it was before this statement's update.
    let (was, is): (bool, bool) = sqlx::query_as(
        "WITH old AS (SELECT is_celebrity AS was FROM users WHERE user_id = $1) \
         UPDATE users SET follower_count = follower_count + $2, \
             is_celebrity = celebrity_flag(is_celebrity, follower_count + $2, $3, $4) \
         FROM old WHERE user_id = $1 \
         RETURNING old.was, users.is_celebrity",
    )
    .bind(followee_id)
    .bind(delta)
    .bind(marks.rise_at)
    .bind(marks.fall_below)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Flag { was, is })
}

async fn connect_pool(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .with_context(|| format!("connect to Postgres at {}", url_credentials(url)))
}
