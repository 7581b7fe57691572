//! What every chirp service shares, written once.
//!
//! Each service is a small binary around a library; the parts they have in
//! common live here so that there is exactly one definition of the wire
//! contracts ([`proto`]), of an id ([`ids`]), of how an error travels
//! ([`error`]), of how a home timeline is laid out in Redis ([`timelines`]),
//! and of how a process is configured, observed and stopped.
//!
//! Reading order: [`proto`] (the contracts), [`ids`], [`error`], then
//! [`timelines`], the data structure the whole design revolves around.

pub mod error;
pub mod grpc;
pub mod ids;
pub mod kafka;
pub mod metrics;
pub mod paging;
pub mod proto;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timelines;

pub use error::{ErrorKind, ServiceError};
