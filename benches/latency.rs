//! `latency` — the latency side of `scripts/bench --latency` (issue 13). Not a libtest bench
//! (`harness = false`): `scripts/bench` builds it and runs the binary while a replicator runs.
//!
//! `run` produces records at a fixed rate into the source topic (each stamped with the time of
//! its `produce` call, `linger.ms=5`, `acks=1`: it is appended to the source log within a few
//! milliseconds; with `linger.ms=0` the broker, answering one request per record, became the
//! bottleneck on a 2-core machine: p99 800 ms with no replicator at all) and reads the target topic at the same time (`fetch.wait.max.ms` holds a
//! fetch until a record arrives, so it is seen as soon as the target acknowledged it). The
//! latency of a record is the time it is seen on the target minus its stamp. After a warm-up
//! (the first records wait for the replicator's fetch to start), it prints p50, p99, p99.9 and max
//! over the measured records, and how many were lost (never seen within the tail time).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;

/// Wall-clock milliseconds (record timestamps are wall-clock too).
fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Parser)]
#[command(about = "scripts/bench --latency helper: steady producer, end-to-end percentiles")]
struct Cli {
    #[arg(long)]
    source: String,
    #[arg(long)]
    target: String,
    #[arg(long)]
    source_topic: String,
    #[arg(long)]
    target_topic: String,
    /// Records per second.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// Value bytes per record.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds of measured production (after the warm-up).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Seconds of production before measuring.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// How long to wait for the last records after production ends.
    #[arg(long, default_value_t = 15)]
    tail: u64,
    /// How long the replicator may take to create the target topic and copy a first record.
    #[arg(long, default_value_t = 180)]
    ready_timeout: u64,
    /// Also write every measured record as `stamp_ms,latency_ms,timestamp_ms` to this file (to
    /// see when the slow ones happen; `timestamp_ms` is the target record's timestamp minus the
    /// stamp: the source append with `message.timestamp.type=LogAppendTime` on the source topic,
    /// the target append with it on the target topic).
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    // `cargo bench` without a filter runs every bench target with libtest-style flags.
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 1 || args.iter().skip(1).all(|a| a.starts_with("--bench")) {
        eprintln!("latency: a helper of scripts/bench (see `latency --help`); nothing to do");
        return ExitCode::SUCCESS;
    }
    match run(&Cli::parse()) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("latency: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The sequence number carried in each record's key.
fn key_of(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

/// The key of the records that check the replicator copies before measuring (not 8 bytes long,
/// so never taken for a sequence number).
const PROBE_KEY: [u8; 5] = *b"probe";

fn run(cli: &Cli) -> Result<serde_json::Value> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &cli.source)
        .set("linger.ms", "5")
        .set("acks", "1")
        .create()?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cli.target)
        .set("group.id", "kafka-mirrord-bench-latency")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "100")
        .set("fetch.queue.backoff.ms", "0")
        .create()?;
    // The replicator creates the target topic when it starts: wait for it, then read from its
    // current end, and wait until a probe record goes through (the replicator is copying).
    let ready_by = Instant::now() + Duration::from_secs(cli.ready_timeout);
    let partitions = loop {
        let metadata = consumer.fetch_metadata(Some(&cli.target_topic), Duration::from_secs(10))?;
        // Every partition with a leader: a topic created a moment ago is in the metadata before
        // its partitions can answer (NotLeaderForPartition).
        let ids: Vec<i32> = metadata
            .topics()
            .first()
            .filter(|t| {
                t.partitions()
                    .iter()
                    .all(|p| p.leader() >= 0 && p.error().is_none())
            })
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if !ids.is_empty() {
            break ids;
        }
        if Instant::now() > ready_by {
            bail!(
                "target topic `{}` not created within {} s",
                cli.target_topic,
                cli.ready_timeout
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in partitions {
        let high = loop {
            match consumer.fetch_watermarks(&cli.target_topic, partition, Duration::from_secs(10)) {
                Ok((_, high)) => break high,
                Err(error) if Instant::now() > ready_by => return Err(error.into()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        assignment.add_partition_offset(
            &cli.target_topic,
            partition,
            rdkafka::Offset::Offset(high),
        )?;
    }
    consumer.assign(&assignment)?;
    let probe_started = Instant::now();
    'probing: loop {
        let probe = BaseRecord::<[u8], [u8]>::to(&cli.source_topic)
            .key(&PROBE_KEY[..])
            .payload(&b"probe"[..]);
        let _ = producer.send(probe);
        producer.poll(Duration::ZERO);
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                if message.key() == Some(&PROBE_KEY[..]) {
                    break 'probing;
                }
            }
        }
        if Instant::now() > ready_by {
            bail!(
                "no probe record reached the target within {} s",
                cli.ready_timeout
            );
        }
    }
    let ready_after_s = probe_started.elapsed().as_secs_f64();

    let value = vec![b'x'; cli.size];
    let total = cli.rate * (cli.warmup + cli.seconds);
    let measured_from = cli.rate * cli.warmup;
    let interval = Duration::from_nanos(1_000_000_000 / cli.rate.max(1));
    let mut sent_at: HashMap<u64, i64> = HashMap::with_capacity(total as usize);
    let mut latencies: Vec<i64> = Vec::with_capacity(total as usize);
    let mut samples: Vec<(i64, i64, i64)> = Vec::new();
    // Stamps of the first and last measured records (to line the run up with the brokers' GC
    // log).
    let mut window = (0i64, 0i64);
    let started = Instant::now();
    let mut next = 0u64;
    let deadline = started + Duration::from_secs(cli.warmup + cli.seconds + cli.tail);
    while Instant::now() < deadline {
        // Produce what is due by now (a fixed schedule: a slow moment is caught up, not skipped).
        while next < total && started + interval * next as u32 <= Instant::now() {
            let stamp = epoch_ms() as i64;
            let key = key_of(next);
            let record = BaseRecord::<[u8], [u8]>::to(&cli.source_topic)
                .key(&key[..])
                .payload(&value[..])
                .timestamp(stamp);
            match producer.send(record) {
                Ok(()) => {
                    if next == measured_from {
                        window.0 = stamp;
                    }
                    window.1 = stamp;
                    sent_at.insert(next, stamp);
                    next += 1;
                }
                Err(_) => break, // queue full: serve reports below and try again
            }
        }
        producer.poll(Duration::ZERO);
        // Read what arrived on the target: wait at most until the next record is due, then take
        // what is there without waiting (bounded, so that producing keeps its schedule).
        let due = started + interval * next as u32;
        let wait = due
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(1));
        let mut taken = 0;
        while let Some(message) = consumer.poll(if taken == 0 { wait } else { Duration::ZERO }) {
            taken += 1;
            let message = message?;
            let now = epoch_ms() as i64;
            let Some(key) = message.key() else { continue };
            let Ok(bytes) = <[u8; 8]>::try_from(key) else {
                continue;
            };
            let sequence = u64::from_be_bytes(bytes);
            if let Some(stamp) = sent_at.remove(&sequence) {
                if sequence >= measured_from {
                    latencies.push(now - stamp);
                    if cli.dump.is_some() {
                        samples.push((
                            stamp,
                            now - stamp,
                            message.timestamp().to_millis().unwrap_or(-1) - stamp,
                        ));
                    }
                }
            }
            if taken >= 256 {
                break;
            }
        }
        if next >= total && sent_at.is_empty() {
            break;
        }
    }
    producer.flush(Duration::from_secs(10))?;
    if let Some(path) = &cli.dump {
        let text: String = samples
            .iter()
            .map(|(stamp, latency, appended)| format!("{stamp},{latency},{appended}\n"))
            .collect();
        std::fs::write(path, text)?;
    }
    let lost = sent_at.keys().filter(|s| **s >= measured_from).count();
    latencies.sort_unstable();
    let percentile = |p: f64| -> Option<i64> {
        if latencies.is_empty() {
            return None;
        }
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        Some(latencies[index])
    };
    Ok(json!({
        "mode": "latency",
        "ready_after_s": ready_after_s,
        "rate": cli.rate,
        "size": cli.size,
        "measured_records": latencies.len(),
        "expected_records": total - measured_from,
        "lost": lost,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "p999_ms": percentile(0.999),
        "max_ms": latencies.last(),
        "measured_from_ms": window.0,
        "measured_until_ms": window.1,
    }))
}
