//! The outbox relay: a loop in every tweet-service instance that sends the
//! events waiting in the outbox ([`crate::outbox`]) to Kafka, oldest first,
//! and removes each one the broker acknowledged.
//!
//! Delivery is at least once. A relay that dies between the broker's
//! acknowledgement and the removal sends the event again when it (or another
//! instance) next reads the shard; consumers apply events idempotently.
//!
//! # The topic is created here
//!
//! The tweet service is the one writer of tweet events, so it owns their
//! topic: the relay creates it, with the partition count, replication and
//! retention of [`KafkaArgs`], before it sends anything, and consumers
//! (the fan-out worker, or any other) only wait for it to exist. A topic
//! created by whichever process starts first would get the settings of that
//! process's flags, and a consumer that creates what it reads could bring a
//! deleted topic back with settings nobody chose; the writer cannot read
//! anything before the topic exists anyway. Creating it does not hold up
//! serving: posts do not wait for Kafka, so neither does starting. After
//! failing to publish anywhere the relay makes sure of the topic again: a
//! broker brought back without its data has lost it.
//!
//! # Several instances
//!
//! Each shard is relayed by one instance at a time, the holder of its lease:
//! two relays reading the same shard would interleave their sends and could
//! put a tweet's delete in the log before its create. A lease lasts
//! [`LEASE_TTL`] and is renewed every [`RENEW_EVERY`], so a crashed owner's
//! shards are taken over within about `LEASE_TTL + RENEW_EVERY`; a stopping
//! owner releases them at once. A new owner reads from the shard's saved
//! checkpoint, never from its start (see [`crate::outbox`] on tombstones).
//! An owner sends only while its lease has at least [`DELIVERY_TIMEOUT`]
//! left, so a send it starts ends (delivered or abandoned by librdkafka)
//! before anyone else may hold the shard. That bound rests on clocks and
//! timers, not on a fencing token: a process frozen for longer than a lease
//! (a stopped container, a swap storm) could still send once after losing
//! it. Kafka transactions with a transactional id per shard would fence it
//! for real, at the cost of a producer per shard.
//!
//! # At rest
//!
//! An owner wakes at once for an event its own instance wrote; it polls for
//! the others' events, and a poll reads every shard it holds (and, as time
//! passes, looks for late events and moves each checkpoint). On a stack
//! with no traffic that is most of what the tweet service and the CQL store
//! do, so the poll backs off: after each look that found nothing it waits
//! twice as long, from [`POLL_EVERY`] up to an idle bound (`RELAY_IDLE_POLL_MS`,
//! 2 s by default), and it is back to [`POLL_EVERY`] on the first event it
//! finds or its own instance writes ([`IdlePoll`]). The price is paid by one
//! event only: the first one another instance writes after a quiet spell
//! waits up to the idle bound, instead of [`POLL_EVERY`]. Signalling between
//! instances would remove it, through a channel the tweet service does not
//! have (it shares only the CQL store and Kafka with its peers). Lease
//! renewals do not back off: a lease must outlive [`DELIVERY_TIMEOUT`] when
//! an event arrives.
//!
//! # Failures
//!
//! Shards are relayed side by side, and a shard's events go to partitions
//! of its own ([`crate::events::partition`]), so an unwritable partition
//! stops only the shards it serves: one, when the topic has at least
//! [`SHARDS`] partitions. A shard whose round fails (a read, a removal, a
//! send) pauses for [`BACKOFF`] while the other shards go on. After a failed
//! send it is stalled ([`stats::STALLED`]): it sends its first waiting event
//! alone until one gets through, and the rounds after look whether it did
//! rather than wait for it ([`Probe`]), so it holds back no other shard; only
//! the round in which it first failed waited for that failure, up to
//! [`DELIVERY_TIMEOUT`]. Every event the broker acknowledged leaves the
//! outbox at once, even after one that failed, unless it is of the failed
//! event's author (below); the checkpoint stays at the first event that did
//! not, so the shard resumes there and sends nothing again that Kafka
//! already has. Only when every shard tried fails to publish does the
//! instance release its leases and stay out for a while, so that an
//! instance that can reach Kafka takes them over; meanwhile creates and
//! deletes keep succeeding, their events waiting here. A stalled shard's
//! events wait behind its oldest one: an author's events must stay in
//! order, and the outbox is read by shard, not by author.
//!
//! # Order
//!
//! A shard's events are queued to the producer in event-id order, which
//! keeps each author's events in order in their partition. When one send
//! fails, the relay keeps that event and every later event of its author,
//! delivered or not, and sends them again later, in order: the log may then
//! hold such an event twice, but the last copy of every event is in the
//! right order. Other authors' delivered events are removed
//! ([`removable`]). A late event (see
//! [`crate::outbox`]) is sent when found, after the author's newer events;
//! fan-out orders a timeline by tweet id, and a create's delete can only be
//! written once the create is, so it never overtakes one.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chirp_domain::ids::{now_ms, timestamp_ms};
use chirp_kafka::KafkaArgs;
use futures::FutureExt as _;
use rdkafka::error::KafkaError;
use rdkafka::producer::DeliveryFuture;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::TweetError;
use crate::events::{DELIVERY_TIMEOUT, Events};
use crate::idle_poll::IdlePoll;
use crate::outbox::{LEASE_TTL, LOOKBACK, LateMarker, Outbox, PendingEvent, SHARDS, first_id_at};
use crate::stats;

