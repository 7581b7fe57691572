//! `idle`: what the stack costs when nothing happens: the CPU each of its
//! processes uses over a fixed window with no traffic at all.
//!
//! A cached page's CPU table ([`super::cpu`]) divides everything a process
//! did during a stage by the pages served, so work that runs whatever the
//! traffic (the outbox relay polling its shards and renewing its leases,
//! Cassandra's and Kafka's housekeeping, caches expiring) is charged to the
//! pages. Measured alone, that work can be told apart, and it shows what a
//! deployment pays at rest.
//!
//! The processes are named by their pid files, as the scripts that start
//! them write them (`deploy/bench.sh` passes the services' and the
//! backends'): a name found by `comm` would mix this stack's processes with
//! any other stack's on the machine. Each is measured with its direct
//! children (Postgres is a postmaster and a process per connection and per
//! background worker): a process's own time, the time of the children it
//! has waited for (which includes a child that exited during the window),
//! and the time of the children still running. The kernel counts in ticks of
//! 10 ms, so a window of a minute resolves about a sixth of a thousandth of
//! a core. The whole machine's busy time over the same window is recorded
//! beside it: on a shared machine, what the stack used is only readable next
//! to what everything did.
//!
//! A pid file that is missing, or names no running process, is reported as
//! not measured (a backend started by another checkout writes its pid file
//! there, not here); a process that exits or is replaced during the window
//! fails the measurement, since its time would be counted wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use super::cpu::{Stat, ticks};
use crate::machine::Machine;

#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// A process to measure, with its direct children: NAME=PID_FILE
    /// (repeat for each process, in the order of the table).
    #[arg(long = "process", value_parser = parse_process, required = true)]
    pub processes: Vec<(String, PathBuf)>,
    /// How long the stack is left alone while its CPU is counted.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub window: Duration,
    /// Directory for idle.json.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
}

fn parse_process(raw: &str) -> Result<(String, PathBuf), String> {
    match raw.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err("expected NAME=PID_FILE".to_owned()),
    }
}

/// What `idle` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub machine: Machine,
    pub window_secs: f64,
    /// Busy CPU of the whole machine over the window (every process, this
    /// stack's or not), in cores: 0.25 is a quarter of one core.
    pub machine_busy_cores: f64,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages as the window began.
    pub load_average: [f64; 3],
    /// In the order they were named.
    pub processes: Vec<IdleProcess>,
    /// Named but not measured, and why.
    pub missing: Vec<Missing>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleProcess {
    pub name: String,
    pub pid: u32,
    /// Its `comm` in `/proc`: what the pid file pointed at.
    pub command: String,
    /// It and its direct children as the window ended.
    pub processes: usize,
    /// CPU time (user + system) over the window.
    pub cpu_ms: f64,
    /// `cpu_ms` over the window: 1.0 is a hundredth of one core.
    pub percent_of_core: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub name: String,
    pub reason: String,
}

/// Measures the processes `args` name over `args.window`, writes
/// `idle.json` into `args.out`, prints a table, and returns it.
pub async fn idle(args: &IdleArgs) -> anyhow::Result<Idle> {
    let mut roots = Vec::new();
    let mut missing = Vec::new();
    for (name, pid_file) in &args.processes {
        match running(pid_file) {
            Ok(pid) => roots.push((name.clone(), pid)),
            Err(reason) => missing.push(Missing {
                name: name.clone(),
                reason,
            }),
        }
    }
    let load_average = load_average()?;
    let busy_before = machine_busy_ticks()?;
    let before = Tree::sample(&roots)?;
    tokio::time::sleep(args.window).await;
    let after = Tree::sample(&roots)?;
    let busy = machine_busy_ticks()?.saturating_sub(busy_before);

    let window_secs = args.window.as_secs_f64();
    let mut processes = Vec::new();
    for ((name, pid), (start, end)) in roots.iter().zip(before.iter().zip(&after)) {
        if start.starttime != end.starttime {
            bail!("{name} (pid {pid}) was replaced during the window: measure again");
        }
        let cpu = ticks(end.ticks.saturating_sub(start.ticks));
        processes.push(IdleProcess {
            name: name.clone(),
            pid: *pid,
            command: end.command.clone(),
            processes: end.processes,
            cpu_ms: cpu.as_secs_f64() * 1e3,
            percent_of_core: cpu.as_secs_f64() / window_secs * 100.0,
        });
    }
    let idle = Idle {
        machine: Machine::this(),
        window_secs,
        machine_busy_cores: ticks(busy).as_secs_f64() / window_secs,
        load_average,
        processes,
        missing,
    };
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join("idle.json");
    std::fs::write(&path, serde_json::to_string_pretty(&idle)?)
        .with_context(|| format!("write {}", path.display()))?;
    print!("{}", idle.markdown());
    Ok(idle)
}

