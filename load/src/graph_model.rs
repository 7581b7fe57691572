//! The social graphs `seed` builds: a synthetic one whose follower counts
//! follow a power law, or a real one read from an edge-list file.
//!
//! Users are numbered `0..users` here; the seeder maps each number to the id
//! the graph service assigns. This module does no I/O beyond reading a file,
//! so every property the seeder relies on is unit-tested.
//!
//! The synthetic graph draws each user's *follower count* first and then
//! picks that many distinct followers uniformly. Follower counts are what
//! the design is sensitive to (fan-out cost, the celebrity threshold), so
//! they are exact by construction; following counts come out around the
//! mean follower count, as on Twitter where few people follow thousands.
//! The edges of one user are derived from the seed and that user's number
//! alone, so the graph streams out in any size without being held in memory.
//!
//! Nobody in that graph follows thousands of accounts, yet those readers are
//! what a lossy fan-out (Bluesky's) is about: [`HeavyFollowers`] adds a few
//! users who do, each following a sample of everyone drawn from the seed and
//! their number. Their extra edges are the only ones held in memory (a few
//! hundred thousand at most), kept by followee so the stream stays grouped.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::Zipf;

/// A follow edge: `(follower, followee)`, as user numbers.
pub type Edge = (u32, u32);

/// A graph to seed: how many users, and who follows whom.
#[derive(Debug)]
pub enum SocialGraph {
    PowerLaw(PowerLaw),
    Imported(EdgeList),
}

impl SocialGraph {
    pub fn users(&self) -> u32 {
        match self {
            Self::PowerLaw(graph) => graph.users(),
            Self::Imported(graph) => graph.users,
        }
    }

    pub fn edge_count(&self) -> u64 {
        match self {
            Self::PowerLaw(graph) => graph.edge_count(),
            Self::Imported(graph) => graph.edges.len() as u64,
        }
    }

    /// Every edge once, grouped by followee.
    pub fn edges(&self) -> Box<dyn Iterator<Item = Edge> + Send + '_> {
        match self {
            Self::PowerLaw(graph) => Box::new(graph.edges()),
            Self::Imported(graph) => Box::new(graph.edges.iter().copied()),
        }
    }
}

/// Follower counts drawn from a power law, with a chosen number of
/// celebrities above the hybrid timeline's threshold and everybody else
/// below it.
#[derive(Debug)]
pub struct PowerLaw {
    seed: u64,
    /// The drawn follower count of each user; users `0..celebrities` are
    /// the celebrities.
    followers: Vec<u32>,
    /// By followee, the heavy followers who follow them beyond the drawn
    /// followers (none of whom they repeat).
    heavy: HashMap<u32, Vec<u32>>,
}

/// A few users who follow very many accounts: the last `count` user numbers,
/// each following `following` accounts drawn uniformly (on top of whatever
/// the power law makes them follow).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeavyFollowers {
    pub count: u32,
    pub following: u32,
}

/// What shapes a [`PowerLaw`] graph.
#[derive(Debug, Clone, Copy)]
pub struct PowerLawParams {
    pub users: u32,
    /// How many users get at least `celebrity_threshold` followers.
    pub celebrities: u32,
    /// The services' `CELEBRITY_THRESHOLD`: celebrities reach it, nobody
    /// else does.
    pub celebrity_threshold: u32,
    /// `s` in P(k followers) ∝ (k + 1)^-s; around 1.7 gives a median of 0
    /// or 1 and a mean in the twenties, a long tail in between.
    pub exponent: f64,
    pub seed: u64,
}

impl PowerLaw {
    pub fn new(params: PowerLawParams) -> anyhow::Result<Self> {
        Self::with_heavy_followers(params, HeavyFollowers::default())
    }

