//! One source task (MM2's MirrorSourceTask on Connect's worker): consumes its partitions from the
//! source and produces every record to the same partition of the remote topic on the target, with
//! the same key, value, headers and timestamp, in order.
//!
//! Progress: a partition's stored offset (in `mm2-offsets.<source>.internal` on the target, Connect's
//! format) only ever names a record the target acknowledged, together with every record before it.
//! Delivery reports arrive in order per partition (the producer is idempotent, or limited to one
//! request in flight), so "acknowledged up to" is a single atomic per partition; a failed delivery
//! caps it below the failed record and restarts the task. In exactly-once mode records and their
//! source offsets are committed to the target in one transaction instead.
//!
//! Threads: this task runs on one blocking thread (consume → produce); the target producer's own
//! thread runs delivery callbacks, which update progress and queue offset syncs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use super::assignment::{TaskChanges, TopicPartition};
use super::offset_syncs::{OffsetSyncQueue, MAX_IN_FLIGHT_SYNCS};
use super::records::{source_offset_key, source_offset_value};
use super::stored_offsets;
use crate::kafka::context::{LoggingContext, SourceConsumerContext};
use crate::metrics::{ReplicatedBatch, SourcePartitionMetrics};
use crate::plan::clients::ClientRole;
use crate::plan::{FlowPlan, OffsetSyncsLocation};
use crate::status::FlowState;

/// Opaque of a source-offset record (not a replicated record).
const PROGRESS_OPAQUE: usize = usize::MAX;
/// Replicated records carry `slot << OFFSET_BITS | upstream offset` as their delivery opaque.
const OFFSET_BITS: u32 = 48;
const OFFSET_MASK: usize = (1 << OFFSET_BITS) - 1;
/// A transaction is committed after this many records or this long, whichever comes first.
const TRANSACTION_MAX_RECORDS: usize = 20_000;
const TRANSACTION_MAX_AGE: Duration = Duration::from_millis(200);

/// Why a task stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("cannot create a Kafka client: {0}")]
    Client(#[source] KafkaError),
    #[error("cannot read stored progress: {0}")]
    Progress(String),
    #[error("the target did not accept `{topic}` partition {partition} at source offset {offset}: {reason}")]
    Delivery {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("transaction failed: {0}")]
    Transaction(#[source] KafkaError),
    #[error("source offset {0} does not fit the delivery bookkeeping (2^48)")]
    OffsetTooLarge(i64),
}

impl TaskError {
    /// A bounded label for `kafka_mirrord_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskError::Client(_) => "client",
            TaskError::Progress(_) => "progress",
            TaskError::Delivery { .. } => "delivery",
            TaskError::Transaction(_) => "transaction",
            TaskError::OffsetTooLarge(_) => "offset",
        }
    }
}

/// Counters a task shares with the flow (status, metrics).
#[derive(Debug, Default)]
pub struct TaskCounters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
}

/// What the flow hands a task.
pub struct TaskInput {
    pub flow: Arc<FlowPlan>,
    pub index: usize,
    pub partitions: Vec<TopicPartition>,
    /// Partitions added or removed while running.
    pub changes: mpsc::Receiver<TaskChanges>,
    /// Set to stop gracefully: drain in-flight records, store progress, return.
    pub stop: Arc<AtomicBool>,
    pub counters: Arc<TaskCounters>,
    pub telemetry: super::Telemetry,
}

/// One source partition of this task.
struct Slot {
    source_topic: String,
    partition: i32,
    target_topic: String,
    /// Highest upstream offset the target acknowledged (all earlier ones too); -1 before any.
    acked: AtomicI64,
    /// Lowest upstream offset whose delivery failed; `i64::MAX` while none did.
    failed: AtomicI64,
    /// Last offset written to the offsets topic (owned by the task thread).
    stored: AtomicI64,
    metrics: SourcePartitionMetrics,
    /// Filled by the delivery callback, published by the task loop (see `publish_metrics`).
    replicated: Mutex<ReplicatedBatch>,
}

impl Slot {
    /// The offset that may be stored: acknowledged, and below any failure.
    fn safe_progress(&self) -> i64 {
        let acked = self.acked.load(Ordering::Acquire);
        let failed = self.failed.load(Ordering::Acquire);
        if failed == i64::MAX {
            acked
        } else {
            acked.min(failed - 1)
        }
    }
}

