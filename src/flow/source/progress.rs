//! A source task's progress: storing acknowledged source offsets (at-least-once), committing
//! transactions (exactly-once), publishing metrics and positions, and the final drain, which
//! always ends within the time the stop request allows.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};
use tracing::{info, warn};

use super::copier::Copier;
use super::delivery::{self, Slot, Written};
use super::runs::{PointToSend, RunTracker};
use super::{TRANSACTION_MAX_AGE, TRANSACTION_MAX_RECORDS};
use crate::flow::offset_history::HistoryPoint;
use crate::flow::records::{source_offset_key, source_offset_value};
use crate::flow::task::TaskFailure;
use crate::lifecycle::Stop;
use crate::locks::lock;
use crate::plan::clients::ClientRole;

/// Time kept back from the drain budget for the progress write after the records' flush.
const PROGRESS_SHARE: Duration = Duration::from_secs(2);
/// Time kept back from the whole budget for closing the clients.
const CLOSE_MARGIN: Duration = Duration::from_millis(300);

impl Copier {
    /// Moves what the delivery callback gathered into the exported metrics. Runs from the task
    /// loop's housekeeping, at most every 100 ms (and once more after the final drain), so the
    /// metrics trail the acknowledgements by a fraction of a second.
    /// True when something was published (acknowledgements may still be arriving).
    pub fn publish_metrics(&self) -> bool {
        let mut published = false;
        for (_, slot) in self.active_slots() {
            let mut acks = lock(&slot.acks);
            if acks.batch.pending().0 > 0 {
                slot.metrics.publish(&mut acks.batch);
                published = true;
            }
        }
        published
    }

    /// Publishes each partition's replicated position (next source offset to copy) to `/status`,
    /// where the flow's lag monitor (`lag.rs`) compares it with the source's end.
    pub fn report_progress(&self) {
        for (_, slot) in self.active_slots() {
            let next = slot.acked.load(Ordering::Acquire) + 1;
            self.telemetry
                .status
                .set_replicated(&slot.source_topic, slot.partition, next);
        }
    }

    /// Writes the change points of the offset history not on the target yet, then the source
    /// offset of every partition whose safe progress moved past what is stored or being stored
    /// (at-least-once mode). Progress stays below a change point until the point is acknowledged,
    /// so stored progress is always covered by the history. A write counts as stored once
    /// acknowledged; a failed one is retried here at the next flush, also for idle partitions.
    /// False when some partition's acknowledged progress waits for a change point sent now (or
    /// earlier) and not acknowledged yet: a call once it is stores the rest.
    pub fn store_progress(&mut self) -> bool {
        let mut all_stored = true;
        for (index, slot) in self.active_slots() {
            let points = slot.with_runs(|runs| runs.take_unsent(false));
            self.send_points(index, &slot, &points);
            let progress = slot.safe_progress();
            if progress > slot.storing.load(Ordering::Acquire)
                && self.send_progress(index, &slot, progress)
            {
                slot.storing.store(progress, Ordering::Release);
            }
            let acknowledged = slot
                .acked
                .load(Ordering::Acquire)
                .min(slot.failed.load(Ordering::Acquire).saturating_sub(1));
            all_stored &= progress >= acknowledged;
        }
        if let Some(syncs) = &self.syncs {
            syncs.promote_and_fire();
        }
        all_stored
    }

    /// Queues change points of `slot` to the history topic; one that cannot be queued is sent
    /// again at the next flush.
    fn send_points(&self, index: usize, slot: &Slot, points: &[PointToSend]) {
        for &(upstream, downstream, starts_coverage) in points {
            let (key, value) = history_record(slot, upstream, downstream, starts_coverage);
            let opaque = delivery::opaque(
                index,
                upstream.clamp(0, delivery::MAX_OFFSET),
                Written::HistoryPoint,
            );
            let record =
                BaseRecord::with_opaque_to(&self.flow.offset_storage.history_topic, opaque)
                    .key(&key)
                    .payload(&value);
            if let Err((error, _)) = self.producer.send(record) {
                slot.with_runs(|runs| runs.failed(upstream));
                warn!(flow = %self.flow.id, "cannot queue an offset-history point: {error}");
            }
        }
    }

    fn send_progress(&self, index: usize, slot: &Slot, offset: i64) -> bool {
        let key = source_offset_key(&self.flow.id.source, &slot.source_topic, slot.partition);
        let next_downstream = slot.with_runs(|runs| runs.next_downstream_after(offset));
        let value = source_offset_value(offset, next_downstream);
        // No explicit partition: the producer's murmur2 partitioner puts it where Java Connect would.
        let record = BaseRecord::with_opaque_to(
            &self.flow.offset_storage.topic,
            delivery::opaque(index, offset.max(0), Written::Progress),
        )
        .key(&key)
        .payload(&value);
        match self.producer.send(record) {
            Ok(()) => true,
            Err((error, _)) => {
                warn!(flow = %self.flow.id, "cannot queue source offset: {error}");
                false
            }
        }
    }

