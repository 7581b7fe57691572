//! `loadtest soak`: an isolated stack seeded with a large population, a
//! steady open-loop load in the article's shape for a long time, faults
//! from a seeded random schedule, and two questions answered from the
//! outside: did the system keep every promise, and does anything grow
//! without bound?
//!
//! The parts, in reading order: the stack ([`crate::stack`], the one
//! `loadtest chaos` starts, here on other ports and in another folder), the bulk
//! seed ([`chirp_load::seed`]), the watched cohort whose every action is
//! recorded ([`cohort`]), the load on everybody else ([`traffic`]), the
//! faults and their schedule ([`faults`], those on the scale-out backends
//! of `--clusters` in [`cluster_faults`]), what is read each interval
//! ([`tally`] from the clients, [`sample`] from the system), the checks
//! (`loadtest chaos`'s [`crate::checks`], every `--check-every` on what has
//! settled and once at the end on everything), the growth test
//! ([`growth`]) and the outputs ([`report`]).
//!
//! The verdict: passed when the final check finds nothing lost, phantom,
//! doubled, out of order, skipped by paging or visible after an unfollow,
//! every cohort request was answered, no event was dead-lettered, every
//! fault was injected and recovered from, and no judged curve grows after
//! warm-up.

pub mod cluster_faults;
pub mod cohort;
pub mod faults;
pub mod growth;
pub mod handover;
pub mod report;
pub mod sample;
pub mod tally;
pub mod traffic;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chirp_client::Gateway;
use chirp_domain::ids::{id_at, now_ms};

use crate::checks::{self, Window};
use crate::faults::{Fault, Unfollow};
use crate::stack::{self, Stack, StackArgs};
use crate::workload::{Caller, Ledger, User};
use cohort::{Cohort, Shape};
use faults::{Planned, SoakFault};
use growth::Bound;
use report::{CheckRow, FinalCheck, Injected, IntervalRow, SoakReport, Verdict};
use tally::Tally;
use traffic::{Bulk, Rates};

/// The tweet and graph services' first gRPC ports (run-local.sh's).
const TWEET_GRPC: u16 = 50051;
const GRAPH_GRPC: u16 = 50052;
/// The tweet store's keyspace, as the services default it.
const KEYSPACE: &str = "chirp";

