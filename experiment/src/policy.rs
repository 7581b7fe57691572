//! The home-timeline policies of real networks, each as settings of chirp's
//! own services: the table `experiment policies` compares, with where each
//! figure comes from.
//!
//! A policy here is not a simulation of the network: it is chirp's fan-out
//! worker and timeline service started with the flags that make them behave
//! as the network is documented to (who gets a push, how long a timeline
//! is, how long it lives, what a returning reader sees). What the network
//! does beyond that (ranking, other stores) is out of the comparison.

use chirp_timeline_store::Strategy;

use crate::deployment::Settings;

const DAY: u64 = 24 * 3600;

/// Bluesky's published `reasonable_limit`: a reader following more accounts
/// than this gets each post with probability limit / following.
pub const BLUESKY_LOSSY_LIMIT: u32 = 2_000;

/// A timeline cap the experiment's workload never reaches: what "no cap"
/// means for a policy here (DeathStarBench trims nothing).
pub const NO_CAP: u32 = 10_000;

/// "Kept": longer than any absence the experiment plays
/// ([`ABSENCE_SECS`]).
pub const KEPT_SECS: u64 = 365 * DAY;

/// How long a read may wait for a rebuild, in every policy's deployment:
/// the gateway's deadline (`--downstream-timeout-ms`, 3 s by default) and the
/// timeline service's rebuild deadline (`--rebuild-deadline-ms`) raised
/// alike, so that the rebuild of a reader following thousands completes and
/// the cold read measures what it costs, rather than failing at 3 s and
/// starting over on every read. The same for every policy.
pub const REBUILD_WAIT_MS: u64 = 30_000;

/// How long a returning user has been away: longer than every policy's
/// activity window, and than every timeline lifetime below "kept".
pub const ABSENCE_SECS: u64 = 40 * DAY;

/// One network's home-timeline policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub name: &'static str,
    pub network: &'static str,
    pub strategy: Strategy,
    /// `--timeline-capacity`: entries a cached timeline keeps.
    pub capacity: u32,
    /// `--timeline-ttl-secs`: how long a timeline nobody reads lives.
    pub ttl_secs: u64,
    /// `--active-window-secs`: pushes go only to readers who read within
    /// it; 0, off.
    pub active_window_secs: u64,
    /// `--push-uncached`: push into every follower's timeline, cached or not.
    pub push_uncached: bool,
    /// `--lossy-fanout-limit`: 0, off.
    pub lossy_fanout_limit: u32,
    /// `--answer-while-rebuilding`: a first page that would wait for a
    /// rebuild answers at once, partial (HTTP 206).
    pub answer_while_rebuilding: bool,
    /// What the network does, and where that is written.
    pub source: &'static str,
}

/// The five policies, in the order the table shows them.
pub const POLICIES: [Policy; 5] = [
    Policy {
        name: "twitter-2012",
        network: "Twitter, 2012",
        strategy: Strategy::Push,
        capacity: 800,
        ttl_secs: 30 * DAY,
        active_window_secs: 30 * DAY,
        push_uncached: false,
        lossy_fanout_limit: 0,
        answer_while_rebuilding: false,
        source: "Raffi Krikorian, \"Timelines at Scale\", QCon San Francisco 2012 (InfoQ, \
                 2013): home timelines of 800 entries in Redis, a push goes only to timelines \
                 in the cache (RPUSHX), users not logged in for 30 days have none",
    },
    Policy {
        name: "mastodon",
        network: "Mastodon",
        strategy: Strategy::Push,
        capacity: 400,
        ttl_secs: 7 * DAY,
        active_window_secs: 7 * DAY,
        push_uncached: false,
        lossy_fanout_limit: 0,
        answer_while_rebuilding: true,
        source: "mastodon/mastodon: app/lib/feed_manager.rb MAX_ITEMS = 400; \
                 app/models/concerns/user/activity.rb ACTIVE_DURATION = \
                 ENV.fetch('USER_ACTIVE_DAYS', 7) (status fan-out includes only users active \
                 within it); a returning user's feed is regenerated \
                 (User#prepare_returning_user!, regenerate_feed!) while the home timeline API \
                 answers 206",
    },
    Policy {
        name: "bluesky-lossy",
        network: "Bluesky",
        strategy: Strategy::Push,
        capacity: NO_CAP,
        ttl_secs: KEPT_SECS,
        active_window_secs: 0,
        push_uncached: false,
        lossy_fanout_limit: BLUESKY_LOSSY_LIMIT,
        answer_while_rebuilding: false,
        source: "Jaz (Bluesky), \"When Imperfect Systems are Good, Actually: Bluesky's Lossy \
                 Timelines\", jazco.dev, 2025-02-19: reasonable_limit 2 000, loss_factor = \
                 min(reasonable_limit / follows, 1)",
    },
    Policy {
        name: "deathstarbench",
        network: "DeathStarBench socialNetwork",
        strategy: Strategy::Push,
        capacity: NO_CAP,
        ttl_secs: KEPT_SECS,
        active_window_secs: 0,
        push_uncached: true,
        lossy_fanout_limit: 0,
        answer_while_rebuilding: false,
        source: "github.com/delimitrou/DeathStarBench, socialNetwork/src/\
                 WriteHomeTimelineService: a ZADD NX of the post into a Redis sorted set per \
                 follower (and mentioned user), every follower, no trim, no expiry",
    },
    Policy {
        name: "chirp-hybrid",
        network: "chirp",
        strategy: Strategy::Hybrid,
        capacity: 800,
        ttl_secs: 7 * DAY,
        active_window_secs: 0,
        push_uncached: false,
        lossy_fanout_limit: 0,
        answer_while_rebuilding: false,
        source: "docs/hybrid-timeline.md: push for ordinary authors into cached timelines, \
                 celebrities pulled at read time, 800 entries, 7 days unread",
    },
];

