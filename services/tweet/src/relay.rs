//! The outbox relay: a loop in every tweet-service instance that sends the
//! events waiting in the outbox ([`crate::outbox`]) to Kafka, oldest first,
//! and removes each one the broker acknowledged.
//!
//! Delivery is at least once. A relay that dies between the broker's
//! acknowledgement and the removal sends the event again when it (or another
//! instance) next reads the shard; consumers apply events idempotently.
//!
//! # Several instances
//!
//! Each shard is relayed by one instance at a time, the holder of its lease:
//! two relays reading the same shard would interleave their sends and could
//! put a tweet's delete in the log before its create. A lease lasts
//! [`LEASE_TTL`] and is renewed every [`RENEW_EVERY`], so a crashed owner's
//! shards are taken over within about `LEASE_TTL + RENEW_EVERY`; a stopping
//! owner releases them at once. An owner sends only while its lease has at
//! least [`DELIVERY_TIMEOUT`] left, so a send it starts ends (delivered or
//! abandoned by librdkafka) before anyone else may hold the shard. That
//! bound rests on clocks and timers, not on a fencing token: a process
//! frozen for longer than a lease (a stopped container, a swap storm) could
//! still send once after losing it. Kafka transactions with a transactional
//! id per shard would fence it for real, at the cost of a producer per shard.
//!
//! An instance that cannot reach Kafka releases its leases and stays out for
//! a while, so that an instance that can reach it takes the shards over;
//! meanwhile creates and deletes keep succeeding, their events waiting here.
//!
//! # Order
//!
//! A shard's events are queued to the producer in event-id order, which
//! keeps each author's events in order in their partition. When one send
//! fails, the relay removes only the events before it and sends the rest
//! again later, in order: the log may then hold an event twice, but the last
//! copy of every event is in the right order.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chirp_kafka::KafkaArgs;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::TweetError;
use crate::events::{DELIVERY_TIMEOUT, Events};
use crate::outbox::{LEASE_TTL, PendingEvent, SHARDS};
use crate::store::Store;

/// How often an owner renews its leases and looks for free shards.
const RENEW_EVERY: Duration = Duration::from_secs(2);

/// How often an owner looks at its shards when nothing woke it: the longest
/// an event written by another instance waits here.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Events read, sent and removed per round and shard.
const BATCH: i32 = 256;

/// How long an instance that failed to publish stays away from the leases.
const BACKOFF: Duration = Duration::from_secs(5);

/// How far behind the last removed event the next read of a shard starts:
/// rows are read from there on rather than from the start of the partition,
/// which would read every tombstone the relay left behind. The margin covers
/// writes that become visible after later ones (a slow batch, a replay).
/// 30 s, as a Snowflake id difference (milliseconds sit above bit 22).
const LOOKBACK_IDS: i64 = 30_000 << 22;

/// How often a shard is read from its start anyway, for the rare row older
/// than the lookback: a create replayed hours after its first attempt.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(300);

pub struct Relay {
    store: Arc<Store>,
    events: Events,
    kafka: KafkaArgs,
    /// Who this instance is in the lease table: unique per process run, so
    /// a restarted instance does not mistake its predecessor's leases for
    /// its own.
    owner: String,
    /// Poked after every local write, so that an event whose shard this
    /// instance owns leaves at once instead of at the next poll.
    wake: Arc<Notify>,
}

/// A shard this instance holds.
struct Lease {
    /// When the lease runs out unless renewed (counted from before the
    /// renewal was sent, so never later than the store's own expiry).
    until: Instant,
    /// Event id the next read starts from.
    scan_from: i64,
    /// When to read from the start of the partition again.
    full_scan_at: Instant,
}

