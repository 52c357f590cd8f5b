//! One source task (MM2's MirrorSourceTask on Connect's worker): consumes the source partitions of
//! its slot and produces every record to the same partition of the remote topic on the target,
//! with the same key, value, headers and timestamp, in order.
//!
//! Progress: a partition's stored offset (in `mm2-offsets.<source>.internal` on the target,
//! Connect's format) only ever names a record the target acknowledged, together with every record
//! before it (`delivery.rs`). In exactly-once mode records and their source offsets are committed
//! to the target in one transaction instead (`progress.rs`).
//!
//! Threads: the task runs on one blocking thread (consume → produce, [`run`]); the target
//! producer's own thread runs delivery callbacks. Every wait on that thread checks the task's
//! [`Stop`]: a full producer queue, transactions, reading stored progress, the final drain.
//!
//! A record the target refuses (too large, invalid) ends the task after a drain, naming the
//! partition and offset: the supervisor holds that partition (never skipping the record) and
//! restarts the task for the others at once.

mod copier;
mod delivery;
mod progress;
mod runs;
mod sync_sender;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use self::copier::Copier;
use self::delivery::TargetContext;
use self::sync_sender::SyncSender;
use super::assignment::{partitions_of_slot, PartitionSet, TopicPartition};
use super::offset_history::StoredProgress;
use super::records::SOURCE_CONNECTOR_NAME;
use super::stored_offsets;
use super::task::{panic_message, TaskFailure, TaskReporter};
use super::FlowTelemetry;
use crate::kafka::context::SourceConsumerContext;
use crate::kafka::producer::QuietProducer;
use crate::lifecycle::Stop;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// A transaction is committed after this many records or this long, whichever comes first.
const TRANSACTION_MAX_RECORDS: usize = 20_000;
const TRANSACTION_MAX_AGE: Duration = Duration::from_millis(200);
/// Metrics gathered by the delivery thread are published this often.
const METRICS_EVERY: Duration = Duration::from_millis(100);
/// How long one poll of the source waits for a record, and how long while the task is idle (a
/// stop or a new assignment is then seen up to that late).
const POLL: Duration = Duration::from_millis(100);
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Housekeeping (partition changes, timers) runs every this many records or when a poll comes
/// back empty: reading the clock per record cost several percent of the CPU.
const HOUSEKEEPING_EVERY: u32 = 256;
/// Records polled within this long count as moving: positions past transaction markers are
/// looked for every second; after it, every [`MARKERS_IDLE_EVERY`] (a transaction that aborts or
/// commits long after its last record shows as a lag of its markers until then).
const ACTIVE_FOR: Duration = Duration::from_secs(10);
const MARKERS_IDLE_EVERY: Duration = Duration::from_secs(5);
/// Drain time when the task ends on its own (a refused record), not by a stop request.
const SELF_DRAIN: Duration = Duration::from_secs(10);

/// How the supervisor wants a partition that the target refused a record of to be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Not copied at all (waiting for its retry).
    Held,
    /// On trial: copied one record at a time up to and including this source offset, so a batch
    /// refused as a whole (records before the poison one in the same request) gets through
    /// record by record and the refusal names the exact record.
    OneByOneUntil(i64),
}

/// Partitions the target refused a record of, as the supervisor decided.
pub type HeldPartitions = BTreeMap<TopicPartition, Hold>;

/// What the supervisor hands a source task.
pub struct TaskInput {
    pub flow: Arc<FlowPlan>,
    /// The slot (task index) this task copies.
    pub slot: usize,
    /// Every selected source partition of the flow; the task copies those of its slot.
    pub partitions: watch::Receiver<Arc<PartitionSet>>,
    /// Partitions waiting at a refused record: not copied until the supervisor releases them.
    pub held: watch::Receiver<Arc<HeldPartitions>>,
    pub stop: Stop,
    pub telemetry: FlowTelemetry,
    pub reporter: TaskReporter,
}

