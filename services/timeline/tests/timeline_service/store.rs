//! The home-timeline store itself (`chirp_timeline_store`) against the
//! real Redis: its layout, its cursor semantics, active-only pushes and the
//! rebuild protocol, each interleaving written out step by step. On a single
//! node by default; `deploy/test.sh` runs them again on the Redis Cluster
//! (`CHIRP_TEST_REDIS_CLUSTER=1`), where each user's keys sit on the master
//! of their slot and a batch over many users is split per slot.

use chirp_redis::connection::RedisConnection;
use chirp_test_support::{ensure_backends, redis_connection, timeline_store, unique_name};
use chirp_timeline_store::{HomeTimelines, Push, State, TimelineStoreArgs};

/// A store under a fresh prefix, with `capacity` entries per timeline.
async fn store(capacity: usize) -> (HomeTimelines, TimelineStoreArgs) {
    store_with(capacity, 0).await
}

/// A store as [`store`], whose readers are active for `active_window_secs`
/// after each read (0: off).
async fn store_with(
    capacity: usize,
    active_window_secs: u64,
) -> (HomeTimelines, TimelineStoreArgs) {
    ensure_backends();
    let args = TimelineStoreArgs {
        timeline_capacity: capacity,
        active_window_secs,
        ..timeline_store(&format!("{}:", unique_name("store_test")))
    };
    (HomeTimelines::connect(&args).await.unwrap(), args)
}

/// This run's Redis, a node or the cluster (`CHIRP_TEST_REDIS_CLUSTER`).
async fn redis() -> RedisConnection {
    redis_connection().await
}

/// Snowflake-sized ids, newest first.
fn snowflakes(count: usize) -> Vec<i64> {
    let newest = 1_990_000_000_000_000_000_i64;
    (0..count as i64).map(|n| newest - n * 4_096_123).collect()
}

const USER: i64 = 42;

#[tokio::test]
async fn an_800_entry_timeline_costs_at_most_16_bytes_an_entry() {
    let (timelines, args) = store(800).await;
    let ids = snowflakes(800);
    timelines.store_rebuilt(USER, &ids).await.unwrap();
    let key = format!("{}tl:{{{USER}}}", args.redis.redis_key_prefix);
    let mut redis = redis().await;

    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let bytes: usize = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut redis)
        .await
        .unwrap();

    assert_eq!(
        encoding, "listpack",
        "zset-max-listpack-entries must be >= capacity + 3 (deploy/backends.sh sets it)"
    );
    let per_entry = bytes as f64 / ids.len() as f64;
    println!("800-entry timeline: {bytes} bytes, {per_entry:.2} bytes/entry");
    assert!(per_entry <= 16.0, "{per_entry:.2} bytes per entry");
    assert_eq!(timelines.page(USER, None, 1000).await.unwrap(), ids);
}

/// Issue 22, "no cap" (DeathStarBench keeps every post): a capacity past
/// `zset-max-listpack-entries` (1 024 as `deploy/backends.sh` sets it)
/// works, at the price of the skiplist encoding.
#[tokio::test]
async fn a_timeline_past_the_listpack_bound_works_as_a_skiplist() {
    let capacity = 2_000;
    let (timelines, args) = store(capacity).await;
    let ids = snowflakes(capacity + 1);
    timelines.store_rebuilt(USER, &ids[1..]).await.unwrap();
    let key = format!("{}tl:{{{USER}}}", args.redis.redis_key_prefix);
    let mut redis = redis().await;

    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let bytes: usize = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(&key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut redis)
        .await
        .unwrap();

    assert_eq!(
        encoding, "skiplist",
        "zset-max-listpack-entries >= {capacity} + 3?"
    );
    let per_entry = bytes as f64 / capacity as f64;
    println!("{capacity}-entry timeline: {bytes} bytes, {per_entry:.2} bytes/entry");
    // A skiplist node and a hash-table entry per member: several times the
    // listpack's 16, and bounded all the same.
    assert!(per_entry <= 128.0, "{per_entry:.2} bytes per entry");
    assert_eq!(timelines.page(USER, None, 3_000).await.unwrap(), ids[1..]);

    timelines.push(&[USER], ids[0]).await.unwrap();
    let read = timelines.read(USER, None, 3_000).await.unwrap();
    assert_eq!(
        read.ids,
        ids[..capacity],
        "trimmed to the newest {capacity}"
    );
    assert_eq!(read.state, State::Complete { cut: true });
}