    /// Exactly-once: commits the open transaction when it is big or old enough (or `force`).
    pub fn maybe_commit(&mut self, force: bool, stop: &Stop) -> Result<(), TaskFailure> {
        let due = match &self.transaction {
            None => false,
            Some(transaction) => {
                force
                    || transaction.records >= TRANSACTION_MAX_RECORDS
                    || transaction.started.elapsed() >= TRANSACTION_MAX_AGE
            }
        };
        if !due {
            return Ok(());
        }
        let transaction = self.transaction.take().expect("checked above");
        let slots = self.producer_context().slots().clone();
        // A stop shortens the wait: an uncommitted transaction is aborted and sent again later.
        let timeout = Duration::from_millis(self.flow.admin_timeout_ms as u64).min(
            stop.time_left(Duration::MAX)
                .max(Duration::from_millis(500)),
        );
        // Every record of the transaction acknowledged first: the change points of the offset
        // history they make are committed with them and with the progress passing them.
        if let Err(error) = self.producer.flush(timeout) {
            self.abort(Duration::from_secs(5));
            return Err(TaskFailure::Transaction(format!(
                "records not acknowledged before the commit: {error}"
            )));
        }
        if self.producer_context().any_failed.load(Ordering::Acquire) {
            if let Some(refusal) = self.first_refusal() {
                self.abort(Duration::from_secs(5));
                return Err(refusal);
            }
        }
        let acknowledged = self.producer_context().take_transactional_acks();
        for (index, upstream, downstream) in &acknowledged {
            slots[*index].with_runs(|runs| runs.acknowledged(*upstream, *downstream));
        }
        for (index, slot) in self.active_slots() {
            let points = slot.with_runs(|runs| runs.take_unsent(false));
            self.send_points(index, &slot, &points);
        }
        for (index, offset) in &transaction.last_offsets {
            if !self.send_progress(*index, &slots[*index], *offset) {
                self.abort(Duration::from_secs(5));
                return Err(TaskFailure::Transaction(
                    "cannot queue source offsets in the transaction".into(),
                ));
            }
        }
        if let Err(error) = self.producer.commit_transaction(timeout) {
            self.abort(Duration::from_secs(5));
            if let Some(refusal) = self.first_refusal() {
                return Err(refusal);
            }
            return Err(TaskFailure::Transaction(error.to_string()));
        }
        for (_, slot) in self.active_slots() {
            slot.with_runs(RunTracker::all_sent_stored);
        }
        for (index, offset) in &transaction.last_offsets {
            slots[*index].stored.fetch_max(*offset, Ordering::AcqRel);
            slots[*index].storing.fetch_max(*offset, Ordering::AcqRel);
            slots[*index].with_runs(|runs| runs.trim(*offset));
        }
        // Offset syncs only ever name committed records (MM2 queues them from `commitRecord`).
        if let Some(syncs) = &self.syncs {
            for (index, upstream, downstream) in acknowledged {
                let slot = &slots[index];
                syncs.queue(
                    index,
                    &slot.source_topic,
                    slot.partition,
                    upstream,
                    downstream,
                );
            }
            syncs.promote_and_fire();
        }
        Ok(())
    }

    /// At-least-once: writes the change points not yet on the target, then the acknowledged
    /// progress of every partition, with a producer made for this (the task's own one stopped),
    /// within `timeout`. Progress passes a change point only when the points were acknowledged.
    fn store_progress_with_fresh_producer(&self, timeout: Duration) {
        let end = Instant::now() + timeout;
        let mut config = self.flow.clients[&ClientRole::TargetProducer].client_config();
        config.set("enable.gapless.guarantee", "false");
        let producer: BaseProducer = match config.create() {
            Ok(producer) => producer,
            Err(error) => {
                warn!(flow = %self.flow.id, task = self.index, "cannot store final progress: {error}");
                return;
            }
        };
        let slots = self.active_slots();
        for (_, slot) in &slots {
            for (upstream, downstream, starts) in slot.with_runs(|runs| runs.take_unsent(true)) {
                let (key, value) = history_record(slot, upstream, downstream, starts);
                let record = BaseRecord::to(&self.flow.offset_storage.history_topic)
                    .key(&key)
                    .payload(&value);
                if let Err((error, _)) = producer.send(record) {
                    warn!(flow = %self.flow.id, "cannot queue an offset-history point: {error}");
                }
            }
        }
        let half = end.saturating_duration_since(Instant::now()) / 2;
        if producer.flush(half).is_ok() {
            for (_, slot) in &slots {
                slot.with_runs(RunTracker::all_sent_stored);
            }
        }
        for (_, slot) in &slots {
            let progress = slot.safe_progress();
            if progress > slot.stored.load(Ordering::Acquire) && progress >= 0 {
                let key =
                    source_offset_key(&self.flow.id.source, &slot.source_topic, slot.partition);
                let next_downstream = slot.with_runs(|runs| runs.next_downstream_after(progress));
                let value = source_offset_value(progress, next_downstream);
                let record = BaseRecord::to(&self.flow.offset_storage.topic)
                    .key(&key)
                    .payload(&value);
                if let Err((error, _)) = producer.send(record) {
                    warn!(flow = %self.flow.id, "cannot queue source offset: {error}");
                }
            }
        }
        if let Err(error) = producer.flush(end.saturating_duration_since(Instant::now())) {
            warn!(flow = %self.flow.id, task = self.index, "source offsets not acknowledged within the drain: {error}");
        }
    }