impl Idle {
    /// The table `idle` prints.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "idle for {:.0} s: the whole machine {:.3} cores busy, load average {:?} before\n\n\
             | process | command | processes | CPU ms | % of one core |\n|---|---|--:|--:|--:|\n",
            self.window_secs, self.machine_busy_cores, self.load_average
        );
        for process in &self.processes {
            out += &format!(
                "| {} | {} | {} | {:.0} | {:.3} |\n",
                process.name,
                process.command,
                process.processes,
                process.cpu_ms,
                process.percent_of_core
            );
        }
        for missing in &self.missing {
            out += &format!(
                "| {} | not measured: {} | | | |\n",
                missing.name, missing.reason
            );
        }
        out
    }
}

/// The pid in `pid_file`, if it names a running process (not a zombie).
fn running(pid_file: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|error| format!("no pid file {} ({error})", pid_file.display()))?;
    let pid: u32 = text
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .ok_or_else(|| format!("{} holds no pid", pid_file.display()))?;
    match Stat::read(&pid.to_string()) {
        Some(stat) if stat.state != 'Z' => Ok(pid),
        _ => Err(format!(
            "pid {pid} of {} is not running",
            pid_file.display()
        )),
    }
}

/// One process and its direct children at one moment.
#[derive(Debug, Clone)]
struct Tree {
    starttime: u64,
    command: String,
    /// The root's own time, its waited-for children's, and its running
    /// children's (with theirs), in ticks.
    ticks: u64,
    processes: usize,
}

impl Tree {
    /// Each of `roots` now, from one pass over `/proc`. Fails if one is
    /// gone or a zombie.
    fn sample(roots: &[(String, u32)]) -> anyhow::Result<Vec<Self>> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir("/proc").context("read /proc")?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|pid| pid.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(stat) = Stat::read(&pid.to_string()) {
                all.push((pid, stat));
            }
        }
        roots
            .iter()
            .map(|(name, pid)| {
                let (ticks, processes) = tree_ticks(*pid, &all)
                    .with_context(|| format!("{name} (pid {pid}) exited during the window"))?;
                let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let starttime = all
                    .iter()
                    .find_map(|(other, stat)| (other == pid).then_some(stat.starttime))
                    .unwrap_or_default();
                Ok(Self {
                    starttime,
                    command,
                    ticks,
                    processes,
                })
            })
            .collect()
    }
}

/// The CPU ticks of `root` with its direct children, and how many processes
/// that is, from the stats of every process: `None` if `root` is not among
/// them or is a zombie. A child's own children count only once it has
/// waited for them.
fn tree_ticks(root: u32, all: &[(u32, Stat)]) -> Option<(u64, usize)> {
    let (_, own) = all
        .iter()
        .find(|(pid, stat)| *pid == root && stat.state != 'Z')?;
    let children = all.iter().filter(|(_, stat)| stat.ppid == root);
    let ticks = own.with_waited_children()
        + children
            .clone()
            .map(|(_, stat)| stat.with_waited_children())
            .sum::<u64>();
    Some((ticks, 1 + children.count()))
}

/// Busy ticks of every CPU since boot, from `/proc/stat`'s first line: all
/// but idle and I/O wait.
fn machine_busy_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    busy_ticks(&stat).context("parse /proc/stat")
}

fn busy_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is
    // already inside user and nice).
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = fields[..] else {
        return None;
    };
    Some(user + nice + system + irq + softirq + steal)
}