/// Issue 22, activity by last read: with a window, a reader is active
/// for it after each read, a push skips whoever is not (cached timeline or
/// not), and the first read after the window says the reader returns.
#[tokio::test]
async fn with_an_activity_window_a_push_reaches_only_readers_who_read_within_it() {
    let (timelines, args) = store_with(800, 60).await;
    let (reader, idle) = (1, 2);
    timelines.store_rebuilt(reader, &[10]).await.unwrap();
    timelines.store_rebuilt(idle, &[10]).await.unwrap();
    let read = timelines.read(reader, None, 10).await.unwrap();
    assert!(!read.returning, "a completed rebuild records its reader");
    // The window lapses for `idle`: their record expires.
    forget_activity(&args, idle).await;

    let pushed = timelines.push(&[reader, idle], 11).await.unwrap();

    assert_eq!(pushed.outcomes, [Push::Written, Push::Inactive]);
    assert_eq!(timelines.page(reader, None, 10).await.unwrap(), [11, 10]);
    assert_eq!(timelines.page(idle, None, 10).await.unwrap(), [10]);
    let read = timelines.read(idle, None, 10).await.unwrap();
    assert!(read.returning, "stale: the push skipped them");
    assert_eq!(read.state, State::Complete { cut: false });
    let again = timelines.read(idle, None, 10).await.unwrap();
    assert!(
        again.returning,
        "a read alone does not make a stale timeline fresh"
    );
}

/// Issue 22, activity by last read: a returning reader is recorded as
/// active by the rebuild that brings their timeline up to date, not by the
/// read that found them returning, so no read in between is served the
/// stale timeline; and a push during that rebuild lands, so the rebuilt
/// timeline misses nothing posted meanwhile.
#[tokio::test]
async fn a_returning_reader_is_active_again_once_their_rebuild_completes() {
    let (timelines, args) = store_with(800, 60).await;
    timelines.store_rebuilt(USER, &[10]).await.unwrap();
    forget_activity(&args, USER).await;
    assert!(timelines.read(USER, None, 10).await.unwrap().returning);

    let token = timelines.begin_rebuild(USER).await.unwrap();
    let pushed = timelines.push(&[USER], 12).await.unwrap();
    let during = timelines.read(USER, None, 10).await.unwrap();
    let completed = timelines
        .complete_rebuild(USER, &token, &[11, 10], false, &[])
        .await
        .unwrap();
    let after = timelines.read(USER, None, 10).await.unwrap();

    assert_eq!(pushed.outcomes, [Push::Written], "their rebuild is open");
    assert!(
        during.returning,
        "still returning until the rebuild completes"
    );
    assert!(completed);
    assert!(!after.returning);
    assert_eq!(after.ids, [12, 11, 10]);
}