/// Delivery callbacks of the target producer.
struct TargetContext {
    slots: RwLock<Vec<Arc<Slot>>>,
    /// Offset syncs queued from acknowledged records (MM2's `commitRecord`).
    syncs: Option<Arc<SyncSender>>,
    /// Exactly-once: acknowledgements wait here until their transaction committed.
    transactional_acks: Option<Mutex<Vec<(usize, i64, i64)>>>,
    first_error: Mutex<Option<TaskError>>,
    /// Set with `first_error`, so the hot loop checks an atomic instead of taking the lock.
    failed: AtomicBool,
    counters: Arc<TaskCounters>,
    logging: LoggingContext,
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
        if opaque == PROGRESS_OPAQUE {
            if let Err((error, _)) = result {
                warn!("failed to store source offsets (will retry at the next flush): {error}");
            }
            return;
        }
        let slot_index = opaque >> OFFSET_BITS;
        let upstream = (opaque & OFFSET_MASK) as i64;
        let slots = self.slots.read().expect("slots lock");
        let Some(slot) = slots.get(slot_index) else {
            return;
        };
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
                slot.replicated.lock().expect("metrics batch lock").record(
                    message.payload_len() as u64,
                    latency_ms,
                    latency_ms,
                );
                match &self.transactional_acks {
                    Some(pending) => pending.lock().expect("acks lock").push((
                        slot_index,
                        upstream,
                        message.offset(),
                    )),
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
                slot.failed.fetch_min(upstream, Ordering::AcqRel);
                let mut first = self.first_error.lock().expect("error lock");
                self.failed.store(true, Ordering::Release);
                if first.is_none() {
                    *first = Some(TaskError::Delivery {
                        topic: slot.source_topic.clone(),
                        partition: slot.partition,
                        offset: upstream,
                        reason: error.to_string(),
                    });
                }
            }
        }
    }
}

/// Sends offset syncs (to the source or target cluster) with at most 10 in flight (§6.10).
pub struct SyncSender {
    queue: Mutex<OffsetSyncQueue>,
    producer: ThreadedProducer<SyncContext>,
    topic: String,
}

pub struct SyncContext {
    logging: LoggingContext,
    in_flight: AtomicUsize,
    /// The sender owning this producer, to send pending syncs as soon as a permit frees up.
    sender: std::sync::OnceLock<std::sync::Weak<SyncSender>>,
}

impl ClientContext for SyncContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.logging.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl ProducerContext for SyncContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Err((error, _)) = result {
            warn!("failure sending offset sync: {error}");
        }
        // MM2 only fires pending syncs on the next acknowledged record or offset flush, so a burst
        // on one partition can starve another's syncs (KAFKA-14610/KAFKA-12558); we send them as
        // soon as a permit is free. Which syncs are pending is unchanged.
        if let Some(sender) = self.sender.get().and_then(std::sync::Weak::upgrade) {
            let mut queue = sender.queue.lock().expect("sync queue lock");
            sender.fire(&mut queue);
        }
    }
}

impl SyncSender {
    fn queue(&self, slot: usize, topic: &str, partition: i32, upstream: i64, downstream: i64) {
        let mut queue = self.queue.lock().expect("sync queue lock");
        queue.maybe_queue(slot, topic, partition, upstream, downstream);
        self.fire(&mut queue);
    }

    fn promote_and_fire(&self) {
        let mut queue = self.queue.lock().expect("sync queue lock");
        queue.promote_delayed();
        self.fire(&mut queue);
    }

    fn fire(&self, queue: &mut OffsetSyncQueue) {
        let in_flight = self.producer.context().in_flight.load(Ordering::Acquire);
        for sync in queue.take_sendable(MAX_IN_FLIGHT_SYNCS.saturating_sub(in_flight)) {
            let key = sync.key();
            let value = sync.value();
            self.producer
                .context()
                .in_flight
                .fetch_add(1, Ordering::AcqRel);
            let record = BaseRecord::to(&self.topic)
                .partition(0)
                .key(&key)
                .payload(&value);
            if let Err((error, _)) = self.producer.send(record) {
                self.producer
                    .context()
                    .in_flight
                    .fetch_sub(1, Ordering::AcqRel);
                warn!("failure sending offset sync: {error}");
            }
        }
    }
}