/// How often an owner renews its leases and looks for free shards.
const RENEW_EVERY: Duration = Duration::from_secs(2);

/// How often an owner looks at its shards when nothing woke it and the last
/// look found events: while events flow, the longest one written by another
/// instance waits here. After looks that found nothing the wait grows, up to
/// the idle bound of [`Relay::new`] ([`IdlePoll`]).
const POLL_EVERY: Duration = IdlePoll::BUSY;

/// Events read, sent and removed per round and shard.
const BATCH: i32 = 256;

/// How long a shard that failed, or an instance that failed to publish
/// everywhere, stays away.
const BACKOFF: Duration = Duration::from_secs(5);

/// How often an owner looks for a shard's late events: they are rare, and
/// already late.
const LATE_EVERY: Duration = Duration::from_secs(1);

/// How often an owner saves a shard's checkpoint while it moves: a new owner
/// reads again at most what was relayed since.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How often the relay asks the broker how many partitions the topic has:
/// partitions added by an operator are used from then on.
const PARTITIONS_EVERY: Duration = Duration::from_secs(30);

pub struct Relay {
    outbox: Arc<Outbox>,
    events: Events,
    kafka: KafkaArgs,
    /// Who this instance is in the lease table: unique per process run, so
    /// a restarted instance does not mistake its predecessor's leases for
    /// its own.
    owner: String,
    /// Poked after every local write, so that an event whose shard this
    /// instance owns leaves at once instead of at the next poll.
    wake: Arc<Notify>,
    /// The longest wait between polls that found nothing ([`IdlePoll`]).
    idle_poll: Duration,
}

/// A shard this instance holds.
struct Lease {
    /// When the lease runs out unless renewed (counted from before the
    /// renewal was sent, so never later than the store's own expiry).
    until: Instant,
    /// Event id the next read starts from; `None` until the saved checkpoint
    /// was read.
    scan_from: Option<i64>,
    /// The checkpoint as last saved, and when it may be saved again.
    saved: i64,
    save_at: Instant,
    /// When to look for late events again.
    late_at: Instant,
    /// After a failure: when to try the shard again, and whether its last
    /// send failed, so that it sends one event at a time until one gets
    /// through, and that event while it is on its way.
    retry_at: Instant,
    stalled: bool,
    probe: Option<Probe>,
    /// The oldest event seen waiting, for [`stats::OLDEST_AGE`].
    oldest: Option<i64>,
}

/// A stalled shard's one event on its way to the broker. Each round looks
/// whether it arrived instead of waiting for it: a send to a partition
/// without a leader takes [`DELIVERY_TIMEOUT`] to fail, and a round waits
/// for every shard's round before the next begins.
struct Probe {
    event: PendingEvent,
    delivery: DeliveryFuture,
}

/// What one round of a shard came to.
enum Progress {
    /// More is waiting: go again at once.
    More,
    /// Sent what was waiting; nothing more.
    CaughtUp,
    /// Nothing was waiting.
    Empty,
    /// A stalled shard's [`Probe`] is still on its way.
    Probing,
}

