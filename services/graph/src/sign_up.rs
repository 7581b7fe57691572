//! Creating a user, safe to retry: with an idempotency key, the same
//! sign-up sent again answers the user the first one created.
//!
//! Without it a sign-up whose answer is lost (a dropped connection, a
//! gateway deadline that passed while Postgres committed) burns the handle:
//! the retry finds it taken, by the client's own first attempt. The key is
//! written in the user's own transaction (`sign_up_keys`), so a key always
//! names a user that exists. A retry is recognised by reading the key first;
//! two attempts racing past that read meet at the unique indexes (the
//! second insert waits for the first to commit, then fails) and the loser
//! reads the key again. The same key with a different handle or display
//! name is not a retry: it is refused as a conflict, never answered with
//! someone else's account.

use crate::GraphError;
use crate::handle::{DisplayName, Handle};
use crate::store::{Store, UNIQUE_VIOLATION, UserRow, user_columns};

/// What [`create_user`] did.
#[derive(Debug)]
pub struct SignedUp {
    pub user: UserRow,
    /// False when an earlier call with the same key created it.
    pub created: bool,
}

/// Creates the user, or with `key` returns the one an earlier identical
/// sign-up with that key created.
pub async fn create_user(
    store: &Store,
    handle: &Handle,
    display_name: &DisplayName,
    key: Option<&str>,
) -> Result<SignedUp, GraphError> {
    if let Some(key) = key
        && let Some(user) = replay(store, key, handle, display_name).await?
    {
        return Ok(SignedUp {
            user,
            created: false,
        });
    }
    match insert(store, handle, display_name, key).await {
        Ok(user) => Ok(SignedUp {
            user,
            created: true,
        }),
        Err(error) if is_unique_violation(&error) => {
            // A concurrent attempt with the same key may have won: then this
            // is its retry. Otherwise the handle belongs to someone else.
            let replayed = match key {
                Some(key) => replay(store, key, handle, display_name).await?,
                None => None,
            };
            match replayed {
                Some(user) => Ok(SignedUp {
                    user,
                    created: false,
                }),
                None => Err(GraphError::HandleTaken(handle.as_str().to_owned())),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// The user and the key, in one transaction.
async fn insert(
    store: &Store,
    handle: &Handle,
    display_name: &DisplayName,
    key: Option<&str>,
) -> Result<UserRow, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let user: UserRow = sqlx::query_as(concat!(
        "INSERT INTO users (handle, display_name) VALUES ($1, $2) RETURNING ",
        user_columns!()
    ))
    .bind(handle.as_str())
    .bind(display_name.as_str())
    .fetch_one(&mut *tx)
    .await?;
    if let Some(key) = key {
        sqlx::query(
            "INSERT INTO sign_up_keys (idempotency_key, user_id, handle, display_name) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(key)
        .bind(user.user_id)
        .bind(handle.as_str())
        .bind(display_name.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// The user an earlier sign-up with `key` created, if there was one and it
/// asked for the same handle and display name; a conflict if it asked for
/// others.
async fn replay(
    store: &Store,
    key: &str,
    handle: &Handle,
    display_name: &DisplayName,
) -> Result<Option<UserRow>, GraphError> {
    let earlier: Option<(i64, String, String)> = sqlx::query_as(
        "SELECT user_id, handle, display_name FROM sign_up_keys WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(store.pool())
    .await?;
    let Some((user_id, earlier_handle, earlier_name)) = earlier else {
        return Ok(None);
    };
    if earlier_handle != handle.as_str() || earlier_name != display_name.as_str() {
        return Err(GraphError::IdempotencyKeyReused);
    }
    Ok(Some(store.user(user_id).await?))
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION))
}