/// Runs a task until `stop` is set or it fails. Blocking.
pub fn run(input: TaskInput) -> Result<(), TaskError> {
    let flow = input.flow.clone();
    let exactly_once = flow.exactly_once.enabled;
    let client = |role: ClientRole| flow.clients.get(&role).map(|c| c.client_config());

    let syncs = if flow.offset_syncs.enabled {
        let config = client(ClientRole::OffsetSyncsProducer).expect("planned with offset syncs");
        let context = SyncContext {
            logging: LoggingContext::new("offset-syncs-producer"),
            in_flight: AtomicUsize::new(0),
            sender: std::sync::OnceLock::new(),
        };
        let producer = config
            .create_with_context(context)
            .map_err(TaskError::Client)?;
        let sender = Arc::new(SyncSender {
            queue: Mutex::new(OffsetSyncQueue::new(flow.source.offset_lag_max)),
            producer,
            topic: flow.offset_syncs.topic.clone(),
        });
        let _ = sender
            .producer
            .context()
            .sender
            .set(Arc::downgrade(&sender));
        Some(sender)
    } else {
        None
    };

    let mut producer_config = client(ClientRole::TargetProducer).expect("planned");
    if exactly_once {
        producer_config.set(
            "transactional.id",
            format!(
                "{}-{}",
                flow.exactly_once.transactional_id_prefix, input.index
            ),
        );
    }
    let context = TargetContext {
        slots: RwLock::new(Vec::new()),
        syncs: syncs.clone(),
        transactional_acks: exactly_once.then(|| Mutex::new(Vec::new())),
        first_error: Mutex::new(None),
        failed: AtomicBool::new(false),
        counters: input.counters.clone(),
        logging: LoggingContext::new("target-producer"),
    };
    let producer: ThreadedProducer<TargetContext> = producer_config
        .create_with_context(context)
        .map_err(TaskError::Client)?;
    let timeout = Duration::from_millis(flow.admin_timeout_ms as u64);
    if exactly_once {
        // Fences any earlier instance of this task and aborts its open transaction, so the progress
        // read below is final (Connect does the same before a task starts).
        producer
            .init_transactions(timeout)
            .map_err(TaskError::Transaction)?;
    }

    let target_consumer = client(ClientRole::TargetConsumer).expect("planned");
    let stored = stored_offsets::load(
        &target_consumer,
        &flow.offset_storage.topic,
        &flow.id.source,
        timeout,
    )
    .map_err(TaskError::Progress)?;
    let read_committed = flow.clients[&ClientRole::SourceConsumer]
        .settings
        .get("isolation.level")
        .map(String::as_str)
        != Some("read_uncommitted");
    let consumer: BaseConsumer<SourceConsumerContext> = client(ClientRole::SourceConsumer)
        .expect("planned")
        .create_with_context(SourceConsumerContext::new(read_committed))
        .map_err(TaskError::Client)?;

    let mut task = Task {
        flow: flow.clone(),
        index: input.index,
        producer,
        syncs,
        telemetry: input.telemetry.clone(),
        stored,
        lookup: HashMap::new(),
        last_slot: None,
        transaction: None,
    };
    task.add_partitions(&consumer, &input.partitions)?;
    info!(flow = %flow.id, task = input.index, partitions = input.partitions.len(), exactly_once, "source task started");

    input
        .telemetry
        .flow_state(&flow.id, FlowState::Running, None);
    let flush_interval = Duration::from_millis(flow.offset_storage.flush_interval_ms as u64);
    let mut last_flush = Instant::now();
    let mut last_report = Instant::now();
    let mut last_publish = Instant::now();
    const METRICS_EVERY: Duration = Duration::from_millis(100);
    // Housekeeping (partition changes, timers) runs every HOUSEKEEPING_EVERY records or when a
    // poll comes back empty: reading the clock per record cost several percent of the CPU.
    const HOUSEKEEPING_EVERY: u32 = 256;
    let mut since_housekeeping = HOUSEKEEPING_EVERY;
    let result = loop {
        if input.stop.load(Ordering::Acquire) {
            break Ok(());
        }
        if task.producer.context().failed.load(Ordering::Acquire) {
            let error = task
                .producer
                .context()
                .first_error
                .lock()
                .expect("error lock")
                .take();
            if let Some(error) = error {
                break Err(error);
            }
        }
        if since_housekeeping >= HOUSEKEEPING_EVERY {
            since_housekeeping = 0;
            if last_publish.elapsed() >= METRICS_EVERY {
                task.publish_metrics();
                last_publish = Instant::now();
            }
            while let Ok(changes) = input.changes.try_recv() {
                task.remove_partitions(&consumer, &changes.removed);
                task.add_partitions(&consumer, &changes.added)?;
            }
            if !exactly_once && last_flush.elapsed() >= flush_interval {
                task.store_progress();
                last_flush = Instant::now();
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                task.report_progress(&consumer);
                last_report = Instant::now();
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                since_housekeeping += 1;
                if let Err(error) = task.replicate(&message) {
                    break Err(error);
                }
            }
            Some(Err(error)) => {
                since_housekeeping = HOUSEKEEPING_EVERY;
                warn_rate_limited(&flow, input.index, &error)
            }
            None => since_housekeeping = HOUSEKEEPING_EVERY,
        }
        // Exactly-once commits on its own size/time rules (checked every record, as before).
        if exactly_once {
            if let Err(error) = task.maybe_commit(false) {
                break Err(error);
            }
        }
    };
    task.drain(timeout, result.is_ok());
    task.publish_metrics();
    task.report_progress(&consumer);
    result
}

