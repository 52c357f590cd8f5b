//! Every Prometheus metric kafka-mirrord exports: the MM2 names Strimzi's dashboards query, our own
//! `kafka_mirrord_*` families, and the process collector, all in one non-global registry.
//!
//! [`Metrics::register`] builds every family once (in `main`); the value is cheap to clone and is
//! passed down to flows. The hot path holds per-partition handles ([`SourcePartitionMetrics`],
//! [`CheckpointMetrics`]) whose label children are resolved once, so recording a replicated record
//! is a handful of relaxed atomic operations and never a label lookup or a lock.
//!
//! MM2 exports gauges computed over a sliding window (2 samples × 30 s): `record_rate`,
//! `byte_rate` and the `_min`/`_max`/`_avg` of `record_age_ms` and `replication_latency_ms`. We
//! derive them in [`Metrics::tick`], which the run loop calls every [`DEFAULT_TICK`]
//! ([`Metrics::spawn_ticker`]): each tick closes a window; the gauges cover the last two windows
//! (15–30 s with the default), and like MM2 they are NaN when the window saw no record. The
//! `record_count`/`byte_count` gauges are copied from our counters at each tick. Window
//! bookkeeping uses independent atomics, so a record landing exactly while a window closes may be
//! counted in either window; that imprecision is irrelevant for these statistics.
//!
//! Names and labels (see `docs/operations.md`):
//! - `kafka_connect_mirror_mirrorsourceconnector_{record_count,record_rate,byte_count,byte_rate,
//!   record_age_ms{,_min,_max,_avg},replication_latency_ms{,_min,_max,_avg}}`
//!   `{source,target,topic,partition}` — `topic` is the **target** (remote) topic, as in MM2's
//!   MBeans; the Kafka 4.0 label set (with `source`), which Strimzi's 3.x queries also match;
//! - `kafka_connect_mirror_mirrorcheckpointconnector_checkpoint_latency_ms{,_min,_max,_avg}`
//!   `{source,target,group,topic,partition}`;
//! - `kafka_consumer_fetch_manager_records_lag{clientid,topic,partition}`: the series behind
//!   the lag panel of Strimzi's JMX-exporter dashboard, with MM2's replication-consumer client id;
//! - `kafka_mirrord_*`: records/bytes counters, lag, latency histogram, checkpoint age, skipped
//!   groups, flow state, errors, reloads, build info (listed in `docs/operations.md`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::local::LocalHistogram;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

mod connect;
mod cutover;
mod health;
mod rounds;
mod table;

pub use connect::WorkerFigures;
pub use cutover::LagFigures;
pub use health::MembershipFigures;
pub use rounds::GroupRound;

use crate::plan::FlowId;
use crate::status::{FlowState, ReloadOutcome};

/// How often [`Metrics::spawn_ticker`] closes a statistics window.
pub const DEFAULT_TICK: Duration = Duration::from_secs(15);

/// `Content-Type` of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of `kafka_mirrord_replication_latency_seconds`: from a fast local pipe (ms) to a
/// flow catching up a backlog (minutes).
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

const MM2_SOURCE: &str = "kafka_connect_mirror_mirrorsourceconnector_";
const MM2_CHECKPOINT: &str = "kafka_connect_mirror_mirrorcheckpointconnector_";
const MM2_SOURCE_LABELS: &[&str] = &["source", "target", "topic", "partition"];
const MM2_CHECKPOINT_LABELS: &[&str] = &["source", "target", "group", "topic", "partition"];
const PARTITION_LABELS: &[&str] = &["flow", "topic", "partition"];

/// All metric families; clone freely (one `Arc`).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,
    /// MM2's twelve source gauges per partition (columns: [`SOURCE_COLUMNS`]).
    mm2_source: table::GaugeTable,
    /// MM2's checkpoint latency gauges per (group, partition): last, min, max, avg.
    mm2_checkpoint: table::GaugeTable,
    /// `kafka_mirrord_records_total{flow,topic,partition}`: records acknowledged by the target.
    records: IntCounterVec,
    /// `kafka_mirrord_bytes_total{flow,topic,partition}`: key + value bytes of those records.
    bytes: IntCounterVec,
    /// `kafka_mirrord_replication_lag_records{flow,topic,partition}`: source end offset −
    /// replicated position (from librdkafka's statistics, no extra broker round trips).
    lag: IntGaugeVec,
    /// `kafka_consumer_fetch_manager_records_lag{clientid,topic,partition}` (Strimzi's lag panel).
    consumer_lag: IntGaugeVec,
    /// `kafka_mirrord_replication_latency_seconds{flow}`: target ack time − record timestamp.
    latency: HistogramVec,
    /// `kafka_mirrord_checkpoint_age_seconds{flow,group}`: time since the group's last checkpoint.
    checkpoint_age: GaugeVec,
    /// `kafka_mirrord_groups_skipped{flow,reason}`: groups currently not checkpointed/synced.
    groups_skipped: IntGaugeVec,
    /// `kafka_mirrord_flow_state{flow,state}`: 1 for the current state, 0 for the others.
    flow_state: IntGaugeVec,
    /// `kafka_mirrord_errors_total{flow,kind}`: errors by a bounded set of kinds.
    errors: IntCounterVec,
    /// `kafka_mirrord_reloads_total{result}`: `success`, `invalid_config`, `failed`.
    reloads: IntCounterVec,
    /// `kafka_mirrord_config_last_reload_success_timestamp_seconds`.
    last_reload_success: Gauge,
    /// Task restarts, held partitions, records deleted before replication (`health.rs`).
    health: health::HealthFamilies,
    /// How long the checkpoint rounds over every group take (`rounds.rs`).
    rounds: rounds::RoundFamilies,
    /// Connect worker and client series of Strimzi's MM2 dashboard (`connect.rs`).
    connect: connect::ConnectFamilies,
    /// Lag monitor figures, alarms, group translation and sync state (`cutover.rs`).
    cutover: cutover::CutoverFamilies,
    /// Which label sets exist, so that a flow or partition can be removed completely and
    /// [`Metrics::tick`] can visit every window.
    book: Mutex<Book>,
    /// The tick period in ms: rates are never computed over less (as MM2's rate never uses a
    /// window shorter than its sample window), so a partition created just before a tick does
    /// not show a huge rate from one record.
    tick_period_ms: AtomicU64,
}