    /// The graph of `params` plus `heavy`'s edges. Ordinary users are drawn
    /// at most `heavy.count` followers below the threshold, so that the
    /// heavy followers cannot lift one to a celebrity.
    pub fn with_heavy_followers(
        params: PowerLawParams,
        heavy: HeavyFollowers,
    ) -> anyhow::Result<Self> {
        let PowerLawParams {
            users,
            celebrities,
            celebrity_threshold: threshold,
            exponent,
            seed,
        } = params;
        ensure!(users >= 2, "a social graph needs at least 2 users");
        ensure!(
            exponent.is_finite() && exponent > 0.0,
            "the power-law exponent must be positive, got {exponent}"
        );
        ensure!(threshold >= 1, "the celebrity threshold must be at least 1");
        ensure!(
            celebrities <= users,
            "{celebrities} celebrities among {users} users is too many"
        );
        let most = users - 1;
        if celebrities > 0 && threshold > most {
            bail!(
                "with {users} users nobody can have {threshold} followers, so no celebrity can \
                 exist: start the services with CELEBRITY_THRESHOLD at most {most} (e.g. \
                 CELEBRITY_THRESHOLD={}) and pass the same --celebrity-threshold here, or seed \
                 more users",
                suggested_threshold(users)
            );
        }
        ensure!(
            heavy.count == 0 || (heavy.count < threshold && celebrities + heavy.count <= users),
            "{} heavy followers do not fit {users} users, {celebrities} celebrities and a \
             threshold of {threshold}",
            heavy.count
        );
        ensure!(
            heavy.count == 0 || heavy.following <= most,
            "nobody can follow {} of {users} users",
            heavy.following
        );
        let mut rng = StdRng::seed_from_u64(seed);
        let ordinary_max = most.min(threshold - 1 - heavy.count);
        let tail =
            Zipf::new(f64::from(ordinary_max) + 1.0, exponent).context("power-law parameters")?;
        let followers = (0..users)
            .map(|user| {
                if user < celebrities {
                    // Zipf's law by rank among the celebrities: the first is
                    // followed by everybody, the next by half, and so on.
                    (most / (user + 1)).max(threshold)
                } else {
                    // A sample is in 1..=ordinary_max + 1.
                    rng.sample(tail) as u32 - 1
                }
            })
            .collect();
        let mut graph = Self {
            seed,
            followers,
            heavy: HashMap::new(),
        };
        let mut extra: HashMap<u32, Vec<u32>> = HashMap::new();
        for follower in users - heavy.count..users {
            let salt = seed ^ HEAVY_SALT;
            for followee in others(salt, users, follower, heavy.following) {
                extra.entry(followee).or_default().push(follower);
            }
        }
        for (followee, heavy_followers) in &mut extra {
            let drawn: HashSet<u32> = graph.drawn_followers_of(*followee).into_iter().collect();
            heavy_followers.retain(|follower| !drawn.contains(follower));
        }
        graph.heavy = extra;
        Ok(graph)
    }

    pub fn users(&self) -> u32 {
        self.followers.len() as u32
    }

    /// The follower count of `user`, exactly as [`Self::edges`] produces it.
    pub fn followers(&self, user: u32) -> u32 {
        self.followers[user as usize] + self.heavy.get(&user).map_or(0, |h| h.len() as u32)
    }

    pub fn edge_count(&self) -> u64 {
        let heavy: usize = self.heavy.values().map(Vec::len).sum();
        self.followers.iter().map(|&n| u64::from(n)).sum::<u64>() + heavy as u64
    }

    /// The distinct followers of `user`: those drawn uniformly from everyone
    /// else with a generator seeded by the graph's seed and `user` alone,
    /// then the heavy followers who picked `user`.
    pub fn followers_of(&self, user: u32) -> Vec<u32> {
        let mut followers = self.drawn_followers_of(user);
        followers.extend(self.heavy.get(&user).into_iter().flatten());
        followers
    }

    fn drawn_followers_of(&self, user: u32) -> Vec<u32> {
        let count = self.followers[user as usize];
        others(self.seed, self.users(), user, count)
    }

    /// Every edge, followee by followee.
    pub fn edges(&self) -> impl Iterator<Item = Edge> + Send + '_ {
        (0..self.users()).flat_map(move |followee| {
            self.followers_of(followee)
                .into_iter()
                .map(move |follower| (follower, followee))
        })
    }
}

