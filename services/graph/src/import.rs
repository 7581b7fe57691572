//! `ImportGraph`: new users and the follows among them, loaded the way a
//! data migration loads a table, not the way a user follows someone.
//!
//! A million users and twenty million follows through `Follow` would be
//! twenty million transactions, each locking two rows and moving two
//! counters; even `ImportFollows`, a transaction per ten thousand edges,
//! moves twenty thousand counters per batch and checks every edge's foreign
//! keys and indexes one at a time (about 16 000 edges a second here).
//! This import instead:
//!
//! 1. reserves a block of consecutive user ids in a short transaction of its
//!    own, so that the client can name users by number and never needs a
//!    list of a million ids back;
//! 2. opens one transaction and `COPY`s the users straight into `users`,
//!    then the edges into a temporary table with no index, both streamed
//!    from the gRPC stream as it arrives (memory stays bounded by a chunk);
//! 3. when the stream ends, moves the edges into `follows` with one
//!    `INSERT … SELECT`. Into an *empty* `follows` (a first load) it drops
//!    the table's indexes and key constraints first and rebuilds them after,
//!    as `pg_restore` does: building an index from sorted rows is several
//!    times faster than inserting twenty million keys into it one by one, and
//!    re-adding a foreign key checks every row with one join instead of one
//!    lookup per row. The definitions are read back from the catalog, so the
//!    migration stays their only source;
//! 4. sets every new user's two counters from the edges, and commits.
//!
//! The price is the table lock: from step 3 to the commit, `follows` is held
//! exclusively, so follows, unfollows and follower lists of *everyone* wait
//! (minutes, at twenty million edges). A bulk import is a maintenance
//! operation, run before the users it creates start reading. Everything else
//! is all or nothing: a broken stream, a taken handle or a bad edge rolls
//! the whole import back, and re-running it starts clean (the reserved ids
//! are simply skipped, as a rolled-back `nextval` would be).
//!
//! No cached timeline can be stale afterwards: every follower is a user this
//! import created, and nobody has read their timeline yet.

use std::fmt::Write as _;

use chirp_common::proto::graph::{ImportGraphChunk, ImportGraphSummary, ImportedFollow};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use tonic::Streaming;

use crate::GraphError;
use crate::handle::{DisplayName, Handle};

/// Memory the sort of the staged edges and each index rebuild may use:
/// enough to sort twenty million edges in a few runs; only this transaction
/// gets it.
const SORT_MEMORY: [&str; 2] = [
    "SET LOCAL work_mem = '256MB'",
    "SET LOCAL maintenance_work_mem = '256MB'",
];

/// Loads one import stream; see the module documentation for the steps.
pub async fn import_graph(
    pool: &PgPool,
    mut chunks: Streaming<ImportGraphChunk>,
) -> Result<ImportGraphSummary, GraphError> {
    let first = next_chunk(&mut chunks)
        .await?
        .ok_or_else(|| invalid("the import stream is empty"))?;
    if first.user_count == 0 {
        return Err(invalid("the first chunk must give user_count (at least 1)"));
    }
    let count = first.user_count;
    let first_user_id = reserve_ids(pool, count).await?;
    let ids = IdBlock {
        first: first_user_id,
        count,
    };

    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TEMPORARY TABLE imported_follows (follower_id bigint, followee_id bigint) \
         ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let leftover = copy_users(&mut tx, &ids, first, &mut chunks).await?;
    copy_follows(&mut tx, &ids, leftover, &mut chunks).await?;
    let follows = move_follows(&mut tx).await?;
    set_counts(&mut tx, &ids).await?;
    tx.commit().await?;
    tracing::info!(first_user_id, users = count, follows, "graph imported");
    Ok(ImportGraphSummary {
        first_user_id,
        users: u64::from(count),
        follows,
    })
}

/// The ids an import's users get: `first + number`.
struct IdBlock {
    first: i64,
    count: u32,
}

impl IdBlock {
    fn id(&self, number: u32) -> Result<i64, GraphError> {
        if number < self.count {
            Ok(self.first + i64::from(number))
        } else {
            Err(invalid(&format!(
                "user number {number} is not below the import's user_count {}",
                self.count
            )))
        }
    }
}

/// Takes `count` consecutive values of the users' id sequence and returns the
/// first. The lock keeps every `INSERT INTO users` (whose default calls the
/// same sequence) out for the instant between reading and advancing it.
async fn reserve_ids(pool: &PgPool, count: u32) -> Result<i64, GraphError> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let first: i64 = sqlx::query_scalar(
        "SELECT setval(s, nextval(s) + $1 - 1) - $1 + 1 \
         FROM pg_get_serial_sequence('users', 'user_id') AS s",
    )
    .bind(i64::from(count))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(first)
}