#[derive(Default)]
struct Book {
    partitions: HashMap<(FlowId, String, i32), Arc<PartitionShared>>,
    checkpoints: HashMap<(FlowId, String, String, i32), Arc<CheckpointShared>>,
    groups: HashMap<(FlowId, String), Arc<GroupShared>>,
    flows_with_state: BTreeSet<FlowId>,
    error_kinds: BTreeSet<(FlowId, &'static str)>,
    skipped_reasons: BTreeSet<(FlowId, String)>,
}

/// A windowed value's gauges: last, min, max, avg (four cells of one row).
struct WindowGauges {
    last: table::Cell,
    min: table::Cell,
    max: table::Cell,
    avg: table::Cell,
}

/// The columns of the MM2 source table, in this order.
const SOURCE_COLUMNS: [(&str, &str); 12] = [
    ("record_count", "records replicated (cumulative)"),
    ("record_rate", "records replicated per second"),
    ("byte_count", "bytes replicated (cumulative)"),
    ("byte_rate", "bytes replicated per second"),
    ("record_age_ms", "record age at consumption, ms"),
    ("record_age_ms_min", "record age at consumption, ms"),
    ("record_age_ms_max", "record age at consumption, ms"),
    ("record_age_ms_avg", "record age at consumption, ms"),
    (
        "replication_latency_ms",
        "time from record timestamp to target acknowledgement, ms",
    ),
    (
        "replication_latency_ms_min",
        "time from record timestamp to target acknowledgement, ms",
    ),
    (
        "replication_latency_ms_max",
        "time from record timestamp to target acknowledgement, ms",
    ),
    (
        "replication_latency_ms_avg",
        "time from record timestamp to target acknowledgement, ms",
    ),
];

impl WindowGauges {
    /// Cells `first..first + 4` of `row`.
    fn cells(row: &Arc<table::Row>, first: usize) -> WindowGauges {
        WindowGauges {
            last: table::Cell::new(row, first),
            min: table::Cell::new(row, first + 1),
            max: table::Cell::new(row, first + 2),
            avg: table::Cell::new(row, first + 3),
        }
    }
}

impl WindowGauges {
    fn publish(&self, last: Option<i64>, sample: Sample) {
        self.last.set(last.map_or(f64::NAN, |v| v as f64));
        self.min.set(sample.min().map_or(f64::NAN, |v| v as f64));
        self.max.set(sample.max().map_or(f64::NAN, |v| v as f64));
        self.avg.set(sample.avg().unwrap_or(f64::NAN));
    }
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<GaugeVec> {
    let family = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn int_gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let family = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn int_counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let family = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

// === windows ===

/// Lock-free min/max/sum/count of one statistics window plus the last value ever recorded.
struct Window {
    count: AtomicU64,
    sum: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
    /// `i64::MIN` until the first value.
    last: AtomicI64,
}

/// A closed window (or two merged).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    count: u64,
    sum: i64,
    min: i64,
    max: i64,
}

impl Sample {
    const EMPTY: Sample = Sample {
        count: 0,
        sum: 0,
        min: i64::MAX,
        max: i64::MIN,
    };

    fn one(value: i64) -> Sample {
        Sample {
            count: 1,
            sum: value,
            min: value,
            max: value,
        }
    }

