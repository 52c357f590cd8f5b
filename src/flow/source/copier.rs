//! The state of a running source task: its clients, its partitions (one delivery [`Slot`] each),
//! and copying one record. Progress, transactions and the drain are in `progress.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use super::delivery::{self, Slot, TargetContext};
use super::sync_sender::SyncSender;
use super::{HeldPartitions, Hold, TaskInput};
use crate::flow::assignment::{partitions_of_slot, PartitionSet, TopicPartition};
use crate::flow::offset_history::StoredProgress;
use crate::flow::task::TaskFailure;
use crate::flow::FlowTelemetry;
use crate::kafka::context::SourceConsumerContext;
use crate::kafka::offsets::{list_offsets, Spec};
use crate::kafka::producer::QuietProducer;
use crate::lifecycle::Stop;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// How long a send that found the producer queue full waits for room before it looks at the stop
/// flag again (room usually comes much sooner: the next delivery reports served).
const ROOM_WAIT: Duration = Duration::from_millis(10);

/// The partitions a task should copy now (those of its slot, minus the held ones), and the
/// supervisor's decisions about refused partitions.
pub fn wanted_partitions(
    input: &mut TaskInput,
    flow: &FlowPlan,
) -> (PartitionSet, Arc<HeldPartitions>) {
    let all = input.partitions.borrow_and_update().clone();
    let held = input.held.borrow_and_update().clone();
    let wanted = partitions_of_slot(&all, input.slot, flow.source.tasks_max)
        .into_iter()
        .filter(|partition| held.get(partition) != Some(&Hold::Held))
        .collect();
    (wanted, held)
}

/// An open exactly-once transaction.
pub(super) struct OpenTransaction {
    pub started: Instant,
    pub records: usize,
    /// Slot → last upstream offset sent in this transaction.
    pub last_offsets: HashMap<usize, i64>,
}

pub(super) struct Copier {
    pub flow: Arc<FlowPlan>,
    pub index: usize,
    pub producer: QuietProducer<TargetContext>,
    pub consumer: BaseConsumer<SourceConsumerContext>,
    pub syncs: Option<Arc<SyncSender>>,
    pub telemetry: FlowTelemetry,
    pub stop: Stop,
    /// Stored progress read at start (or kept from a removed slot), per partition.
    stored: HashMap<TopicPartition, StoredProgress>,
    /// Source topic → slot index per partition number (active slots only).
    lookup: HashMap<String, HashMap<i32, usize>>,
    /// The last (topic, partition, slot) found in `lookup`; cleared when partitions are removed.
    last_slot: Option<(String, i32, usize)>,
    /// Per slot index: the next offset expected from the consumer (-1: unknown).
    next_offset: Vec<i64>,
    /// Per slot index: the expected offset before the first jump seen since a position reset was
    /// reported (the reset is checked at the next housekeeping, after records moved `next_offset`).
    jumps: HashMap<usize, i64>,
    pub transaction: Option<OpenTransaction>,
    /// A send was abandoned because a stop was requested while the producer queue was full.
    stopped_while_sending: bool,
    /// `auto.offset.reset = none` reported a position that is gone.
    deleted_records_suspected: bool,
    consumer_warnings: AtomicI64,
}