fn warn_rate_limited(flow: &FlowPlan, task: usize, error: &KafkaError) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    if crate::clock::once_per(&LAST, 10) {
        warn!(flow = %flow.id, task, "source consumer: {error}");
    } else {
        debug!(flow = %flow.id, task, "source consumer: {error}");
    }
}

/// An open exactly-once transaction.
struct OpenTransaction {
    started: Instant,
    records: usize,
    /// Slot → last upstream offset sent in this transaction.
    last_offsets: HashMap<usize, i64>,
}

struct Task {
    flow: Arc<FlowPlan>,
    index: usize,
    producer: ThreadedProducer<TargetContext>,
    syncs: Option<Arc<SyncSender>>,
    telemetry: super::Telemetry,
    /// Stored progress read at start: (topic, partition) → last replicated upstream offset.
    stored: HashMap<TopicPartition, i64>,
    /// Source topic → slot index per partition number.
    lookup: HashMap<String, HashMap<i32, usize>>,
    /// The last (topic, partition, slot) found in `lookup`; cleared when partitions are removed.
    last_slot: Option<(String, i32, usize)>,
    transaction: Option<OpenTransaction>,
}

impl Task {
    fn add_partitions(
        &mut self,
        consumer: &BaseConsumer<SourceConsumerContext>,
        partitions: &[TopicPartition],
    ) -> Result<(), TaskError> {
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
        let mut slots = self.producer.context().slots.write().expect("slots lock");
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
            let replicated = Mutex::new(metrics.batch());
            let slot = Arc::new(Slot {
                source_topic: topic.clone(),
                partition: *partition,
                target_topic,
                acked: AtomicI64::new(stored.unwrap_or(-1)),
                failed: AtomicI64::new(i64::MAX),
                stored: AtomicI64::new(stored.unwrap_or(-1)),
                metrics,
                replicated,
            });
            self.lookup
                .entry(topic.clone())
                .or_default()
                .insert(*partition, slots.len());
            slots.push(slot);
            // Resume after the last replicated record; otherwise `auto.offset.reset` (earliest, as MM2).
            let offset = match stored {
                Some(offset) if offset >= 0 => Offset::Offset(offset + 1),
                _ if start_at_end => Offset::End,
                _ => Offset::Beginning,
            };
            assignment
                .add_partition_offset(topic, *partition, offset)
                .map_err(TaskError::Client)?;
        }
        drop(slots);
        consumer
            .incremental_assign(&assignment)
            .map_err(TaskError::Client)?;
        // Seed end offsets so lag is known at once, even if this task fails before librdkafka's
        // first statistics (a stalled partition must show its lag while the task retries).
        let mut end_offsets = consumer
            .context()
            .end_offsets
            .lock()
            .expect("end offsets lock");
        for (topic, partition) in partitions {
            if let Ok((low, high)) =
                consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5))
            {
                end_offsets
                    .entry((topic.clone(), *partition))
                    .or_insert(high);
                let resume_at = self.stored.get(&(topic.clone(), *partition)).map(|o| o + 1);
                if let Some(resume_at) = resume_at.filter(|&next| next < low) {
                    // Retention (or a delete-records call) outran replication while we were
                    // stopped: these records never reached the target. MM2 skips them silently.
                    warn!(flow = %self.flow.id, topic = %topic, partition = *partition,
                        stored_next = resume_at, log_start = low, skipped = low - resume_at,
                        "records were deleted from the source before they were replicated; resuming at the earliest offset left");
                }
            }
        }
        Ok(())
    }

    fn remove_partitions(
        &mut self,
        consumer: &BaseConsumer<SourceConsumerContext>,
        partitions: &[TopicPartition],
    ) {
        if partitions.is_empty() {
            return;
        }
        self.last_slot = None;
        let mut assignment = TopicPartitionList::new();
        for (topic, partition) in partitions {
            assignment.add_partition(topic, *partition);
            let slot = self
                .lookup
                .get_mut(topic)
                .and_then(|per_topic| per_topic.remove(partition));
            if let (Some(slot), Some(syncs)) = (slot, &self.syncs) {
                syncs.queue.lock().expect("sync queue lock").forget(slot);
            }
            self.telemetry
                .metrics
                .remove_source_partition(&self.flow.id, topic, *partition);
            self.telemetry
                .status
                .remove_partition(&self.flow.id, topic, *partition);
        }
        if let Err(error) = consumer.incremental_unassign(&assignment) {
            warn!(flow = %self.flow.id, task = self.index, "cannot stop reading removed partitions: {error}");
        }
    }

    /// The slot of a source partition. Records come in runs from one partition (a fetched batch),
    /// so the last answer is kept and reused without hashing the topic name again.
    fn slot_of(&mut self, topic: &str, partition: i32) -> Option<usize> {
        if let Some((last_topic, last_partition, slot)) = &self.last_slot {
            if *last_partition == partition && last_topic == topic {
                return Some(*slot);
            }
        }
        let slot = *self.lookup.get(topic)?.get(&partition)?;
        self.last_slot = Some((topic.to_string(), partition, slot));
        Some(slot)
    }

    /// Sends one source record to the same partition of the remote topic.
    fn replicate(&mut self, message: &BorrowedMessage<'_>) -> Result<(), TaskError> {
        let Some(slot_index) = self.slot_of(message.topic(), message.partition()) else {
            return Ok(()); // a partition that was just removed
        };
        let upstream = message.offset();
        if upstream < 0 || upstream as u64 > OFFSET_MASK as u64 {
            return Err(TaskError::OffsetTooLarge(upstream));
        }
        if self.flow.exactly_once.enabled && self.transaction.is_none() {
            self.producer
                .begin_transaction()
                .map_err(TaskError::Transaction)?;
            self.transaction = Some(OpenTransaction {
                started: Instant::now(),
                records: 0,
                last_offsets: HashMap::new(),
            });
        }
        // Held for the send: slots only change on this thread (add_partitions), and the delivery
        // callback only reads them, so this never blocks; it saves a String clone per record.
        let slots = self.producer.context().slots.read().expect("slots lock");
        let target_topic = slots[slot_index].target_topic.as_str();
        let headers = message.headers().map(|borrowed| {
            borrowed.iter().fold(
                OwnedHeaders::new_with_capacity(borrowed.count()),
                |owned, header| {
                    owned.insert(Header {
                        key: header.key,
                        value: header.value,
                    })
                },
            )
        });
        let opaque = (slot_index << OFFSET_BITS) | upstream as usize;
        let mut record =
            BaseRecord::with_opaque_to(target_topic, opaque).partition(message.partition());
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
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    // Backpressure: the target is slower than the source; wait for room.
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    return Err(TaskError::Delivery {
                        topic: message.topic().to_string(),
                        partition: message.partition(),
                        offset: upstream,
                        reason: error.to_string(),
                    })
                }
            }
        }
        if let Some(transaction) = &mut self.transaction {
            transaction.records += 1;
            transaction.last_offsets.insert(slot_index, upstream);
        }
        Ok(())
    }

    /// Moves what the delivery callback gathered into the exported metrics and the flow's
    /// counters. Runs from the task loop's housekeeping, at most every 100 ms (and once more after
    /// the final drain), so the metrics trail the acknowledgements by a fraction of a second.
    fn publish_metrics(&self) {
        let context = self.producer.context();
        // Only this thread takes the write lock (adding partitions), so holding a read lock here
        // cannot deadlock; the delivery callback's read locks proceed meanwhile.
        let slots = context.slots.read().expect("slots lock");
        for slot in slots.iter() {
            let mut batch = slot.replicated.lock().expect("metrics batch lock");
            let (records, bytes) = batch.pending();
            if records > 0 {
                context
                    .counters
                    .records
                    .fetch_add(records, Ordering::Relaxed);
                context.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                slot.metrics.publish(&mut batch);
            }
        }
    }

    /// Publishes each partition's end offset, replicated position and lag (metrics and `/status`).
    fn report_progress(&self, consumer: &BaseConsumer<SourceConsumerContext>) {
        let slots: Vec<Arc<Slot>> = self
            .producer
            .context()
            .slots
            .read()
            .expect("slots lock")
            .clone();
        for slot in slots {
            if !self
                .lookup
                .get(&slot.source_topic)
                .is_some_and(|p| p.contains_key(&slot.partition))
            {
                continue; // removed
            }
            let next = slot.acked.load(Ordering::Acquire) + 1;
            let end = consumer
                .context()
                .end_offset(&slot.source_topic, slot.partition);
            if let Some(end) = end {
                slot.metrics.set_lag((end - next).max(0));
            }
            self.telemetry.status.set_partition(
                &self.flow.id,
                &slot.source_topic,
                slot.partition,
                end,
                Some(next),
            );
        }
    }

    /// Writes the source offset of every partition whose safe progress moved (at-least-once mode).
    fn store_progress(&mut self) {
        let slots: Vec<Arc<Slot>> = self
            .producer
            .context()
            .slots
            .read()
            .expect("slots lock")
            .clone();
        for slot in slots {
            let progress = slot.safe_progress();
            if progress > slot.stored.load(Ordering::Acquire) && self.send_progress(&slot, progress)
            {
                slot.stored.store(progress, Ordering::Release);
            }
        }
        if let Some(syncs) = &self.syncs {
            syncs.promote_and_fire();
        }
    }

    fn send_progress(&self, slot: &Slot, offset: i64) -> bool {
        let key = source_offset_key(&self.flow.id.source, &slot.source_topic, slot.partition);
        let value = source_offset_value(offset);
        // No explicit partition: the producer's murmur2 partitioner puts it where Java Connect would.
        let record = BaseRecord::with_opaque_to(&self.flow.offset_storage.topic, PROGRESS_OPAQUE)
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
    fn maybe_commit(&mut self, force: bool) -> Result<(), TaskError> {
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
        let slots: Vec<Arc<Slot>> = self
            .producer
            .context()
            .slots
            .read()
            .expect("slots lock")
            .clone();
        for (slot_index, offset) in &transaction.last_offsets {
            if !self.send_progress(&slots[*slot_index], *offset) {
                let _ = self.producer.abort_transaction(Duration::from_secs(30));
                return Err(TaskError::Progress(
                    "cannot queue source offsets in the transaction".into(),
                ));
            }
        }
        let timeout = Duration::from_millis(self.flow.admin_timeout_ms as u64);
        if let Err(error) = self.producer.commit_transaction(timeout) {
            let _ = self.producer.abort_transaction(timeout);
            return Err(TaskError::Transaction(error));
        }
        for (slot_index, offset) in &transaction.last_offsets {
            slots[*slot_index].stored.store(*offset, Ordering::Release);
        }
        // Offset syncs only ever name committed records (MM2 queues them from `commitRecord`).
        let acknowledged: Vec<(usize, i64, i64)> = match &self.producer.context().transactional_acks
        {
            Some(pending) => std::mem::take(&mut *pending.lock().expect("acks lock")),
            None => Vec::new(),
        };
        if let Some(syncs) = &self.syncs {
            for (slot_index, upstream, downstream) in acknowledged {
                let slot = &slots[slot_index];
                syncs.queue(
                    slot_index,
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

    /// Stops reading, waits for in-flight records, and stores final progress.
    fn drain(&mut self, timeout: Duration, healthy: bool) {
        if self.flow.exactly_once.enabled {
            if healthy {
                if let Err(error) = self.maybe_commit(true) {
                    warn!(flow = %self.flow.id, task = self.index, "final commit failed: {error}");
                }
            } else if self.transaction.take().is_some() {
                let _ = self.producer.abort_transaction(timeout);
            }
        } else {
            if let Err(error) = self.producer.flush(timeout) {
                warn!(flow = %self.flow.id, task = self.index, "records still in flight at shutdown: {error}");
            }
            self.store_progress();
        }
        if let Err(error) = self.producer.flush(timeout) {
            warn!(flow = %self.flow.id, task = self.index, "source offsets still in flight at shutdown: {error}");
        }
        if let Some(syncs) = &self.syncs {
            let _ = syncs.producer.flush(timeout);
        }
        info!(flow = %self.flow.id, task = self.index, "source task stopped");
    }
}

/// Where offset syncs go, for logs.
pub fn offset_syncs_cluster(flow: &FlowPlan) -> &str {
    match flow.offset_syncs.location {
        OffsetSyncsLocation::Source => &flow.id.source,
        OffsetSyncsLocation::Target => &flow.id.target,
    }
}