    fn merge(self, other: Sample) -> Sample {
        Sample {
            count: self.count + other.count,
            sum: self.sum.saturating_add(other.sum),
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    fn min(self) -> Option<i64> {
        (self.count > 0).then_some(self.min)
    }

    fn max(self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    fn avg(self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

impl Window {
    fn new() -> Window {
        Window {
            count: AtomicU64::new(0),
            sum: AtomicI64::new(0),
            min: AtomicI64::new(i64::MAX),
            max: AtomicI64::new(i64::MIN),
            last: AtomicI64::new(i64::MIN),
        }
    }

    fn record(&self, value: i64) {
        self.record_sample(Sample::one(value), value);
    }

    /// Adds a batch of values gathered elsewhere; `last` is the batch's last value.
    fn record_sample(&self, sample: Sample, last: i64) {
        if sample.count == 0 {
            return;
        }
        self.last.store(last, Ordering::Relaxed);
        self.count.fetch_add(sample.count, Ordering::Relaxed);
        self.sum.fetch_add(sample.sum, Ordering::Relaxed);
        self.min.fetch_min(sample.min, Ordering::Relaxed);
        self.max.fetch_max(sample.max, Ordering::Relaxed);
    }

    fn last(&self) -> Option<i64> {
        let last = self.last.load(Ordering::Relaxed);
        (last != i64::MIN).then_some(last)
    }

    /// Closes the window: returns its content and starts an empty one.
    fn take(&self) -> Sample {
        Sample {
            count: self.count.swap(0, Ordering::Relaxed),
            sum: self.sum.swap(0, Ordering::Relaxed),
            min: self.min.swap(i64::MAX, Ordering::Relaxed),
            max: self.max.swap(i64::MIN, Ordering::Relaxed),
        }
    }
}

// === per-partition handles ===

/// Hot-path handle for one replicated source partition; clone freely. Obtained from
/// [`Metrics::source_partition`]; after [`Metrics::remove_source_partition`] (or `remove_flow`)
/// updates through an old handle are simply not exported any more.
#[derive(Clone)]
pub struct SourcePartitionMetrics {
    shared: Arc<PartitionShared>,
}

struct PartitionShared {
    mm2_labels: [String; 4],
    own_labels: [String; 3],
    consumer_labels: [String; 3],
    records: IntCounter,
    bytes: IntCounter,
    /// The flow's `kafka_consumer_incoming_byte_total` and `kafka_producer_outgoing_byte_total`.
    flow_bytes: (IntCounter, IntCounter),
    lag: IntGauge,
    consumer_lag: IntGauge,
    latency_histogram: Histogram,
    age: Window,
    latency: Window,
    mm2: Mm2SourceChildren,
    /// Touched only by `tick`.
    ticks: Mutex<TickState>,
}

struct Mm2SourceChildren {
    record_count: table::Cell,
    record_rate: table::Cell,
    byte_count: table::Cell,
    byte_rate: table::Cell,
    record_age: WindowGauges,
    replication_latency: WindowGauges,
}

struct TickState {
    /// (when, records, bytes) at the last ticks, oldest first: rates span two windows.
    history: VecDeque<(Instant, u64, u64)>,
    previous_age: Sample,
    previous_latency: Sample,
}

impl std::fmt::Debug for SourcePartitionMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SourcePartitionMetrics")
            .field(&self.shared.own_labels)
            .finish()
    }
}

/// Observations of acknowledged records of one partition, gathered with plain arithmetic on the
/// delivery path and published in one go by [`SourcePartitionMetrics::publish`]: a dozen atomic
/// updates per record (counters, two windows, the histogram) measurably slowed the thread that
/// serves delivery reports, and with it the producer.
pub struct ReplicatedBatch {
    records: u64,
    bytes: u64,
    age: Sample,
    last_age: i64,
    latency: Sample,
    last_latency: i64,
    histogram: LocalHistogram,
}

impl ReplicatedBatch {
    /// One record acknowledged by the target: `bytes` = key + value size, `age_ms` = poll time −
    /// record timestamp, `latency_ms` = ack time − record timestamp. Negative values (clock skew,
    /// future timestamps) count as 0.
    pub fn record(&mut self, bytes: u64, age_ms: i64, latency_ms: i64) {
        let (age_ms, latency_ms) = (age_ms.max(0), latency_ms.max(0));
        self.records += 1;
        self.bytes += bytes;
        self.age = self.age.merge(Sample::one(age_ms));
        self.last_age = age_ms;
        self.latency = self.latency.merge(Sample::one(latency_ms));
        self.last_latency = latency_ms;
        self.histogram.observe(latency_ms as f64 / 1000.0);
    }

    /// Records and bytes gathered since the last publication.
    pub fn pending(&self) -> (u64, u64) {
        (self.records, self.bytes)
    }
}

impl SourcePartitionMetrics {
    /// An empty batch for [`SourcePartitionMetrics::publish`].
    pub fn batch(&self) -> ReplicatedBatch {
        ReplicatedBatch {
            records: 0,
            bytes: 0,
            age: Sample::EMPTY,
            last_age: 0,
            latency: Sample::EMPTY,
            last_latency: 0,
            histogram: self.shared.latency_histogram.local(),
        }
    }

    /// Adds a batch to the exported metrics and empties it.
    pub fn publish(&self, batch: &mut ReplicatedBatch) {
        if batch.records == 0 {
            return;
        }
        let shared = &self.shared;
        shared.records.inc_by(batch.records);
        shared.bytes.inc_by(batch.bytes);
        shared.flow_bytes.0.inc_by(batch.bytes);
        shared.flow_bytes.1.inc_by(batch.bytes);
        shared.age.record_sample(batch.age, batch.last_age);
        shared
            .latency
            .record_sample(batch.latency, batch.last_latency);
        batch.histogram.flush();
        (batch.records, batch.bytes) = (0, 0);
        (batch.age, batch.latency) = (Sample::EMPTY, Sample::EMPTY);
    }

    /// One record acknowledged by the target, published at once (see [`ReplicatedBatch::record`]).
    pub fn record_replicated(&self, bytes: u64, age_ms: i64, latency_ms: i64) {
        let mut batch = self.batch();
        batch.record(bytes, age_ms, latency_ms);
        self.publish(&mut batch);
    }

    /// Records behind the source partition's end (high watermark − replicated position).
    pub fn set_lag(&self, records: i64) {
        let records = records.max(0);
        self.shared.lag.set(records);
        self.shared.consumer_lag.set(records);
    }
}

/// Hot-path handle for checkpoints of one (group, partition); clone freely.
#[derive(Clone)]
pub struct CheckpointMetrics {
    shared: Arc<CheckpointShared>,
}

struct CheckpointShared {
    labels: [String; 5],
    gauges: WindowGauges,
    window: Window,
    group: Arc<GroupShared>,
    previous: Mutex<Sample>,
}

struct GroupShared {
    labels: [String; 2],
    age: Gauge,
    /// Unix ms of the last checkpoint; 0 = none yet.
    last_checkpoint_ms: AtomicU64,
}

impl std::fmt::Debug for CheckpointMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CheckpointMetrics")
            .field(&self.shared.labels)
            .finish()
    }
}

impl CheckpointMetrics {
    /// A checkpoint acknowledged by the target; `latency_ms` = ack time − checkpoint timestamp.
    pub fn checkpoint_emitted(&self, latency_ms: i64) {
        self.shared.window.record(latency_ms.max(0));
        self.shared
            .group
            .last_checkpoint_ms
            .store(unix_ms_now(), Ordering::Relaxed);
    }
}

// === impl Metrics ===

impl Metrics {
    /// Creates and registers every family in `registry` (never the global one). Fails only if
    /// `registry` already holds one of these names.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let source_help = |what: &str| format!("MirrorMaker 2 compatible: {what}");
        let mm2_source = table::GaugeTable::register(
            registry,
            SOURCE_COLUMNS
                .iter()
                .map(|(name, help)| (format!("{MM2_SOURCE}{name}"), source_help(help)))
                .collect(),
            MM2_SOURCE_LABELS,
        )?;
        let checkpoint_help =
            source_help("time from checkpoint timestamp to target acknowledgement, ms");
        let mm2_checkpoint = table::GaugeTable::register(
            registry,
            ["", "_min", "_max", "_avg"]
                .iter()
                .map(|suffix| {
                    (
                        format!("{MM2_CHECKPOINT}checkpoint_latency_ms{suffix}"),
                        checkpoint_help.clone(),
                    )
                })
                .collect(),
            MM2_CHECKPOINT_LABELS,
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "kafka_mirrord_replication_latency_seconds",
                "Time from a record's timestamp to its acknowledgement by the target cluster.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["flow"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        let last_reload_success = Gauge::new(
            "kafka_mirrord_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload (0 before any).",
        )?;
        registry.register(Box::new(last_reload_success.clone()))?;

        let reloads = int_counter_vec(
            registry,
            "kafka_mirrord_reloads_total",
            "Configuration reloads by result.",
            &["result"],
        )?;
        for outcome in ReloadOutcome::ALL {
            reloads.with_label_values(&[outcome.as_str()]);
        }
        let build_info = int_gauge_vec(
            registry,
            "kafka_mirrord_build_info",
            "Always 1; the labels describe this build.",
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        // CPU seconds, RSS, open/max fds, threads, start time (`process_*`), read from /proc at
        // each scrape.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        let inner = Inner {
            registry: registry.clone(),
            mm2_source,
            mm2_checkpoint,
            records: int_counter_vec(
                registry,
                "kafka_mirrord_records_total",
                "Records replicated (acknowledged by the target cluster).",
                PARTITION_LABELS,
            )?,
            bytes: int_counter_vec(
                registry,
                "kafka_mirrord_bytes_total",
                "Key and value bytes of the records replicated.",
                PARTITION_LABELS,
            )?,
            lag: int_gauge_vec(
                registry,
                "kafka_mirrord_replication_lag_records",
                "Records in the source partition not replicated yet (end offset - position).",
                PARTITION_LABELS,
            )?,
            consumer_lag: int_gauge_vec(
                registry,
                "kafka_consumer_fetch_manager_records_lag",
                "MirrorMaker 2 compatible: replication consumer lag in records.",
                &["clientid", "topic", "partition"],
            )?,
            latency,
            checkpoint_age: gauge_vec(
                registry,
                "kafka_mirrord_checkpoint_age_seconds",
                "Seconds since the last checkpoint of the group was written.",
                &["flow", "group"],
            )?,
            groups_skipped: int_gauge_vec(
                registry,
                "kafka_mirrord_groups_skipped",
                "Consumer groups currently not checkpointed or synced, by reason.",
                &["flow", "reason"],
            )?,
            flow_state: int_gauge_vec(
                registry,
                "kafka_mirrord_flow_state",
                "1 for the flow's current state, 0 for the others.",
                &["flow", "state"],
            )?,
            errors: int_counter_vec(
                registry,
                "kafka_mirrord_errors_total",
                "Errors by flow and kind.",
                &["flow", "kind"],
            )?,
            reloads,
            last_reload_success,
            health: health::HealthFamilies::register(registry)?,
            rounds: rounds::RoundFamilies::register(registry)?,
            connect: connect::ConnectFamilies::register(registry)?,
            cutover: cutover::CutoverFamilies::register(registry)?,
            book: Mutex::new(Book::default()),
            tick_period_ms: AtomicU64::new(DEFAULT_TICK.as_millis() as u64),
        };
        Ok(Metrics {
            inner: Arc::new(inner),
        })
    }