#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("backends_dir", |a| a.default_value(".backends-soak")),
    mut_arg("port_offset", |a| a.default_value("5000")),
    mut_arg("pg_port", |a| a.default_value("22432")),
    mut_arg("redis_port", |a| a.default_value("22379")),
    mut_arg("kafka_port", |a| a.default_value("22092")),
    mut_arg("kafka_controller_port", |a| a.default_value("22093")),
    mut_arg("cql_port", |a| a.default_value("22042")),
    mut_arg("cassandra_storage_port", |a| a.default_value("22000")),
    mut_arg("redis_cluster_port", |a| a.default_value("22391")),
    mut_arg("kafka_cluster_port", |a| a.default_value("22192")),
    mut_arg("pg_replica_port", |a| a.default_value("22442")),
    mut_arg("celebrity_threshold", |a| a.default_value("10000")),
    mut_arg("replicas", |a| a.default_value("2"))
)]
pub struct SoakArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Users the bulk seed creates.
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u32,
    /// Seeded users above the celebrity threshold.
    #[arg(long, default_value_t = 5)]
    pub celebrities: u32,
    /// Tweets of history each seeded user gets.
    #[arg(long, default_value_t = 5)]
    pub tweets_per_user: u32,
    /// How long the steady load runs (after seeding and setting up).
    #[arg(long, default_value = "60m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Posts per second of the bulk load.
    #[arg(long, default_value_t = 100.0)]
    pub post_rate: f64,
    /// Home-timeline reads per post (the article's ratio by default).
    #[arg(long, default_value_t = chirp_load::estimate::READ_WRITE_RATIO)]
    pub read_ratio: f64,
    /// Follows per post (each undone 30 s later).
    #[arg(long, default_value_t = 0.1)]
    pub follow_ratio: f64,
    /// Deletes per post.
    #[arg(long, default_value_t = 0.05)]
    pub delete_ratio: f64,
    /// Operations of the bulk load in flight at most; more are dropped
    /// (and counted).
    #[arg(long, default_value_t = 2_000)]
    pub max_in_flight: usize,
    /// The faults the schedule draws from (default: all the stack can take;
    /// the cluster faults with --clusters).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<SoakFault>,
    /// Seed of the fault schedule and the graph: the same seed, the same soak.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Mean time between two faults (exponential gaps).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub fault_every: Duration,
    /// How often the checks run during the load.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub check_every: Duration,
    /// Length of one point of the series.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// No faults and no growth judged before this.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub warm_up: Duration,
    /// A check during the load judges posts sent at least this long ago.
    #[arg(long, default_value = "150s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Fresh users who follow the watched authors (3 to 9).
    #[arg(long, default_value_t = 6)]
    pub watchers: usize,
    /// Pause between two posts of one watched author.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub watched_every: Duration,
    /// Pause between two toggles of the borderline author.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub toggle_every: Duration,
    /// Follows the set-up may make to bring the borderline author one below
    /// the threshold.
    #[arg(long, default_value_t = 12_000)]
    pub max_setup_follows: usize,
    /// Seconds the final check may take before a missing post counts as lost.
    #[arg(long, default_value_t = 180)]
    pub bound_secs: u64,
    /// Concentrate the bulk posts on the authors of one outbox shard
    /// (author id mod 8) and hand that shard's lease over at the end: the
    /// tombstone defect's test at its real size, with Cassandra's default
    /// thresholds.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..handover::SHARDS as i64))]
    pub outbox_shard: Option<i32>,
    /// Folder of soak.json, soak.html and the seed's manifest.
    #[arg(long, default_value = "soak-report")]
    pub out: PathBuf,
    /// Leave the isolated stack running at the end (to read its logs).
    #[arg(long)]
    pub keep_running: bool,
}

impl SoakArgs {
    fn faults(&self) -> Vec<SoakFault> {
        if self.faults.is_empty() {
            SoakFault::all(self.stack.replicas, self.stack.clusters)
        } else {
            self.faults.clone()
        }
    }

    /// The faults this soak will inject and when: what `--seed` draws, known
    /// before anything starts (a test checks that its seed draws what it
    /// means to test).
    pub fn schedule(&self) -> Vec<Planned> {
        faults::schedule(
            &self.faults(),
            self.seed,
            self.fault_every,
            self.duration,
            self.quiet(),
        )
    }

    /// Faults keep away from the warm-up and from the last stretch, which
    /// leaves the stack time to recover before the final check.
    fn quiet(&self) -> (Duration, Duration) {
        (self.warm_up, (self.duration / 10).max(self.settle))
    }

    fn config(&self) -> serde_json::Value {
        let secs = |d: Duration| d.as_secs_f64();
        serde_json::json!({
            "users": self.users,
            "celebrities": self.celebrities,
            "celebrity_threshold": self.stack.celebrity_threshold,
            "tweets_per_user": self.tweets_per_user,
            "replicas": self.stack.replicas,
            "clusters": self.stack.clusters,
            "profile": self.stack.profile,
            "duration_secs": secs(self.duration),
            "post_rate": self.post_rate,
            "read_ratio": self.read_ratio,
            "follow_ratio": self.follow_ratio,
            "delete_ratio": self.delete_ratio,
            "max_in_flight": self.max_in_flight,
            "faults": self.faults(),
            "seed": self.seed,
            "fault_every_secs": secs(self.fault_every),
            "check_every_secs": secs(self.check_every),
            "interval_secs": secs(self.interval),
            "warm_up_secs": secs(self.warm_up),
            "settle_secs": secs(self.settle),
            "watchers": self.watchers,
            "watched_every_secs": secs(self.watched_every),
            "toggle_every_secs": secs(self.toggle_every),
            "outbox_shard": self.outbox_shard,
        })
    }
}

