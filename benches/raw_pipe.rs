//! `raw_pipe` — the librdkafka side of `scripts/bench` (issue 3's benchmark). Not a libtest bench
//! (`harness = false`): `scripts/bench` builds it with `cargo bench --no-run --bench raw_pipe` and
//! runs the binary directly. Subcommands:
//!
//! * `pipe`: the **raw ceiling**. One plain librdkafka consumer (all partitions of the source
//!   topic assigned from the beginning) piping into one plain librdkafka producer, record for
//!   record to the same partition number of the target topic with the same key, value, headers
//!   and timestamp. Stops once it has reached the end offsets captured at start and every
//!   delivery is acknowledged. What a replicator costs beyond this is overhead.
//! * `load`: creates a topic and fills it with N records (fixed-size keys and values, round-robin
//!   over the partitions), waiting for every acknowledgement.
//! * `watch`: polls the end offsets of a target topic until it holds the expected records (or a
//!   timeout), while sampling the replicator's `/proc/<pid>` (CPU ticks, VmHWM): the same
//!   outside measurement for every replicator, taken the moment the copy completes.
//! * `verify`: compares a target topic with its source, partition by partition (record counts
//!   from the low/high watermarks).
//!
//! Every subcommand prints one JSON object on stdout; progress goes to stderr.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::{json, Value};

#[path = "common/proc_stats.rs"]
mod proc_stats;
use proc_stats::{clock_ticks, epoch_ms, proc_sample, ProcSample};

#[derive(Parser)]
#[command(
    about = "librdkafka helpers for scripts/bench: raw consume->produce ceiling, loader, watcher"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy every record of SOURCE_TOPIC (as of start) to TARGET_TOPIC, partition for partition.
    Pipe(PipeArgs),
    /// Create TOPIC and produce N records into it.
    Load(LoadArgs),
    /// Wait until TOPIC holds EXPECT records; sample the replicator's /proc meanwhile.
    Watch(WatchArgs),
    /// Compare per-partition record counts of a target topic with its source topic.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct PipeArgs {
    #[arg(long)]
    source: String,
    #[arg(long)]
    target: String,
    #[arg(long)]
    source_topic: String,
    #[arg(long)]
    target_topic: String,
    /// Extra consumer settings (librdkafka names), KEY=VALUE; override the defaults.
    #[arg(long = "consumer-set", value_name = "KEY=VALUE")]
    consumer_set: Vec<String>,
    /// Extra producer settings (librdkafka names), KEY=VALUE; override the defaults.
    #[arg(long = "producer-set", value_name = "KEY=VALUE")]
    producer_set: Vec<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// After finishing, close the clients and sleep this long before exiting, so that an outside
    /// observer (`watch`) can still read this process's /proc entry when it sees the copy done.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
}

