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
//! 2. opens one transaction and `COPY`s the users into a temporary table
//!    with no index, streamed from the gRPC stream as it arrives (memory
//!    stays bounded by a chunk);
//! 3. takes `follows` exclusively and `COPY`s the edges, counting each
//!    user's followers and followees on the way (two counters per user).
//!    Into an *empty* `follows` (a first load) the edges go straight into
//!    the table, after its indexes and key constraints are dropped, as
//!    `pg_restore` does: `COPY` writes whole pages (one log record per page,
//!    not per row), building an index from all the rows at once (a sort,
//!    with parallel workers where the server allows) is several times
//!    cheaper than inserting twenty million keys into it one by one, and the
//!    foreign keys come back `NOT VALID` (the new rows are valid by
//!    construction) and are validated after the commit, when that blocks no
//!    one. The definitions are read back from the catalog, so
//!    the migration stays their only source. Into a `follows` that already
//!    has rows, the edges are staged in a temporary table and moved with one
//!    `INSERT … SELECT DISTINCT`, the keys in place;
//! 4. inserts the users into `users` with their counters already set: one
//!    write per row and index entry, where inserting them at zero and
//!    setting the counters afterwards would write every row and every index
//!    entry twice (the follower count is indexed, so that update cannot be a
//!    HOT update);
//! 5. rebuilds the keys (first load). An edge streamed twice is stored once:
//!    the primary key's build finds it and fails, and only then are the
//!    repeats deleted and the keys built again; the counters of step 3
//!    counted it twice, so they are then set again from the stored edges,
//!    the slow way. Then it commits.
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

use chirp_proto::graph::{ImportGraphChunk, ImportGraphSummary, ImportedFollow};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use tonic::Streaming;

use crate::GraphError;
use crate::handle::{DisplayName, Handle};

/// Settings of this transaction only. The sort of the staged edges and each
/// index rebuild get memory enough to sort twenty million edges in a few
/// runs, and the rebuilds may use parallel workers where the server allows.
const BULK_SETTINGS: [&str; 3] = [
    "SET LOCAL work_mem = '512MB'",
    "SET LOCAL maintenance_work_mem = '2GB'",
    "SET LOCAL max_parallel_maintenance_workers = 2",
];

/// Loads one import stream; see the module documentation for the steps.
/// The new users with at least `celebrities_from` followers are celebrities:
/// they have no past that could put them inside the threshold's hysteresis.
pub async fn import_graph(
    pool: &PgPool,
    mut chunks: Streaming<ImportGraphChunk>,
    celebrities_from: i64,
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
    for setting in BULK_SETTINGS {
        sqlx::query(setting).execute(&mut *tx).await?;
    }
    sqlx::query(
        "CREATE TEMPORARY TABLE imported_users (user_id bigint, handle text, display_name text) \
         ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut counts = Counts::default();
    let leftover = copy_users(&mut tx, &ids, first, &mut chunks, &mut counts).await?;

    sqlx::query("LOCK TABLE follows IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM follows)")
        .fetch_one(&mut *tx)
        .await?;
    let rest = Rest {
        ids: &ids,
        leftover,
        chunks: &mut chunks,
        counts: &mut counts,
        celebrities_from,
    };
    let (Loaded { streamed, follows }, validate) = if empty {
        into_empty_follows(&mut tx, rest).await?
    } else {
        (beside_existing_follows(&mut tx, rest).await?, Vec::new())
    };
    if follows != streamed {
        // Repeated edges were counted once per repetition above.
        set_counts(&mut tx, &ids, celebrities_from).await?;
    }
    tx.commit().await?;
    validate_later(pool, validate);
    tracing::info!(first_user_id, users = count, follows, "graph imported");
    Ok(ImportGraphSummary {
        first_user_id,
        users: u64::from(count),
        follows,
    })
}

/// What is left to load once the users are staged: the edges (those that
/// arrived with the users' last chunk, then the rest of the stream), and
/// what the users are inserted with.
struct Rest<'a> {
    ids: &'a IdBlock,
    leftover: Vec<ImportedFollow>,
    chunks: &'a mut Streaming<ImportGraphChunk>,
    counts: &'a mut Counts,
    celebrities_from: i64,
}