/// Runs a task until its stop is requested or it fails. Blocking.
pub fn run(mut input: TaskInput) -> Result<(), TaskFailure> {
    let flow = input.flow.clone();
    let exactly_once = flow.exactly_once.enabled;
    let client = |role: ClientRole| flow.clients.get(&role).map(|c| c.client_config());
    let client_error = |error: KafkaError| TaskFailure::Client(error.to_string());

    let syncs = if flow.offset_syncs.enabled {
        let config = client(ClientRole::OffsetSyncsProducer)
            .ok_or_else(|| TaskFailure::Client("no offset-syncs producer planned".into()))?;
        Some(
            SyncSender::new(
                &config,
                &flow.offset_syncs.topic,
                flow.source.offset_lag_max,
            )
            .map_err(client_error)?,
        )
    } else {
        None
    };

    let mut producer_config = client(ClientRole::TargetProducer)
        .ok_or_else(|| TaskFailure::Client("no target producer planned".into()))?;
    if exactly_once {
        producer_config.set(
            "transactional.id",
            format!(
                "{}-{}",
                flow.exactly_once.transactional_id_prefix, input.slot
            ),
        );
    }
    let producer = QuietProducer::create(
        &producer_config,
        TargetContext::new(syncs.clone(), exactly_once),
    )
    .map_err(client_error)?;
    let timeout = Duration::from_millis(flow.admin_timeout_ms as u64);
    if exactly_once && !init_transactions(&producer, timeout, &input.stop)? {
        return Ok(());
    }

    // Created first: librdkafka connects in the background while the progress is read, so the
    // first fetch does not wait for a bootstrap connection and metadata (start-up time).
    let partitions = partitions_of_slot(
        &input.partitions.borrow(),
        input.slot,
        flow.source.tasks_max,
    )
    .len();
    let consumer: BaseConsumer<SourceConsumerContext> = flow.clients[&ClientRole::SourceConsumer]
        .source_consumer_config(partitions)
        .create_with_context(SourceConsumerContext::new())
        .map_err(client_error)?;
    let target_consumer = client(ClientRole::TargetConsumer)
        .ok_or_else(|| TaskFailure::Client("no target consumer planned".into()))?;
    // The stored progress is read while another thread checks that the offset history topic
    // exists (change points go there before progress passes them; the flow's leader creates it).
    let (stored, history_ready) = std::thread::scope(|scope| {
        let history = scope.spawn(|| {
            stored_offsets::require_topic(
                &target_consumer,
                &flow.offset_storage.history_topic,
                timeout,
                &input.stop,
            )
        });
        let stored = stored_offsets::load(
            &target_consumer,
            &flow.offset_storage.topic,
            &flow.id.source,
            &[SOURCE_CONNECTOR_NAME],
            timeout,
            &input.stop,
        );
        let history_ready = history
            .join()
            .unwrap_or_else(|panic| Err(TaskFailure::Panicked(panic_message(panic))));
        (stored, history_ready)
    });
    let (Some(mut stored), true) = (stored?, history_ready?) else {
        return Ok(()); // stopped while reading
    };
    let Some(taken_over) =
        take_over_from_connect(&flow, &target_consumer, &mut stored, &input.stop)?
    else {
        return Ok(());
    };

    let mut copier = Copier::new(
        flow.clone(),
        input.slot,
        producer,
        consumer,
        syncs,
        input.telemetry.clone(),
        stored,
        input.stop.clone(),
    );
    let wanted = copier::wanted_partitions(&mut input, &flow);
    copier.assign(&wanted)?;
    if !taken_over.is_empty() && !exactly_once {
        // Into our own offsets topic at once: the Connect cluster (and the setting) may go.
        copier.mark_unstored(&taken_over);
        let _ = copier.store_progress();
    }
    info!(flow = %flow.id, task = input.slot, partitions = wanted.0.len(), exactly_once, "source task started");
    input.reporter.running();

    let result = copy_until_stopped(&mut copier, &mut input);
    let budget = if input.stop.is_requested() {
        input.stop.time_left(SELF_DRAIN)
    } else {
        SELF_DRAIN
    };
    copier.drain(budget, result.is_ok());
    copier.publish_metrics();
    // Drained (or given up, to be sent again by the next instance): nothing awaits the target.
    input
        .telemetry
        .metrics
        .source_task_active(&flow.id, input.slot)
        .set(0);
    copier.report_progress();
    info!(flow = %flow.id, task = input.slot, "source task stopped");
    result
}