/// Streams every user of the import into `users`; returns the follows of the
/// chunk that completed the users, if it carried some.
async fn copy_users(
    tx: &mut Transaction<'_, Postgres>,
    ids: &IdBlock,
    first: ImportGraphChunk,
    chunks: &mut Streaming<ImportGraphChunk>,
) -> Result<Vec<ImportedFollow>, GraphError> {
    // COPY writes the identity column as given, as INSERT … OVERRIDING
    // SYSTEM VALUE would: the ids are the block reserved above.
    let mut copy = tx
        .copy_in_raw("COPY users (user_id, handle, display_name) FROM STDIN")
        .await?;
    let mut sent = 0;
    let mut chunk = first;
    let result = loop {
        if let Err(error) = users_chunk(&mut copy, ids, &mut sent, &chunk).await {
            break Err(error);
        }
        if sent == ids.count {
            break Ok(std::mem::take(&mut chunk.follows));
        }
        chunk = match next_chunk(chunks).await {
            Ok(Some(next)) if next.user_count == 0 => next,
            Ok(Some(_)) => break Err(invalid("only the first chunk may give user_count")),
            Ok(None) => {
                break Err(invalid(&format!(
                    "the stream ended after {sent} of {} users",
                    ids.count
                )));
            }
            Err(error) => break Err(error),
        };
    };
    match result {
        Ok(follows) => {
            copy.finish().await.map_err(taken_handle)?;
            Ok(follows)
        }
        Err(error) => {
            // Ends the COPY so the connection can roll back and be reused.
            let _ = copy.abort("import refused").await;
            Err(error)
        }
    }
}

/// Validates one chunk's users and sends them as COPY text rows.
async fn users_chunk(
    copy: &mut sqlx::postgres::PgCopyIn<&mut PgConnection>,
    ids: &IdBlock,
    sent: &mut u32,
    chunk: &ImportGraphChunk,
) -> Result<(), GraphError> {
    let remaining = ids.count - *sent;
    if chunk.users.len() > remaining as usize {
        return Err(invalid(&format!(
            "more users than the import's user_count {}",
            ids.count
        )));
    }
    if !chunk.follows.is_empty() && chunk.users.len() < remaining as usize {
        return Err(invalid("follows may only come after every user"));
    }
    let mut rows = String::with_capacity(chunk.users.len() * 48);
    for user in &chunk.users {
        let handle = Handle::parse(&user.handle)?;
        let display_name = DisplayName::parse(&user.display_name)?;
        let id = ids.id(*sent)?;
        let _ = writeln!(
            rows,
            "{id}\t{}\t{}",
            copy_text(handle.as_str()),
            copy_text(display_name.as_str())
        );
        *sent += 1;
    }
    copy.send(rows.as_bytes()).await?;
    Ok(())
}