fn load_average() -> anyhow::Result<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").context("read /proc/loadavg")?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let mut next = || -> anyhow::Result<f64> {
        fields
            .next()
            .context("a short /proc/loadavg")?
            .context("parse /proc/loadavg")
    };
    Ok([next()?, next()?, next()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::process::{Command, Stdio};

    fn args(processes: &[(&str, &Path)], window: Duration, out: &Path) -> IdleArgs {
        IdleArgs {
            processes: processes
                .iter()
                .map(|(name, path)| ((*name).to_owned(), path.to_path_buf()))
                .collect(),
            window,
            out: out.to_path_buf(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("idle-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    #[test]
    fn process_flags_are_name_equals_pid_file() {
        assert_eq!(
            parse_process("postgres=/x/run/postgres.pid"),
            Ok(("postgres".to_owned(), PathBuf::from("/x/run/postgres.pid")))
        );
        assert!(parse_process("postgres").is_err());
        assert!(parse_process("=/x.pid").is_err());
        assert!(parse_process("postgres=").is_err());
    }

    #[test]
    fn the_machine_is_busy_for_all_but_idle_and_io_wait() {
        let stat = "cpu  100 5 30 9000 70 2 3 1 40 0\ncpu0 50 2 15 4500 35 1 1 0 20 0\n";
        assert_eq!(busy_ticks(stat), Some(141));
        assert_eq!(busy_ticks("intr 1 2 3\n"), None);
    }

    /// This test's own process, busy on a thread through the window, is
    /// measured above zero; a pid file of a process that exited is reported
    /// as not measured, and a missing one too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_process_is_measured_and_a_gone_one_reported() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let dir = scratch("busy");
        let own = dir.join("own.pid");
        std::fs::write(&own, format!("{}\n", std::process::id())).unwrap();
        let mut exited = Command::new("true").spawn().expect("run true");
        let gone_pid = exited.id();
        exited.wait().expect("true exits");
        let gone = dir.join("gone.pid");
        std::fs::write(&gone, gone_pid.to_string()).unwrap();
        let absent = dir.join("absent.pid");

        let window = Duration::from_millis(500);
        let spinner = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut spins = 0_u64;
            while started.elapsed() < window * 2 {
                spins = spins.wrapping_add(std::hint::black_box(1));
            }
            spins
        });
        let measured = idle(&args(
            &[("own", &own), ("gone", &gone), ("absent", &absent)],
            window,
            &dir,
        ))
        .await
        .expect("measured");
        spinner.join().expect("the spinner");

        assert_eq!(measured.processes.len(), 1, "{measured:?}");
        let own = &measured.processes[0];
        assert_eq!(own.pid, std::process::id());
        assert!(own.cpu_ms > 0.0, "{own:?}");
        assert!(measured.machine_busy_cores > 0.0, "{measured:?}");
        let missing: Vec<&str> = measured.missing.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(missing, ["gone", "absent"]);
        let json = std::fs::read_to_string(dir.join("idle.json")).expect("idle.json");
        assert!(json.contains("\"percent_of_core\""), "{json}");
    }

    fn stat(ppid: u32, state: char, own: u64, waited: u64) -> Stat {
        Stat {
            state,
            ppid,
            utime: own,
            stime: 0,
            cutime: waited,
            cstime: 0,
            starttime: 1,
        }
    }

    #[test]
    fn a_tree_is_the_root_and_its_direct_children() {
        let all = [
            (10, stat(1, 'S', 5, 3)),
            (11, stat(10, 'R', 2, 1)),
            (12, stat(10, 'S', 4, 0)),
            // A grandchild counts once its parent has waited for it.
            (13, stat(11, 'R', 100, 0)),
            (14, stat(1, 'R', 50, 0)),
            (15, stat(1, 'Z', 7, 0)),
        ];
        assert_eq!(tree_ticks(10, &all), Some((5 + 3 + 2 + 1 + 4, 3)));
        assert_eq!(tree_ticks(14, &all), Some((50, 1)));
        assert_eq!(tree_ticks(15, &all), None, "a zombie is not running");
        assert_eq!(tree_ticks(99, &all), None);
    }

    /// A shell that runs a busy loop in a child and then sleeps: its own CPU
    /// is next to nothing, its child's is counted (running, or waited for
    /// if it finished within the window).
    #[tokio::test]
    async fn a_parent_is_measured_with_its_busy_child() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let dir = scratch("child");
        let mut shell = Command::new("sh")
            .args([
                "-c",
                "(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); exec sleep 60",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("run sh");
        let pid_file = dir.join("sh.pid");
        std::fs::write(&pid_file, shell.id().to_string()).unwrap();
        let measured = idle(&args(&[("sh", &pid_file)], Duration::from_secs(2), &dir)).await;
        shell.kill().expect("stop the shell");
        shell.wait().expect("the shell exits");
        let measured = measured.expect("measured");
        assert!(measured.processes[0].cpu_ms >= 50.0, "{measured:?}");
    }

    /// A process that exits during the window fails the measurement rather
    /// than being counted short.
    #[tokio::test]
    async fn a_process_that_exits_during_the_window_fails_it() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let dir = scratch("exits");
        let mut child = Command::new("sleep").arg("0.2").spawn().expect("sleep");
        let pid_file = dir.join("sleep.pid");
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        let measured = idle(&args(&[("sleep", &pid_file)], Duration::from_secs(2), &dir)).await;
        child.wait().expect("sleep exits");
        let error = measured.expect_err("the process exited").to_string();
        assert!(error.contains("exited during the window"), "{error}");
    }
}