/// `init_transactions` in short steps, so a stop request is seen while the target does not
/// answer. Fences any earlier instance of this task slot and aborts its open transaction, so the
/// progress read next is final (Connect does the same before a task starts). `Ok(false)` when
/// stopped first.
fn init_transactions(
    producer: &QuietProducer<TargetContext>,
    timeout: Duration,
    stop: &Stop,
) -> Result<bool, TaskFailure> {
    let deadline = Instant::now() + timeout;
    loop {
        if stop.is_requested() {
            return Ok(false);
        }
        match producer.init_transactions(Duration::from_secs(5)) {
            Ok(()) => return Ok(true),
            Err(error)
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut)
                    && Instant::now() < deadline =>
            {
                debug!("init_transactions timed out; retrying");
            }
            Err(error) => return Err(TaskFailure::Transaction(error.to_string())),
        }
    }
}

/// The consume → produce loop; returns when a stop was requested (`Ok`) or the task must end.
fn copy_until_stopped(copier: &mut Copier, input: &mut TaskInput) -> Result<(), TaskFailure> {
    let flow = input.flow.clone();
    let exactly_once = flow.exactly_once.enabled;
    let flush_interval = Duration::from_millis(flow.offset_storage.flush_interval_ms as u64);
    let mut last_flush = Instant::now();
    let mut last_report = Instant::now();
    let mut last_publish = Instant::now();
    let mut since_housekeeping = HOUSEKEEPING_EVERY;
    // Per-partition passes (metrics, reported positions) run only while something moves: a
    // record polled since the last pass, records awaiting acknowledgement, or figures the last
    // pass found. Idle, thousands of partitions cost nothing every 100 ms (docs/operations.md,
    // *Idle cost*).
    let (mut polled_since_publish, mut polled_since_report) = (true, true);
    let (mut published_last, mut reported_last) = (true, true);
    // Positions moved past transaction markers are looked for every second while records move,
    // every few seconds when idle (the pass reads every partition's position) — and only while
    // the lag monitor's last round saw a lag somewhere: caught up, nothing waits past a
    // replicated position (docs/operations.md, *Idle cost*).
    let (mut last_records_at, mut last_marker_check) = (Instant::now(), Instant::now());
    let mut was_lagging = false;
    // The last store left progress behind change points not acknowledged yet.
    let mut held_back = false;
    let active_records = input
        .telemetry
        .metrics
        .source_task_active(&flow.id, input.slot);
    loop {
        if since_housekeeping >= HOUSEKEEPING_EVERY {
            since_housekeeping = 0;
            if input.stop.is_requested() {
                return Ok(());
            }
            if copier.producer_context().any_failed.load(Ordering::Acquire) {
                if let Some(failure) = copier.first_refusal() {
                    return Err(failure);
                }
            }
            if let Some((code, reason)) = copier.producer.client().fatal_error() {
                // The producer refuses to go on (e.g. a refused batch under the gapless
                // guarantee): whatever it did not acknowledge is sent again by a new one.
                if let Some(failure) = copier.first_refusal() {
                    return Err(failure);
                }
                return Err(TaskFailure::Unavailable(format!(
                    "the target producer stopped: {code}: {reason}"
                )));
            }
            if last_publish.elapsed() >= METRICS_EVERY {
                let in_flight = copier.producer.in_flight_count();
                if polled_since_publish || in_flight > 0 || published_last {
                    published_last = copier.publish_metrics();
                    active_records.set(i64::from(in_flight));
                }
                polled_since_publish = false;
                last_publish = Instant::now();
            }
            if input.partitions.has_changed().unwrap_or(false)
                || input.held.has_changed().unwrap_or(false)
            {
                let wanted = copier::wanted_partitions(input, &flow);
                copier.assign(&wanted)?;
                (polled_since_publish, polled_since_report) = (true, true);
            }
            copier.check_resets()?;
            if !exactly_once && last_flush.elapsed() >= flush_interval {
                held_back = !copier.store_progress();
                last_flush = Instant::now();
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                if polled_since_report {
                    last_records_at = Instant::now();
                }
                let lagging = !input.telemetry.status.lag_caught_up();
                // At once when a lag appears, then at the active or the idle pace.
                let look = lagging
                    && (!was_lagging
                        || last_records_at.elapsed() < ACTIVE_FOR
                        || last_marker_check.elapsed() >= MARKERS_IDLE_EVERY);
                was_lagging = lagging;
                let moved = if look {
                    last_marker_check = Instant::now();
                    copier.advance_past_markers()
                } else {
                    Vec::new()
                };
                if exactly_once && !moved.is_empty() {
                    copier.store_positions_in_transaction(&moved, &input.stop)?;
                }
                let moving = polled_since_report
                    || !moved.is_empty()
                    || copier.producer.in_flight_count() > 0;
                // One more pass after the last movement: the acknowledgements it waited for.
                if moving || reported_last {
                    copier.report_progress();
                }
                // Caught up with every acknowledgement in: the progress is stored now, not up to
                // a flush interval later (a catch-up's last progress then reached the stored
                // topic, and woke every reader of it, seconds into the idle time). Progress held
                // back by change points sent in that pass is stored at the next pass, once they
                // are acknowledged (it waited for the next flush: at the end of a catch-up over
                // 2,000 partitions, a quarter of them stored 10 s later than the rest).
                if !exactly_once && !moving && (reported_last || held_back) {
                    held_back = !copier.store_progress();
                    last_flush = Instant::now();
                }
                reported_last = moving;
                polled_since_report = false;
                last_report = Instant::now();
            }
        }
        // Idle (nothing polled or awaiting acknowledgement since the last passes), the poll
        // waits longer: a record still ends it at once, and the housekeeping above has nothing
        // to do (ten wake-ups a second were most of an idle task's CPU).
        let idle = !exactly_once
            && !polled_since_publish
            && !polled_since_report
            && !published_last
            && !reported_last;
        let wait = if idle { IDLE_POLL } else { POLL };
        match copier.poll(wait) {
            Some(Ok(())) => {
                since_housekeeping += 1;
                (polled_since_publish, polled_since_report) = (true, true);
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                // `auto.offset.reset = none` and the position is gone: find out where.
                copier.suspect_deleted_records();
                since_housekeeping = HOUSEKEEPING_EVERY;
            }
            Some(Err(error)) => {
                since_housekeeping = HOUSEKEEPING_EVERY;
                copier.warn_consumer_error(&error);
            }
            None => since_housekeeping = HOUSEKEEPING_EVERY,
        }
        if copier.take_stopped_while_sending() {
            return Ok(());
        }
        // Exactly-once commits on its own size/time rules (checked every record).
        if exactly_once {
            copier.maybe_commit(false, &input.stop)?;
        }
    }
}