    /// The registry everything is registered in (e.g. to add a collector).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// A poisoned book only means a panic elsewhere mid-update; metrics must keep working.
    fn book(&self) -> MutexGuard<'_, Book> {
        self.inner
            .book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The handle of source partition `topic`/`partition` of `flow`, replicated into
    /// `remote_topic` on the target (MM2's metrics are labelled with the remote topic). Returns
    /// the existing handle when called again for the same partition.
    pub fn source_partition(
        &self,
        flow: &FlowId,
        topic: &str,
        remote_topic: &str,
        partition: i32,
    ) -> SourcePartitionMetrics {
        let key = (flow.clone(), topic.to_string(), partition);
        let mut book = self.book();
        if let Some(shared) = book.partitions.get(&key) {
            return SourcePartitionMetrics {
                shared: shared.clone(),
            };
        }
        let inner = &self.inner;
        let partition_text = partition.to_string();
        let flow_text = flow.to_string();
        let mm2_labels = [
            flow.source.clone(),
            flow.target.clone(),
            remote_topic.to_string(),
            partition_text.clone(),
        ];
        let own_labels = [flow_text.clone(), topic.to_string(), partition_text.clone()];
        let consumer_labels = [
            connect::replication_consumer_id(flow),
            topic.to_string(),
            partition_text,
        ];
        let mm2_values = as_strs(&mm2_labels);
        let own_values = as_strs(&own_labels);
        // MM2 reports NaN until the first sample; counts and rates start at 0.
        let row = inner.mm2_source.row(&mm2_values, f64::NAN);
        let mm2 = Mm2SourceChildren {
            record_count: table::Cell::new(&row, 0),
            record_rate: table::Cell::new(&row, 1),
            byte_count: table::Cell::new(&row, 2),
            byte_rate: table::Cell::new(&row, 3),
            record_age: WindowGauges::cells(&row, 4),
            replication_latency: WindowGauges::cells(&row, 8),
        };
        for count in [
            &mm2.record_count,
            &mm2.record_rate,
            &mm2.byte_count,
            &mm2.byte_rate,
        ] {
            count.set(0.0);
        }
        let records = inner.records.with_label_values(&own_values);
        let bytes = inner.bytes.with_label_values(&own_values);
        let shared = Arc::new(PartitionShared {
            lag: inner.lag.with_label_values(&own_values),
            consumer_lag: inner
                .consumer_lag
                .with_label_values(&as_strs(&consumer_labels)),
            latency_histogram: inner.latency.with_label_values(&[flow_text.as_str()]),
            age: Window::new(),
            latency: Window::new(),
            ticks: Mutex::new(TickState {
                history: VecDeque::from([(Instant::now(), records.get(), bytes.get())]),
                previous_age: Sample::EMPTY,
                previous_latency: Sample::EMPTY,
            }),
            flow_bytes: inner.connect.byte_counters(flow),
            records,
            bytes,
            mm2,
            mm2_labels,
            own_labels,
            consumer_labels,
        });
        book.partitions.insert(key, shared.clone());
        SourcePartitionMetrics { shared }
    }

    /// Drops every series of a partition the flow no longer replicates.
    pub fn remove_source_partition(&self, flow: &FlowId, topic: &str, partition: i32) {
        let removed = self
            .book()
            .partitions
            .remove(&(flow.clone(), topic.to_string(), partition));
        if let Some(shared) = removed {
            self.remove_partition_series(&shared);
        }
    }

    fn remove_partition_series(&self, shared: &PartitionShared) {
        let inner = &self.inner;
        let mm2 = as_strs(&shared.mm2_labels);
        let own = as_strs(&shared.own_labels);
        inner.mm2_source.remove(&mm2);
        let _ = inner.records.remove_label_values(&own);
        let _ = inner.bytes.remove_label_values(&own);
        let _ = inner.lag.remove_label_values(&own);
        let _ = inner
            .consumer_lag
            .remove_label_values(&as_strs(&shared.consumer_labels));
    }

    /// The handle for checkpoints of `group` on source partition `topic`/`partition`, whose
    /// target topic is `remote_topic`. Also creates `kafka_mirrord_checkpoint_age_seconds` for the
    /// group (NaN until its first checkpoint).
    pub fn checkpoint(
        &self,
        flow: &FlowId,
        group: &str,
        remote_topic: &str,
        partition: i32,
    ) -> CheckpointMetrics {
        let key = (
            flow.clone(),
            group.to_string(),
            remote_topic.to_string(),
            partition,
        );
        let mut book = self.book();
        if let Some(shared) = book.checkpoints.get(&key) {
            return CheckpointMetrics {
                shared: shared.clone(),
            };
        }
        let group_shared = book
            .groups
            .entry((flow.clone(), group.to_string()))
            .or_insert_with(|| {
                let labels = [flow.to_string(), group.to_string()];
                let age = self
                    .inner
                    .checkpoint_age
                    .with_label_values(&as_strs(&labels));
                age.set(f64::NAN);
                Arc::new(GroupShared {
                    labels,
                    age,
                    last_checkpoint_ms: AtomicU64::new(0),
                })
            })
            .clone();
        let labels = [
            flow.source.clone(),
            flow.target.clone(),
            group.to_string(),
            remote_topic.to_string(),
            partition.to_string(),
        ];
        let shared = Arc::new(CheckpointShared {
            gauges: WindowGauges::cells(
                &self.inner.mm2_checkpoint.row(&as_strs(&labels), f64::NAN),
                0,
            ),
            labels,
            window: Window::new(),
            group: group_shared,
            previous: Mutex::new(Sample::EMPTY),
        });
        book.checkpoints.insert(key, shared.clone());
        CheckpointMetrics { shared }
    }

