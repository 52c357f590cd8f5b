//! The target producer's delivery bookkeeping for one source task: per source partition
//! ([`Slot`]) the highest upstream offset the target acknowledged, the lowest one it refused, and
//! the progress record last acknowledged; the delivery callback ([`TargetContext`]) keeps them.
//!
//! Delivery reports arrive in order per partition (the producer is idempotent, or limited to one
//! request in flight), so "acknowledged up to" is one atomic per partition, and a refused record
//! caps the storable progress just below it. A progress record counts as stored only when the
//! target acknowledged it: a write that failed is simply sent again at the next flush.
//!
//! Runs on librdkafka's delivery thread: nothing here may block for long or panic. Locks are
//! taken poison-tolerant and only for a few instructions.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use tracing::{debug, warn};

use super::runs::RunTracker;
use super::sync_sender::SyncSender;
use crate::flow::offset_history::StoredProgress;
use crate::kafka::context::LoggingContext;
use crate::locks::lock;
use crate::metrics::{ReplicatedBatch, SourcePartitionMetrics};

/// Bits of a delivery opaque: `[63..62] kind | [61..46] slot | [45..0] offset`.
const OFFSET_BITS: u32 = 46;
const SLOT_BITS: u32 = 16;
const KIND_SHIFT: u32 = OFFSET_BITS + SLOT_BITS;
pub const MAX_OFFSET: i64 = (1 << OFFSET_BITS) - 1;
pub const MAX_SLOTS: usize = 1 << SLOT_BITS;

/// What a record the target producer writes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A copied source record (the offset is its upstream offset).
    Record = 0,
    /// A progress record of the offsets topic (the offset is the progress stored).
    Progress = 1,
    /// A change point of the offset history (the offset is the point's upstream offset).
    HistoryPoint = 2,
}

/// The opaque of a record the target producer writes.
pub fn opaque(slot: usize, offset: i64, kind: Written) -> usize {
    debug_assert!(slot < MAX_SLOTS && (0..=MAX_OFFSET).contains(&offset));
    ((kind as usize) << KIND_SHIFT) | (slot << OFFSET_BITS) | offset as usize
}

fn decode(opaque: usize) -> (Written, usize, i64) {
    let kind = match opaque >> KIND_SHIFT {
        0 => Written::Record,
        1 => Written::Progress,
        _ => Written::HistoryPoint,
    };
    let slot = (opaque >> OFFSET_BITS) & (MAX_SLOTS - 1);
    let offset = (opaque & MAX_OFFSET as usize) as i64;
    (kind, slot, offset)
}

/// What the delivery callback keeps per partition behind one lock: the metrics batch and the
/// offset delta's change points.
pub struct Acks {
    pub batch: ReplicatedBatch,
    pub runs: RunTracker,
}

/// One source partition of a task. A partition that is removed and added back (or retried after
/// a refusal) gets a new slot: late reports for the old one land on the old slot and are ignored.
pub struct Slot {
    pub source_topic: String,
    pub partition: i32,
    pub target_topic: String,
    /// Highest upstream offset the target acknowledged (all earlier ones too); -1 before any.
    pub acked: AtomicI64,
    /// Lowest upstream offset whose delivery failed; `i64::MAX` while none did.
    pub failed: AtomicI64,
    /// Highest upstream offset whose delivery failed (a refused batch spans several).
    pub failed_last: AtomicI64,
    /// Why it failed (the first failure).
    pub failure: Mutex<Option<String>>,
    /// Last offset whose progress record the target acknowledged.
    pub stored: AtomicI64,
    /// Last offset whose progress record was sent; falls back to `stored` when a send failed.
    pub storing: AtomicI64,
    pub metrics: SourcePartitionMetrics,
    /// Filled by the delivery callback; the batch is published by the task loop, the change
    /// points are written at the next flush.
    pub acks: Mutex<Acks>,
    /// [`RunTracker::floor`]: stored progress stays below the first change point not yet on the
    /// target (kept in an atomic so `safe_progress` takes no lock).
    pub history_floor: AtomicI64,
    /// Removed from the task (its reports no longer matter).
    pub retired: AtomicBool,
    /// Up to this source offset, records are sent one at a time (`Hold::OneByOneUntil`).
    pub one_by_one_until: i64,
}