#[derive(Args)]
struct LoadArgs {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    #[arg(long)]
    records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Key size in bytes (decimal record number, zero-padded); 0 = null keys.
    #[arg(long, default_value_t = 8)]
    key_size: usize,
    /// Producer batch.size of the loader: shapes the batches the replicators will fetch. 16384 is
    /// the Java producer's default, i.e. what most real source topics are made of.
    #[arg(long, default_value_t = 16384)]
    batch_size: u64,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[derive(Args)]
struct WatchArgs {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    topic: String,
    /// Records expected on TOPIC in total.
    #[arg(long)]
    expect: u64,
    /// Source cluster and topic: when given, "done" also requires every target partition to hold
    /// as many records as its source partition (duplicates in one partition cannot hide a gap in
    /// another).
    #[arg(long, requires = "source_topic")]
    source: Option<String>,
    #[arg(long, requires = "source")]
    source_topic: Option<String>,
    /// The replicator's pid, sampled from /proc (0 = none).
    #[arg(long, default_value_t = 0)]
    pid: u32,
    /// When the replicator was started (Unix epoch milliseconds); times are relative to it.
    #[arg(long)]
    start_ms: u64,
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
}

#[derive(Args)]
struct VerifyArgs {
    #[arg(long)]
    source: String,
    #[arg(long)]
    target: String,
    #[arg(long)]
    source_topic: String,
    #[arg(long)]
    target_topic: String,
}

fn main() -> ExitCode {
    // `cargo bench` without a filter (or `cargo test --benches`) runs every bench target with
    // libtest-style flags such as `--bench`; this is a tool, not a timed test, so do nothing then.
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 1
        || args
            .iter()
            .skip(1)
            .all(|a| a.starts_with("--bench") || a == "--test")
    {
        eprintln!("raw_pipe: a helper of scripts/bench (see `raw_pipe --help`); nothing to do");
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pipe(a) => pipe(a),
        Command::Load(a) => load(a),
        Command::Watch(a) => watch(a),
        Command::Verify(a) => verify(a),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raw_pipe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client settings
// ---------------------------------------------------------------------------------------------

/// The consumer of the raw pipe: what a replicator catching up a backlog should use.
fn pipe_consumer_defaults() -> Vec<(&'static str, &'static str)> {
    vec![
        // Manual assignment, no commits: group.id only because librdkafka wants one.
        ("group.id", "kafka-mirrord-bench-raw-pipe"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        // librdkafka >= 2.3 pauses fetching for fetch.queue.backoff.ms (default 1000) whenever more
        // than queued.min.messages are queued, which caps a catch-up of small records at roughly
        // 190k records/s (test-brokers.md). Re-check every 10 ms instead (0 would spin while the
        // producer applies backpressure).
        ("fetch.queue.backoff.ms", "10"),
        // The same prefetch bounds as kafka-mirrord's defaults (src/plan/librdkafka.rs), so the
        // ceiling is librdkafka's for the same memory budget.
        ("queued.max.messages.kbytes", "4096"),
        ("queued.min.messages", "20000"),
        ("max.partition.fetch.bytes", "262144"),
        ("fetch.wait.max.ms", "500"),
    ]
}

/// The producer of the raw pipe: large batches, ordered and without duplicates, no compression.
fn pipe_producer_defaults() -> Vec<(&'static str, &'static str)> {
    vec![
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("max.in.flight.requests.per.connection", "5"),
        ("compression.type", "none"),
        ("linger.ms", "5"),
        // The same batching and queue bounds as kafka-mirrord's target producer.
        ("batch.size", "262144"),
        ("batch.num.messages", "10000"),
        // Back-pressure: when this fills up, send() returns QueueFull and we poll for acks.
        ("queue.buffering.max.messages", "30000"),
        ("queue.buffering.max.kbytes", "16384"),
    ]
}

fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>> {
    sets.iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!("expected KEY=VALUE, got `{s}`"),
        })
        .collect()
}

/// Defaults overridden by `extra`, in a stable order, as (key, value) pairs.
fn merged(defaults: Vec<(&str, &str)>, extra: &[(String, String)]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = defaults
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in extra {
        map.insert(k.clone(), v.clone());
    }
    map
}

fn client_config(brokers: &str, settings: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers);
    for (k, v) in settings {
        cfg.set(k, v);
    }
    cfg
}

/// A consumer used only for metadata and watermark queries.
fn query_client(brokers: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "kafka-mirrord-bench-query")
        .set("enable.auto.commit", "false")
        .create()
        .with_context(|| format!("creating a client for {brokers}"))
}

// ---------------------------------------------------------------------------------------------
// Topic helpers
// ---------------------------------------------------------------------------------------------

/// Partition count of `topic`, or None while it does not exist (yet).
fn partition_count(client: &BaseConsumer, topic: &str) -> Result<Option<usize>> {
    let md = client.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    Ok(Some(t.partitions().len()))
}

/// (low, high) watermarks of every partition of `topic`; empty while the topic does not exist.
fn watermarks(client: &BaseConsumer, topic: &str) -> Result<Vec<(i64, i64)>> {
    let Some(n) = partition_count(client, topic)? else {
        return Ok(Vec::new());
    };
    (0..n as i32)
        .map(|p| {
            client
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .with_context(|| format!("watermarks of {topic}/{p}"))
        })
        .collect()
}

fn record_count(marks: &[(i64, i64)]) -> u64 {
    marks.iter().map(|(lo, hi)| (hi - lo).max(0) as u64).sum()
}

