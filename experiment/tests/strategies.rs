//! `experiment strategies` against the real backends: a tiny graph, a
//! second of load per strategy, and the comparison must add up. A smoke
//! test of the machinery, not a benchmark: nothing here asserts a latency
//! or a throughput.

mod support;

use chirp_experiment::Experiment;

/// Low enough for 60 users to make a celebrity.
const THRESHOLD: &str = "20";

/// `experiment strategies` on a tiny graph, a second of load per strategy:
/// the services it starts are its own, so this stack-less test only hands it
/// the backends, a fresh database and keyspace. What each strategy costs is
/// checked against the graph: a push writes one entry per follower and one
/// for the author, a pull writes nothing, and the hybrid strategy pushes an
/// ordinary author's tweets and only a celebrity's own copy.
#[tokio::test]
async fn the_strategies_experiment_compares_the_writes_each_strategy_costs() {
    let out = support::scratch();
    let flags = [
        "--users",
        "60",
        "--celebrities",
        "1",
        "--celebrity-threshold",
        THRESHOLD,
        "--tweets-per-user",
        "2",
        "--rate",
        "20",
        "--duration",
        "1s",
        "--readers",
        "10",
        "--read-write-ratio",
        "3",
        "--probes",
        "2",
    ];
    let Experiment::Strategies(args) = support::experiment("strategies", &flags, &out).await else {
        unreachable!("parsed as strategies")
    };
    let comparison = chirp_experiment::strategies::strategies(&args)
        .await
        .expect("the experiment");

    for file in ["strategies.json", "strategies.md", "manifest.json"] {
        assert!(out.join(file).exists(), "{file}");
    }
    let page = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    assert_eq!(page.matches("<svg").count(), 1, "one plot");
    let names: Vec<&str> = comparison
        .strategies
        .iter()
        .map(|row| row.strategy)
        .collect();
    assert_eq!(names, ["push", "pull", "hybrid"]);
    let [push, pull, hybrid] = &comparison.strategies[..] else {
        unreachable!("three strategies")
    };
    for row in &comparison.strategies {
        assert!(out.join(&row.report).exists(), "{}", row.report);
        assert!(row.home_timeline_reads > 0, "{}", row.strategy);
        assert_eq!(row.load_errors, 0, "{}", row.strategy);
        for probe in [&row.ordinary, &row.celebrity] {
            assert_eq!(probe.writes.tweets, 2, "{}", row.strategy);
            assert_eq!(probe.lost, 0, "every probe showed up ({})", row.strategy);
            assert_eq!(probe.visible.samples, 2, "{}", row.strategy);
        }
    }

    let ordinary = push.ordinary.author_followers as f64;
    let celebrity = push.celebrity.author_followers as f64;
    assert!(
        celebrity >= 20.0 && ordinary < 20.0,
        "{ordinary}, {celebrity}"
    );
    assert!(push.ordinary.writes.per_tweet >= ordinary + 1.0);
    assert!(push.celebrity.writes.per_tweet >= celebrity + 1.0);
    for writes in [pull.load, pull.ordinary.writes, pull.celebrity.writes] {
        assert_eq!(writes.timeline_writes, 0, "a pull writes nothing");
    }
    assert!(hybrid.ordinary.writes.per_tweet >= ordinary + 1.0);
    let hybrid_celebrity = hybrid.celebrity.writes.per_tweet;
    assert!(
        hybrid_celebrity > 0.0 && hybrid_celebrity < push.celebrity.writes.per_tweet,
        "the celebrity's own timeline only: {hybrid_celebrity}"
    );
}
