//! What every chirp service shares, written once.
//!
//! Each service is a small binary around a library; the parts they have in
//! common live here so that there is exactly one definition of the wire
//! contracts ([`proto`]), of an id ([`ids`]), of how an error travels
//! ([`error`]), of how a home timeline is laid out in Redis ([`timelines`]),
//! and of how a process is configured, observed and stopped.
//!
//! Reading order: [`proto`] (the contracts), [`ids`], [`error`], then
//! [`timelines`], the data structure the whole design revolves around. How a
//! request is followed across services: [`telemetry`] (logs and traces from
//! one set of spans), [`trace_context`] (the trace carried from hop to hop),
//! [`observe`] (a span and metrics per request) and [`grpc`] (how every
//! server is assembled, and [`service_auth`], who may call it). Every binary
//! allocates through [`allocator`].

pub mod allocator;
pub mod delivery;
pub mod error;
pub mod grpc;
pub mod ids;
pub mod input;
pub mod kafka;
pub mod metrics;
pub mod observe;
pub mod paging;
pub mod proto;
pub mod redis_connection;
pub mod service_auth;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timelines;
pub mod trace_context;

pub use error::{ErrorKind, ServiceError};