/// Create `topic` (replication factor 1) and wait until every partition has a leader.
fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating an admin client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime.block_on(admin.create_topics([&new_topic], &opts))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    let client = query_client(brokers)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|md| {
                md.topics().iter().find(|t| t.name() == topic).map(|t| {
                    t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                })
            })
            .unwrap_or(false);
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {topic} has no leader for every partition after 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// /proc sampling (Linux only, like the benchmark)
// ---------------------------------------------------------------------------------------------

fn sample_json(s: Option<ProcSample>, ticks: u64) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "cpu_s": s.cpu_ticks as f64 / ticks as f64,
            "vm_hwm_kb": s.vm_hwm_kb,
            "vm_rss_kb": s.vm_rss_kb,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// pipe: the raw ceiling
// ---------------------------------------------------------------------------------------------

/// Counts acknowledgements and failures of the pipe's producer.
#[derive(Default)]
struct DeliveryCounter {
    acked: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("raw_pipe: delivery failed: {e}");
                }
                0
            }
        };
    }
}

fn pipe(a: PipeArgs) -> Result<Value> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.timeout);
    let consumer_settings = merged(pipe_consumer_defaults(), &parse_sets(&a.consumer_set)?);
    let producer_settings = merged(pipe_producer_defaults(), &parse_sets(&a.producer_set)?);
    eprintln!("raw_pipe: consumer settings: {consumer_settings:?}");
    eprintln!("raw_pipe: producer settings: {producer_settings:?}");

    let consumer: BaseConsumer = client_config(&a.source, &consumer_settings)
        .create()
        .context("creating the consumer")?;
    // The backlog to copy: everything up to the end offsets as of now.
    let marks = watermarks(&consumer, &a.source_topic)?;
    if marks.is_empty() {
        bail!("source topic {} does not exist", a.source_topic);
    }
    let expected = record_count(&marks);
    let partitions = marks.len();
    create_topic(&a.target, &a.target_topic, partitions as i32)?;

    let producer: BaseProducer<DeliveryCounter> = client_config(&a.target, &producer_settings)
        .create_with_context(DeliveryCounter::default())
        .context("creating the producer")?;

    let mut assignment = TopicPartitionList::new();
    for (p, (lo, _)) in marks.iter().enumerate() {
        assignment.add_partition_offset(&a.source_topic, p as i32, Offset::Offset(*lo))?;
    }
    consumer.assign(&assignment)?;

    // Per partition: the end offset to reach; a partition is done once a record at or past
    // end - 1 has been copied (or it was empty).
    let ends: Vec<i64> = marks.iter().map(|(_, hi)| *hi).collect();
    let mut open = marks.iter().filter(|(lo, hi)| hi > lo).count();
    let mut done_partition: Vec<bool> = marks.iter().map(|(lo, hi)| hi <= lo).collect();
    let (mut copied, mut bytes) = (0u64, 0u64);
    let mut first_record_at: Option<Instant> = None;
    eprintln!(
        "raw_pipe: copying {expected} records of {} ({partitions} partitions) to {}",
        a.source_topic, a.target_topic
    );

    while open > 0 {
        if Instant::now() > deadline {
            bail!(
                "timed out after {} s with {copied}/{expected} records copied",
                a.timeout
            );
        }
        let msg = match consumer.poll(Duration::from_millis(100)) {
            None => {
                producer.poll(Duration::ZERO);
                continue;
            }
            Some(Err(e)) => {
                eprintln!("raw_pipe: consumer error: {e}");
                continue;
            }
            Some(Ok(m)) => m,
        };
        first_record_at.get_or_insert_with(Instant::now);
        let p = msg.partition();
        let offset = msg.offset();
        let mut record = BaseRecord::<[u8], [u8]>::to(&a.target_topic).partition(p);
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        if let Some(v) = msg.payload() {
            record = record.payload(v);
        }
        if let Some(ts) = msg.timestamp().to_millis() {
            record = record.timestamp(ts);
        }
        if let Some(h) = msg.headers() {
            if h.count() > 0 {
                record = record.headers(h.detach());
            }
        }
        bytes += (msg.key_len() + msg.payload_len()) as u64;
        // Back-pressure: the producer queue is bounded; serve delivery reports until it has room.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                    if Instant::now() > deadline {
                        bail!("timed out waiting for producer queue space");
                    }
                }
                Err((e, _)) => bail!("producing to {}/{p}: {e}", a.target_topic),
            }
        }
        copied += 1;
        if copied % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
        let pi = p as usize;
        if pi < ends.len() && !done_partition[pi] && offset + 1 >= ends[pi] {
            done_partition[pi] = true;
            open -= 1;
        }
    }
    let consumed_at = Instant::now();
    let remaining = deadline.saturating_duration_since(Instant::now());
    producer
        .flush(remaining)
        .context("waiting for the last acknowledgements")?;
    let finished = Instant::now();
    let ctx = producer.context();
    let (acked, failed) = (
        ctx.acked.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    let own = proc_sample("self");
    drop(producer);
    drop(consumer);
    if failed > 0 || acked != copied {
        bail!("{failed} deliveries failed, {acked} acknowledged of {copied} sent");
    }
    let elapsed = finished.duration_since(started).as_secs_f64();
    let result = json!({
        "mode": "pipe",
        "records": copied,
        "expected": expected,
        "bytes": bytes,
        "elapsed_s": elapsed,
        "consume_done_s": consumed_at.duration_since(started).as_secs_f64(),
        "first_record_s": first_record_at.map(|t| t.duration_since(started).as_secs_f64()),
        "records_per_s": copied as f64 / elapsed,
        "mb_per_s": bytes as f64 / 1e6 / elapsed,
        "self": sample_json(own, clock_ticks()),
        "consumer": consumer_settings,
        "producer": producer_settings,
    });
    eprintln!(
        "raw_pipe: copied {copied} records ({:.1} MB) in {elapsed:.2} s: {:.0} records/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        copied as f64 / elapsed,
        bytes as f64 / 1e6 / elapsed
    );
    if a.hold_secs > 0 {
        // Print now: whoever waits for us reads stdout before killing us.
        println!("{result}");
        std::thread::sleep(Duration::from_secs(a.hold_secs));
        std::process::exit(0);
    }
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------------------------

fn load(a: LoadArgs) -> Result<Value> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.timeout);
    create_topic(&a.brokers, &a.topic, a.partitions)?;
    let producer: BaseProducer<DeliveryCounter> = ClientConfig::new()
        .set("bootstrap.servers", &a.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "none")
        .set("linger.ms", a.linger_ms.to_string())
        .set("batch.size", a.batch_size.to_string())
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "262144")
        .create_with_context(DeliveryCounter::default())
        .context("creating the loader's producer")?;

    // Values are slices of a random buffer at shifting offsets: incompressible and not all alike.
    let mut pool = vec![0u8; (1 << 20) + a.value_size];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in pool.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = (x >> 24) as u8;
    }
    let mut key = vec![b'0'; a.key_size];
    for i in 0..a.records {
        if a.key_size > 0 {
            let digits = i.to_string();
            let d = digits.as_bytes();
            let n = d.len().min(a.key_size);
            key[a.key_size - n..].copy_from_slice(&d[d.len() - n..]);
        }
        let start = ((i.wrapping_mul(7919)) % (1 << 20)) as usize;
        let value = &pool[start..start + a.value_size];
        let mut record = BaseRecord::<[u8], [u8]>::to(&a.topic)
            .partition((i % a.partitions as u64) as i32)
            .payload(value);
        if a.key_size > 0 {
            record = record.key(&key[..]);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                    if Instant::now() > deadline {
                        bail!("load timed out after {} s", a.timeout);
                    }
                }
                Err((e, _)) => bail!("producing to {}: {e}", a.topic),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(deadline.saturating_duration_since(Instant::now()))?;
    let ctx = producer.context();
    let (acked, failed) = (
        ctx.acked.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    if failed > 0 || acked != a.records {
        bail!(
            "{failed} deliveries failed, {acked} acknowledged of {}",
            a.records
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = a.records * (a.key_size + a.value_size) as u64;
    eprintln!(
        "raw_pipe: loaded {} records ({:.1} MB) into {} in {elapsed:.1} s ({:.0} records/s)",
        a.records,
        bytes as f64 / 1e6,
        a.topic,
        a.records as f64 / elapsed
    );
    Ok(json!({
        "mode": "load", "topic": a.topic, "partitions": a.partitions, "records": a.records,
        "bytes": bytes, "elapsed_s": elapsed,
    }))
}

// ---------------------------------------------------------------------------------------------
// watch
// ---------------------------------------------------------------------------------------------

fn watch(a: WatchArgs) -> Result<Value> {
    let client = query_client(&a.brokers)?;
    let per_partition: Option<Vec<u64>> = match (&a.source, &a.source_topic) {
        (Some(brokers), Some(topic)) => {
            let marks = watermarks(&query_client(brokers)?, topic)?;
            Some(marks.iter().map(|m| record_count(&[*m])).collect())
        }
        _ => None,
    };
    let complete = |marks: &[(i64, i64)]| match &per_partition {
        None => record_count(marks) >= a.expect,
        Some(want) => {
            marks.len() == want.len()
                && marks
                    .iter()
                    .zip(want)
                    .all(|(m, w)| record_count(&[*m]) >= *w)
        }
    };
    let ticks = clock_ticks();
    let pid = a.pid.to_string();
    let deadline = a.start_ms + a.timeout * 1000;
    let rel = |ms: u64| ms.saturating_sub(a.start_ms) as f64 / 1000.0;
    let (mut first, mut last_sample, mut at_first) = (None::<(u64, u64)>, None, None);
    let (mut count, mut is_complete) = (0, false);
    let mut last_progress = epoch_ms();
    let status = loop {
        let now = epoch_ms();
        // Sample before counting: when the count completes, the sample is at most one round trip
        // older than the completion (never later), for every replicator alike.
        let sample = if a.pid > 0 { proc_sample(&pid) } else { None };
        let alive = sample.is_some();
        if alive {
            last_sample = sample;
        }
        match watermarks(&client, &a.topic) {
            Ok(m) => (count, is_complete) = (record_count(&m), complete(&m)),
            Err(e) => eprintln!("raw_pipe: watch: {e:#}"),
        }
        if count > 0 && first.is_none() {
            first = Some((now, count));
            at_first = last_sample;
        }
        if is_complete {
            break "done";
        }
        if a.pid > 0 && !alive {
            break "exited";
        }
        if now >= deadline {
            break "timeout";
        }
        if now - last_progress >= 10_000 {
            last_progress = now;
            eprintln!(
                "raw_pipe: watch {}: {count}/{} records after {:.0} s",
                a.topic,
                a.expect,
                rel(now)
            );
        }
        std::thread::sleep(Duration::from_millis(a.interval_ms));
    };
    let done_ms = epoch_ms();
    Ok(json!({
        "mode": "watch",
        "status": status,
        "topic": a.topic,
        "expected": a.expect,
        "count": count,
        "start_ms": a.start_ms,
        "first_s": first.map(|(t, _)| rel(t)),
        "first_count": first.map(|(_, c)| c),
        "end_s": rel(done_ms),
        "at_first": sample_json(at_first, ticks),
        "at_end": sample_json(last_sample, ticks),
    }))
}

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

fn verify(a: VerifyArgs) -> Result<Value> {
    let src = watermarks(&query_client(&a.source)?, &a.source_topic)?;
    let dst = watermarks(&query_client(&a.target)?, &a.target_topic)?;
    let (src_total, dst_total) = (record_count(&src), record_count(&dst));
    let mut mismatched = Vec::new();
    for p in 0..src.len().max(dst.len()) {
        let s = src.get(p).map(|m| record_count(&[*m])).unwrap_or(0);
        let d = dst.get(p).map(|m| record_count(&[*m])).unwrap_or(0);
        if s != d {
            mismatched.push(json!({"partition": p, "source": s, "target": d}));
        }
    }
    let status = if dst.is_empty() && src_total > 0 {
        "MISSING"
    } else if mismatched.is_empty() {
        "OK"
    } else if dst_total < src_total {
        "MISSING"
    } else if dst_total > src_total {
        "EXTRA"
    } else {
        "MISMATCH"
    };
    Ok(json!({
        "mode": "verify", "status": status, "source_records": src_total,
        "target_records": dst_total, "source_partitions": src.len(),
        "target_partitions": dst.len(), "mismatched_partitions": mismatched,
    }))
}
