//! The SQL behind the graph: one method per question, each a single indexed
//! query or one short transaction.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::GraphError;
use crate::handle::{DisplayName, Handle};

/// A user as stored; the service layer adds what depends on config.
#[derive(Debug, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: i64,
    pub handle: String,
    pub display_name: String,
    pub follower_count: i64,
    pub following_count: i64,
    pub created_at_ms: i64,
}

/// The columns of [`UserRow`], spliced into queries with `concat!`: sqlx only
/// takes `&'static str` SQL, which keeps user input out of it by construction.
macro_rules! user_columns {
    () => {
        "user_id, handle, display_name, follower_count, following_count, \
         (extract(epoch from created_at) * 1000)::bigint AS created_at_ms"
    };
}

/// Postgres' error code for a unique-constraint violation.
const UNIQUE_VIOLATION: &str = "23505";

/// Which side of a user's edges a list walks.
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// Who follows the user: the question fan-out asks for every tweet.
    Followers,
    /// Whom the user follows.
    Following,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects and brings the schema up to date. Concurrent instances are
    /// safe: sqlx serialises migrations with an advisory lock.
    pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect(database_url)
            .await
            .with_context(|| format!("connect to Postgres at {}", redact(database_url)))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("apply graph migrations")?;
        Ok(Self { pool })
    }

    pub async fn create_user(
        &self,
        handle: &Handle,
        display_name: &DisplayName,
    ) -> Result<UserRow, GraphError> {
        sqlx::query_as(concat!(
            "INSERT INTO users (handle, display_name) VALUES ($1, $2) RETURNING ",
            user_columns!()
        ))
        .bind(handle.as_str())
        .bind(display_name.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                GraphError::HandleTaken(handle.as_str().to_owned())
            }
            _ => error.into(),
        })
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

    /// Adds the edge and bumps both counters in one transaction. Returns
    /// whether the edge is new; an existing edge changes nothing.
    pub async fn follow(&self, follower_id: i64, followee_id: i64) -> Result<bool, GraphError> {
        let mut tx = self.pool.begin().await?;
        lock_both_users(&mut tx, follower_id, followee_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(follower_id)
        .bind(followee_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            adjust_counts(&mut tx, follower_id, followee_id, 1).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Removes the edge and lowers both counters. Returns the followee's
    /// remaining follower count, or `None` when there was no edge to remove.
    pub async fn unfollow(
        &self,
        follower_id: i64,
        followee_id: i64,
    ) -> Result<Option<i64>, GraphError> {
        let mut tx = self.pool.begin().await?;
        lock_both_users(&mut tx, follower_id, followee_id).await?;
        let removed =
            sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
                .bind(follower_id)
                .bind(followee_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        let remaining = if removed {
            Some(adjust_counts(&mut tx, follower_id, followee_id, -1).await?)
        } else {
            None
        };
        tx.commit().await?;
        Ok(remaining)
    }

    /// Up to `limit` ids on one side of `user_id`'s edges greater than
    /// `after`, ascending: a keyset page, as cheap on page 10 000 as on page 1.
    pub async fn edges(
        &self,
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
            .fetch_all(&self.pool)
            .await?;
        Ok(ids)
    }

    /// The users `user_id` follows whose follower count reaches `threshold`,
    /// ascending, at most `limit`. The primary key of `follows` finds the
    /// edges, and each followee's row is a primary-key lookup.
    pub async fn followed_celebrities(
        &self,
        user_id: i64,
        threshold: i64,
        limit: i64,
    ) -> Result<Vec<i64>, GraphError> {
        let ids = sqlx::query_scalar(
            "SELECT f.followee_id FROM follows f JOIN users u ON u.user_id = f.followee_id \
             WHERE f.follower_id = $1 AND u.follower_count >= $2 ORDER BY f.followee_id LIMIT $3",
        )
        .bind(user_id)
        .bind(threshold)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}

/// Locks both user rows in id order before touching the edge. Taking the
/// locks in one global order is what keeps "A follows B" and "B follows A",
/// running at once, from deadlocking; it also tells us whether both exist.
async fn lock_both_users(
    tx: &mut sqlx::PgConnection,
    follower_id: i64,
    followee_id: i64,
) -> Result<(), GraphError> {
    let found: Vec<i64> = sqlx::query_scalar(
        "SELECT user_id FROM users WHERE user_id IN ($1, $2) ORDER BY user_id FOR NO KEY UPDATE",
    )
    .bind(follower_id)
    .bind(followee_id)
    .fetch_all(tx)
    .await?;
    match [follower_id, followee_id]
        .into_iter()
        .find(|id| !found.contains(id))
    {
        Some(missing) => Err(GraphError::UserNotFound(missing)),
        None => Ok(()),
    }
}

/// Moves both counters by `delta`; returns the followee's new follower count.
async fn adjust_counts(
    tx: &mut sqlx::PgConnection,
    follower_id: i64,
    followee_id: i64,
    delta: i64,
) -> Result<i64, GraphError> {
    sqlx::query("UPDATE users SET following_count = following_count + $2 WHERE user_id = $1")
        .bind(follower_id)
        .bind(delta)
        .execute(&mut *tx)
        .await?;
    let followers = sqlx::query_scalar(
        "UPDATE users SET follower_count = follower_count + $2 WHERE user_id = $1 \
         RETURNING follower_count",
    )
    .bind(followee_id)
    .bind(delta)
    .fetch_one(&mut *tx)
    .await?;
    Ok(followers)
}

/// The connection string without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/chirp"),
            "postgres://u@db:5432/chirp"
        );
        assert_eq!(redact("postgres://u@db/chirp"), "postgres://u@db/chirp");
        assert_eq!(redact("postgres://db/chirp"), "postgres://db/chirp");
    }
}
