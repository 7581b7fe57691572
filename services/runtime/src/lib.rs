//! What runs around every chirp service's logic, written once: how a
//! process allocates, reports, is watched and stops.
//!
//! Each service is a small binary around a library; its `main.rs` installs
//! the [`allocator`], sets up [`telemetry`] (log lines and traces from one
//! set of spans) and the [`metrics`] endpoint, and hands `run` the
//! [`shutdown`] signal. Inside, every server runs the same middleware,
//! [`observe`] (a span and the request metrics per request), which
//! continues the caller's trace ([`trace_context`]). A URL printed at
//! start-up goes through [`redact`] first.
//!
//! None of this is chirp's domain (`chirp-domain`) or how services call
//! each other (`chirp-grpc`, which builds its servers on [`observe`]); it
//! links none of Redis, Kafka or a database driver.
//!
//! Reading order: [`telemetry`], [`trace_context`], [`observe`],
//! [`metrics`], [`shutdown`].

pub mod allocator;
pub mod metrics;
pub mod observe;
pub mod redact;
pub mod shutdown;
pub mod telemetry;
pub mod trace_context;
