//! chirp's fault harness: an isolated chirp of its own, faults injected
//! into it under load, and the promises checked from the outside. Two
//! subcommands of the `loadtest` binary run it ([`Command`], [`execute`]):
//! `loadtest chaos`, one scenario per fault (this module), and `loadtest
//! soak`, the same stack and checks for an hour under a steady load and a
//! random fault schedule ([`soak`]).
//!
//! A crate apart from the load tool (crate `chirp-load`), on which it builds
//! (the seed, the gateway clients, the report's drawing): the load tool
//! measures a chirp someone else runs; this starts, breaks and stops its own.
//!
//! For each fault, one scenario: fresh users ([`workload::cast`]), a probe
//! that proves the stack delivers, the workload running; then the fault
//! ([`faults`]) and the operator's way back, the probe again (its success
//! ends the fault window and gives the time to recover), more workload, and
//! the checks ([`checks`]) repeated until clean or a bound has passed. One
//! table row per fault ([`report`]).
//!
//! Everything runs against an isolated stack ([`stack`]) that each command
//! starts with the project's scripts and stops at the end: faults kill and
//! pause real processes, never the standard backends other work uses.
//!
//! Reading order: [`stack`] (and [`clusters`], the scale-out backends it
//! runs for the soak), [`workload`], [`faults`], [`checks`], [`report`],
//! [`record`] (the JSON of `--json FILE`), then [`soak`].

pub mod checks;
pub mod clusters;
pub mod faults;
pub mod record;
pub mod report;
pub mod soak;
pub mod stack;
pub mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use chirp_client::Gateway;
use faults::Fault;
use report::Row;
use stack::{Stack, StackArgs};
use workload::{Caller, Size, User};

/// How long after a fault the probe keeps trying before the row says
/// "never".
const RECOVERY_LIMIT: Duration = Duration::from_secs(180);
/// How long one probe post may take to show up before the next is sent
/// (a busy machine's reads alone can take seconds).
const PROBE_PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// The faults to inject, one scenario each (default: all of them).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<Fault>,
    /// A smaller, quicker scenario (fewer users, shorter phases): the test
    /// suite's version.
    #[arg(long)]
    pub short: bool,
    /// Seconds the checks may take after the run before a missing post
    /// counts as lost (delivery is asynchronous).
    #[arg(long, default_value_t = 60)]
    pub bound_secs: u64,
    /// Leave the isolated stack running at the end (to read its logs).
    #[arg(long)]
    pub keep_running: bool,
    /// Also write the run as JSON to this file: the table's rows with the
    /// date, machine, command and commit (what docs/runs/ holds and
    /// deploy/render-docs.py renders).
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

impl ChaosArgs {
    fn size(&self) -> Size {
        if self.short {
            Size {
                authors: 2,
                readers: 3,
                post_every: Duration::from_millis(700),
                newcomers: 1,
            }
        } else {
            Size {
                authors: 4,
                readers: 6,
                post_every: Duration::from_millis(1500),
                newcomers: 3,
            }
        }
    }

    /// Workload before the fault, and after the recovery.
    fn phases(&self) -> (Duration, Duration) {
        if self.short {
            (Duration::from_secs(3), Duration::from_secs(3))
        } else {
            (Duration::from_secs(8), Duration::from_secs(8))
        }
    }
}

/// Starts the isolated stack, runs every scenario, prints the table, stops
/// the stack; the rows.
pub async fn chaos(args: &ChaosArgs) -> anyhow::Result<Vec<Row>> {
    // Its Kafka and Redis faults hit the single nodes, which the services
    // leave for the clusters; the soak has the clusters' own faults.
    ensure!(
        !args.stack.clusters,
        "--clusters is for `loadtest soak`: chaos's faults hit the single Kafka and Redis"
    );
    let rows = stack::isolated(&args.stack, args.keep_running, |stack| async move {
        scenarios(args, &stack).await
    })
    .await?;
    println!("{}", report::table(&rows));
    if let Some(path) = &args.json {
        record::Record::new(args, &args.stack.repo, &rows).write(path)?;
        println!("run record: {}", path.display());
    }
    Ok(rows)
}

async fn scenarios(args: &ChaosArgs, stack: &Stack) -> anyhow::Result<Vec<Row>> {
    let gateway = Gateway::new(&stack.gateway_url)?;
    let faults = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    let run = chirp_load::seed::fresh_handle_prefix();
    let mut rows = Vec::new();
    for fault in faults {
        println!("scenario: {}", fault.name());
        let row = scenario(
            args,
            stack,
            &gateway,
            &format!("{run}{}", fault.tag()),
            fault,
        )
        .await
        .with_context(|| format!("scenario {}", fault.name()))?;
        println!("{}", report::table(std::slice::from_ref(&row)));
        rows.push(row);
    }
    Ok(rows)
}

