//! `experiment policies` against the real backends: a small graph with a
//! few heavy followers, a few seconds of load per policy. What is asserted
//! is what each policy's rules imply whatever the machine: who gets writes,
//! who misses tweets, who is answered partial. Nothing here asserts a
//! latency or a throughput.

mod support;

use chirp_experiment::Experiment;
use chirp_experiment::policy_comparison::PolicyResult;

/// `experiment policies` on 400 users, 6 of whom follow 150 accounts each,
/// with the lossy limit lowered to 50 to fit: twitter-2012 and chirp-hybrid
/// readers miss nothing (their pushes reach every active reader, and a
/// returning reader waits for a rebuild); the lossy policy drops writes,
/// yet only its heavy followers miss tweets; DeathStarBench writes every
/// follower, so at least as much as twitter-2012, which skips the inactive;
/// Mastodon answers every returning user partial while it rebuilds.
#[tokio::test]
async fn the_policies_experiment_tells_apart_what_each_network_gives_its_readers() {
    let out = support::scratch();
    let flags = [
        "--users",
        "400",
        "--celebrities",
        "2",
        "--celebrity-threshold",
        "40",
        "--heavy-followers",
        "6",
        "--heavy-following",
        "150",
        "--lossy-limit",
        "50",
        "--tweets-per-user",
        "2",
        "--rate",
        "40",
        "--duration",
        "3s",
        "--readers",
        "40",
        "--read-write-ratio",
        "1",
        "--returning",
        "10",
        "--miss-readers",
        "20",
        "--probes",
        "2",
    ];
    let Experiment::Policies(args) = support::experiment("policies", &flags, &out).await else {
        unreachable!("parsed as policies")
    };
    let comparison = chirp_experiment::policies::policies(&args)
        .await
        .expect("the experiment");

    for file in ["policies.json", "policies.md", "manifest.json"] {
        assert!(out.join(file).exists(), "{file}");
    }
    let page = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    assert_eq!(page.matches("<svg").count(), 2, "two plots");
    assert_eq!(comparison.heavy_followers, 6);
    let names: Vec<&str> = comparison.policies.iter().map(|row| row.policy).collect();
    assert_eq!(
        names,
        [
            "twitter-2012",
            "mastodon",
            "bluesky-lossy",
            "deathstarbench",
            "chirp-hybrid"
        ]
    );
    let [twitter, mastodon, bluesky, dsb, hybrid] = &comparison.policies[..] else {
        unreachable!("five policies")
    };
    for row in &comparison.policies {
        assert!(out.join(&row.report).exists(), "{}", row.report);
        assert!(row.home_timeline_reads > 0, "{}", row.policy);
        assert_eq!(row.load_errors, 0, "{}", row.policy);
        assert!(row.redis_bytes > 0 && row.timelines > 0, "{}", row.policy);
        assert_eq!(row.cold_read.samples, 10, "{}", row.policy);
        assert_eq!(row.missed.heavy.readers, 3, "{}", row.policy);
        assert_eq!(row.missed.readers.readers, 17, "{}", row.policy);
        let buckets: Vec<&str> = row.delay.iter().map(|b| b.bucket.as_str()).collect();
        assert_eq!(
            buckets,
            ["1–10", "10–40", "celebrity (40+)"],
            "{}",
            row.policy
        );
    }

    for row in [twitter, hybrid] {
        assert_misses_nothing(row);
        assert_eq!(
            row.missed.returning.missed, 0,
            "{}: rebuilt on return",
            row.policy
        );
    }
    assert_eq!(twitter.partial, 0);
    assert_eq!(mastodon.partial, 10, "every returning user answered 206");
    assert!(mastodon.missed.returning.missed > 0);

    assert!(bluesky.skipped_lossy > 0, "the heavy followers lose writes");
    assert_eq!(
        bluesky.missed.readers.missed, 0,
        "readers below the limit lose none"
    );
    assert!(bluesky.missed.heavy.missed + bluesky.missed.returning.missed > 0);
    for row in [twitter, mastodon, dsb, hybrid] {
        assert_eq!(row.skipped_lossy, 0, "{}", row.policy);
    }

    assert_misses_nothing(dsb);
    assert_eq!(
        dsb.missed.returning.missed, 0,
        "DeathStarBench kept writing them"
    );
    assert!(dsb.load.per_tweet >= twitter.load.per_tweet);
    for (every, active) in dsb.delay.iter().zip(&twitter.delay) {
        assert!(
            every.writes_per_post >= active.writes_per_post,
            "{}",
            every.bucket
        );
        assert_eq!(
            every.unreached, 0,
            "{}: every follower written",
            every.bucket
        );
    }
    let celebrity = hybrid.delay.last().expect("a celebrity bucket");
    assert_eq!(
        celebrity.pulled, celebrity.posts,
        "hybrid pulls celebrities"
    );
    assert_eq!(celebrity.lost, 0);
}

fn assert_misses_nothing(row: &PolicyResult) {
    for share in [row.missed.readers, row.missed.heavy] {
        assert!(share.expected > 0, "{}: something to see", row.policy);
        assert_eq!(share.missed, 0, "{}", row.policy);
    }
}