/// Starts the isolated stack, seeds it, runs the soak, stops the stack and
/// writes the report into `--out`.
pub async fn soak(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    ensure!(args.post_rate > 0.0, "--post-rate must be positive");
    ensure!(
        !args.interval.is_zero() && args.duration >= args.interval,
        "--duration must hold at least one --interval"
    );
    for fault in args.faults() {
        fault
            .fits(args.stack.replicas, args.stack.clusters)
            .map_err(|why| anyhow::anyhow!("--faults {}: {why}", fault.slug()))?;
    }
    let report = stack::isolated(&args.stack, args.keep_running, |stack| async move {
        run(args, &stack).await
    })
    .await?;
    report.write(&args.out)?;
    println!(
        "soak {}: {}/soak.html",
        if report.verdict.passed {
            "passed"
        } else {
            "FAILED"
        },
        args.out.display()
    );
    for reason in &report.verdict.reasons {
        println!("  {reason}");
    }
    Ok(report)
}

async fn run(args: &SoakArgs, stack: &Stack) -> anyhow::Result<SoakReport> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let threshold = i64::from(args.stack.celebrity_threshold);
    let seeded = seed(args, stack).await?;
    let (manifest, seeded) = seeded;
    let gateway = Gateway::new(&stack.gateway_url)?;
    let checked = Caller::new(gateway.clone());
    let helper = Caller::new(gateway);
    let prefix = chirp_load::seed::fresh_handle_prefix();
    let start_id = id_at(now_ms(), 0, 0);
    let shape = Shape {
        watchers: args.watchers,
        threshold,
        max_setup_follows: args.max_setup_follows,
    };
    println!("setting up the watched cohort");
    let cohort = Cohort::set_up(&checked, &helper, &seeded, &manifest, &prefix, shape).await?;
    let cohort = Arc::new(cohort);
    let watched: HashSet<i64> = cohort.authors.iter().map(|a| a.user.id).collect();
    let population: Vec<User> = seeded
        .into_iter()
        .filter(|user| !watched.contains(&user.id))
        .collect();

    let start = Instant::now();
    let tally = Arc::new(Tally::new(start, args.interval));
    let outbox_shard = args.outbox_shard;
    let bulk = Arc::new(Bulk::new(
        helper.clone(),
        population,
        |user| outbox_shard.is_none_or(|shard| handover::of_shard(user.id, shard)),
        tally.clone(),
        args.max_in_flight,
        &prefix,
    )?);
    let rates = Rates {
        posts: args.post_rate,
        reads: args.post_rate * args.read_ratio,
        follows: args.post_rate * args.follow_ratio,
        deletes: args.post_rate * args.delete_ratio,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(bulk.clone().run(rates, start, stop.clone()));
    let cohort_load = tokio::spawn(cohort::run(
        checked.clone(),
        cohort.clone(),
        tally.clone(),
        threshold,
        (args.watched_every, args.toggle_every),
        stop.clone(),
    ));
    let planned = args.schedule();
    println!(
        "steady load for {:?}: {} faults planned",
        args.duration,
        planned.len()
    );
    let injections = tokio::spawn(inject_all(
        stack.clone(),
        checked.clone(),
        cohort.graph_pair(),
        planned.clone(),
        start,
        stop.clone(),
    ));

    let sampler = sample::Sampler::new(stack, KEYSPACE).await;
    let mut samples = Vec::new();
    let mut check_tasks = Vec::new();
    let mut next_check = start + args.check_every;
    let intervals = (args.duration.as_secs_f64() / args.interval.as_secs_f64()) as u32;
    for index in 0..intervals {
        tokio::time::sleep_until((start + args.interval * (index + 1)).into()).await;
        samples.push(sampler.sample(stack).await);
        // The bulk load's record is not checked: it only must not grow.
        *bulk.caller.ledger.lock().await = Ledger::default();
        if index > 0 {
            progress(index, &tally.row(index as usize - 1));
        }
        if Instant::now() >= next_check {
            next_check += args.check_every;
            check_tasks.push(tokio::spawn(check_settled(
                checked.clone(),
                start,
                (start_id, cohort.churning()),
                args.settle,
            )));
        }
    }
    stop.store(true, Ordering::Relaxed);
    println!("load stopped; waiting for its last requests and faults");
    let _ = load.await;
    let _ = cohort_load.await;
    let injected = injections.await?;
    stack.up().await.context("bringing the stack back")?;
    let handover = match args.outbox_shard {
        Some(shard) => Some(
            handover::hand_over(stack, &helper, KEYSPACE, shard, bulk.events(), &prefix)
                .await
                .context("the final lease handover")?,
        ),
        None => None,
    };
    let mut checks = Vec::new();
    for task in check_tasks {
        checks.push(task.await?);
    }
    println!("final check");
    let window = Window {
        profile_ids: start_id..i64::MAX,
        settled: None,
        churning: Vec::new(),
    };
    let bound = Duration::from_secs(args.bound_secs);
    let (findings, clean_after) = checks::verify(&checked, bound, &window).await;
    let ledger = checked.ledger.lock().await.clone();
    let final_check = FinalCheck {
        posts_accepted: ledger.posts.len(),
        deletes_accepted: ledger.deletes.len(),
        unanswered: ledger.posts_unanswered.len() + ledger.deletes_unanswered.len(),
        findings,
        clean_after_secs: clean_after.map(|d| d.as_secs_f64()),
    };
    let rows: Vec<IntervalRow> = samples
        .into_iter()
        .enumerate()
        .map(|(index, system)| IntervalRow {
            minute: args.interval.as_secs_f64() * (index + 1) as f64 / 60.0,
            clients: tally.row(index),
            system,
        })
        .collect();
    let growth = judge_growth(&rows, args.warm_up);
    let not_measured = cohort.missing.clone();
    let mut report = SoakReport {
        config: args.config(),
        not_measured,
        schedule: planned,
        injected,
        intervals: rows,
        checks,
        final_check,
        handover,
        growth,
        verdict: Verdict {
            passed: false,
            reasons: Vec::new(),
        },
    };
    report.verdict = verdict(&report);
    Ok(report)
}