/// Edges streamed, and edges stored: fewer when the stream repeated some.
struct Loaded {
    streamed: u64,
    follows: u64,
}

/// Step 3 into an empty `follows` (a first load): keys and indexes dropped,
/// the edges copied straight in, the users inserted, the keys rebuilt. Also
/// returns the foreign keys' validations, to run after the commit.
async fn into_empty_follows(
    tx: &mut Transaction<'_, Postgres>,
    rest: Rest<'_>,
) -> Result<(Loaded, Vec<String>), GraphError> {
    let keys = drop_keys_and_indexes(tx).await?;
    let streamed = follows_then_users(tx, "follows", rest).await?;
    let follows = restore_keys(tx, &keys.build, streamed).await?;
    Ok((Loaded { streamed, follows }, keys.validate))
}

/// Step 3 beside existing follows: the edges staged in a temporary table,
/// the users inserted, the edges moved over with the keys in place.
async fn beside_existing_follows(
    tx: &mut Transaction<'_, Postgres>,
    rest: Rest<'_>,
) -> Result<Loaded, GraphError> {
    sqlx::query(
        "CREATE TEMPORARY TABLE imported_follows (follower_id bigint, followee_id bigint) \
         ON COMMIT DROP",
    )
    .execute(&mut **tx)
    .await?;
    let streamed = follows_then_users(tx, "imported_follows", rest).await?;
    let follows = move_follows(tx).await?;
    Ok(Loaded { streamed, follows })
}

