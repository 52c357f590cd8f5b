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
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use tracing::{debug, warn};

use super::sync_sender::SyncSender;
use crate::kafka::context::LoggingContext;
use crate::metrics::{ReplicatedBatch, SourcePartitionMetrics};

/// Bits of a delivery opaque: `[63] progress record | [62..47] slot | [46..0] offset`.
const OFFSET_BITS: u32 = 47;
const SLOT_BITS: u32 = 16;
pub const MAX_OFFSET: i64 = (1 << OFFSET_BITS) - 1;
pub const MAX_SLOTS: usize = 1 << SLOT_BITS;
const PROGRESS_FLAG: usize = 1 << 63;

/// The opaque of a replicated record (`progress = false`) or a progress record.
pub fn opaque(slot: usize, offset: i64, progress: bool) -> usize {
    debug_assert!(slot < MAX_SLOTS && (0..=MAX_OFFSET).contains(&offset));
    let flag = if progress { PROGRESS_FLAG } else { 0 };
    flag | (slot << OFFSET_BITS) | offset as usize
}

fn decode(opaque: usize) -> (bool, usize, i64) {
    let progress = opaque & PROGRESS_FLAG != 0;
    let slot = (opaque >> OFFSET_BITS) & (MAX_SLOTS - 1);
    let offset = (opaque & MAX_OFFSET as usize) as i64;
    (progress, slot, offset)
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
    /// Filled by the delivery callback, published by the task loop.
    pub replicated: Mutex<ReplicatedBatch>,
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
        last_stored: i64,
        metrics: SourcePartitionMetrics,
        one_by_one_until: i64,
    ) -> Slot {
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
            replicated: Mutex::new(metrics.batch()),
            metrics,
            retired: AtomicBool::new(false),
            one_by_one_until,
        }
    }

    /// The offset that may be stored: acknowledged, and below any failure.
    pub fn safe_progress(&self) -> i64 {
        let acked = self.acked.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        if failed == i64::MAX {
            acked
        } else {
            acked.min(failed - 1)
        }
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

/// Poison-tolerant lock: a panic elsewhere must not take the delivery thread down with it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let (progress, slot_index, upstream) = decode(opaque);
        let slots = self.slots();
        let Some(slot) = slots.get(slot_index) else {
            return;
        };
        if progress {
            match result {
                Ok(_) => {
                    slot.stored.fetch_max(upstream, Ordering::AcqRel);
                }
                Err((error, _)) => {
                    // Sent again at the next flush.
                    let stored = slot.stored.load(Ordering::Acquire);
                    slot.storing.fetch_min(stored, Ordering::AcqRel);
                    if crate::clock::once_per(&self.last_progress_warning, 10) {
                        warn!(topic = %slot.source_topic, partition = slot.partition, "cannot store source progress (retried at the next flush): {error}");
                    } else {
                        debug!(topic = %slot.source_topic, partition = slot.partition, "cannot store source progress: {error}");
                    }
                }
            }
            return;
        }
        match result {
            Ok(message) => {
                slot.acked.fetch_max(upstream, Ordering::AcqRel);
                // MM2's record age (at poll) and replication latency (at ack) are both measured
                // from the record timestamp; we measure both at acknowledgement, with the coarse
                // clock (tick resolution) to keep the per-record cost down.
                let latency_ms = message
                    .timestamp()
                    .to_millis()
                    .map(|t| crate::clock::unix_ms_coarse() - t)
                    .unwrap_or(0);
                lock(&slot.replicated).record(message.payload_len() as u64, latency_ms, latency_ms);
                match &self.transactional_acks {
                    Some(pending) => lock(pending).push((slot_index, upstream, message.offset())),
                    None => {
                        if let Some(syncs) = &self.syncs {
                            syncs.queue(
                                slot_index,
                                &slot.source_topic,
                                slot.partition,
                                upstream,
                                message.offset(),
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
        for (slot, offset, progress) in [
            (0, 0, false),
            (MAX_SLOTS - 1, MAX_OFFSET, true),
            (7, 123_456_789, false),
        ] {
            assert_eq!(
                decode(opaque(slot, offset, progress)),
                (progress, slot, offset)
            );
        }
    }
}
