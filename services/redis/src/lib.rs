//! chirp's Redis: the one connection every Redis user shares ([`connection`],
//! a single node or a Redis Cluster, chosen by `REDIS_CLUSTER`), and the
//! per-tweet delivery record ([`delivery`]) that the fan-out worker writes
//! and the gateway reads.
//!
//! A crate apart from `chirp-common` so that a service that never talks to
//! Redis (the tweet service) does not link the `redis` crate, and apart from
//! `chirp-timelines` so that the gateway, which keeps rate limits and reads
//! delivery records here but never touches a home timeline, links neither
//! the timeline store nor its scripts.

pub mod connection;
pub mod delivery;