/// What a round over the shards held came to.
enum Round {
    /// Some shard has more waiting: go again at once.
    More,
    /// Every shard is caught up; some had events this round.
    CaughtUp,
    /// No shard had anything waiting (or no shard was due).
    Empty,
    /// Every shard tried failed to publish: this instance cannot reach Kafka.
    CannotPublish,
}

/// What this instance last saw of each shard's oldest waiting event, for
/// [`stats::OLDEST_AGE`].
type Oldest = BTreeMap<i32, i64>;

impl Relay {
    pub fn new(
        outbox: Arc<Outbox>,
        events: Events,
        kafka: KafkaArgs,
        owner: String,
        wake: Arc<Notify>,
        idle_poll: Duration,
    ) -> Self {
        Self {
            outbox,
            events,
            kafka,
            owner,
            wake,
            idle_poll,
        }
    }

    /// Relays until `shutdown` resolves, then releases every lease held.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        stats::describe();
        tokio::pin!(shutdown);
        let mut owned = BTreeMap::new();
        let mut oldest = Oldest::new();
        let mut topic_ready = false;
        // The topic's partition count, as last read from the broker.
        let mut partitions = 0;
        let mut next_partitions = Instant::now();
        let mut next_lease_round = Instant::now();
        let mut away_until = Instant::now();
        let mut poll = IdlePoll::new(self.idle_poll);
        loop {
            let mut pause = POLL_EVERY;
            if !topic_ready {
                match tokio::time::timeout(DELIVERY_TIMEOUT, self.kafka.ensure_topic()).await {
                    Ok(Ok(())) => topic_ready = true,
                    Ok(Err(error)) => {
                        tracing::warn!(error = %format!("{error:#}"), "outbox relay cannot create the topic yet")
                    }
                    Err(_) => tracing::warn!("outbox relay cannot reach Kafka yet"),
                }
                next_partitions = Instant::now();
                pause = BACKOFF;
            } else if partitions == 0 || Instant::now() >= next_partitions {
                match self.events.partition_count().await {
                    Ok(count) => {
                        if count != partitions {
                            tracing::info!(
                                partitions = count,
                                "outbox relay sends to the topic's partitions"
                            );
                        }
                        partitions = count;
                        next_partitions = Instant::now() + PARTITIONS_EVERY;
                        pause = Duration::ZERO;
                    }
                    Err(error) if partitions == 0 => {
                        tracing::warn!(%error, "outbox relay cannot read the topic's partitions yet");
                        pause = BACKOFF;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay cannot read the topic's partitions; keeps the last count");
                        next_partitions = Instant::now() + BACKOFF;
                    }
                }
            } else {
                if Instant::now() >= next_lease_round {
                    self.lease_round(&mut owned, &mut oldest, away_until).await;
                    next_lease_round = Instant::now() + RENEW_EVERY;
                }
                match self.relay_owned(&mut owned, &mut oldest, partitions).await {
                    Round::More => {
                        poll.found();
                        pause = Duration::ZERO;
                    }
                    Round::CaughtUp => {
                        poll.found();
                        pause = poll.next();
                    }
                    Round::Empty => pause = poll.next(),
                    Round::CannotPublish => {
                        tracing::warn!(
                            "outbox relay cannot publish; giving its shards up for a while"
                        );
                        self.release_all(&mut owned).await;
                        away_until = Instant::now() + BACKOFF;
                        // A broker that lost its data lost the topic too.
                        topic_ready = false;
                        partitions = 0;
                    }
                }
                // A backed-off poll must not delay the leases' renewal.
                pause = pause.min(next_lease_round.saturating_duration_since(Instant::now()));
            }
            report_oldest(&oldest);
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => poll.found(),
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.release_all(&mut owned).await;
    }