    /// Drops the series of a group that is no longer checkpointed (deleted or filtered out).
    pub fn remove_group(&self, flow: &FlowId, group: &str) {
        let mut book = self.book();
        let removed: Vec<Arc<CheckpointShared>> = book
            .checkpoints
            .iter()
            .filter(|((f, g, _, _), _)| f == flow && g == group)
            .map(|(_, shared)| shared.clone())
            .collect();
        book.checkpoints
            .retain(|(f, g, _, _), _| !(f == flow && g == group));
        let group_shared = book.groups.remove(&(flow.clone(), group.to_string()));
        drop(book);
        for shared in removed {
            self.inner.mm2_checkpoint.remove(&as_strs(&shared.labels));
        }
        if let Some(group_shared) = group_shared {
            let _ = self
                .inner
                .checkpoint_age
                .remove_label_values(&as_strs(&group_shared.labels));
        }
        self.inner.cutover.remove_group(flow, group);
    }

    /// Sets the one-hot `kafka_mirrord_flow_state`.
    pub fn set_flow_state(&self, flow: &FlowId, state: FlowState) {
        let flow_text = flow.to_string();
        for candidate in FlowState::ALL {
            self.inner
                .flow_state
                .with_label_values(&[flow_text.as_str(), candidate.as_str()])
                .set(i64::from(candidate == state));
        }
        self.book().flows_with_state.insert(flow.clone());
    }

    /// Counts one error. `kind` must come from a small fixed set (e.g. `source_consumer`,
    /// `target_producer`, `offsets_store`, `admin`, `checkpoint`) to keep cardinality bounded.
    pub fn error(&self, flow: &FlowId, kind: &'static str) {
        self.inner
            .errors
            .with_label_values(&[flow.to_string().as_str(), kind])
            .inc();
        self.book().error_kinds.insert((flow.clone(), kind));
    }

    /// Replaces the skipped-group counts of `flow`: reasons given before but absent now drop to 0.
    pub fn set_groups_skipped<'a>(
        &self,
        flow: &FlowId,
        counts: impl IntoIterator<Item = (&'a str, usize)>,
    ) {
        let flow_text = flow.to_string();
        let mut book = self.book();
        let mut seen = BTreeSet::new();
        for (reason, count) in counts {
            self.inner
                .groups_skipped
                .with_label_values(&[flow_text.as_str(), reason])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
            seen.insert(reason.to_string());
            book.skipped_reasons
                .insert((flow.clone(), reason.to_string()));
        }
        for (_, reason) in book.skipped_reasons.iter().filter(|(f, _)| f == flow) {
            if !seen.contains(reason) {
                self.inner
                    .groups_skipped
                    .with_label_values(&[flow_text.as_str(), reason.as_str()])
                    .set(0);
            }
        }
    }

    /// Counts a restart of a flow's task (`kafka_mirrord_task_restarts_total`).
    pub fn task_restarted(&self, flow: &FlowId, task: &str) {
        self.inner.health.task_restarted(flow, task);
    }

    /// How many partitions of `flow` are held at a refused record.
    pub fn set_stalled_partitions(&self, flow: &FlowId, partitions: usize) {
        self.inner.health.set_stalled(flow, partitions);
    }

    /// How long a checkpoint round over every one of the flow's `groups` groups took.
    pub fn group_round(&self, flow: &FlowId, round: GroupRound, took: Duration, groups: usize) {
        self.inner.rounds.record(flow, round, took, groups);
    }

    /// The flow's group membership series.
    pub fn set_membership(&self, flow: &FlowId, figures: &MembershipFigures) {
        self.inner.health.membership(flow, figures);
    }

    /// `kafka_connect_source_task_source_record_active_count` of a source task slot.
    pub fn source_task_active(&self, flow: &FlowId, slot: usize) -> IntGauge {
        self.inner.connect.source_task_active(flow, slot)
    }

    /// The flow's Connect worker series (connectors and tasks running here, rebalancing).
    pub fn set_worker(&self, flow: &FlowId, figures: WorkerFigures) {
        self.inner.connect.worker(flow, figures);
    }

    /// One lag monitor round: caught up, lag, age of the oldest unreplicated record, alarms,
    /// cutover readiness.
    pub fn lag_round(
        &self,
        flow: &FlowId,
        figures: &LagFigures,
        alarms: &HashMap<crate::status::AlarmKind, usize>,
    ) {
        self.inner.cutover.lag_round(flow, figures, alarms);
    }

    /// The lag of a partition this process copies (`kafka_mirrord_replication_lag_records` and
    /// Strimzi's consumer-lag series); nothing for a partition without series here.
    /// False when the partition has no series yet (its source task did not register it).
    pub fn set_partition_lag(&self, flow: &FlowId, topic: &str, partition: i32, lag: i64) -> bool {
        let shared = self
            .book()
            .partitions
            .get(&(flow.clone(), topic.to_string(), partition))
            .cloned();
        match shared {
            Some(shared) => {
                SourcePartitionMetrics { shared }.set_lag(lag);
                true
            }
            None => false,
        }
    }

    /// How the group's committed offsets translate.
    pub fn set_group_translation(
        &self,
        flow: &FlowId,
        group: &str,
        translation: Option<crate::status::GroupTranslation>,
    ) {
        self.inner
            .cutover
            .group_translation(flow, group, translation);
    }

    /// The group's offsets on the target, one-hot over [`cutover::GROUP_SYNC_STATES`].
    pub fn set_group_sync_state(&self, flow: &FlowId, group: &str, state: &str) {
        self.inner.cutover.group_sync_state(flow, group, state);
    }

    /// Counts records deleted at the source before they were replicated.
    pub fn records_skipped(&self, flow: &FlowId, topic: &str, partition: i32, records: u64) {
        self.inner.health.skipped(flow, topic, partition, records);
    }

    /// Counts a reload; a success also stamps
    /// `kafka_mirrord_config_last_reload_success_timestamp_seconds`.
    pub fn reload(&self, outcome: ReloadOutcome) {
        self.inner
            .reloads
            .with_label_values(&[outcome.as_str()])
            .inc();
        if outcome == ReloadOutcome::Success {
            self.inner
                .last_reload_success
                .set(unix_ms_now() as f64 / 1000.0);
        }
    }