/// Seeds the stack (the bulk seed) and mints a token for every seeded user.
async fn seed(
    args: &SoakArgs,
    stack: &Stack,
) -> anyhow::Result<(chirp_load::manifest::Manifest, Vec<User>)> {
    let seed_args = chirp_load::seed::SeedArgs::power_law(
        chirp_load::seed::Services {
            gateway: stack.gateway_url.clone(),
            graph_addr: stack.grpc_addr(GRAPH_GRPC),
            tweet_addr: stack.grpc_addr(TWEET_GRPC),
        },
        chirp_load::graph_model::PowerLawParams {
            users: args.users,
            celebrities: args.celebrities,
            celebrity_threshold: args.stack.celebrity_threshold,
            exponent: chirp_load::seed::DEFAULT_EXPONENT,
            seed: args.seed,
        },
        args.tweets_per_user,
        args.out.join("soak-manifest.json"),
        false,
    );
    println!("seeding {} users", args.users);
    let seeded_at = Instant::now();
    let mut manifest = chirp_load::seed::seed(&seed_args)
        .await
        .context("the bulk seed")?;
    println!("seeded in {:.0} s", seeded_at.elapsed().as_secs_f64());
    chirp_load::tokens::TokenArgs::new(&stack.token_secret()?)?.mint(&mut manifest);
    let users = manifest
        .users
        .iter()
        .map(|user| User {
            id: user.id,
            token: user.token.clone(),
        })
        .collect();
    Ok((manifest, users))
}