    /// Renews the leases held, drops the ones lost, and takes free shards
    /// unless this instance is staying away.
    async fn lease_round(
        &self,
        owned: &mut BTreeMap<i32, Lease>,
        oldest: &mut Oldest,
        away_until: Instant,
    ) {
        let now = Instant::now();
        owned.retain(|&shard, lease| still_held(shard, lease, now));
        for (&shard, lease) in owned.iter_mut() {
            match self.outbox.renew(shard, &self.owner).await {
                Ok(true) => lease.until = now + LEASE_TTL,
                Ok(false) => lease.until = now,
                Err(error) => tracing::warn!(shard, %error, "outbox lease not renewed"),
            }
        }
        owned.retain(|&shard, lease| still_held(shard, lease, now));
        if now < away_until {
            return;
        }
        let held: HashSet<i32> = match self.outbox.held_shards().await {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox leases");
                return;
            }
        };
        // Another instance reports the shards it holds.
        oldest.retain(|shard, _| owned.contains_key(shard) || !held.contains(shard));
        for shard in (0..SHARDS).filter(|shard| !held.contains(shard)) {
            match self.outbox.acquire(shard, &self.owner).await {
                Ok(true) => {
                    tracing::info!(shard, owner = %self.owner, "outbox shard taken");
                    owned.insert(
                        shard,
                        Lease {
                            until: now + LEASE_TTL,
                            scan_from: None,
                            saved: 0,
                            save_at: now,
                            late_at: now,
                            retry_at: now,
                            stalled: false,
                            probe: None,
                            oldest: oldest.get(&shard).copied(),
                        },
                    );
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(shard, %error, "outbox lease not taken"),
            }
        }
    }

    /// One round over the shards held, side by side.
    async fn relay_owned(
        &self,
        owned: &mut BTreeMap<i32, Lease>,
        oldest: &mut Oldest,
        partitions: i32,
    ) -> Round {
        let now = Instant::now();
        // Too little lease left to see a send through: wait for renewal.
        let due = owned.iter_mut().filter(|(_, lease)| {
            lease.until.saturating_duration_since(now) > DELIVERY_TIMEOUT && now >= lease.retry_at
        });
        let rounds = futures::future::join_all(due.map(|(&shard, lease)| async move {
            let result = self.relay_shard(shard, lease, partitions).await;
            (shard, lease, result)
        }))
        .await;
        let (mut tried, mut more, mut found, mut unpublished) = (0, false, false, 0);
        for (shard, lease, result) in rounds {
            match lease.oldest {
                Some(event_id) => oldest.insert(shard, event_id),
                None => oldest.remove(&shard),
            };
            if !matches!(result, Ok(Progress::Probing)) {
                tried += 1;
            }
            match result {
                Ok(Progress::Probing) => found = true,
                Ok(progress) => {
                    more |= matches!(progress, Progress::More);
                    found |= !matches!(progress, Progress::Empty);
                    if lease.stalled {
                        tracing::info!(shard, "outbox shard publishes again");
                    }
                    lease.stalled = false;
                }
                Err(error) => {
                    found = true;
                    if matches!(error, TweetError::Publish(_)) {
                        unpublished += 1;
                        lease.stalled = true;
                        metrics::counter!(stats::PUBLISH_FAILURES, "shard" => shard.to_string())
                            .increment(1);
                    } else {
                        metrics::counter!(stats::READ_FAILURES).increment(1);
                    }
                    tracing::warn!(shard, %error, source = ?std::error::Error::source(&error), "outbox shard failed; trying it again shortly");
                    lease.retry_at = Instant::now() + BACKOFF;
                }
            }
            report_stalled(shard, lease.stalled);
        }
        if tried > 0 && unpublished == tried {
            Round::CannotPublish
        } else if more {
            Round::More
        } else if found {
            Round::CaughtUp
        } else {
            Round::Empty
        }
    }