/// Drops `user_id`'s activity record, as its expiry at the end of the
/// window does.
async fn forget_activity(args: &TimelineStoreArgs, user_id: i64) {
    let key = format!("{}tl:{{{user_id}}}:seen", args.redis.redis_key_prefix);
    let _: () = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut redis().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn without_an_activity_window_no_reader_is_ever_returning() {
    let (timelines, args) = store(800).await;
    timelines.store_rebuilt(USER, &[10]).await.unwrap();

    assert!(!timelines.read(USER, None, 10).await.unwrap().returning);
    let seen: bool = redis::cmd("EXISTS")
        .arg(format!("{}tl:{{{USER}}}:seen", args.redis.redis_key_prefix))
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert!(!seen, "no activity record is written");
}

/// Issue 22, push to every follower: a push opens a timeline that is not
/// cached, as being rebuilt and for the timeline TTL, so the first read
/// still rebuilds it and the rebuild keeps what was pushed. With an
/// activity window, an inactive user is skipped all the same.
#[tokio::test]
async fn a_push_opening_uncached_timelines_leaves_them_to_be_rebuilt() {
    let (timelines, args) = store(800).await;
    let timelines = timelines.opening_uncached(true);
    let pushed = timelines.push(&[USER], 11).await.unwrap();
    assert_eq!(pushed.outcomes, [Push::Written]);

    let opened = timelines.read(USER, None, 10).await.unwrap();
    assert_eq!(opened.state, State::Rebuilding, "not served as it is");
    assert_eq!(opened.ids, [11]);
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}tl:{{{USER}}}", args.redis.redis_key_prefix))
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl as u64 <= args.timeline_ttl_secs, "{ttl}");
    let token = timelines.begin_rebuild(USER).await.unwrap();
    let completed = timelines
        .complete_rebuild(USER, &token, &[10], false, &[])
        .await
        .unwrap();
    assert!(completed);
    assert_eq!(timelines.page(USER, None, 10).await.unwrap(), [11, 10]);

    let (windowed, _) = store_with(800, 60).await;
    let windowed = windowed.opening_uncached(true);
    let pushed = windowed.push(&[USER], 11).await.unwrap();
    assert_eq!(pushed.outcomes, [Push::Inactive], "activity wins");
    assert_eq!(
        windowed.read(USER, None, 10).await.unwrap().state,
        State::Missing
    );
}

#[tokio::test]
async fn pages_run_newest_first_strictly_below_the_cursor_and_never_show_markers() {
    let (timelines, _) = store(800).await;
    // Small ids start with zero bytes, as the markers do.
    let ids = vec![65_536, 256, 255, 2, 1];
    timelines.store_rebuilt(USER, &ids).await.unwrap();

    assert_eq!(timelines.page(USER, None, 10).await.unwrap(), ids);
    assert_eq!(timelines.page(USER, None, 2).await.unwrap(), [65_536, 256]);
    assert_eq!(timelines.page(USER, Some(256), 2).await.unwrap(), [255, 2]);
    assert_eq!(timelines.page(USER, Some(2), 10).await.unwrap(), [1]);
    assert!(timelines.page(USER, Some(1), 10).await.unwrap().is_empty());
    let read = timelines.read(USER, Some(300), 10).await.unwrap();
    assert_eq!(read.state, State::Complete { cut: false });
    assert_eq!(read.ids, [256, 255, 2, 1]);
}

#[tokio::test]
async fn a_built_empty_timeline_differs_from_a_missing_one() {
    let (timelines, _) = store(800).await;
    timelines.store_rebuilt(USER, &[]).await.unwrap();

    let built = timelines.read(USER, None, 10).await.unwrap();
    let missing = timelines.read(USER + 1, None, 10).await.unwrap();

    assert_eq!(built.state, State::Complete { cut: false });
    assert_eq!(missing.state, State::Missing);
    assert!(built.ids.is_empty() && missing.ids.is_empty());
}

#[tokio::test]
async fn a_push_reaches_only_cached_timelines_and_creates_no_key() {
    let (timelines, args) = store(800).await;
    let (cached, uncached) = (1, 2);
    timelines.store_rebuilt(cached, &[10]).await.unwrap();

    let pushed = timelines.push(&[cached, uncached], 11).await.unwrap();

    assert_eq!((pushed.written(), pushed.skipped()), (1, 1));
    assert_eq!(timelines.page(cached, None, 10).await.unwrap(), [11, 10]);
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("{}tl:{{{uncached}}}", args.redis.redis_key_prefix))
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert!(!exists, "a follower who does not read holds no bytes");
}