    /// Drops every series of a flow removed by a reload (a changed flow keeps its series: its
    /// counters continue across the restart).
    pub fn remove_flow(&self, flow: &FlowId) {
        let mut book = self.book();
        let partitions: Vec<Arc<PartitionShared>> = book
            .partitions
            .iter()
            .filter(|((f, _, _), _)| f == flow)
            .map(|(_, shared)| shared.clone())
            .collect();
        book.partitions.retain(|(f, _, _), _| f != flow);
        let groups: Vec<String> = book
            .groups
            .keys()
            .filter(|(f, _)| f == flow)
            .map(|(_, group)| group.clone())
            .collect();
        let had_state = book.flows_with_state.remove(flow);
        let kinds: Vec<&'static str> = book
            .error_kinds
            .iter()
            .filter(|(f, _)| f == flow)
            .map(|(_, kind)| *kind)
            .collect();
        book.error_kinds.retain(|(f, _)| f != flow);
        let reasons: Vec<String> = book
            .skipped_reasons
            .iter()
            .filter(|(f, _)| f == flow)
            .map(|(_, reason)| reason.clone())
            .collect();
        book.skipped_reasons.retain(|(f, _)| f != flow);
        drop(book);

        for shared in &partitions {
            self.remove_partition_series(shared);
        }
        for group in groups {
            self.remove_group(flow, &group);
        }
        let flow_text = flow.to_string();
        let inner = &self.inner;
        if had_state {
            for state in FlowState::ALL {
                let _ = inner
                    .flow_state
                    .remove_label_values(&[flow_text.as_str(), state.as_str()]);
            }
        }
        for kind in kinds {
            let _ = inner
                .errors
                .remove_label_values(&[flow_text.as_str(), kind]);
        }
        for reason in reasons {
            let _ = inner
                .groups_skipped
                .remove_label_values(&[flow_text.as_str(), reason.as_str()]);
        }
        let _ = inner.latency.remove_label_values(&[flow_text.as_str()]);
        inner.health.remove_flow(flow);
        inner.rounds.remove_flow(flow);
        inner.cutover.remove_flow(flow);
        inner.connect.remove_flow(flow);
    }

    /// Closes the statistics windows and publishes MM2's rate/min/max/avg gauges, the
    /// count gauges and checkpoint ages. Call every [`DEFAULT_TICK`]
    /// (see [`Metrics::spawn_ticker`]).
    pub fn tick(&self) {
        self.tick_at(Instant::now(), unix_ms_now());
    }

    fn tick_at(&self, now: Instant, now_unix_ms: u64) {
        // Copy the handles out so that the book is not locked while publishing.
        let (partitions, checkpoints, groups) = {
            let book = self.book();
            (
                book.partitions.values().cloned().collect::<Vec<_>>(),
                book.checkpoints.values().cloned().collect::<Vec<_>>(),
                book.groups.values().cloned().collect::<Vec<_>>(),
            )
        };
        let min_span = Duration::from_millis(self.inner.tick_period_ms.load(Ordering::Relaxed));
        for partition in partitions {
            let mut ticks = partition
                .ticks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let age = partition.age.take();
            let latency = partition.latency.take();
            let mm2 = &partition.mm2;
            mm2.record_age
                .publish(partition.age.last(), ticks.previous_age.merge(age));
            mm2.replication_latency.publish(
                partition.latency.last(),
                ticks.previous_latency.merge(latency),
            );
            ticks.previous_age = age;
            ticks.previous_latency = latency;

            let records = partition.records.get();
            let bytes = partition.bytes.get();
            mm2.record_count.set(records as f64);
            mm2.byte_count.set(bytes as f64);
            ticks.history.push_back((now, records, bytes));
            while ticks.history.len() > 3 {
                ticks.history.pop_front();
            }
            if let Some(&(since, records_then, bytes_then)) = ticks.history.front() {
                let seconds = now
                    .saturating_duration_since(since)
                    .max(min_span)
                    .as_secs_f64();
                if seconds > 0.0 {
                    mm2.record_rate
                        .set(records.saturating_sub(records_then) as f64 / seconds);
                    mm2.byte_rate
                        .set(bytes.saturating_sub(bytes_then) as f64 / seconds);
                }
            }
        }
        for checkpoint in checkpoints {
            let mut previous = checkpoint
                .previous
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let sample = checkpoint.window.take();
            checkpoint
                .gauges
                .publish(checkpoint.window.last(), previous.merge(sample));
            *previous = sample;
        }
        for group in groups {
            let last = group.last_checkpoint_ms.load(Ordering::Relaxed);
            if last != 0 {
                group
                    .age
                    .set(now_unix_ms.saturating_sub(last) as f64 / 1000.0);
            }
        }
    }

    /// Runs [`Metrics::tick`] every `period` on the current tokio runtime until aborted.
    pub fn spawn_ticker(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        self.set_tick_period(period);
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await; // the first tick completes at once
            loop {
                interval.tick().await;
                metrics.tick();
            }
        })
    }

    /// The period at which the caller runs [`Metrics::tick`] ([`DEFAULT_TICK`] unless set); the
    /// shortest span a rate is computed over.
    pub fn set_tick_period(&self, period: Duration) {
        let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
        self.inner.tick_period_ms.store(ms, Ordering::Relaxed);
    }

    /// Everything in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let families = self.inner.registry.gather();
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&families, &mut buffer) {
            // Only possible for invalid metric data; serve what was written rather than nothing.
            tracing::warn!("encoding metrics failed: {error}");
        }
        String::from_utf8(buffer).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
    }
}

fn as_strs<const N: usize>(values: &[String; N]) -> [&str; N] {
    std::array::from_fn(|i| values[i].as_str())
}

