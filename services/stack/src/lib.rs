//! chirp's services — gateway, graph, tweet, timeline and the fan-out worker
//! — started in one process, wired to each other and to the real backends.
//!
//! The one in-process assembly of chirp: the end-to-end tests, the services'
//! own tests and the `experiment` binary all start their deployments here.
//! Each service runs through the same `run(config, listener, shutdown)` its
//! binary calls, so the code under test is the production code; what a real
//! process adds (its own address space, a signal, an exit code) only the
//! tests that need it pay for, with `chirp_test_support::ServiceProcess`.
//!
//! Reading order: [`Stores`] (where a deployment's data lives: a fresh set
//! per test, so tests run in parallel without seeing each other's data),
//! [`InternalServices`] (the four services behind the gateway: the SIGTERM
//! test runs the real gateway binary in front of them), [`Stack`] (the
//! gateway on top) and [`Services`] (how long they all run: for the rest of
//! a test, or until an experiment stops them to start the next design).
//! Tests that wire one service to stand-ins or to faults take single pieces:
//! [`spawn_graph`], [`spawn_gateway`].

mod internal;
mod services;
mod stack;
mod stores;

pub use internal::{InternalServices, spawn_graph};
pub use services::Services;
pub use stack::{Stack, spawn_gateway};
pub use stores::Stores;

/// Signs the users' tokens in every stack: fixed, so that a test or an
/// experiment can mint tokens for users it seeded, and tokens stay valid
/// from one deployment to the next.
pub const TOKEN_SECRET: &str = "chirp-stack-token-secret-0123456789abcdef";

/// Flags for the services, on top of the ones that wire them up (e.g. a
/// lower celebrity threshold, or a strategy).
#[derive(Debug, Default, Clone, Copy)]
pub struct ServiceArgs<'a> {
    /// Read by [`Stack`] only: [`InternalServices`] has no gateway.
    pub gateway: &'a [&'a str],
    pub graph: &'a [&'a str],
    pub timeline: &'a [&'a str],
    pub fanout: &'a [&'a str],
    /// Runs the fan-out worker with a metrics recorder of its own
    /// ([`Services::fanout_metrics`]): its counters exactly as its `/metrics`
    /// would show them, even where other services of the process count the
    /// same names. Off, it records wherever the process does.
    pub fanout_recorder: bool,
}

/// One command line from its leading arguments and groups of flags.
fn chain<'a>(first: &[&'a str], rest: &[&[&'a str]]) -> Vec<&'a str> {
    let mut args = first.to_vec();
    for group in rest {
        args.extend_from_slice(group);
    }
    args
}