impl Copier {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        flow: Arc<FlowPlan>,
        index: usize,
        producer: QuietProducer<TargetContext>,
        consumer: BaseConsumer<SourceConsumerContext>,
        syncs: Option<Arc<SyncSender>>,
        telemetry: FlowTelemetry,
        stored: HashMap<TopicPartition, StoredProgress>,
        stop: Stop,
    ) -> Copier {
        Copier {
            flow,
            index,
            producer,
            consumer,
            syncs,
            telemetry,
            stop,
            stored,
            lookup: HashMap::new(),
            last_slot: None,
            next_offset: Vec::new(),
            jumps: HashMap::new(),
            transaction: None,
            stopped_while_sending: false,
            deleted_records_suspected: false,
            consumer_warnings: AtomicI64::new(0),
        }
    }

    pub fn producer_context(&self) -> &TargetContext {
        self.producer.context()
    }

    /// The log start of each of `partitions`, in batched requests (one round trip per partition
    /// took seconds at thousands).
    fn log_starts(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<crate::kafka::offsets::Offsets, crate::kafka::native::NativeError> {
        list_offsets(
            self.consumer.client(),
            partitions,
            Spec::Earliest,
            false,
            Duration::from_secs(5),
        )
    }

    /// Makes the next progress flush write these partitions' progress although it did not move
    /// (progress taken over from another tool's offsets topic).
    pub fn mark_unstored(&self, partitions: &[TopicPartition]) {
        let slots = self.producer.context().slots();
        for (topic, partition) in partitions {
            if let Some(index) = self.lookup.get(topic).and_then(|p| p.get(partition)) {
                let slot = &slots[*index];
                slot.storing
                    .fetch_min(slot.stored.load(Ordering::Acquire) - 1, Ordering::AcqRel);
            }
        }
    }

    /// The active slots (not removed), with their index.
    pub fn active_slots(&self) -> Vec<(usize, Arc<Slot>)> {
        let slots = self.producer.context().slots();
        self.lookup
            .values()
            .flat_map(|per_topic| per_topic.values())
            .map(|&index| (index, slots[index].clone()))
            .collect()
    }

    /// Moves to exactly `wanted`: stops reading partitions no longer wanted and starts the new ones
    /// from stored progress (one record at a time where `held` says so).
    pub fn assign(
        &mut self,
        (wanted, held): &(PartitionSet, Arc<HeldPartitions>),
    ) -> Result<(), TaskFailure> {
        let current: PartitionSet = self
            .lookup
            .iter()
            .flat_map(|(topic, per)| per.keys().map(move |p| (topic.clone(), *p)))
            .collect();
        let removed: Vec<TopicPartition> = current.difference(wanted).cloned().collect();
        let added: Vec<TopicPartition> = wanted.difference(&current).cloned().collect();
        self.remove_partitions(&removed);
        self.add_partitions(&added, held)
    }

    fn add_partitions(
        &mut self,
        partitions: &[TopicPartition],
        held: &HeldPartitions,
    ) -> Result<(), TaskFailure> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        let start_at_end = matches!(
            self.flow.clients[&ClientRole::SourceConsumer]
                .settings
                .get("auto.offset.reset")
                .map(String::as_str),
            Some("latest" | "largest" | "end")
        );
        // Partitions without stored progress start at their log start, and those resuming from
        // stored progress are checked against theirs (records deleted while stopped), all asked
        // in batched requests: a logical offset makes librdkafka look each partition up on its
        // own, which took 10 s before the first record at 2,000 partitions. Asked before the
        // partitions are assigned: once the consumer fetches, the broker holds each fetch of
        // caught-up partitions up to `fetch.wait.max.ms` and answers a connection's requests in
        // order, so every batch waited behind a held fetch (8 s at 2,000 partitions).
        let needs_start: Vec<TopicPartition> = partitions
            .iter()
            .filter(|key| {
                let stored = self.stored.get(*key);
                let resumes = stored.is_some_and(|s| s.offset >= 0);
                (!resumes && !start_at_end) || (stored.is_some() && self.skips_deleted_records())
            })
            .cloned()
            .collect();
        let log_starts = if needs_start.is_empty() {
            Default::default()
        } else {
            self.log_starts(&needs_start).unwrap_or_default()
        };
        for (topic, partition) in partitions {
            let stored = self.stored.get(&(topic.clone(), *partition)).copied();
            let target_topic = self
                .flow
                .replication_policy
                .format_remote_topic(&self.flow.id.source, topic);
            let metrics = self.telemetry.metrics.source_partition(
                &self.flow.id,
                topic,
                &target_topic,
                *partition,
            );
            let one_by_one_until = match held.get(&(topic.clone(), *partition)) {
                Some(Hold::OneByOneUntil(offset)) => *offset,
                _ => -1,
            };
            let slot = Slot::new(
                topic,
                *partition,
                target_topic,
                stored,
                metrics,
                one_by_one_until,
            );
            let Some(index) = self.producer.context().push_slot(slot) else {
                // Too many partitions came and went in this task's life: start afresh.
                return Err(TaskFailure::Unavailable(
                    "too many partition changes; restarting the task".into(),
                ));
            };
            self.lookup
                .entry(topic.clone())
                .or_default()
                .insert(*partition, index);
            // Resume after the last replicated record; otherwise `auto.offset.reset` (earliest,
            // as MM2).
            let (offset, next) = match stored.map(|stored| stored.offset) {
                Some(offset) if offset >= 0 => (Offset::Offset(offset + 1), offset + 1),
                _ if start_at_end => (Offset::End, -1),
                _ => match log_starts.get(&(topic.clone(), *partition)) {
                    Some(Ok(low)) if *low >= 0 => (Offset::Offset(*low), *low),
                    _ => (Offset::Beginning, -1),
                },
            };
            self.next_offset.resize(index + 1, -1);
            self.next_offset[index] = next;
            assignment
                .add_partition_offset(topic, *partition, offset)
                .map_err(|e| TaskFailure::Client(e.to_string()))?;
        }
        self.consumer
            .incremental_assign(&assignment)
            .map_err(|e| TaskFailure::Client(e.to_string()))?;
        self.check_deleted_while_stopped(partitions, &log_starts);
        Ok(())
    }

    /// Whether the consumer skips records deleted under it (`auto.offset.reset` other than
    /// `none`); with `none` the fetch fails and the partition is held instead (`check_resets`).
    fn skips_deleted_records(&self) -> bool {
        !matches!(
            self.flow.clients[&ClientRole::SourceConsumer]
                .settings
                .get("auto.offset.reset")
                .map(String::as_str),
            Some("error")
        )
    }

    /// Reports records deleted at the source (retention, DeleteRecords) while nothing replicated
    /// them: MM2 skips them silently. `log_starts` holds the log start of each partition resuming
    /// from stored progress.
    fn check_deleted_while_stopped(
        &mut self,
        partitions: &[TopicPartition],
        log_starts: &crate::kafka::offsets::Offsets,
    ) {
        if !self.skips_deleted_records() {
            return;
        }
        for key in partitions {
            let Some(resume_at) = self.stored.get(key).map(|stored| stored.offset + 1) else {
                continue;
            };
            if let Some(Ok(low)) = log_starts.get(key) {
                if resume_at < *low {
                    self.report_skipped(&key.0, key.1, resume_at, *low, "while stopped");
                }
            }
        }
    }

    fn report_skipped(&self, topic: &str, partition: i32, next: i64, log_start: i64, when: &str) {
        let skipped = log_start - next;
        warn!(flow = %self.flow.id, topic = %topic, partition, next, log_start, skipped, when,
            "records were deleted from the source before they were replicated; resuming at the earliest offset left");
        self.telemetry
            .metrics
            .records_skipped(&self.flow.id, topic, partition, skipped as u64);
        self.telemetry
            .status
            .add_skipped(topic, partition, skipped as u64);
    }

    fn remove_partitions(&mut self, partitions: &[TopicPartition]) {
        if partitions.is_empty() {
            return;
        }
        self.last_slot = None;
        let mut assignment = TopicPartitionList::new();
        let slots = self.producer.context().slots().clone();
        for (topic, partition) in partitions {
            assignment.add_partition(topic, *partition);
            let removed = self
                .lookup
                .get_mut(topic)
                .and_then(|per_topic| per_topic.remove(partition));
            if self.lookup.get(topic).is_some_and(HashMap::is_empty) {
                self.lookup.remove(topic);
            }
            if let Some(index) = removed {
                slots[index].retired.store(true, Ordering::Release);
                // Its acknowledged progress is kept for a later add (a held partition retried).
                let offset = slots[index].safe_progress();
                let next_downstream =
                    slots[index].with_runs(|runs| runs.next_downstream_after(offset));
                self.stored.insert(
                    (topic.clone(), *partition),
                    StoredProgress {
                        offset,
                        next_downstream,
                    },
                );
                if let Some(syncs) = &self.syncs {
                    syncs.forget(index);
                }
            }
        }
        if let Err(error) = self.consumer.incremental_unassign(&assignment) {
            warn!(flow = %self.flow.id, task = self.index, "cannot stop reading removed partitions: {error}");
        }
    }

    /// Polls one record and copies it. `None`: nothing arrived.
    pub fn poll(&mut self, timeout: Duration) -> Option<Result<(), KafkaError>> {
        let message = match self.consumer.poll(timeout)? {
            Ok(message) => message,
            Err(error) => return Some(Err(error)),
        };
        // The borrow of the consumer ends with `message`; copy what `replicate` needs first.
        let outcome = replicate(
            &self.producer,
            &self.flow,
            &self.stop,
            &mut self.lookup,
            &mut self.last_slot,
            &mut self.next_offset,
            &mut self.jumps,
            &mut self.transaction,
            &self.telemetry,
            &message,
            self.consumer.context().reset_seen.load(Ordering::Acquire),
        );
        drop(message);
        match outcome {
            Sent::Yes | Sent::Ignored => {}
            Sent::Stopped => self.stopped_while_sending = true,
        }
        Some(Ok(()))
    }

    pub fn take_stopped_while_sending(&mut self) -> bool {
        std::mem::take(&mut self.stopped_while_sending)
    }

    /// The first record the target refused, as a failure naming the partition and the offsets.
    pub fn first_refusal(&self) -> Option<TaskFailure> {
        self.active_slots()
            .into_iter()
            .filter_map(|(_, slot)| slot.failure().map(|failure| (slot, failure)))
            .min_by_key(|(_, (first, _, _))| *first)
            .map(|(slot, (first, last, reason))| {
                refused(&slot.source_topic, slot.partition, first, last, &reason)
            })
    }

    /// Counts transaction markers and aborted records as replicated: a partition whose every
    /// consumed record is acknowledged, and whose consumer position moved past them (it skips
    /// control records and, with `read_committed`, aborted ones), is replicated up to that
    /// position. So its stored progress and lag reach the source's end, which is what a
    /// `read_committed` reader of the source can get. Returns the slots that moved.
    pub fn advance_past_markers(&mut self) -> Vec<usize> {
        let Ok(positions) = self.consumer.position() else {
            return Vec::new();
        };
        // One pass over the list: looking each partition up in it is a linear search.
        let positions: HashMap<(String, i32), i64> = positions
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => {
                    Some(((element.topic().to_string(), element.partition()), offset))
                }
                _ => None,
            })
            .collect();
        let mut moved = Vec::new();
        for (index, slot) in self.active_slots() {
            let next = self.next_offset.get(index).copied().unwrap_or(-1);
            if next < 0 || slot.failed.load(Ordering::Acquire) != i64::MAX {
                continue;
            }
            if slot.acked.load(Ordering::Acquire) + 1 != next {
                continue; // records in flight
            }
            let position = positions
                .get(&(slot.source_topic.clone(), slot.partition))
                .copied();
            if let Some(position) = position.filter(|position| *position > next) {
                // The history learns where the next record goes before progress may pass the
                // markers; unknown (nothing copied since another tool stored the progress), the
                // markers wait for the next record.
                if !slot.with_runs(|runs| runs.skipped_to(position)) {
                    continue;
                }
                slot.acked.fetch_max(position - 1, Ordering::AcqRel);
                self.next_offset[index] = position;
                moved.push(index);
            }
        }
        moved
    }

    pub fn suspect_deleted_records(&mut self) {
        self.deleted_records_suspected = true;
    }

    pub fn warn_consumer_error(&self, error: &KafkaError) {
        super::warn_rate_limited(&self.flow, self.index, &self.consumer_warnings, error);
    }

    /// Handles position resets: counts records librdkafka skipped after "offset out of range"
    /// (retention outran replication, or DeleteRecords), and with `auto.offset.reset = none` ends
    /// the task naming the partition whose next record is gone.
    pub fn check_resets(&mut self) -> Result<(), TaskFailure> {
        for (topic, partition) in self.consumer.context().take_resets() {
            let Some(index) = self
                .lookup
                .get(&topic)
                .and_then(|p| p.get(&partition))
                .copied()
            else {
                continue;
            };
            let next = self.next_offset.get(index).copied().unwrap_or(-1);
            if next < 0 {
                continue;
            }
            if let Ok((low, _)) =
                self.consumer
                    .fetch_watermarks(&topic, partition, Duration::from_secs(2))
            {
                if low > next {
                    self.report_skipped(&topic, partition, next, low, "while running");
                    self.next_offset[index] = self.next_offset[index].max(low);
                }
            }
        }
        if !std::mem::take(&mut self.deleted_records_suspected) {
            return Ok(());
        }
        let pending: Vec<(TopicPartition, i64)> = self
            .active_slots()
            .into_iter()
            .filter_map(|(index, slot)| {
                let next = self.next_offset.get(index).copied().unwrap_or(-1);
                (next >= 0).then(|| ((slot.source_topic.clone(), slot.partition), next))
            })
            .collect();
        let keys: Vec<TopicPartition> = pending.iter().map(|(key, _)| key.clone()).collect();
        let Ok(log_starts) = self.log_starts(&keys) else {
            return Ok(());
        };
        for ((topic, partition), next) in pending {
            if let Some(Ok(low)) = log_starts.get(&(topic.clone(), partition)) {
                if *low > next {
                    return Err(TaskFailure::SourceRecordsDeleted {
                        topic,
                        partition,
                        next,
                        log_start: *low,
                        skipped: *low - next,
                    });
                }
            }
        }
        Ok(())
    }
}