/// 2^64 / φ: spreads consecutive user numbers over the seed space.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
/// Sets a heavy follower's followees apart from the followers drawn for the
/// same user number.
const HEAVY_SALT: u64 = 0x5EED_F011_0775_0000;

/// `count` distinct users other than `user`, drawn uniformly from `users`
/// with a generator seeded by `seed` and `user` alone.
fn others(seed: u64, users: u32, user: u32, count: u32) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed ^ u64::from(user).wrapping_mul(GOLDEN));
    rand::seq::index::sample(&mut rng, users as usize - 1, count as usize)
        .into_iter()
        .map(|other| {
            let other = other as u32;
            if other >= user { other + 1 } else { other }
        })
        .collect()
}

/// A threshold that `users` users can reach with room for a few celebrities.
fn suggested_threshold(users: u32) -> u32 {
    (users / 10).max(1)
}

/// A real graph, read from a file.
#[derive(Debug)]
pub struct EdgeList {
    pub users: u32,
    /// Distinct, without self-follows, sorted.
    pub edges: Vec<Edge>,
}

impl EdgeList {
    /// Reads a SNAP-style edge list or a MatrixMarket `.mtx` file (told apart
    /// by the `%%MatrixMarket` banner). With `undirected`, every edge is a
    /// friendship and becomes two follows.
    pub fn read(path: &Path, undirected: bool) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        Self::parse(BufReader::new(file), undirected)
            .with_context(|| format!("read the graph in {}", path.display()))
    }

    /// Parses either format. User numbers in the file may start at 0 or 1
    /// and have gaps: they are renumbered densely, in increasing order.
    /// Self-loops are dropped and duplicates merged, so that follower counts
    /// match what the graph service will count.
    pub fn parse(input: impl BufRead, undirected: bool) -> anyhow::Result<Self> {
        let mut lines = input.lines().enumerate().peekable();
        let matrix_market = match lines.peek() {
            Some((_, Ok(first))) => first.starts_with("%%MatrixMarket"),
            _ => false,
        };
        let mut symmetric = false;
        let mut declared_entries = None;
        let mut raw = Vec::new();
        for (index, line) in lines {
            let number = index + 1;
            let line = line.with_context(|| format!("line {number}"))?;
            if matrix_market && number == 1 {
                symmetric = matrix_market_banner(&line)?;
                continue;
            }
            let line = line.trim();
            if line.is_empty() || line.starts_with('%') || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(a), Some(b)) = (fields.next(), fields.next()) else {
                bail!("line {number}: expected two user numbers, got {line:?}");
            };
            let parse = |field: &str| {
                field
                    .parse::<u64>()
                    .with_context(|| format!("line {number}: {field:?} is not a user number"))
            };
            if matrix_market && declared_entries.is_none() {
                let entries = fields.next().with_context(|| {
                    format!("line {number}: expected the size line `rows columns entries`")
                })?;
                declared_entries = Some(parse(entries)?);
                continue;
            }
            raw.push((parse(a)?, parse(b)?));
        }
        if let Some(declared) = declared_entries {
            ensure!(
                declared == raw.len() as u64,
                "the size line declares {declared} entries, the file has {}",
                raw.len()
            );
        }
        Ok(Self::from_raw(&raw, undirected || symmetric))
    }

    fn from_raw(raw: &[(u64, u64)], both_ways: bool) -> Self {
        let mut numbers: Vec<u64> = raw.iter().flat_map(|&(a, b)| [a, b]).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let dense: HashMap<u64, u32> = numbers
            .iter()
            .enumerate()
            .map(|(index, &number)| (number, index as u32))
            .collect();
        let mut edges: Vec<Edge> = raw
            .iter()
            .filter(|(a, b)| a != b)
            .flat_map(|&(a, b)| {
                let (a, b) = (dense[&a], dense[&b]);
                let reverse = both_ways.then_some((b, a));
                std::iter::once((a, b)).chain(reverse)
            })
            .collect();
        edges.sort_unstable();
        edges.dedup();
        Self {
            users: numbers.len() as u32,
            edges,
        }
    }
}

