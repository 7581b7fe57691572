//! One seeded social graph for every deployment of an experiment, seeded
//! through a deployment of its own that is stopped and discarded after.
//!
//! The graph and the tweet history stay in Postgres and the CQL store for
//! every deployment that follows; only Redis and Kafka start fresh each
//! time (`Deployment`'s prefix and topic), so the deployments differ in their
//! settings and nothing else.

use std::path::PathBuf;

use chirp_load::graph_model::{HeavyFollowers, PowerLawParams};
use chirp_load::manifest::Manifest;
use chirp_load::seed::{self, SeedArgs};
use chirp_load::tokens::TokenArgs;
use chirp_stack::TOKEN_SECRET;
use chirp_timeline_store::Strategy;

use crate::deployment::{Deployment, Running, Settings, StoreArgs};

/// The graph to seed.
#[derive(Debug, Clone)]
pub struct Seed {
    pub graph: PowerLawParams,
    pub heavy: HeavyFollowers,
    pub tweets_per_user: u32,
    /// Where the manifest goes.
    pub manifest: PathBuf,
    /// No progress bars.
    pub quiet: bool,
}

/// Seeds `seed` through a deployment of its own named after `run`, mints
/// every user's token, and, while that deployment still runs, hands it and
/// the manifest to `then` (to pick authors and readers through its gateway).
pub async fn seed_then<T>(
    backends: &StoreArgs,
    run: &str,
    seed: &Seed,
    then: impl AsyncFnOnce(&Running, &Manifest) -> anyhow::Result<T>,
) -> anyhow::Result<(Manifest, T)> {
    let deployment = Deployment {
        strategy: Strategy::Hybrid,
        celebrity_threshold: seed.graph.celebrity_threshold,
        redis_prefix: format!("loadtest:{run}:seed:"),
        kafka_topic: format!("loadtest-{run}-seed"),
        settings: Settings::default(),
    };
    println!(
        "seeding {} users through a deployment of their own",
        seed.graph.users
    );
    let stack = Running::start(backends, &deployment).await?;
    let seeded = async {
        let seed_args = SeedArgs::power_law(
            seed::Services {
                gateway: stack.gateway_url.clone(),
                graph_addr: stack.graph_addr.clone(),
                tweet_addr: stack.tweet_addr.clone(),
            },
            seed.graph,
            seed.tweets_per_user,
            seed.manifest.clone(),
            seed.quiet,
        )
        .with_heavy_followers(seed.heavy);
        let mut manifest = seed::seed(&seed_args).await?;
        TokenArgs::new(TOKEN_SECRET)?.mint(&mut manifest);
        let picked = then(&stack, &manifest).await?;
        anyhow::Ok((manifest, picked))
    }
    .await;
    stack.stop().await?;
    deployment.discard(backends).await?;
    seeded
}

/// Names an experiment's keys and topics apart from every earlier one's.
pub fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("x{millis}")
}
