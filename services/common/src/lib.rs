//! What every chirp service shares, written once.
//!
//! Each service is a small binary around a library; the parts they all have
//! in common live here so that there is exactly one definition of an id
//! ([`ids`]), of how an error travels ([`error`]), and of how a process is
//! configured, observed and stopped.
//!
//! The rest of what services share is split by concern into crates of its
//! own, so that each binary links only what it uses: the wire contracts
//! (`chirp-proto`), the Redis connection and delivery records
//! (`chirp-redis`), the home-timeline store (`chirp-timelines`), Kafka
//! (`chirp-kafka`, the only one to link librdkafka) and the helpers of
//! integration tests (`chirp-testing`). This crate links none of Redis,
//! Kafka or a database driver.
//!
//! Reading order: [`ids`], [`error`], then how a request is followed across
//! services: [`telemetry`] (logs and traces from one set of spans),
//! [`trace_context`] (the trace carried from hop to hop), [`observe`] (a
//! span and metrics per request) and [`grpc`] (how every server is
//! assembled, and [`service_auth`], who may call it). Every binary
//! allocates through [`allocator`].

pub mod allocator;
pub mod error;
pub mod expiry;
pub mod grpc;
pub mod ids;
pub mod input;
pub mod metrics;
pub mod observe;
pub mod paging;
pub mod redact;
pub mod service_auth;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;

pub use error::{ErrorKind, ServiceError};