/// Checks the banner of a `.mtx` file; returns whether the matrix is
/// symmetric (each entry stands for both directions).
fn matrix_market_banner(banner: &str) -> anyhow::Result<bool> {
    let words: Vec<String> = banner
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    ensure!(
        words.get(1).map(String::as_str) == Some("matrix")
            && words.get(2).map(String::as_str) == Some("coordinate"),
        "only MatrixMarket `matrix coordinate` files hold a graph, got {banner:?}"
    );
    Ok(words
        .get(4)
        .is_some_and(|symmetry| symmetry == "symmetric" || symmetry == "skew-symmetric"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn params(users: u32, celebrities: u32, threshold: u32) -> PowerLawParams {
        PowerLawParams {
            users,
            celebrities,
            celebrity_threshold: threshold,
            exponent: 1.7,
            seed: 7,
        }
    }

    /// Follower and following counts, as the graph service would count them.
    fn degrees(edges: &[Edge], users: u32) -> (Vec<u32>, Vec<u32>) {
        let mut followers = vec![0; users as usize];
        let mut following = vec![0; users as usize];
        for &(follower, followee) in edges {
            followers[followee as usize] += 1;
            following[follower as usize] += 1;
        }
        (followers, following)
    }

    #[test]
    fn celebrities_reach_the_threshold_and_nobody_else_does() {
        let graph = PowerLaw::new(params(2_000, 3, 150)).unwrap();
        let edges: Vec<Edge> = graph.edges().collect();
        assert_eq!(edges.len() as u64, graph.edge_count());
        let (followers, _) = degrees(&edges, 2_000);
        for user in 0..2_000 {
            assert_eq!(followers[user as usize], graph.followers(user));
        }
        assert_eq!(&followers[..3], &[1_999, 999, 666]);
        assert!(followers[3..].iter().all(|&n| n < 150));
        // A long tail: most users have at most one follower, a few have many.
        let ordinary = &followers[3..];
        let few = ordinary.iter().filter(|&&n| n <= 1).count();
        assert!(few > ordinary.len() / 3, "{few} of {}", ordinary.len());
        assert!(ordinary.iter().any(|&n| n > 50));
    }

    #[test]
    fn edges_are_distinct_without_self_follows() {
        let graph = PowerLaw::new(params(300, 2, 100)).unwrap();
        let edges: Vec<Edge> = graph.edges().collect();
        let distinct: HashSet<Edge> = edges.iter().copied().collect();
        assert_eq!(distinct.len(), edges.len());
        assert!(edges.iter().all(|&(a, b)| a != b && a < 300 && b < 300));
    }

    #[test]
    fn the_same_seed_gives_the_same_graph() {
        let edges = |seed| {
            let graph = PowerLaw::new(PowerLawParams {
                seed,
                ..params(500, 2, 100)
            })
            .unwrap();
            graph.edges().collect::<Vec<Edge>>()
        };
        assert_eq!(edges(1), edges(1));
        assert_ne!(edges(1), edges(2));
    }

    #[test]
    fn an_unreachable_threshold_is_refused_with_a_way_out() {
        let error = PowerLaw::new(params(10_000, 5, 10_000)).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("CELEBRITY_THRESHOLD=1000"), "{message}");
        // Without celebrities any threshold works: nobody reaches it.
        let graph = PowerLaw::new(params(100, 0, 10_000)).unwrap();
        assert!((0..100).all(|user| graph.followers(user) < 100));
        assert!(PowerLaw::new(params(10, 11, 5)).is_err());
        assert!(PowerLaw::new(params(1, 0, 5)).is_err());
    }

    #[test]
    fn heavy_followers_follow_that_many_and_make_no_celebrity() {
        let heavy = HeavyFollowers {
            count: 4,
            following: 300,
        };
        let graph = PowerLaw::with_heavy_followers(params(1_000, 2, 60), heavy).unwrap();
        let edges: Vec<Edge> = graph.edges().collect();
        assert_eq!(edges.len() as u64, graph.edge_count());
        let distinct: HashSet<Edge> = edges.iter().copied().collect();
        assert_eq!(distinct.len(), edges.len(), "no edge twice");
        let (followers, following) = degrees(&edges, 1_000);
        for user in 0..1_000 {
            assert_eq!(followers[user as usize], graph.followers(user));
        }
        assert!(following[996..].iter().all(|&n| n >= 300), "{following:?}");
        assert!(following[..996].iter().all(|&n| n < 300));
        assert!(followers[..2].iter().all(|&n| n >= 60));
        assert!(followers[2..].iter().all(|&n| n < 60));
        // The power law underneath is the graph without them.
        let plain = PowerLaw::new(params(1_000, 2, 60)).unwrap();
        let none = PowerLaw::with_heavy_followers(params(1_000, 2, 60), HeavyFollowers::default());
        assert_eq!(
            plain.edges().collect::<Vec<Edge>>(),
            none.unwrap().edges().collect::<Vec<Edge>>()
        );
    }

    #[test]
    fn heavy_followers_that_do_not_fit_are_refused() {
        let too_many = HeavyFollowers {
            count: 60,
            following: 10,
        };
        assert!(PowerLaw::with_heavy_followers(params(1_000, 2, 60), too_many).is_err());
        let too_far = HeavyFollowers {
            count: 1,
            following: 1_000,
        };
        assert!(PowerLaw::with_heavy_followers(params(1_000, 2, 60), too_far).is_err());
        let none = HeavyFollowers {
            count: 0,
            following: 5_000,
        };
        assert!(
            PowerLaw::with_heavy_followers(params(1_000, 2, 60), none).is_ok(),
            "no heavy follower: their following count is not checked"
        );
    }

    fn parse(text: &str, undirected: bool) -> EdgeList {
        EdgeList::parse(text.as_bytes(), undirected).unwrap()
    }

    #[test]
    fn snap_lists_are_renumbered_densely() {
        let list = parse(
            "# a comment\n% another\n10 20\n20\t10\n\n30 10 1700000000\n",
            false,
        );
        assert_eq!(list.users, 3);
        assert_eq!(list.edges, vec![(0, 1), (1, 0), (2, 0)]);
    }

    #[test]
    fn undirected_lists_become_two_follows_deduplicated() {
        let list = parse("1 2\n2 1\n2 3\n3 3\n", true);
        assert_eq!(list.users, 3);
        assert_eq!(list.edges, vec![(0, 1), (1, 0), (1, 2), (2, 1)]);
    }

    #[test]
    fn matrix_market_files_declare_their_symmetry() {
        let general = "%%MatrixMarket matrix coordinate pattern general\n% c\n3 3 2\n1 2\n3 1\n";
        assert_eq!(parse(general, false).edges, vec![(0, 1), (2, 0)]);
        let symmetric = "%%MatrixMarket matrix coordinate pattern symmetric\n3 3 2\n2 1\n3 1\n";
        let list = parse(symmetric, false);
        assert_eq!(list.edges, vec![(0, 1), (0, 2), (1, 0), (2, 0)]);
    }

    #[test]
    fn malformed_files_name_the_line() {
        let error = EdgeList::parse("1 2\n3\n".as_bytes(), false).unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
        let error = EdgeList::parse("1 x\n".as_bytes(), false).unwrap_err();
        assert!(format!("{error:#}").contains("line 1"), "{error:#}");
        let short = "%%MatrixMarket matrix coordinate pattern general\n3 3 5\n1 2\n";
        assert!(EdgeList::parse(short.as_bytes(), false).is_err());
        let dense = "%%MatrixMarket matrix array real general\n2 2\n1\n0\n0\n1\n";
        assert!(EdgeList::parse(dense.as_bytes(), false).is_err());
    }
}