/// The race of issue 9: a push lands between the rebuild's start and its
/// end, and the rebuild (which read the stores before the tweet existed)
/// must not lose it.
#[tokio::test]
async fn a_push_during_a_rebuild_is_kept_when_it_completes() {
    let (timelines, _) = store(800).await;

    let token = timelines.begin_rebuild(USER).await.unwrap();
    let during = timelines.push(&[USER], 30).await.unwrap();
    assert_eq!(
        timelines.read(USER, None, 10).await.unwrap().state,
        State::Rebuilding,
        "not served until complete"
    );
    let completed = timelines
        .complete_rebuild(USER, &token, &[20, 10], false, &[])
        .await
        .unwrap();

    assert_eq!(
        during.written(),
        1,
        "pushes land in a timeline being rebuilt"
    );
    assert!(completed);
    let read = timelines.read(USER, None, 10).await.unwrap();
    assert_eq!(read.state, State::Complete { cut: false });
    assert_eq!(read.ids, [30, 20, 10]);
}

/// Issue 10: a rebuild that read the followees before a follow changed
/// them cannot mark the timeline complete; the next read rebuilds.
#[tokio::test]
async fn a_rebuild_begun_before_an_invalidation_cannot_complete() {
    let (timelines, _) = store(800).await;

    let stale = timelines.begin_rebuild(USER).await.unwrap();
    timelines.invalidate(&[USER]).await.unwrap();
    let completed = timelines
        .complete_rebuild(USER, &stale, &[10], false, &[])
        .await
        .unwrap();

    assert!(!completed);
    assert_eq!(
        timelines.read(USER, None, 10).await.unwrap().state,
        State::Missing
    );
}

#[tokio::test]
async fn only_the_newest_rebuild_completes() {
    let (timelines, _) = store(800).await;

    let older = timelines.begin_rebuild(USER).await.unwrap();
    let newer = timelines.begin_rebuild(USER).await.unwrap();
    let older_completed = timelines
        .complete_rebuild(USER, &older, &[10], false, &[])
        .await
        .unwrap();
    let newer_completed = timelines
        .complete_rebuild(USER, &newer, &[20], false, &[])
        .await
        .unwrap();

    assert!(!older_completed && newer_completed);
    assert_eq!(timelines.page(USER, None, 10).await.unwrap(), [20]);
}

#[tokio::test]
async fn a_rebuild_whose_timeline_was_evicted_cannot_complete() {
    let (timelines, args) = store(800).await;
    let token = timelines.begin_rebuild(USER).await.unwrap();
    // What an eviction does: the timeline goes, and the pushes in it.
    let _: () = redis::cmd("DEL")
        .arg(format!("{}tl:{{{USER}}}", args.redis.redis_key_prefix))
        .query_async(&mut redis().await)
        .await
        .unwrap();

    let completed = timelines
        .complete_rebuild(USER, &token, &[10], false, &[])
        .await
        .unwrap();

    assert!(!completed, "it would miss the pushes the eviction dropped");
}

/// The hybrid list lives with the timeline: the completing rebuild writes
/// it, a read returns it with the page, a drop removes it.
#[tokio::test]
async fn the_pulled_authors_are_stored_read_and_dropped_with_the_timeline() {
    let (timelines, _) = store(800).await;
    let token = timelines.begin_rebuild(USER).await.unwrap();
    let celebrities = [7, 300, 1_990_000_000_000];

    timelines
        .complete_rebuild(USER, &token, &[20, 10], false, &celebrities)
        .await
        .unwrap();

    let read = timelines.read(USER, None, 10).await.unwrap();
    assert_eq!(read.state, State::Complete { cut: false });
    assert_eq!(
        (read.ids, read.pulled),
        (vec![20, 10], celebrities.to_vec())
    );
    timelines.invalidate(&[USER]).await.unwrap();
    let read = timelines.read(USER, None, 10).await.unwrap();
    assert_eq!(read.state, State::Missing);
    assert!(read.pulled.is_empty());
}