    /// Sends `shard`'s late events, if it is time to look, then one batch
    /// from its checkpoint on, removes what was delivered and moves the
    /// checkpoint; a stalled shard sends its [`Probe`] instead.
    async fn relay_shard(
        &self,
        shard: i32,
        lease: &mut Lease,
        partitions: i32,
    ) -> Result<Progress, TweetError> {
        let scan_from = match lease.scan_from {
            Some(scan_from) => scan_from,
            None => {
                let saved = self.outbox.checkpoint(shard).await?;
                lease.saved = saved;
                *lease.scan_from.insert(saved)
            }
        };
        if lease.stalled {
            return self.probe(shard, lease, scan_from, partitions).await;
        }
        let mut late = false;
        if Instant::now() >= lease.late_at {
            late = self.relay_late(shard, partitions).await?;
            lease.late_at = Instant::now() + LATE_EVERY;
        }
        let pending = self.outbox.pending(shard, scan_from, BATCH).await?;
        let (acked, failure) = self.send_in_order(&pending, partitions).await;
        let removable = removable(&pending, &acked);
        let (removed, waiting): (Vec<_>, Vec<_>) = pending
            .iter()
            .zip(&removable)
            .partition(|(_, remove)| **remove);
        let removed: Vec<&PendingEvent> = removed.into_iter().map(|(event, _)| event).collect();
        self.remove(&removed).await?;
        if !removed.is_empty() {
            tracing::debug!(shard, relayed = removed.len(), "outbox events relayed");
        }
        // Everything before the first event kept left: the checkpoint may pass it.
        let delivered = removable.iter().take_while(|&&remove| remove).count();
        let full = pending.len() == BATCH as usize;
        let bound = bound(&pending, delivered, full);
        let settled = first_id_at(now_ms() - LOOKBACK.as_millis() as i64);
        let scan_from = next_scan_from(scan_from, bound, settled);
        lease.scan_from = Some(scan_from);
        self.save_checkpoint(shard, lease, scan_from).await;

        metrics::gauge!(stats::PENDING, "shard" => shard.to_string()).set(waiting.len() as f64);
        lease.oldest = match (waiting.first(), full) {
            (Some((first, _)), _) => Some(first.event_id),
            (None, true) => Some(bound),
            (None, false) => None,
        };
        match failure {
            Some(error) => Err(error),
            None if full => Ok(Progress::More),
            None if pending.is_empty() && !late => Ok(Progress::Empty),
            None => Ok(Progress::CaughtUp),
        }
    }

    /// A stalled shard's round: sends its first waiting event alone, and in
    /// the rounds after looks whether the broker took it; once it has, the
    /// shard relays as before, from its checkpoint.
    async fn probe(
        &self,
        shard: i32,
        lease: &mut Lease,
        scan_from: i64,
        partitions: i32,
    ) -> Result<Progress, TweetError> {
        let Some(mut probe) = lease.probe.take() else {
            let first = self.outbox.pending(shard, scan_from, 1).await?;
            let Some(event) = first.into_iter().next() else {
                // Nothing waits (another owner sent it): nothing to stall on.
                return Ok(Progress::More);
            };
            lease.oldest = Some(event.event_id);
            let delivery = self
                .events
                .send(&event, partitions)
                .map_err(TweetError::Publish)?;
            lease.probe = Some(Probe { event, delivery });
            return Ok(Progress::Probing);
        };
        match (&mut probe.delivery).now_or_never() {
            None => {
                lease.probe = Some(probe);
                Ok(Progress::Probing)
            }
            Some(Ok(Ok(_))) => {
                self.remove(&[&probe.event]).await?;
                Ok(Progress::More)
            }
            Some(Ok(Err((error, _)))) => Err(TweetError::Publish(error)),
            Some(Err(_canceled)) => Err(TweetError::Publish(KafkaError::Canceled)),
        }
    }

    /// Sends the events whose writers flagged them as late, if they are
    /// still waiting, and forgets their markers; whether there were any.
    async fn relay_late(&self, shard: i32, partitions: i32) -> Result<bool, TweetError> {
        let markers = self.outbox.late(shard, BATCH).await?;
        let found = !markers.is_empty();
        let mut marked: Vec<(LateMarker, PendingEvent)> = Vec::new();
        let mut done: Vec<LateMarker> = Vec::new();
        for marker in markers {
            match self.outbox.marked(shard, &marker).await? {
                Some(event) => marked.push((marker, event)),
                // Relayed already (a replay of a create sent long ago), unless
                // the rest of its batch is still on its way.
                None if marker.written_ms < now_ms() - LOOKBACK.as_millis() as i64 => {
                    done.push(marker)
                }
                None => {}
            }
        }
        let events: Vec<PendingEvent> = marked.iter().map(|(_, event)| event.clone()).collect();
        let (acked, failure) = self.send_in_order(&events, partitions).await;
        let removable = removable(&events, &acked);
        let relayed: Vec<&(LateMarker, PendingEvent)> = marked
            .iter()
            .zip(&removable)
            .filter_map(|(marked, &remove)| remove.then_some(marked))
            .collect();
        let removed: Vec<&PendingEvent> = relayed.iter().map(|(_, event)| event).collect();
        self.remove(&removed).await?;
        done.extend(relayed.iter().map(|(marker, _)| *marker));
        futures::future::try_join_all(done.iter().map(|marker| self.outbox.unmark(shard, marker)))
            .await?;
        if !removed.is_empty() {
            tracing::info!(shard, relayed = removed.len(), "late outbox events relayed");
        }
        failure.map_or(Ok(found), Err)
    }