/// Each user's followers and followees as streamed, by user number: grown
/// as users arrive, so a `user_count` the stream does not back costs nothing.
#[derive(Default)]
struct Counts {
    followers: Vec<i64>,
    following: Vec<i64>,
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

/// Streams every user of the import into the temporary `imported_users`;
/// returns the follows of the chunk that completed the users, if it carried
/// some.
async fn copy_users(
    tx: &mut Transaction<'_, Postgres>,
    ids: &IdBlock,
    first: ImportGraphChunk,
    chunks: &mut Streaming<ImportGraphChunk>,
    counts: &mut Counts,
) -> Result<Vec<ImportedFollow>, GraphError> {
    let mut copy = tx
        .copy_in_raw("COPY imported_users (user_id, handle, display_name) FROM STDIN")
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
    let follows = end_copy(copy, result).await?;
    counts.followers = vec![0; sent as usize];
    counts.following = vec![0; sent as usize];
    Ok(follows)
}

/// Ends a COPY as `result` says: finishes it on success; on failure aborts
/// it, so the connection can roll back and be reused, and returns the error.
async fn end_copy<T>(
    copy: sqlx::postgres::PgCopyIn<&mut PgConnection>,
    result: Result<T, GraphError>,
) -> Result<T, GraphError> {
    match result {
        Ok(value) => {
            copy.finish().await?;
            Ok(value)
        }
        Err(error) => {
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

/// What both ways of step 3 do between their set-up and their moving of
/// the edges: the follows streamed into `table`, then the users inserted
/// (with the follow counts the stream gave them). Returns how many follows
/// were streamed.
async fn follows_then_users(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    rest: Rest<'_>,
) -> Result<u64, GraphError> {
    let streamed =
        copy_follows(tx, table, rest.ids, rest.leftover, rest.chunks, rest.counts).await?;
    insert_users(tx, rest.ids, rest.counts, rest.celebrities_from).await?;
    Ok(streamed)
}

/// Streams the follows (`leftover` first, then the rest of the stream) into
/// `table`, as ids, counting them into `counts`; returns how many were
/// streamed.
async fn copy_follows(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    ids: &IdBlock,
    leftover: Vec<ImportedFollow>,
    chunks: &mut Streaming<ImportGraphChunk>,
    counts: &mut Counts,
) -> Result<u64, GraphError> {
    let statement = format!("COPY {table} (follower_id, followee_id) FROM STDIN");
    let mut copy = tx.copy_in_raw(&statement).await?;
    let mut follows = leftover;
    let mut streamed = 0;
    let result = loop {
        if let Err(error) = follows_chunk(&mut copy, ids, &follows, counts).await {
            break Err(error);
        }
        streamed += follows.len() as u64;
        follows = match next_chunk(chunks).await {
            Ok(Some(next)) if next.user_count == 0 && next.users.is_empty() => next.follows,
            Ok(Some(_)) => break Err(invalid("users may not follow the follows")),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
    };
    end_copy(copy, result).await?;
    Ok(streamed)
}

async fn follows_chunk(
    copy: &mut sqlx::postgres::PgCopyIn<&mut PgConnection>,
    ids: &IdBlock,
    follows: &[ImportedFollow],
    counts: &mut Counts,
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
        // In range: `ids.id` checked both numbers against the block, and
        // every user of the block was streamed before any follow.
        counts.followers[follow.followee as usize] += 1;
        counts.following[follow.follower as usize] += 1;
    }
    copy.send(rows.as_bytes()).await?;
    Ok(())
}

/// Inserts the staged users into `users` with the counters of `counts`. The
/// ids are the block reserved above, hence `OVERRIDING SYSTEM VALUE`; a
/// handle already taken fails here, naming it.
async fn insert_users(
    tx: &mut PgConnection,
    ids: &IdBlock,
    counts: &Counts,
    celebrities_from: i64,
) -> Result<(), GraphError> {
    sqlx::query(
        "INSERT INTO users \
             (user_id, handle, display_name, follower_count, following_count, is_celebrity) \
         OVERRIDING SYSTEM VALUE \
         SELECT u.user_id, u.handle, u.display_name, c.followers, c.following, \
                c.followers >= $4 \
         FROM imported_users AS u \
         JOIN unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS c (followers, following, n) \
           ON u.user_id = $1 + c.n - 1 \
         ORDER BY u.user_id",
    )
    .bind(ids.first)
    .bind(&counts.followers)
    .bind(&counts.following)
    .bind(celebrities_from)
    .execute(&mut *tx)
    .await
    .map_err(taken_handle)?;
    Ok(())
}

/// Moves the staged edges into a `follows` that has its keys, each once;
/// returns how many.
async fn move_follows(tx: &mut PgConnection) -> Result<u64, GraphError> {
    Ok(sqlx::query(
        "INSERT INTO follows (follower_id, followee_id) \
         SELECT DISTINCT follower_id, followee_id FROM imported_follows \
         ORDER BY follower_id, followee_id",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Recreates the keys, indexes and foreign keys of `follows` (`statements`,
/// in order) over the `streamed` edges copied in; returns how many edges it
/// keeps. The primary key is what finds an edge streamed twice: its build
/// fails, and only then are the repeats deleted (one sort of the whole
/// table, the price of a stream that repeats itself) and the keys built
/// again.
async fn restore_keys(
    tx: &mut PgConnection,
    statements: &[String],
    streamed: u64,
) -> Result<u64, GraphError> {
    sqlx::query("SAVEPOINT restore_keys")
        .execute(&mut *tx)
        .await?;
    match run_all(&mut *tx, statements).await {
        Ok(()) => return Ok(streamed),
        Err(GraphError::Database(sqlx::Error::Database(db)))
            if db.code().as_deref() == Some("23505") => {}
        Err(error) => return Err(error),
    }
    sqlx::query("ROLLBACK TO SAVEPOINT restore_keys")
        .execute(&mut *tx)
        .await?;
    let repeats = sqlx::query(
        "DELETE FROM follows AS f USING ( \
             SELECT ctid, row_number() OVER (PARTITION BY follower_id, followee_id) AS n \
             FROM follows \
         ) AS d WHERE f.ctid = d.ctid AND d.n > 1",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    run_all(&mut *tx, statements).await?;
    Ok(streamed - repeats)
}

async fn run_all(tx: &mut PgConnection, statements: &[String]) -> Result<(), GraphError> {
    for statement in statements {
        sqlx::query(AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// How to put back what [`drop_keys_and_indexes`] dropped.
struct Keys {
    /// In order: the primary key, the indexes, then the foreign keys added
    /// `NOT VALID`.
    build: Vec<String>,
    /// `VALIDATE CONSTRAINT` of each foreign key, for after the commit.
    validate: Vec<String>,
}

/// Drops the indexes and key constraints of `follows` and returns the
/// statements that recreate them. Both lists are written by Postgres from
/// its catalog, not by this code.
///
/// The foreign keys come back `NOT VALID`: enforced for every row written
/// from then on, but not checked against the rows already there, which are
/// this import's alone (the table was empty) and valid by construction,
/// every follower and followee mapped into the id block whose users the same
/// transaction inserts. Checking them anyway is a join of every edge with
/// `users` (about a minute at twenty million edges here) that would hold the
/// table lock; [`validate_later`] runs it after the commit instead, when it
/// blocks no one.
async fn drop_keys_and_indexes(tx: &mut PgConnection) -> Result<Keys, GraphError> {
    let constraints: Vec<(String, String, bool, String)> = sqlx::query_as(
        "SELECT format('ALTER TABLE follows DROP CONSTRAINT %I', conname), \
                format('ALTER TABLE follows ADD CONSTRAINT %I %s', conname, \
                       regexp_replace(pg_get_constraintdef(oid), ' NOT VALID$', '')), \
                contype = 'f', \
                format('ALTER TABLE follows VALIDATE CONSTRAINT %I', conname) \
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
    let drops = constraints.iter().rev().map(|(drop, ..)| drop);
    for drop in drops.chain(indexes.iter().map(|(drop, _)| drop)) {
        sqlx::query(AssertSqlSafe(drop.clone()))
            .execute(&mut *tx)
            .await?;
    }
    let (foreign, keys): (Vec<_>, Vec<_>) = constraints
        .into_iter()
        .partition(|(_, _, foreign, _)| *foreign);
    let validate = foreign
        .iter()
        .map(|(.., validate)| validate.clone())
        .collect();
    let build = keys
        .into_iter()
        .map(|(_, add, ..)| add)
        .chain(indexes.into_iter().map(|(_, create)| create))
        .chain(foreign.into_iter().map(|(_, add, ..)| add + " NOT VALID"))
        .collect();
    Ok(Keys { build, validate })
}

/// Validates the foreign keys a first load added `NOT VALID`, in the
/// background: `VALIDATE CONSTRAINT` takes a lock that lets reads and writes
/// of `follows` go on. Should it not finish (the service stopping), the keys
/// stay enforced for new rows and merely unmarked; the next first load, or
/// an operator, validates them.
fn validate_later(pool: &PgPool, statements: Vec<String>) {
    let pool = pool.clone();
    tokio::spawn(async move {
        for statement in statements {
            match sqlx::query(AssertSqlSafe(statement.clone()))
                .execute(&pool)
                .await
            {
                Ok(_) => tracing::info!(%statement, "imported follows validated"),
                Err(error) => {
                    tracing::error!(%error, %statement, "validating the imported follows failed");
                }
            }
        }
    });
}

/// Sets both counters of every user of the import from its stored edges
/// (all of them are between the import's own users, so nothing else
/// counts): the slow way, for a stream that repeated edges.
async fn set_counts(
    tx: &mut PgConnection,
    ids: &IdBlock,
    celebrities_from: i64,
) -> Result<(), GraphError> {
    sqlx::query(
        "UPDATE users SET follower_count = d.followers, following_count = d.following, \
                          is_celebrity = d.followers >= $3 \
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
    .bind(celebrities_from)
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
/// fails the insert with a unique violation that names it.
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