impl Policy {
    /// The policy named `name`, if the table has it.
    pub fn named(name: &str) -> Option<Self> {
        POLICIES.iter().find(|policy| policy.name == name).copied()
    }

    /// The same policy with its lossy limit moved to `limit` (a small graph
    /// has nobody following Bluesky's 2 000); a policy without one keeps
    /// none.
    pub fn with_lossy_limit(self, limit: u32) -> Self {
        Self {
            lossy_fanout_limit: if self.lossy_fanout_limit > 0 {
                limit
            } else {
                0
            },
            ..self
        }
    }

    /// Whether a returning user's timeline expired while they were away.
    pub fn forgets_timelines(&self) -> bool {
        self.ttl_secs < ABSENCE_SECS
    }

    /// The services' flags of a deployment of the policy: its own, and the
    /// wait for a rebuild every deployment of the experiment has
    /// ([`REBUILD_WAIT_MS`]).
    pub fn settings(&self) -> Settings {
        let wait = REBUILD_WAIT_MS.to_string();
        let mut settings = self.own_settings();
        let deadline = ["--rebuild-deadline-ms".to_owned(), wait.clone()];
        settings.timeline.splice(0..0, deadline);
        settings.gateway = vec!["--downstream-timeout-ms".to_owned(), wait];
        settings
    }

    /// The flags that make the policy. A setting at its default is left
    /// out, so a policy asks of the services only what it changes.
    fn own_settings(&self) -> Settings {
        let mut store = vec![
            "--timeline-capacity".to_owned(),
            self.capacity.to_string(),
            "--timeline-ttl-secs".to_owned(),
            self.ttl_secs.to_string(),
        ];
        if self.active_window_secs > 0 {
            store.extend([
                "--active-window-secs".to_owned(),
                self.active_window_secs.to_string(),
            ]);
        }
        let mut timeline = Vec::new();
        if self.answer_while_rebuilding {
            timeline.push("--answer-while-rebuilding".to_owned());
        }
        let mut fanout = Vec::new();
        if self.push_uncached {
            fanout.push("--push-uncached".to_owned());
        }
        if self.lossy_fanout_limit > 0 {
            fanout.extend([
                "--lossy-fanout-limit".to_owned(),
                self.lossy_fanout_limit.to_string(),
            ]);
        }
        Settings {
            store,
            timeline,
            fanout,
            gateway: Vec::new(),
        }
    }

    /// The flags as one line, for the record.
    pub fn command_line(&self, celebrity_threshold: u32) -> String {
        let Settings {
            store,
            timeline,
            fanout,
            ..
        } = self.own_settings();
        let strategy = crate::deployment::strategy_name(self.strategy);
        let mut line = format!("--timeline-strategy {strategy} {}", store.join(" "));
        if self.strategy == Strategy::Hybrid {
            line += &format!(" --celebrity-threshold {celebrity_threshold}");
        }
        for (service, flags) in [("timeline", timeline), ("fanout", fanout)] {
            if !flags.is_empty() {
                line += &format!(" ({service}: {})", flags.join(" "));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_sets_only_what_it_changes() {
        let twitter = Policy::named("twitter-2012").unwrap().settings();
        assert_eq!(
            twitter.store,
            [
                "--timeline-capacity",
                "800",
                "--timeline-ttl-secs",
                "2592000",
                "--active-window-secs",
                "2592000"
            ]
        );
        assert!(twitter.timeline.len() == 2 && twitter.fanout.is_empty());
        assert_eq!(twitter.gateway, ["--downstream-timeout-ms", "30000"]);
        let mastodon = Policy::named("mastodon").unwrap().settings();
        assert_eq!(
            mastodon.timeline,
            [
                "--rebuild-deadline-ms",
                "30000",
                "--answer-while-rebuilding"
            ]
        );
        let bluesky = Policy::named("bluesky-lossy").unwrap().with_lossy_limit(50);
        assert_eq!(bluesky.settings().fanout, ["--lossy-fanout-limit", "50"]);
        let dsb = Policy::named("deathstarbench").unwrap();
        assert_eq!(
            dsb.with_lossy_limit(50).settings().fanout,
            ["--push-uncached"]
        );
        let hybrid = Policy::named("chirp-hybrid").unwrap().settings();
        assert_eq!(hybrid.store.len(), 4, "no activity window");
    }

    #[test]
    fn a_returning_user_finds_a_timeline_only_where_timelines_are_kept() {
        let forgetting: Vec<&str> = POLICIES
            .iter()
            .filter(|policy| policy.forgets_timelines())
            .map(|policy| policy.name)
            .collect();
        assert_eq!(forgetting, ["twitter-2012", "mastodon", "chirp-hybrid"]);
        assert!(
            POLICIES
                .iter()
                .all(|policy| policy.active_window_secs < ABSENCE_SECS)
        );
    }
}