    async fn remove(&self, delivered: &[&PendingEvent]) -> Result<(), TweetError> {
        let now = now_ms();
        for event in delivered {
            let waited_ms = (now - timestamp_ms(event.event_id)).max(0);
            metrics::histogram!(stats::RELAY_DELAY).record(waited_ms as f64 / 1000.0);
        }
        futures::future::try_join_all(delivered.iter().map(|&event| self.outbox.remove(event)))
            .await?;
        metrics::counter!(stats::RELAYED).increment(delivered.len() as u64);
        Ok(())
    }

    /// Saves the checkpoint when it moved, at most every
    /// [`CHECKPOINT_EVERY`]. A failed save only means a new owner reads a
    /// little more: it is tried again next round.
    async fn save_checkpoint(&self, shard: i32, lease: &mut Lease, scan_from: i64) {
        if scan_from == lease.saved || Instant::now() < lease.save_at {
            return;
        }
        match self.outbox.save_checkpoint(shard, scan_from).await {
            Ok(()) => {
                lease.saved = scan_from;
                lease.save_at = Instant::now() + CHECKPOINT_EVERY;
            }
            Err(error) => tracing::warn!(shard, %error, "outbox checkpoint not saved"),
        }
    }

    /// Queues every event, in order, then waits for the acknowledgements:
    /// which ones the broker acknowledged, and why the first that was not
    /// failed. Queuing stops at the first event the producer refuses.
    async fn send_in_order(
        &self,
        pending: &[PendingEvent],
        partitions: i32,
    ) -> (Vec<bool>, Option<TweetError>) {
        let mut deliveries = Vec::with_capacity(pending.len());
        let mut refused = None;
        for event in pending {
            match self.events.send(event, partitions) {
                Ok(delivery) => deliveries.push(delivery),
                Err(error) => {
                    refused = Some(error);
                    break;
                }
            }
        }
        let mut acked = Vec::with_capacity(pending.len());
        let mut failure = None;
        for delivery in deliveries {
            let error = match delivery.await {
                Ok(Ok(_)) => None,
                Ok(Err((error, _))) => Some(error),
                Err(_canceled) => Some(KafkaError::Canceled),
            };
            acked.push(error.is_none());
            if failure.is_none() {
                failure = error;
            }
        }
        acked.resize(pending.len(), false);
        (acked, failure.or(refused).map(TweetError::Publish))
    }

    /// Gives every shard held up, each once its [`Probe`] (if one is on its
    /// way) has landed or failed: the next owner sends from the first
    /// waiting event, and a probe landing after its later events would put
    /// them out of order.
    async fn release_all(&self, owned: &mut BTreeMap<i32, Lease>) {
        for (shard, lease) in std::mem::take(owned) {
            report_stalled(shard, false);
            if let Some(probe) = lease.probe
                && let Ok(Ok(_)) = probe.delivery.await
                && let Err(error) = self.remove(&[&probe.event]).await
            {
                tracing::warn!(shard, %error, "relayed outbox event not removed; it is sent again");
            }
            if let Err(error) = self.outbox.release(shard, &self.owner).await {
                tracing::warn!(shard, %error, "outbox lease not released; it expires on its own");
            }
        }
    }
}

/// Which of `pending`, sent in order, may leave the outbox: each one the
/// broker acknowledged ([`acked`]), unless an earlier one of its author was
/// not. That one is sent again later, and every later event of its author
/// with it, or the last copies of the author's events in the log would be
/// out of order.
///
/// [`acked`]: Relay::send_in_order
fn removable(pending: &[PendingEvent], acked: &[bool]) -> Vec<bool> {
    let mut held = HashSet::new();
    pending
        .iter()
        .zip(acked)
        .map(|(event, &acked)| {
            let remove = acked && !held.contains(&event.author_id);
            if !remove {
                held.insert(event.author_id);
            }
            remove
        })
        .collect()
}