/// With `mirrord.takeover.connect.*`: the progress MM2 on a Kafka Connect cluster stored in that
/// cluster's offsets topic (on this flow's target), for every partition with none of ours. The
/// partitions taken over are returned; `None` when a stop was requested while reading.
fn take_over_from_connect(
    flow: &FlowPlan,
    target_consumer: &rdkafka::config::ClientConfig,
    stored: &mut HashMap<TopicPartition, StoredProgress>,
    stop: &Stop,
) -> Result<Option<Vec<TopicPartition>>, TaskFailure> {
    let Some(takeover) = &flow.offset_storage.takeover else {
        return Ok(Some(Vec::new()));
    };
    let names: Vec<&str> = takeover.connectors.iter().map(String::as_str).collect();
    let Some(theirs) = stored_offsets::load(
        target_consumer,
        &takeover.offsets_topic,
        &flow.id.source,
        &names,
        Duration::from_millis(flow.admin_timeout_ms as u64),
        stop,
    )?
    else {
        return Ok(None);
    };
    let mut taken_over = Vec::new();
    for (partition, progress) in theirs {
        if let std::collections::hash_map::Entry::Vacant(entry) = stored.entry(partition) {
            taken_over.push(entry.key().clone());
            // Connect's MM2 kept no offset history: translation starts from here.
            entry.insert(StoredProgress {
                offset: progress.offset,
                next_downstream: None,
            });
        }
    }
    info!(
        flow = %flow.id,
        topic = %takeover.offsets_topic,
        connectors = %takeover.connectors.join(","),
        partitions = taken_over.len(),
        "progress taken over from MirrorMaker 2 on Kafka Connect"
    );
    Ok(Some(taken_over))
}

/// Logs a consumer error at most once per 10 s per task (warn), else at debug.
pub(super) fn warn_rate_limited(
    flow: &FlowPlan,
    task: usize,
    limiter: &std::sync::atomic::AtomicI64,
    error: &KafkaError,
) {
    if crate::clock::once_per(limiter, 10) {
        warn!(flow = %flow.id, task, "source consumer: {error}");
    } else {
        debug!(flow = %flow.id, task, "source consumer: {error}");
    }
}