/// Streams the follows (`leftover` first, then the rest of the stream) into
/// the temporary table, as ids.
async fn copy_follows(
    tx: &mut Transaction<'_, Postgres>,
    ids: &IdBlock,
    leftover: Vec<ImportedFollow>,
    chunks: &mut Streaming<ImportGraphChunk>,
) -> Result<(), GraphError> {
    let mut copy = tx
        .copy_in_raw("COPY imported_follows (follower_id, followee_id) FROM STDIN")
        .await?;
    let mut follows = leftover;
    let result = loop {
        if let Err(error) = follows_chunk(&mut copy, ids, &follows).await {
            break Err(error);
        }
        follows = match next_chunk(chunks).await {
            Ok(Some(next)) if next.user_count == 0 && next.users.is_empty() => next.follows,
            Ok(Some(_)) => break Err(invalid("users may not follow the follows")),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
    };
    match result {
        Ok(()) => {
            copy.finish().await?;
            Ok(())
        }
        Err(error) => {
            let _ = copy.abort("import refused").await;
            Err(error)
        }
    }
}

async fn follows_chunk(
    copy: &mut sqlx::postgres::PgCopyIn<&mut PgConnection>,
    ids: &IdBlock,
    follows: &[ImportedFollow],
) -> Result<(), GraphError> {
    if follows.is_empty() {
        return Ok(());
    }
    let mut rows = String::with_capacity(follows.len() * 16);
    for follow in follows {
        if follow.follower == follow.followee {
            return Err(GraphError::SelfFollow);
        }
        let _ = writeln!(
            rows,
            "{}\t{}",
            ids.id(follow.follower)?,
            ids.id(follow.followee)?
        );
    }
    copy.send(rows.as_bytes()).await?;
    Ok(())
}

/// Moves the staged edges into `follows`, each once; returns how many.
async fn move_follows(tx: &mut PgConnection) -> Result<u64, GraphError> {
    sqlx::query("LOCK TABLE follows IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM follows)")
        .fetch_one(&mut *tx)
        .await?;
    for setting in SORT_MEMORY {
        sqlx::query(setting).execute(&mut *tx).await?;
    }
    let rebuild = if empty {
        Some(drop_keys_and_indexes(&mut *tx).await?)
    } else {
        None
    };
    // Sorted by the primary key: the rows land in its order, which also makes
    // its rebuild (or the inserts into it) sequential.
    let moved = sqlx::query(
        "INSERT INTO follows (follower_id, followee_id) \
         SELECT DISTINCT follower_id, followee_id FROM imported_follows \
         ORDER BY follower_id, followee_id",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if let Some(statements) = rebuild {
        for statement in statements {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(moved)
}

/// Drops the indexes and key constraints of `follows` and returns the
/// statements that recreate them, primary key first, foreign keys last. Both
/// lists are written by Postgres from its catalog, not by this code.
async fn drop_keys_and_indexes(tx: &mut PgConnection) -> Result<Vec<String>, GraphError> {
    let constraints: Vec<(String, String)> = sqlx::query_as(
        "SELECT format('ALTER TABLE follows DROP CONSTRAINT %I', conname), \
                format('ALTER TABLE follows ADD CONSTRAINT %I %s', conname, \
                       pg_get_constraintdef(oid)) \
         FROM pg_constraint WHERE conrelid = 'follows'::regclass AND contype IN ('p', 'u', 'f') \
         ORDER BY contype = 'f', conname",
    )
    .fetch_all(&mut *tx)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT format('DROP INDEX %I.%I', n.nspname, i.relname), pg_get_indexdef(i.oid) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_namespace n ON n.oid = i.relnamespace \
         WHERE x.indrelid = 'follows'::regclass \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         ORDER BY i.relname",
    )
    .fetch_all(&mut *tx)
    .await?;
    // Foreign keys go first (they depend on nothing here), then the keys.
    for (drop, _) in constraints.iter().rev().chain(&indexes) {
        sqlx::query(AssertSqlSafe(drop.clone()))
            .execute(&mut *tx)
            .await?;
    }
    let (foreign, keys): (Vec<_>, Vec<_>) = constraints
        .into_iter()
        .map(|(_, add)| add)
        .partition(|add| add.contains("FOREIGN KEY"));
    Ok(keys
        .into_iter()
        .chain(indexes.into_iter().map(|(_, create)| create))
        .chain(foreign)
        .collect())
}

/// Sets both counters of every user of the import from its edges: all of
/// them are between the import's own users, so nothing else counts.
async fn set_counts(tx: &mut PgConnection, ids: &IdBlock) -> Result<(), GraphError> {
    sqlx::query(
        "UPDATE users SET follower_count = d.followers, following_count = d.following \
         FROM ( \
             SELECT user_id, sum(followers) AS followers, sum(following) AS following FROM ( \
                 SELECT followee_id AS user_id, 1 AS followers, 0 AS following FROM follows \
                 WHERE follower_id >= $1 AND follower_id < $2 \
                 UNION ALL \
                 SELECT follower_id, 0, 1 FROM follows \
                 WHERE follower_id >= $1 AND follower_id < $2 \
             ) AS per_edge GROUP BY user_id \
         ) AS d WHERE users.user_id = d.user_id",
    )
    .bind(ids.first)
    .bind(ids.first + i64::from(ids.count))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The next chunk, or `None` at the end of the stream.
async fn next_chunk(
    chunks: &mut Streaming<ImportGraphChunk>,
) -> Result<Option<ImportGraphChunk>, GraphError> {
    chunks
        .message()
        .await
        .map_err(|status| invalid(&format!("the import stream broke: {}", status.message())))
}

/// A value as a field of COPY's text format: backslash escapes for the
/// backslash and the separators (validated input has no other control
/// characters).
fn copy_text(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\t' => escaped.push_str("\\t"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A handle already taken (by an existing user, or twice in the import)
/// fails the COPY with a unique violation that names it.
fn taken_handle(error: sqlx::Error) -> GraphError {
    match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            let detail = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail())
                .unwrap_or("a handle")
                .to_owned();
            GraphError::HandleTaken(detail)
        }
        _ => error.into(),
    }
}

fn invalid(message: &str) -> GraphError {
    GraphError::InvalidArgument(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_escape_backslashes_and_separators() {
        assert_eq!(copy_text("Ann"), "Ann");
        assert_eq!(copy_text(r"a\b"), r"a\\b");
        assert_eq!(copy_text("a\tb\nc\r"), r"a\tb\nc\r");
    }

    #[test]
    fn user_numbers_map_into_the_reserved_block_only() {
        let ids = IdBlock {
            first: 100,
            count: 3,
        };
        assert_eq!(ids.id(0).unwrap(), 100);
        assert_eq!(ids.id(2).unwrap(), 102);
        assert!(ids.id(3).is_err());
    }
}
