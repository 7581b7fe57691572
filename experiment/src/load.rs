//! The mixed load of one deployment (home-timeline reads and posts, on an
//! open loop), through the load tool's own machinery, and what it cost the
//! fan-out worker once every post of it was applied.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use chirp_load::recorder::Latency;
use chirp_load::report::Report;
use chirp_load::run::RunArgs;
use chirp_load::tokens::{SeededArgs, TokenArgs};
use chirp_load::workload::{GatewayTarget, HOME_FIRST_PAGE, POST_TWEET, Workload};
use chirp_stack::TOKEN_SECRET;

use crate::counters::{self, Delta};
use crate::deployment::Running;

/// The load every deployment of one experiment gets.
#[derive(Debug, Clone, Copy)]
pub struct MixedLoad {
    /// Requests per second.
    pub rate: f64,
    pub duration: Duration,
    pub read_write_ratio: f64,
    /// The same seed, the same requests.
    pub seed: u64,
}

/// What the load measured.
pub struct Loaded {
    pub report: Report,
    /// Posts answered without error.
    pub posts: u64,
    /// First pages of home timelines.
    pub home: Latency,
    pub home_reads: u64,
    /// Errors and timeouts.
    pub errors: u64,
    /// The fan-out worker's counters over the load, all its posts applied.
    pub delta: Delta,
}

impl MixedLoad {
    /// The load tool's arguments for it against `stack`: `readers` readers
    /// drawn at random (`None`: as many as the target is given), one page
    /// each, the report into `out`.
    pub fn run_args(
        &self,
        stack: &Running,
        readers: Option<u32>,
        out: PathBuf,
    ) -> anyhow::Result<RunArgs> {
        Ok(RunArgs {
            workload: Workload::Mixed,
            seeded: SeededArgs {
                manifest: PathBuf::new(),
                gateway: Some(stack.gateway_url.clone()),
                tokens: TokenArgs::new(TOKEN_SECRET)?,
            },
            rate: Some(self.rate),
            connections: None,
            duration: self.duration,
            timeout: Duration::from_secs(5),
            max_in_flight: 1_000,
            pages: 1,
            page_size: None,
            readers,
            read_write_ratio: self.read_write_ratio,
            seed: self.seed,
            out,
        })
    }
}

/// Runs the load `run_args` describe on `target`, writes its report, and
/// waits until the fan-out worker has applied every post of it.
pub async fn run(
    stack: &mut Running,
    target: GatewayTarget,
    run_args: &RunArgs,
    title: &str,
) -> anyhow::Result<Loaded> {
    let before = stack.fanout_metrics();
    let report = Report::measure(title, &stack.gateway_url, target, run_args.plan()?).await;
    report.write(&run_args.out)?;
    let operation = |name: &str| report.summary.operations.get(name);
    let posts = operation(POST_TWEET).map_or(0, |post| post.answered - post.errors);
    let home = operation(HOME_FIRST_PAGE)
        .ok_or_else(|| anyhow!("the mixed load read no home timeline"))?;
    let (home, home_reads) = (home.latency, home.answered);
    let delta = counters::since(stack, &before, posts).await?;
    let errors = report.summary.counts.errors + report.summary.counts.timeouts;
    Ok(Loaded {
        report,
        posts,
        home,
        home_reads,
        errors,
        delta,
    })
}