fn progress(index: u32, row: &tally::ClientRow) {
    println!(
        "  interval {index}: {:.1} posts/s (p99 {:.0} ms), {:.1} reads/s (p99 {:.0} ms), \
         {} dropped, {} errors",
        row.posts_per_sec,
        row.post_p99_ms,
        row.reads_per_sec,
        row.read_p99_ms,
        row.dropped,
        row.post_errors + row.read_errors
    );
}

/// Injects each planned fault at its time, until `stop`; what each did.
async fn inject_all(
    stack: Stack,
    caller: Caller,
    pair: Unfollow,
    planned: Vec<Planned>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Injected> {
    let mut injected = Vec::new();
    for plan in planned {
        tokio::time::sleep_until((start + Duration::from_secs_f64(plan.at_secs)).into()).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        println!("  fault: {}", plan.fault.slug());
        let at = Instant::now();
        let mut result = plan.fault.inject(&stack, &caller, &pair, plan.which).await;
        if plan.fault == SoakFault::Chaos(Fault::GraphKillUnfollow) && result.is_ok() {
            // The pair follows again: the next graph fault unfollows anew.
            result = caller
                .follow(&pair.fan, pair.celebrity)
                .await
                .map(|()| None);
        }
        let took_secs = at.elapsed().as_secs_f64();
        let (detail, error) = match result {
            Ok(detail) => (detail, None),
            Err(error) => (None, Some(format!("{error:#}"))),
        };
        if let Some(detail) = &detail {
            println!("    {detail}");
        }
        injected.push(Injected {
            at_secs: (at - start).as_secs_f64(),
            fault: plan.fault.slug(),
            took_secs,
            detail,
            error,
        });
    }
    injected
}

/// A check while the load runs: only what was sent `settle` ago or before
/// is judged; a delete or unfollow since counts as unknown.
async fn check_settled(
    caller: Caller,
    start: Instant,
    (start_id, churning): (i64, Vec<i64>),
    settle: Duration,
) -> CheckRow {
    let began = Instant::now();
    let cutoff = began.checked_sub(settle).unwrap_or(start);
    let cutoff_id = id_at(now_ms() - settle.as_millis() as i64, 0, 0);
    let mut ledger = caller.ledger.lock().await.clone();
    ledger.posts.retain(|post| post.sent < cutoff);
    let (settled, recent): (Vec<_>, Vec<_>) =
        ledger.deletes.drain(..).partition(|(_, at)| *at < cutoff);
    ledger.deletes = settled;
    ledger
        .deletes_unanswered
        .extend(recent.into_iter().map(|(id, _)| id));
    let window = Window {
        profile_ids: start_id..cutoff_id,
        settled: Some(cutoff),
        churning,
    };
    let findings = checks::check_once(&caller, &ledger, &window).await;
    CheckRow {
        at_secs: (began - start).as_secs_f64(),
        posts_judged: ledger.posts.len(),
        findings,
        took_secs: began.elapsed().as_secs_f64(),
    }
}

/// The curves that must not grow, each with its bound.
fn judge_growth(rows: &[IntervalRow], warm_up: Duration) -> Vec<growth::Growth> {
    const MIB: f64 = 1024.0 * 1024.0;
    let warm_up_min = warm_up.as_secs_f64() / 60.0;
    let memory = Bound {
        relative: 0.2,
        floor: 32.0,
    };
    // A queue is judged on its rise alone (growth.rs says why).
    let queue = Bound {
        relative: 0.0,
        floor: 1_000.0,
    };
    let age = Bound {
        relative: 0.0,
        floor: 60.0,
    };
    let series = |value: &dyn Fn(&IntervalRow) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|row| value(row).map(|v| (row.minute, v)))
            .collect()
    };
    let mut judged = vec![
        growth::judge(
            "Redis used memory (MiB)",
            &series(&|r| r.system.redis_used_bytes.map(|b| b as f64 / MIB)),
            warm_up_min,
            memory,
        ),
        growth::judge(
            "consumer lag (messages)",
            &series(&|r| r.system.consumer_lag),
            warm_up_min,
            queue,
        ),
        growth::judge(
            "outbox depth (rows)",
            &series(&|r| r.system.outbox_depth.map(|d| d as f64)),
            warm_up_min,
            queue,
        ),
        growth::judge(
            "outbox oldest event (s)",
            &series(&|r| r.system.outbox_oldest_secs),
            warm_up_min,
            age,
        ),
    ];
    let mut names: Vec<&String> = rows
        .iter()
        .flat_map(|r| r.system.rss_bytes.keys())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        judged.push(growth::judge(
            &format!("RSS of {name} (MiB)"),
            &series(&|r| r.system.rss_bytes.get(name).map(|&b| b as f64 / MIB)),
            warm_up_min,
            memory,
        ));
    }
    judged
}

