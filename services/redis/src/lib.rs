//! chirp's Redis: the one connection every Redis user shares ([`connection`],
//! a single node or a Redis Cluster, chosen by `REDIS_CLUSTER`).
//!
//! A crate apart so that a service that never talks to Redis (the tweet
//! service) does not link the `redis` crate, and apart from what is stored
//! in it (`chirp-timeline-store`, the home timelines; `chirp-delivery`, the
//! per-tweet delivery records) so that the gateway, which keeps rate limits
//! here but never touches a home timeline, links neither the timeline store
//! nor its scripts.

pub mod connection;