/// How a poison record is reported: the reason from the producer, and what to do about it.
/// `last` is the last offset of the refused request (a batch is refused as a whole).
pub(super) fn refused(
    topic: &str,
    partition: i32,
    offset: i64,
    last: i64,
    reason: &str,
) -> TaskFailure {
    let fix = if reason.contains("too large") || reason.contains("TooLarge") {
        "raise `max.message.bytes` of the remote topic (and the target producer's `message.max.bytes`, e.g. `B.producer.max.request.size`) above the record's size"
    } else if reason.contains("uthoriz") {
        "allow the target principal WRITE on the remote topic"
    } else {
        "check the target broker's log for why it refuses the record; the partition is retried with backoff and nothing after it is skipped"
    };
    TaskFailure::Rejected {
        topic: topic.to_string(),
        partition,
        offset,
        last_offset: last.max(offset),
        reason: reason.to_string(),
        fix: fix.to_string(),
    }
}

/// What became of a polled record.
enum Sent {
    Yes,
    /// Not ours any more (a partition just removed).
    Ignored,
    /// The producer queue stayed full until a stop was requested: not sent, not acknowledged,
    /// so not stored either — sent again after the restart.
    Stopped,
}

/// Sends one source record to the same partition of the remote topic.
#[allow(clippy::too_many_arguments)]
fn replicate(
    producer: &QuietProducer<TargetContext>,
    flow: &FlowPlan,
    stop: &Stop,
    lookup: &mut HashMap<String, HashMap<i32, usize>>,
    last_slot: &mut Option<(String, i32, usize)>,
    next_offset: &mut [i64],
    jumps: &mut HashMap<usize, i64>,
    transaction: &mut Option<OpenTransaction>,
    telemetry: &FlowTelemetry,
    message: &BorrowedMessage<'_>,
    reset_seen: bool,
) -> Sent {
    let (topic, partition) = (message.topic(), message.partition());
    let slot_index = match last_slot {
        Some((last_topic, last_partition, slot))
            if *last_partition == partition && last_topic == topic =>
        {
            *slot
        }
        _ => match lookup.get(topic).and_then(|per| per.get(&partition)) {
            Some(&slot) => {
                *last_slot = Some((topic.to_string(), partition, slot));
                slot
            }
            None => return Sent::Ignored,
        },
    };
    let upstream = message.offset();
    let slots = producer.context().slots();
    let slot = &slots[slot_index];
    if !(0..=delivery::MAX_OFFSET).contains(&upstream) {
        slot.fail(
            upstream,
            format!("source offset {upstream} is beyond the delivery bookkeeping (2^46)"),
        );
        producer.context().any_failed.store(true, Ordering::Release);
        return Sent::Yes;
    }
    if let Some(next) = next_offset.get_mut(slot_index) {
        if reset_seen && upstream > *next && *next >= 0 {
            jumps.entry(slot_index).or_insert(*next);
        }
        *next = upstream + 1;
    }
    if flow.exactly_once.enabled && transaction.is_none() {
        if let Err(error) = producer.begin_transaction() {
            slot.fail(upstream, format!("cannot begin a transaction: {error}"));
            producer.context().any_failed.store(true, Ordering::Release);
            return Sent::Yes;
        }
        *transaction = Some(OpenTransaction {
            started: Instant::now(),
            records: 0,
            last_offsets: HashMap::new(),
        });
    }
    // Headers are copied with librdkafka's own copy, byte for byte: key names that are not UTF-8
    // (which Java clients decode with replacement characters) or contain NUL stay as they are.
    let headers = message.headers().map(|borrowed| {
        if let Some(unusual) = crate::kafka::headers::unusual_key(message) {
            telemetry
                .status
                .note_unusual(topic, partition, upstream, unusual.describe());
        }
        borrowed.detach()
    });
    let mut record = BaseRecord::with_opaque_to(
        slot.target_topic.as_str(),
        delivery::opaque(slot_index, upstream, delivery::Written::Record),
    )
    .partition(partition);
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    if let Some(timestamp) = message.timestamp().to_millis() {
        record = record.timestamp(timestamp);
    }
    if let Some(headers) = headers {
        record = record.headers(headers);
    }
    loop {
        let served = producer.reports_served();
        match producer.send(record) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                // Backpressure: the target is slower than the source; wait for room (the next
                // delivery reports served), but never past a stop request (a frozen target would
                // otherwise hold the task forever).
                if stop.is_requested() {
                    return Sent::Stopped;
                }
                record = returned;
                producer.wait_for_room(served, ROOM_WAIT);
            }
            Err((error, _)) => {
                // Refused before it left (e.g. larger than `message.max.bytes`).
                slot.fail(upstream, error.to_string());
                producer.context().any_failed.store(true, Ordering::Release);
                return Sent::Yes;
            }
        }
    }
    if let Some(transaction) = transaction {
        transaction.records += 1;
        transaction.last_offsets.insert(slot_index, upstream);
    }
    if upstream <= slot.one_by_one_until && !flow.exactly_once.enabled {
        // On trial after a refused batch: this record alone, acknowledged before the next.
        while producer.flush(Duration::from_millis(100)).is_err() {
            if stop.is_requested() {
                return Sent::Stopped;
            }
        }
    }
    Sent::Yes
}
