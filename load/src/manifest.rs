//! The manifest: what `seed` built, written as JSON for `run` (and for
//! people) to read. It holds no tokens: `run` and `bench` mint them from the
//! gateway's secret ([`crate::tokens`]).
//!
//! One JSON document, not a database: `run` needs all of it in memory
//! anyway (to pick readers and writers), and a file is easy to inspect, to
//! keep next to a report, and to hand to another machine.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The gateway `run` goes to unless told otherwise; its `TOKEN_SECRET`
    /// is the one to mint the users' tokens with.
    pub gateway: String,
    /// What the graph is: `power law (exponent 1.7, seed 42)` or the file.
    pub source: String,
    /// The threshold the graph was built for; the services must run with the
    /// same `CELEBRITY_THRESHOLD` for these celebrities to be celebrities.
    pub celebrity_threshold: u32,
    /// In the order of the graph's user numbers.
    pub users: Vec<SeededUser>,
    /// Users with at least `celebrity_threshold` followers.
    pub celebrities: Vec<i64>,
    /// Follow edges imported.
    pub follows: u64,
    pub tweets: u64,
    /// Tweets of history each user was given.
    #[serde(default)]
    pub tweets_per_user: u32,
    /// The history's tweets are dated up to this Unix millisecond (the
    /// seed's start): with it, `seed --resume-tweets` makes the same ids.
    #[serde(default)]
    pub history_end_ms: i64,
    /// Wall time of each stage, for the record.
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeededUser {
    pub id: i64,
    pub handle: String,
    /// Never written: minted from the gateway's secret when the manifest is
    /// used ([`crate::tokens`]), empty until then.
    #[serde(skip)]
    pub token: String,
    pub followers: u64,
    pub following: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Timings {
    pub users_secs: f64,
    pub follows_secs: f64,
    pub tweets_secs: f64,
    /// The graph import's commit (edges moved into place, indexes rebuilt,
    /// counters set), after the follows were streamed; 0 in older manifests.
    #[serde(default)]
    pub graph_commit_secs: f64,
}

impl Manifest {
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let write = || -> anyhow::Result<()> {
            let mut file = BufWriter::new(File::create(path)?);
            serde_json::to_writer(&mut file, self)?;
            file.flush()?;
            Ok(())
        };
        write().with_context(|| format!("write the manifest {}", path.display()))
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let read = || -> anyhow::Result<Self> {
            let file = BufReader::new(File::open(path)?);
            Ok(serde_json::from_reader(file)?)
        };
        read().with_context(|| {
            format!(
                "read the manifest {} (written by `loadtest seed`)",
                path.display()
            )
        })
    }
}