/// Passed, or every reason it did not.
fn verdict(report: &SoakReport) -> Verdict {
    let mut reasons = Vec::new();
    let final_check = &report.final_check;
    let f = &final_check.findings;
    for (count, what) in [
        (f.lost, "posts lost"),
        (f.phantom, "deleted posts still visible"),
        (f.duplicates, "duplicates"),
        (f.paging_gaps, "paging gaps or out-of-order ids"),
        (f.unfollowed_visible, "posts visible after an unfollow"),
        (
            f.unreadable,
            "timelines or profiles the check could not read",
        ),
        (final_check.unanswered, "cohort requests never answered"),
    ] {
        if count > 0 {
            reasons.push(format!("{count} {what}"));
        }
    }
    if final_check.posts_accepted == 0 {
        reasons.push("no watched post was accepted".to_owned());
    }
    if final_check.clean_after_secs.is_none() {
        reasons.push("the final check never came clean within its bound".to_owned());
    }
    if let Some(handover) = &report.handover
        && handover.visible_after_secs.is_none()
    {
        reasons.push(format!(
            "after shard {}'s lease was handed over, a post of the shard never arrived",
            handover.shard
        ));
    }
    let dead = report
        .intervals
        .iter()
        .filter_map(|row| row.system.dead_letters)
        .fold(0.0, f64::max);
    if dead > 0.0 {
        reasons.push(format!("{dead} events dead-lettered"));
    }
    for fault in &report.injected {
        if let Some(error) = &fault.error {
            reasons.push(format!(
                "fault {} at {:.0} s: {error}",
                fault.fault, fault.at_secs
            ));
        }
    }
    for g in &report.growth {
        if g.growing == Some(true) {
            reasons.push(format!(
                "{} grows: +{:.1} over the judged half, {:.1} allowed",
                g.curve, g.rise, g.allowed
            ));
        }
    }
    Verdict {
        passed: reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, parse};

    #[test]
    fn a_soak_and_a_chaos_run_never_share_a_folder_or_a_port() {
        let Command::Soak(soak) = parse(["loadtest", "soak"]) else {
            unreachable!("parsed as soak");
        };
        let Command::Chaos(chaos) = parse(["loadtest", "chaos"]) else {
            unreachable!("parsed as chaos");
        };
        let (s, c) = (&soak.stack, &chaos.stack);
        assert_eq!(s.backends_dir.to_str(), Some(".backends-soak"));
        assert_ne!(s.backends_dir, c.backends_dir);
        let ports = |a: &crate::stack::StackArgs| {
            [
                a.pg_port,
                a.redis_port,
                a.kafka_port,
                a.kafka_controller_port,
                a.cql_port,
                a.cassandra_storage_port,
                8080 + a.port_offset,
                a.redis_cluster_port,
                a.kafka_cluster_port,
                a.pg_replica_port,
            ]
        };
        for port in ports(s) {
            assert!(!ports(c).contains(&port), "port {port} is chaos's too");
        }
        assert_eq!((s.celebrity_threshold, s.replicas), (10_000, 2));
        assert_eq!((soak.users, soak.post_rate), (1_000_000, 100.0));
        assert_eq!(soak.duration, std::time::Duration::from_secs(3600));
    }
}