    /// Exactly-once, idle: stores the positions `advance_past_markers` moved (past transaction
    /// markers) in a transaction of their own, so stored progress reaches the source's end too.
    pub fn store_positions_in_transaction(
        &mut self,
        moved: &[usize],
        stop: &Stop,
    ) -> Result<(), TaskFailure> {
        if self.transaction.is_some() {
            return Ok(()); // the open transaction stores them when it commits
        }
        self.producer
            .begin_transaction()
            .map_err(|e| TaskFailure::Transaction(e.to_string()))?;
        let slots = self.producer_context().slots().clone();
        let mut transaction = super::copier::OpenTransaction {
            started: Instant::now(),
            records: 0,
            last_offsets: std::collections::HashMap::new(),
        };
        for index in moved {
            transaction
                .last_offsets
                .insert(*index, slots[*index].acked.load(Ordering::Acquire));
        }
        self.transaction = Some(transaction);
        self.maybe_commit(true, stop)
    }

    fn abort(&mut self, timeout: Duration) {
        self.transaction = None;
        if let Err(error) = self.producer.abort_transaction(timeout) {
            warn!(flow = %self.flow.id, task = self.index, "cannot abort the transaction: {error}");
        }
        self.producer_context().drop_transactional_acks();
    }

    /// Stops reading, waits for in-flight records and stores final progress, all within `budget`:
    /// what is not acknowledged by then was never stored, so it is sent again after the restart
    /// (at-least-once) or its transaction is aborted (exactly-once). Nothing is ever skipped.
    pub fn drain(&mut self, budget: Duration, healthy: bool) {
        let end = Instant::now() + budget.saturating_sub(CLOSE_MARGIN);
        let left = || end.saturating_duration_since(Instant::now());
        if self.flow.exactly_once.enabled {
            if healthy && self.transaction.is_some() {
                let stop = self.stop.clone();
                if let Err(error) = self.maybe_commit(true, &stop) {
                    warn!(flow = %self.flow.id, task = self.index, "final commit failed (its records are sent again after the restart): {error}");
                }
            } else if self.transaction.is_some() {
                self.abort(left().min(Duration::from_secs(5)));
            }
        } else {
            let records = left().saturating_sub(PROGRESS_SHARE);
            if let Err(error) = self.producer.flush(records) {
                warn!(flow = %self.flow.id, task = self.index, in_flight = self.producer.in_flight_count(),
                    "records still in flight at the end of the drain (sent again after the restart): {error}");
            }
            if self.producer.client().fatal_error().is_some() {
                // The producer stopped at a refused record: the progress of every other
                // partition is stored through a fresh one, so a retry re-sends nothing of them.
                self.store_progress_with_fresh_producer(left());
            } else {
                // Twice: progress past a change point is stored once the point is acknowledged.
                if !self.store_progress() {
                    let _ = self.producer.flush(left() / 2);
                    self.store_progress();
                }
                if let Err(error) = self.producer.flush(left()) {
                    warn!(flow = %self.flow.id, task = self.index, "source offsets not acknowledged within the drain: {error}");
                }
            }
        }
        if let Some(syncs) = &self.syncs {
            syncs.finish(left().min(Duration::from_secs(1)));
        }
        // Whatever is left would otherwise delay closing the producer (and, after the deadline,
        // reach the target after a newer owner of these partitions started).
        if self.producer.in_flight_count() > 0 {
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
        }
        info!(flow = %self.flow.id, task = self.index, partitions = self.active_slots().len(), "drained");
    }
}

/// Key and value of a change point of `slot`'s partition in the history topic.
fn history_record(
    slot: &Slot,
    upstream: i64,
    downstream: i64,
    starts_coverage: bool,
) -> (Vec<u8>, Vec<u8>) {
    let point = HistoryPoint {
        topic: slot.source_topic.clone(),
        partition: slot.partition,
        upstream,
        downstream,
        starts_coverage,
    };
    (point.key(), point.value())
}