impl Relay {
    pub fn new(
        store: Arc<Store>,
        events: Events,
        kafka: KafkaArgs,
        owner: String,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            events,
            kafka,
            owner,
            wake,
        }
    }

    /// Relays until `shutdown` resolves, then releases every lease held.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut owned = BTreeMap::new();
        let mut topic_ready = false;
        let mut next_lease_round = Instant::now();
        let mut away_until = Instant::now();
        loop {
            let mut pause = POLL_EVERY;
            if !topic_ready {
                // The topic is created here, not before serving: posts do not
                // wait for Kafka, so neither does starting.
                match tokio::time::timeout(DELIVERY_TIMEOUT, self.kafka.ensure_topic()).await {
                    Ok(Ok(())) => topic_ready = true,
                    Ok(Err(error)) => {
                        tracing::warn!(error = %format!("{error:#}"), "outbox relay cannot create the topic yet")
                    }
                    Err(_) => tracing::warn!("outbox relay cannot reach Kafka yet"),
                }
                pause = BACKOFF;
            } else {
                if Instant::now() >= next_lease_round {
                    self.lease_round(&mut owned, away_until).await;
                    next_lease_round = Instant::now() + RENEW_EVERY;
                }
                match self.relay_owned(&mut owned).await {
                    Ok(true) => pause = Duration::ZERO,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, source = ?std::error::Error::source(&error), "outbox relay failed; giving its shards up for a while");
                        self.release_all(&mut owned).await;
                        away_until = Instant::now() + BACKOFF;
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.release_all(&mut owned).await;
    }

    /// Renews the leases held, drops the ones lost, and takes free shards
    /// unless this instance is staying away.
    async fn lease_round(&self, owned: &mut BTreeMap<i32, Lease>, away_until: Instant) {
        let (session, outbox) = self.store.outbox();
        let now = Instant::now();
        owned.retain(|_, lease| lease.until > now);
        for (&shard, lease) in owned.iter_mut() {
            match outbox.renew(session, shard, &self.owner).await {
                Ok(true) => lease.until = now + LEASE_TTL,
                Ok(false) => lease.until = now,
                Err(error) => tracing::warn!(shard, %error, "outbox lease not renewed"),
            }
        }
        owned.retain(|_, lease| lease.until > now);
        if now < away_until {
            return;
        }
        let held: HashSet<i32> = match outbox.held_shards(session).await {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox leases");
                return;
            }
        };
        for shard in (0..SHARDS).filter(|shard| !held.contains(shard)) {
            match outbox.acquire(session, shard, &self.owner).await {
                Ok(true) => {
                    tracing::info!(shard, owner = %self.owner, "outbox shard taken");
                    owned.insert(
                        shard,
                        Lease {
                            until: now + LEASE_TTL,
                            scan_from: 0,
                            full_scan_at: now + FULL_SCAN_EVERY,
                        },
                    );
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(shard, %error, "outbox lease not taken"),
            }
        }
    }

    /// One round over the shards held; true if some shard has more waiting.
    async fn relay_owned(&self, owned: &mut BTreeMap<i32, Lease>) -> Result<bool, TweetError> {
        let mut more = false;
        for (&shard, lease) in owned.iter_mut() {
            // Too little lease left to see a send through: wait for renewal.
            if lease.until.saturating_duration_since(Instant::now()) <= DELIVERY_TIMEOUT {
                continue;
            }
            more |= self.relay_shard(shard, lease).await?;
        }
        Ok(more)
    }

    /// Sends one batch of `shard`'s events and removes the ones delivered.
    async fn relay_shard(&self, shard: i32, lease: &mut Lease) -> Result<bool, TweetError> {
        let (session, outbox) = self.store.outbox();
        if Instant::now() >= lease.full_scan_at {
            lease.scan_from = 0;
            lease.full_scan_at = Instant::now() + FULL_SCAN_EVERY;
        }
        let pending = outbox
            .pending(session, shard, lease.scan_from, BATCH)
            .await?;
        let (delivered, failure) = self.send_in_order(&pending).await;
        futures::future::try_join_all(
            pending[..delivered]
                .iter()
                .map(|event| outbox.remove(session, event)),
        )
        .await?;
        if let Some(last) = pending[..delivered].last() {
            lease.scan_from = lease.scan_from.max(last.event_id - LOOKBACK_IDS);
            tracing::debug!(shard, delivered, "outbox events relayed");
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(pending.len() == BATCH as usize),
        }
    }

    /// Queues every event, in order, then waits for the acknowledgements:
    /// how many were delivered before the first that was not, and why not.
    async fn send_in_order(&self, pending: &[PendingEvent]) -> (usize, Option<TweetError>) {
        let mut deliveries = Vec::with_capacity(pending.len());
        let mut failure = None;
        for event in pending {
            match self.events.send(event) {
                Ok(delivery) => deliveries.push(delivery),
                Err(error) => {
                    failure = Some(TweetError::Publish(error));
                    break;
                }
            }
        }
        let mut delivered = 0;
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => delivered += 1,
                Ok(Err((error, _))) => return (delivered, Some(TweetError::Publish(error))),
                Err(_canceled) => {
                    return (
                        delivered,
                        Some(TweetError::Publish(rdkafka::error::KafkaError::Canceled)),
                    );
                }
            }
        }
        (delivered, failure)
    }

    async fn release_all(&self, owned: &mut BTreeMap<i32, Lease>) {
        let (session, outbox) = self.store.outbox();
        for (shard, _) in std::mem::take(owned) {
            if let Err(error) = outbox.release(session, shard, &self.owner).await {
                tracing::warn!(shard, %error, "outbox lease not released; it expires on its own");
            }
        }
    }
}