impl Slot {
    pub fn new(
        source_topic: &str,
        partition: i32,
        target_topic: String,
        stored: Option<StoredProgress>,
        metrics: SourcePartitionMetrics,
        one_by_one_until: i64,
    ) -> Slot {
        let last_stored = stored.map_or(-1, |stored| stored.offset);
        Slot {
            source_topic: source_topic.to_string(),
            partition,
            target_topic,
            acked: AtomicI64::new(last_stored),
            failed: AtomicI64::new(i64::MAX),
            failed_last: AtomicI64::new(-1),
            failure: Mutex::new(None),
            stored: AtomicI64::new(last_stored),
            storing: AtomicI64::new(last_stored),
            acks: Mutex::new(Acks {
                batch: metrics.batch(),
                runs: RunTracker::new(stored),
            }),
            history_floor: AtomicI64::new(i64::MAX),
            metrics,
            retired: AtomicBool::new(false),
            one_by_one_until,
        }
    }

    /// The offset that may be stored: acknowledged, below any failure, and below the first
    /// change point of the offset history not yet on the target.
    pub fn safe_progress(&self) -> i64 {
        let acked = self.acked.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        let floor = self.history_floor.load(Ordering::Acquire);
        acked
            .min(failed.saturating_sub(1))
            .min(floor.saturating_sub(1))
    }

    /// Runs `change` on the change-point tracker and republishes its floor.
    pub fn with_runs<T>(&self, change: impl FnOnce(&mut RunTracker) -> T) -> T {
        let mut acks = lock(&self.acks);
        let out = change(&mut acks.runs);
        self.history_floor
            .store(acks.runs.floor(), Ordering::Release);
        out
    }

    /// Marks the record at `offset` as refused (a delivery report or a synchronous send error).
    pub fn fail(&self, offset: i64, reason: String) {
        self.failed_last.fetch_max(offset, Ordering::AcqRel);
        let before = self.failed.fetch_min(offset, Ordering::AcqRel);
        if offset < before {
            *lock(&self.failure) = Some(reason);
        }
    }

    /// (first refused offset, last refused offset, reason), if any record was refused.
    pub fn failure(&self) -> Option<(i64, i64, String)> {
        let failed = self.failed.load(Ordering::Acquire);
        (failed != i64::MAX).then(|| {
            (
                failed,
                self.failed_last.load(Ordering::Acquire),
                lock(&self.failure).clone().unwrap_or_default(),
            )
        })
    }
}

/// Delivery callbacks of the target producer.
pub struct TargetContext {
    slots: RwLock<Vec<Arc<Slot>>>,
    /// Offset syncs queued from acknowledged records (MM2's `commitRecord`).
    syncs: Option<Arc<SyncSender>>,
    /// Exactly-once: acknowledgements wait here until their transaction committed.
    transactional_acks: Option<Mutex<Vec<(usize, i64, i64)>>>,
    /// Set when any slot failed, so the task loop checks one atomic.
    pub any_failed: AtomicBool,
    /// The last failure writing progress or history (names the topic), for the task's error
    /// should the producer stop over it.
    pub internal_failure: Mutex<Option<String>>,
    last_progress_warning: AtomicI64,
    logging: LoggingContext,
}

impl TargetContext {
    pub fn new(syncs: Option<Arc<SyncSender>>, exactly_once: bool) -> TargetContext {
        TargetContext {
            slots: RwLock::new(Vec::new()),
            syncs,
            transactional_acks: exactly_once.then(|| Mutex::new(Vec::new())),
            any_failed: AtomicBool::new(false),
            internal_failure: Mutex::new(None),
            last_progress_warning: AtomicI64::new(0),
            logging: LoggingContext::new("target-producer"),
        }
    }

    pub fn slots(&self) -> RwLockReadGuard<'_, Vec<Arc<Slot>>> {
        self.slots
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a slot; returns its index, or `None` when the opaque has no room for another.
    pub fn push_slot(&self, slot: Slot) -> Option<usize> {
        let mut slots = self
            .slots
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slots.len() >= MAX_SLOTS {
            return None;
        }
        slots.push(Arc::new(slot));
        Some(slots.len() - 1)
    }

    /// Exactly-once: the acknowledgements of the transaction that just committed.
    pub fn take_transactional_acks(&self) -> Vec<(usize, i64, i64)> {
        match &self.transactional_acks {
            Some(pending) => std::mem::take(&mut *lock(pending)),
            None => Vec::new(),
        }
    }

    /// Exactly-once: an aborted transaction's acknowledgements never happened.
    pub fn drop_transactional_acks(&self) {
        if let Some(pending) = &self.transactional_acks {
            lock(pending).clear();
        }
    }
}