async fn scenario(
    args: &ChaosArgs,
    stack: &Stack,
    gateway: &Gateway,
    prefix: &str,
    fault: Fault,
) -> anyhow::Result<Row> {
    let caller = Caller::new(gateway.clone());
    let size = args.size();
    let (before, after) = args.phases();
    // Whatever an earlier scenario left down comes back first, as a
    // supervisor would bring it: each scenario starts from a whole stack.
    stack.up().await?;
    let started = Instant::now();
    let mut cast = workload::cast(&caller, prefix, size).await?;
    let threshold = args.stack.celebrity_threshold as usize;
    let unfollow = fault.prepare(&caller, &mut cast, threshold).await?;
    let probe = Probe::new(&caller, prefix).await?;
    ensure!(
        probe.until_delivered(&caller).await.is_some(),
        "the stack does not deliver a post even before the fault"
    );
    println!(
        "  users signed up and delivering after {:.1} s; workload running",
        started.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(workload::run(caller.clone(), cast, size, stop.clone()));
    tokio::time::sleep(before).await;
    let injected = Instant::now();
    println!("  injecting the fault");
    fault.inject(stack, &caller, unfollow.as_ref()).await?;
    println!(
        "  processes back after {:.1} s; probing",
        injected.elapsed().as_secs_f64()
    );
    let recovered = probe.until_delivered(&caller).await;
    println!(
        "  delivering again: {:?} after the injection",
        recovered.map(|at| at - injected)
    );
    if let Some(unfollow) = &unfollow {
        let followers = caller
            .retry(|| gateway.user(unfollow.celebrity))
            .await
            .map_err(|(f, _)| anyhow::anyhow!("celebrity's profile: {}", f.0))?
            .follower_count;
        ensure!(
            followers == threshold as i64 - 1,
            "the unfollow left the celebrity {followers} followers, not {}",
            threshold - 1
        );
    }
    tokio::time::sleep(after).await;
    stop.store(true, Ordering::Relaxed);
    running.await?;
    println!("  workload stopped; checking");

    let (findings, converged) = checks::verify(
        &caller,
        Duration::from_secs(args.bound_secs),
        &checks::Window::all(),
    )
    .await;
    let ledger = caller.ledger.lock().await;
    Ok(Row::new(
        fault.name(),
        &ledger,
        findings,
        (injected, recovered),
        converged,
    ))
}

/// A dedicated author and follower: a post by one showing up on the
/// other's home timeline is the end-to-end sign that chirp works.
struct Probe {
    author: User,
    follower: User,
    prefix: String,
    sent: std::sync::atomic::AtomicUsize,
}

impl Probe {
    async fn new(caller: &Caller, prefix: &str) -> anyhow::Result<Self> {
        let author = caller.sign_up(&format!("{prefix}pa")).await?;
        let follower = caller.sign_up(&format!("{prefix}pf")).await?;
        caller.follow(&follower, author.id).await?;
        let mut ledger = caller.ledger.lock().await;
        ledger.authors.push(author.clone());
        ledger.readers.push(follower.clone());
        drop(ledger);
        Ok(Self {
            author,
            follower,
            prefix: prefix.to_owned(),
            sent: Default::default(),
        })
    }

    /// Posts (retrying with one key) and watches the follower's first page
    /// until a post shows up; when it did, or none within
    /// [`RECOVERY_LIMIT`].
    async fn until_delivered(&self, caller: &Caller) -> Option<Instant> {
        let give_up = Instant::now() + RECOVERY_LIMIT;
        while Instant::now() < give_up {
            let n = self.sent.fetch_add(1, Ordering::Relaxed);
            let key = format!("{}-probe-{n}", self.prefix);
            let id = caller
                .post(&self.author, &format!("probe {key}"), &key)
                .await?;
            let patience = Instant::now() + PROBE_PATIENCE;
            while Instant::now() < patience {
                let page = caller
                    .attempt(caller.gateway.home_timeline(
                        self.follower.id,
                        &self.follower.token,
                        None,
                        Some(5),
                    ))
                    .await;
                if page.is_ok_and(|page| page.items.iter().any(|item| item.id == id)) {
                    return Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        None
    }
}

/// The harness's subcommands, as `loadtest` parses them.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Kill, restart and pause services and backends of an isolated stack
    /// under load; check nothing is lost, phantom or doubled:
    /// docs/RELIABILITY.md.
    Chaos(ChaosArgs),
    /// An isolated stack seeded with the bulk seed, a steady load and
    /// random faults for `--duration`; checks and growth tests, soak.json
    /// and soak.html: docs/RELIABILITY.md.
    Soak(Box<soak::SoakArgs>),
}

/// Runs one subcommand; an error when a promise was broken.
pub async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Chaos(args) => {
            let rows = chaos(&args).await?;
            let failed: Vec<_> = rows.iter().filter(|row| !row.passed()).collect();
            anyhow::ensure!(
                failed.is_empty(),
                "{} of {} faults broke a promise",
                failed.len(),
                rows.len()
            );
        }
        Command::Soak(args) => {
            let report = soak::soak(&args).await?;
            anyhow::ensure!(
                report.verdict.passed,
                "the soak failed: {}",
                report.verdict.reasons.join("; ")
            );
        }
    }
    Ok(())
}

/// The harness's command line as `loadtest` parses it, for the tests of its
/// defaults (the binary's own parser lives in package `loadtest`, which
/// depends on this crate).
#[cfg(test)]
fn parse<I, T>(argv: I) -> Command
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }
    <Cli as clap::Parser>::parse_from(argv).command
}
