//! Cursor pagination, shared by every list endpoint.
//!
//! `?cursor=` carries an opaque token from the previous page's `next_cursor`
//! and `?limit=` the page size. A page without `next_cursor` is the last one.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::cursor::{CursorKind, Cursors};
use crate::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `next_cursor` of the previous page; omit for the first page.
    cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
}

impl PageQuery {
    /// For endpoints whose query has more parameters than a page's.
    pub fn new(cursor: Option<String>, limit: Option<u32>) -> Self {
        Self { cursor, limit }
    }

    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit @ 1..=MAX_LIMIT) => Ok(limit),
            Some(_) => Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            ))),
        }
    }

    /// The id the previous page ended at, if a cursor was given.
    pub fn position(&self, cursors: &Cursors, kind: CursorKind) -> Result<Option<i64>, ApiError> {
        self.cursor
            .as_deref()
            .map(|cursor| cursors.decode(kind, cursor))
            .transpose()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, next: Option<i64>, cursors: &Cursors, kind: CursorKind) -> Self {
        Self {
            items,
            next_cursor: next.map(|id| cursors.encode(kind, id)),
        }
    }
}

/// Milliseconds since the Unix epoch as RFC 3339, the timestamp format of the
/// API: a value to display, so that a serializer can write it without an
/// allocation of its own (a page writes one per tweet).
pub fn rfc3339(ms: i64) -> humantime::Rfc3339Timestamp {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0).unsigned_abs());
    humantime::format_rfc3339_millis(time)
}