impl TargetContext {
    fn progress_delivered(&self, slot: &Slot, offset: i64, result: &DeliveryResult<'_>) {
        match result {
            Ok(_) => {
                slot.stored.fetch_max(offset, Ordering::AcqRel);
                lock(&slot.acks).runs.trim(offset);
            }
            Err((error, _)) => {
                // Sent again at the next flush.
                let stored = slot.stored.load(Ordering::Acquire);
                slot.storing.fetch_min(stored, Ordering::AcqRel);
                self.internal_failed(slot, "source progress", error);
            }
        }
    }

    fn point_delivered(&self, slot: &Slot, upstream: i64, result: &DeliveryResult<'_>) {
        if self.transactional_acks.is_some() {
            return; // on the target once the transaction commits
        }
        match result {
            Ok(_) => slot.with_runs(|runs| runs.stored(upstream)),
            Err((error, _)) => {
                slot.with_runs(|runs| runs.failed(upstream));
                self.internal_failed(slot, "the offset history", error);
            }
        }
    }

    fn internal_failed(&self, slot: &Slot, what: &str, error: &KafkaError) {
        *lock(&self.internal_failure) = Some(format!("cannot store {what}: {error}"));
        if crate::clock::once_per(&self.last_progress_warning, 10) {
            warn!(topic = %slot.source_topic, partition = slot.partition, "cannot store {what} (retried at the next flush): {error}");
        } else {
            debug!(topic = %slot.source_topic, partition = slot.partition, "cannot store {what}: {error}");
        }
    }
}

impl ClientContext for TargetContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.logging.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl ProducerContext for TargetContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (kind, slot_index, upstream) = decode(opaque);
        let slots = self.slots();
        let Some(slot) = slots.get(slot_index) else {
            return;
        };
        match kind {
            Written::Record => {}
            Written::Progress => return self.progress_delivered(slot, upstream, result),
            Written::HistoryPoint => return self.point_delivered(slot, upstream, result),
        }
        match result {
            Ok(message) => {
                // MM2's record age (at poll) and replication latency (at ack) are both measured
                // from the record timestamp; we measure both at acknowledgement, with the coarse
                // clock (tick resolution) to keep the per-record cost down.
                let latency_ms = message
                    .timestamp()
                    .to_millis()
                    .map(|t| crate::clock::unix_ms_coarse() - t)
                    .unwrap_or(0);
                let downstream = message.offset();
                {
                    let mut acks = lock(&slot.acks);
                    acks.batch
                        .record(message.payload_len() as u64, latency_ms, latency_ms);
                    // Exactly-once: change points are taken from committed records only.
                    if self.transactional_acks.is_none()
                        && acks.runs.acknowledged(upstream, downstream)
                    {
                        // Published before `acked` moves, so progress never passes the point
                        // before it is on the target.
                        slot.history_floor
                            .store(acks.runs.floor(), Ordering::Release);
                    }
                }
                slot.acked.fetch_max(upstream, Ordering::AcqRel);
                match &self.transactional_acks {
                    Some(pending) => lock(pending).push((slot_index, upstream, downstream)),
                    None => {
                        if let Some(syncs) = &self.syncs {
                            syncs.queue(
                                slot_index,
                                &slot.source_topic,
                                slot.partition,
                                upstream,
                                downstream,
                            );
                        }
                    }
                }
            }
            Err((error, _)) => {
                // Records failed because of another record's refusal (the producer stopped) or
                // purged at the end of a drain were not refused themselves: they are simply not
                // acknowledged, so sent again later.
                let collateral = matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::Fatal
                            | RDKafkaErrorCode::GaplessGuarantee
                            | RDKafkaErrorCode::PurgeQueue
                            | RDKafkaErrorCode::PurgeInflight
                    )
                );
                if !collateral && !slot.retired.load(Ordering::Acquire) {
                    slot.fail(upstream, error.to_string());
                    self.any_failed.store(true, Ordering::Release);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaques_round_trip_at_the_limits() {
        for (slot, offset, kind) in [
            (0, 0, Written::Record),
            (MAX_SLOTS - 1, MAX_OFFSET, Written::Progress),
            (7, 123_456_789, Written::HistoryPoint),
            (MAX_SLOTS - 1, MAX_OFFSET, Written::HistoryPoint),
        ] {
            assert_eq!(decode(opaque(slot, offset, kind)), (kind, slot, offset));
        }
    }
}