fn unix_ms_now() -> u64 {
    crate::clock::unix_ms().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(s: &str, t: &str) -> FlowId {
        FlowId {
            source: s.into(),
            target: t.into(),
        }
    }

    /// The value of the sample `name` whose labels include every pair of `labels`.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find(|line| {
                let (series, _) = line.rsplit_once(' ').unwrap_or((line, ""));
                let bare = series.split('{').next().unwrap_or("");
                bare == name
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|line| {
                let value = line.rsplit_once(' ').map(|(_, v)| v).unwrap_or("");
                if value == "NaN" {
                    f64::NAN
                } else {
                    value.parse().unwrap()
                }
            })
    }

    fn labels_of(text: &str, name: &str) -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .map(|line| {
                let inside = &line[name.len() + 1..line.find('}').unwrap()];
                let mut keys: Vec<&str> = inside
                    .split(',')
                    .map(|pair| pair.split('=').next().unwrap())
                    .collect();
                keys.sort();
                keys.join(",")
            })
            .collect()
    }

    #[test]
    fn mm2_names_and_labels_follow_strimzi() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let ab = flow("A", "B");
        let partition = metrics.source_partition(&ab, "orders", "A.orders", 3);
        partition.record_replicated(10, 5, 20);
        metrics.checkpoint(&ab, "billing", "A.orders", 3);
        metrics.tick();
        let text = metrics.encode();
        for suffix in [
            "record_count",
            "record_rate",
            "byte_count",
            "byte_rate",
            "record_age_ms",
            "record_age_ms_min",
            "record_age_ms_max",
            "record_age_ms_avg",
            "replication_latency_ms",
            "replication_latency_ms_min",
            "replication_latency_ms_max",
            "replication_latency_ms_avg",
        ] {
            let name = format!("kafka_connect_mirror_mirrorsourceconnector_{suffix}");
            assert_eq!(
                labels_of(&text, &name),
                vec!["partition,source,target,topic"],
                "{name}"
            );
            assert!(
                sample(
                    &text,
                    &name,
                    &[
                        ("source", "A"),
                        ("target", "B"),
                        ("topic", "A.orders"),
                        ("partition", "3")
                    ]
                )
                .is_some(),
                "{name} has MM2's labels with the remote topic"
            );
        }
        for suffix in ["", "_min", "_max", "_avg"] {
            let name = format!(
                "kafka_connect_mirror_mirrorcheckpointconnector_checkpoint_latency_ms{suffix}"
            );
            assert_eq!(
                labels_of(&text, &name),
                vec!["group,partition,source,target,topic"],
                "{name}"
            );
        }
        assert_eq!(
            sample(
                &text,
                "kafka_consumer_fetch_manager_records_lag",
                &[
                    (
                        "clientid",
                        // Quoted as jmx_exporter shows MM2's id (escaped in the text format).
                        r#"\"A->B|MirrorSourceConnector-0|replication-consumer\""#
                    ),
                    ("topic", "orders"),
                    ("partition", "3")
                ]
            ),
            Some(0.0)
        );
        assert!(
            text.contains("# TYPE kafka_connect_mirror_mirrorsourceconnector_record_count gauge")
        );
    }

    #[test]
    fn replicated_records_update_counters_windows_and_histogram() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let ab = flow("A", "B");
        metrics.set_tick_period(Duration::from_secs(10));
        let partition = metrics.source_partition(&ab, "orders", "A.orders", 0);
        let start = Instant::now();
        metrics.tick_at(start, 0);
        partition.record_replicated(100, 40, 50);
        partition.record_replicated(300, 10, 1_500);
        // Clock skew: a record from the future counts as 0 ms.
        partition.record_replicated(0, -5, -7);
        metrics.tick_at(start + Duration::from_secs(10), 0);
        let text = metrics.encode();
        let own = [("flow", "A->B"), ("topic", "orders"), ("partition", "0")];
        let mm2 = [("topic", "A.orders"), ("partition", "0")];
        assert_eq!(
            sample(&text, "kafka_mirrord_records_total", &own),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "kafka_mirrord_bytes_total", &own),
            Some(400.0)
        );
        let mm2_value = |suffix: &str| {
            sample(
                &text,
                &format!("kafka_connect_mirror_mirrorsourceconnector_{suffix}"),
                &mm2,
            )
            .unwrap()
        };
        assert_eq!(mm2_value("record_count"), 3.0);
        assert_eq!(mm2_value("byte_count"), 400.0);
        assert_eq!(mm2_value("record_age_ms"), 0.0, "last value");
        assert_eq!(mm2_value("record_age_ms_min"), 0.0);
        assert_eq!(mm2_value("record_age_ms_max"), 40.0);
        assert_eq!(mm2_value("replication_latency_ms_max"), 1_500.0);
        assert_eq!(mm2_value("replication_latency_ms_avg"), 1_550.0 / 3.0);
        // Counted since the handle was created (a moment before `start`): just under 0.3/s.
        let rate = mm2_value("record_rate");
        assert!(rate > 0.29 && rate <= 0.3, "{rate}");

        assert_eq!(
            sample(
                &text,
                "kafka_mirrord_replication_latency_seconds_count",
                &[("flow", "A->B")]
            ),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &text,
                "kafka_mirrord_replication_latency_seconds_bucket",
                &[("flow", "A->B"), ("le", "0.05")]
            ),
            Some(2.0),
            "0 ms and 50 ms are within 0.05 s"
        );

        // The windows span two ticks; a third empty tick drops the old samples, and with no
        // record at all the statistics are NaN as in MM2. The last value stays.
        metrics.tick_at(start + Duration::from_secs(20), 0);
        let text = metrics.encode();
        assert_eq!(
            sample(
                &text,
                "kafka_connect_mirror_mirrorsourceconnector_record_age_ms_max",
                &mm2
            ),
            Some(40.0)
        );
        metrics.tick_at(start + Duration::from_secs(30), 0);
        let text = metrics.encode();
        assert!(sample(
            &text,
            "kafka_connect_mirror_mirrorsourceconnector_record_age_ms_max",
            &mm2
        )
        .unwrap()
        .is_nan());
        assert_eq!(
            sample(
                &text,
                "kafka_connect_mirror_mirrorsourceconnector_record_age_ms",
                &mm2
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                "kafka_connect_mirror_mirrorsourceconnector_record_rate",
                &mm2
            ),
            Some(0.0)
        );
    }

    #[test]
    fn rates_never_span_less_than_the_tick_period() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        metrics.set_tick_period(Duration::from_secs(60));
        let partition = metrics.source_partition(&flow("A", "B"), "t", "A.t", 0);
        for _ in 0..3 {
            partition.record_replicated(1, 1, 1);
        }
        // A partition created just before a tick: 3 records over at least 60 s, not 3 per ms.
        metrics.tick_at(Instant::now() + Duration::from_millis(1), 0);
        let rate = sample(
            &metrics.encode(),
            "kafka_connect_mirror_mirrorsourceconnector_record_rate",
            &[("topic", "A.t")],
        );
        assert_eq!(rate, Some(3.0 / 60.0));
    }

    #[test]
    fn lag_is_set_per_partition_and_never_negative() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let ab = flow("A", "B");
        let p0 = metrics.source_partition(&ab, "t", "A.t", 0);
        let p1 = metrics.source_partition(&ab, "t", "A.t", 1);
        p0.set_lag(42);
        p1.set_lag(-3);
        // The same partition again gives the same series.
        metrics.source_partition(&ab, "t", "A.t", 0).set_lag(43);
        let text = metrics.encode();
        let lag = |p: &str| {
            sample(
                &text,
                "kafka_mirrord_replication_lag_records",
                &[("flow", "A->B"), ("topic", "t"), ("partition", p)],
            )
        };
        assert_eq!(lag("0"), Some(43.0));
        assert_eq!(lag("1"), Some(0.0));
    }

    #[test]
    fn flow_state_is_one_hot_and_removal_drops_every_series_of_the_flow() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let ab = flow("A", "B");
        let cb = flow("C", "B");
        metrics.set_flow_state(&ab, FlowState::Retrying);
        metrics.set_flow_state(&ab, FlowState::Running);
        metrics.set_flow_state(&cb, FlowState::Running);
        metrics
            .source_partition(&ab, "t", "A.t", 0)
            .record_replicated(1, 1, 1);
        metrics
            .source_partition(&cb, "t", "C.t", 0)
            .record_replicated(1, 1, 1);
        metrics.checkpoint(&ab, "g", "A.t", 0).checkpoint_emitted(3);
        metrics.error(&ab, "source_consumer");
        metrics.set_groups_skipped(&ab, [("active_on_target", 2)]);
        let text = metrics.encode();
        let state = |s: &str| {
            sample(
                &text,
                "kafka_mirrord_flow_state",
                &[("flow", "A->B"), ("state", s)],
            )
        };
        assert_eq!(state("running"), Some(1.0));
        assert_eq!(state("retrying"), Some(0.0));
        assert_eq!(state("starting"), Some(0.0));
        assert_eq!(
            sample(
                &text,
                "kafka_mirrord_errors_total",
                &[("flow", "A->B"), ("kind", "source_consumer")]
            ),
            Some(1.0)
        );

        metrics.remove_flow(&ab);
        let text = metrics.encode();
        assert!(
            !text.contains("A->B"),
            "no series of the removed flow left:\n{text}"
        );
        assert!(!text.contains("source=\"A\""));
        assert_eq!(
            sample(
                &text,
                "kafka_mirrord_records_total",
                &[("flow", "C->B"), ("topic", "t")]
            ),
            Some(1.0),
            "the other flow is untouched"
        );
    }

    #[test]
    fn removing_a_partition_keeps_the_others() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let ab = flow("A", "B");
        metrics.source_partition(&ab, "t", "A.t", 0).set_lag(1);
        metrics.source_partition(&ab, "t", "A.t", 1).set_lag(2);
        metrics.remove_source_partition(&ab, "t", 0);
        metrics.remove_source_partition(&ab, "t", 7); // unknown: no-op
        let text = metrics.encode();
        let lag = |p: &str| {
            sample(
                &text,
                "kafka_mirrord_replication_lag_records",
                &[("partition", p)],
            )
        };
        assert_eq!(lag("0"), None);
        assert_eq!(lag("1"), Some(2.0));
        assert_eq!(
            sample(
                &text,
                "kafka_connect_mirror_mirrorsourceconnector_record_count",
                &[("partition", "0")]
            ),
            None
        );
    }

    #[test]
    fn checkpoints_latency_and_group_age() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let ab = flow("A", "B");
        let checkpoint = metrics.checkpoint(&ab, "billing", "A.orders", 1);
        let idle = metrics.checkpoint(&ab, "idle", "A.orders", 1);
        drop(idle);
        checkpoint.checkpoint_emitted(30);
        checkpoint.checkpoint_emitted(10);
        metrics.tick_at(Instant::now(), unix_ms_now() + 5_000);
        let text = metrics.encode();
        let labels = [
            ("source", "A"),
            ("target", "B"),
            ("group", "billing"),
            ("topic", "A.orders"),
            ("partition", "1"),
        ];
        let name = "kafka_connect_mirror_mirrorcheckpointconnector_checkpoint_latency_ms";
        assert_eq!(sample(&text, name, &labels), Some(10.0));
        assert_eq!(sample(&text, &format!("{name}_min"), &labels), Some(10.0));
        assert_eq!(sample(&text, &format!("{name}_max"), &labels), Some(30.0));
        assert_eq!(sample(&text, &format!("{name}_avg"), &labels), Some(20.0));
        let age = sample(
            &text,
            "kafka_mirrord_checkpoint_age_seconds",
            &[("flow", "A->B"), ("group", "billing")],
        )
        .unwrap();
        assert!((4.5..=5.5).contains(&age), "{age}");
        assert!(sample(
            &text,
            "kafka_mirrord_checkpoint_age_seconds",
            &[("group", "idle")]
        )
        .unwrap()
        .is_nan());
        metrics.remove_group(&ab, "billing");
        assert!(!metrics.encode().contains("billing"));
    }

    #[test]
    fn skipped_groups_reasons_drop_to_zero_when_gone() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let ab = flow("A", "B");
        metrics.set_groups_skipped(&ab, [("active_on_target", 2), ("no_offsets", 1)]);
        metrics.set_groups_skipped(&ab, [("no_offsets", 4)]);
        let text = metrics.encode();
        let skipped = |r: &str| {
            sample(
                &text,
                "kafka_mirrord_groups_skipped",
                &[("flow", "A->B"), ("reason", r)],
            )
        };
        assert_eq!(skipped("active_on_target"), Some(0.0));
        assert_eq!(skipped("no_offsets"), Some(4.0));
    }

    #[test]
    fn reloads_build_info_and_process_metrics() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).unwrap();
        assert!(
            Metrics::register(&registry).is_err(),
            "registering twice in one registry is an error, not a panic"
        );
        metrics.reload(ReloadOutcome::Success);
        metrics.reload(ReloadOutcome::InvalidConfig);
        metrics.reload(ReloadOutcome::InvalidConfig);
        let text = metrics.encode();
        let reloads = |r: &str| sample(&text, "kafka_mirrord_reloads_total", &[("result", r)]);
        assert_eq!(reloads("success"), Some(1.0));
        assert_eq!(reloads("invalid_config"), Some(2.0));
        assert_eq!(
            reloads("failed"),
            Some(0.0),
            "every result is exported from the start"
        );
        assert!(
            sample(
                &text,
                "kafka_mirrord_config_last_reload_success_timestamp_seconds",
                &[]
            )
            .unwrap()
                > 1.7e9
        );
        assert_eq!(
            sample(
                &text,
                "kafka_mirrord_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            Some(1.0)
        );
        if cfg!(target_os = "linux") {
            // Whole CPU seconds: present, possibly still 0 in a short test.
            assert!(sample(&text, "process_cpu_seconds_total", &[]).is_some());
            for name in ["process_resident_memory_bytes", "process_open_fds"] {
                assert!(sample(&text, name, &[]).unwrap() > 0.0, "{name}");
            }
        }
    }
}
