//! End-to-end tests: the five services in one process, on the real backends,
//! driven over HTTP exactly as a client drives the gateway.
//!
//! One test binary (one link, shared helpers); each test spawns its own stack
//! with its own database, keyspace, topic and Redis prefix, so tests run in
//! parallel without seeing each other.

mod api_contract;
mod console;
mod grpc_health;
mod helpers;
mod hybrid;
mod metrics;
mod openapi;
mod rate_limits;
mod sign_up;
mod slice;