/// Redis evicts keys one at a time: a timeline whose list of pulled
/// authors went is not served (it would silently pull no one), but rebuilt.
#[tokio::test]
async fn a_timeline_whose_pulled_authors_were_evicted_reads_as_missing() {
    let (timelines, args) = store(800).await;
    let token = timelines.begin_rebuild(USER).await.unwrap();
    timelines
        .complete_rebuild(USER, &token, &[10], false, &[7])
        .await
        .unwrap();

    let _: () = redis::cmd("DEL")
        .arg(format!(
            "{}tl:{{{USER}}}:pulled",
            args.redis.redis_key_prefix
        ))
        .query_async(&mut redis().await)
        .await
        .unwrap();

    assert_eq!(
        timelines.read(USER, None, 10).await.unwrap().state,
        State::Missing
    );
}

#[tokio::test]
async fn trimming_keeps_the_newest_and_marks_the_timeline_cut() {
    let (timelines, _) = store(3).await;
    timelines.store_rebuilt(USER, &[30, 20, 10]).await.unwrap();
    assert_eq!(
        timelines.read(USER, None, 10).await.unwrap().state,
        State::Complete { cut: false }
    );

    timelines.push(&[USER], 40).await.unwrap();

    let read = timelines.read(USER, None, 10).await.unwrap();
    assert_eq!(read.ids, [40, 30, 20]);
    assert_eq!(read.state, State::Complete { cut: true });
}

#[tokio::test]
async fn a_buried_tweet_is_not_pushed_and_its_deletion_is_in_the_feed() {
    let (timelines, _) = store(800).await;
    timelines.store_rebuilt(USER, &[]).await.unwrap();
    let (_, start) = timelines.deleted_since(None).await.unwrap();

    timelines.bury(7).await.unwrap();
    let pushed = timelines.push_unless_buried(&[USER], 7).await.unwrap();
    let kept = timelines.push_unless_buried(&[USER], 8).await.unwrap();

    assert_eq!(pushed, None);
    assert_eq!(kept.map(|pushed| pushed.written()), Some(1));
    assert_eq!(timelines.page(USER, None, 10).await.unwrap(), [8]);
    let (deleted, _) = timelines.deleted_since(Some(&start)).await.unwrap();
    assert_eq!(deleted, [7]);
}

/// Many users at once, spread over every master of a cluster: each batch
/// (push, removal, invalidation) reaches exactly the users it names, cached
/// or not, whichever slot they hash to.
#[tokio::test]
async fn a_batch_over_many_users_reaches_each_of_them_whatever_their_slot() {
    let (timelines, _) = store(800).await;
    let users: Vec<i64> = (1..=60).collect();
    let (cached, uncached): (Vec<i64>, Vec<i64>) = users.iter().partition(|&&user| user % 3 != 0);
    for &user in &cached {
        timelines.store_rebuilt(user, &[10]).await.unwrap();
    }

    let pushed = timelines.push(&users, 11).await.unwrap();
    assert_eq!(
        (pushed.written(), pushed.skipped()),
        (cached.len(), uncached.len())
    );
    for &user in &cached {
        assert_eq!(
            timelines.page(user, None, 10).await.unwrap(),
            [11, 10],
            "user {user}"
        );
    }
    for &user in &uncached {
        let read = timelines.read(user, None, 10).await.unwrap();
        assert_eq!(read.state, State::Missing, "user {user}");
    }

    timelines.remove(&users, 10).await.unwrap();
    let (dropped, kept) = cached.split_at(cached.len() / 2);
    timelines.invalidate(dropped).await.unwrap();
    for &user in dropped {
        let read = timelines.read(user, None, 10).await.unwrap();
        assert_eq!(read.state, State::Missing, "user {user} was invalidated");
    }
    for &user in kept {
        let read = timelines.read(user, None, 10).await.unwrap();
        assert_eq!(read.ids, [11], "user {user} lost only the removed tweet");
        assert_eq!(read.state, State::Complete { cut: false });
    }
}
