//! The most-followed users: the web console's "popular accounts", which is
//! where a newcomer to a seeded graph finds someone worth following (and
//! the celebrities whose tweets are pulled rather than pushed).
//!
//! It is a top-N read of an index on the denormalised follower count
//! (migration `0006`), so it costs the same with a thousand users or a
//! hundred million. A real product would rank by more than raw counts and
//! compute it offline; a count is what this design already keeps exact.

use chirp_domain::paging::PageSize;

use crate::GraphError;
use crate::store::{Store, UserRow};

/// Users per answer when the caller asks for none, and the most it may ask.
pub const PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};

impl Store {
    /// The `limit` users with the most followers, most first; ties by id.
    pub async fn most_followed(&self, limit: i64) -> Result<Vec<UserRow>, GraphError> {
        let rows = sqlx::query_as(concat!(
            "SELECT ",
            crate::store::user_columns!(),
            " FROM users ORDER BY follower_count DESC, user_id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
