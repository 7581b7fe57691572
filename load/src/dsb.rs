//! DeathStarBench's social-network workloads, in chirp's API: the request
//! mixes of `run dsb-mixed` and `run nightcore-mixed`, so that chirp can be
//! measured on the workload the field measures microservice social networks
//! with, beside that benchmark's published figures (docs/BENCHMARKS.md,
//! "DeathStarBench's workload on its own graph").
//!
//! The shapes are read from the benchmarks' own scripts, not from papers:
//!
//! - **`dsb-mixed`**: DeathStarBench's wrk2 script
//!   `socialNetwork/wrk2/scripts/social-network/mixed-workload.lua`
//!   (github.com/delimitrou/DeathStarBench, commit 6ecb097): 60 % home-timeline
//!   reads, 30 % user-timeline reads, 10 % posts; each read asks for 10 posts
//!   (`stop = start + 10`, `start` random in 0–100); a post's text is 256
//!   random characters plus up to six mentions and six links.
//! - **`nightcore-mixed`**: the Nightcore artifact's
//!   `workloads/DeathStarBench/socialNetwork/wrk2_scripts/mixed.lua`
//!   (github.com/ut-osa/nightcore-benchmarks, commit 7b7bce9), the run behind
//!   its `expected_results_summary.txt`: 40 % user-timeline reads, 25 %
//!   home-timeline reads, 30 % posts, 5 % follows; each read asks for one post
//!   (`stop = start + 1`); a post's text is 64 random characters plus mentions
//!   and links; a follow is a random user following a random user.
//!   (Its write-only run, `compose-post.lua`, is `run post`.)
//!
//! Both seed socfb-Reed98 the same way (`socialNetwork/scripts/init_social_graph.py`:
//! 962 users, each undirected edge followed in both directions), which
//! `loadtest seed --edges socfb-Reed98.edges --undirected` does through the bulk
//! import; DeathStarBench's `--compose` adds 0–20 posts per user (10 on average).
//!
//! What cannot be the same, and how it is bridged: DeathStarBench reads a
//! timeline at a random offset (`ZREVRANGE start stop`); chirp pages by cursor
//! only, so reads here are first pages (the newest posts: never an empty page
//! while the timeline has posts, where DeathStarBench's deep offsets into a
//! user timeline of ten posts often are). chirp has no mentions, links or media:
//! a post is its text, cut to chirp's 280 characters. A request is one HTTP
//! call either way, so rates compare as requests per second.

/// One kind of request of a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A page of a user's home timeline (`GET /users/{id}/timeline`).
    HomeTimeline,
    /// A page of a user's own posts (`GET /users/{id}/tweets`).
    UserTimeline,
    /// A new post (`POST /tweets`).
    Post,
    /// A user follows another (`POST /follow`).
    Follow,
}

/// A request mix: what share of requests is of each kind, and their sizes.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Each kind and its share of requests; the shares add up to 1.
    pub shares: &'static [(Request, f64)],
    /// Posts per timeline page the benchmark asks for.
    pub page_size: u32,
    /// Characters of a post's text (before the benchmark's mentions and
    /// links, which chirp does not have).
    pub post_chars: usize,
}

/// DeathStarBench's `mixed-workload.lua`.
pub const DSB_MIXED: Mix = Mix {
    shares: &[
        (Request::HomeTimeline, 0.60),
        (Request::UserTimeline, 0.30),
        (Request::Post, 0.10),
    ],
    page_size: 10,
    post_chars: 256,
};

/// The Nightcore artifact's `mixed.lua`.
pub const NIGHTCORE_MIXED: Mix = Mix {
    shares: &[
        (Request::UserTimeline, 0.40),
        (Request::HomeTimeline, 0.25),
        (Request::Post, 0.30),
        (Request::Follow, 0.05),
    ],
    page_size: 1,
    post_chars: 64,
};

impl Mix {
    /// The kind of request a uniform draw `coin` in [0, 1) picks: as the Lua
    /// scripts do, by cumulative shares in the order listed.
    pub fn pick(&self, coin: f64) -> Request {
        let mut below = 0.0;
        for &(request, share) in self.shares {
            below += share;
            if coin < below {
                return request;
            }
        }
        // Rounding can leave the sum a hair under 1: the last kind takes it.
        self.shares[self.shares.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_one() {
        for mix in [DSB_MIXED, NIGHTCORE_MIXED] {
            let total: f64 = mix.shares.iter().map(|(_, share)| share).sum();
            assert!((total - 1.0).abs() < 1e-9, "{mix:?} adds up to {total}");
        }
    }

    /// Evenly spread draws land on each kind in proportion to its share.
    #[test]
    fn picks_follow_the_shares() {
        let draws = 100_000;
        for mix in [DSB_MIXED, NIGHTCORE_MIXED] {
            for &(request, share) in mix.shares {
                let picked = (0..draws)
                    .filter(|&i| mix.pick(f64::from(i) / f64::from(draws)) == request)
                    .count();
                let expected = share * f64::from(draws);
                assert!(
                    (picked as f64 - expected).abs() <= 1.0,
                    "{request:?}: {picked} of {draws}, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn the_top_of_the_range_is_the_last_kind() {
        assert_eq!(NIGHTCORE_MIXED.pick(0.999_999_999), Request::Follow);
        assert_eq!(DSB_MIXED.pick(0.0), Request::HomeTimeline);
    }
}