/// Whether `shard`'s lease is still this instance's at `now`; a shard it
/// no longer holds is no longer reported stalled by it.
fn still_held(shard: i32, lease: &Lease, now: Instant) -> bool {
    let held = lease.until > now;
    if !held {
        report_stalled(shard, false);
    }
    held
}

/// Publishes whether `shard`, held here, is stalled on a failed send.
fn report_stalled(shard: i32, stalled: bool) {
    metrics::gauge!(stats::STALLED, "shard" => shard.to_string()).set(f64::from(u8::from(stalled)));
}

/// How far a round's read lets the checkpoint go: to the first event not
/// delivered, to the last one read when more may follow it (its id is read
/// again: a delete's id can equal another event's, told apart by tweet id),
/// and anywhere when the read saw all there was and delivered it.
fn bound(pending: &[PendingEvent], delivered: usize, full: bool) -> i64 {
    match (pending.get(delivered), pending.last()) {
        (Some(undelivered), _) => undelivered.event_id,
        (None, Some(last)) if full => last.event_id,
        _ => i64::MAX,
    }
}

/// Where the next read starts: never back, never past `bound`, and never
/// past `settled`, the first id of the lookback window, where rows may still
/// appear out of order (older ones are flagged late by their writers).
fn next_scan_from(scan_from: i64, bound: i64, settled: i64) -> i64 {
    scan_from.max(bound.min(settled))
}

/// Publishes the age of each shard's oldest waiting event as this instance
/// last saw it: 0 for shards it knows nothing waiting in.
fn report_oldest(oldest: &Oldest) {
    let now = now_ms();
    for shard in 0..SHARDS {
        let age_ms = oldest
            .get(&shard)
            .map_or(0, |&event_id| (now - timestamp_ms(event_id)).max(0));
        metrics::gauge!(stats::OLDEST_AGE, "shard" => shard.to_string())
            .set(age_ms as f64 / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn events(ids: &[i64]) -> Vec<PendingEvent> {
        ids.iter()
            .map(|&id| PendingEvent::new(id, 3, id, false, HashMap::new()))
            .collect()
    }

    #[test]
    fn the_checkpoint_never_passes_an_event_not_delivered() {
        let read = events(&[10, 20, 30]);
        assert_eq!(bound(&read, 1, false), 20);
        assert_eq!(bound(&read, 0, true), 10);
        // All delivered, more to read: the last id is read again.
        assert_eq!(bound(&read, 3, true), 30);
        // All there was, delivered: nothing holds the checkpoint back.
        assert_eq!(bound(&read, 3, false), i64::MAX);
        assert_eq!(bound(&[], 0, false), i64::MAX);
    }

    #[test]
    fn acknowledged_events_leave_unless_their_author_waits() {
        let authors = [(1, 3), (2, 4), (3, 3), (4, 5), (5, 4)];
        let read: Vec<PendingEvent> = authors
            .iter()
            .map(|&(id, author)| PendingEvent::new(id, author, id, false, HashMap::new()))
            .collect();
        // Event 2 (author 4) failed: 3 and 4 go, 5 (author 4 again) stays.
        let acked = [true, false, true, true, true];
        assert_eq!(removable(&read, &acked), [true, false, true, true, false]);
        assert_eq!(removable(&read, &[true; 5]), [true; 5]);
        assert_eq!(removable(&read, &[false; 5]), [false; 5]);
    }

    #[test]
    fn the_checkpoint_trails_the_lookback_and_never_moves_back() {
        let settled = 1_000;
        // A drained shard: up to the lookback, no further.
        assert_eq!(next_scan_from(0, i64::MAX, settled), settled);
        // An event not delivered below the lookback holds it there.
        assert_eq!(next_scan_from(0, 400, settled), 400);
        // Never back, whatever a round saw.
        assert_eq!(next_scan_from(1_500, 400, settled), 1_500);
        assert_eq!(next_scan_from(1_500, i64::MAX, settled), 1_500);
    }
}
