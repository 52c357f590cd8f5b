//! `scale` — the many-partitions, many-groups side of `scripts/bench --scale` (issue 13). Not a
//! libtest bench (`harness = false`): `scripts/bench` builds it and runs the binary. Subcommands:
//!
//! * `load`: creates TOPICS topics × PARTITIONS partitions named `<prefix>-<n>` on the source,
//!   writes RECORDS records into every partition, then commits GROUPS consumer groups
//!   (`<prefix>-group-<n>`), group n at the end of every partition of topic n mod TOPICS, as an
//!   application that has read its topic (AlterConsumerGroupOffsets, no members).
//! * `watch`: from the replicator's start, waits until every record is on the target
//!   (`source.<topic>`, DefaultReplicationPolicy) and then until every group's offsets are on the
//!   target; then samples the replicator's CPU over `--idle-seconds`. Prints when each finished,
//!   peak RSS (VmHWM) and idle CPU as a share of one core.
//!
//! Every subcommand prints one JSON object on stdout; progress goes to stderr.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

#[path = "common/proc_stats.rs"]
mod proc_stats;
use proc_stats::{clock_ticks, epoch_ms, proc_sample};

use kafka_mirrord::kafka::admin::{Admin, Created, TopicSpec};
use kafka_mirrord::kafka::group_offsets::Committed;
use kafka_mirrord::kafka::offsets::{list_offsets, Spec};

#[derive(Parser)]
#[command(
    about = "scripts/bench --scale helpers: many topics and groups, their arrival, idle cost"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the topics, fill them, commit the groups.
    Load(Layout),
    /// Wait for every record and every group on the target; measure idle CPU and peak RSS.
    Watch(WatchArgs),
}

#[derive(Args, Clone)]
struct Layout {
    #[arg(long)]
    source: String,
    #[arg(long, default_value = "scale")]
    prefix: String,
    #[arg(long, default_value_t = 500)]
    topics: usize,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Records per partition.
    #[arg(long, default_value_t = 10)]
    records: u64,
    #[arg(long, default_value_t = 1000)]
    groups: usize,
}

#[derive(Args)]
struct WatchArgs {
    #[command(flatten)]
    layout: Layout,
    #[arg(long)]
    target: String,
    /// The replicator's pid (sampled from /proc).
    #[arg(long)]
    pid: u32,
    /// When the replicator was started (Unix epoch milliseconds).
    #[arg(long)]
    start_ms: u64,
    #[arg(long, default_value_t = 30)]
    idle_seconds: u64,
    #[arg(long, default_value_t = 1200)]
    timeout: u64,
}

fn main() -> ExitCode {
    // `cargo bench` without a filter runs every bench target with libtest-style flags.
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 1
        || args
            .iter()
            .skip(1)
            .all(|a| a.starts_with("--bench") || a == "--test")
    {
        eprintln!("scale: a helper of scripts/bench (see `scale --help`); nothing to do");
        return ExitCode::SUCCESS;
    }
    let result = match Cli::parse().command {
        Command::Load(layout) => load(&layout),
        Command::Watch(args) => watch(&args),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scale: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Layout {
    fn topic(&self, n: usize) -> String {
        format!("{}-{n:04}", self.prefix)
    }

    fn group(&self, n: usize) -> String {
        format!("{}-group-{n:04}", self.prefix)
    }

    fn partitions(&self, topic: &str) -> Vec<(String, i32)> {
        (0..self.partitions)
            .map(|p| (topic.to_string(), p))
            .collect()
    }

    fn all_partitions(&self, topic_name: impl Fn(&str) -> String) -> Vec<(String, i32)> {
        (0..self.topics)
            .flat_map(|n| self.partitions(&topic_name(&self.topic(n))))
            .collect()
    }
}

fn admin(brokers: &str) -> Result<Admin> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    Admin::new(&config, Duration::from_secs(60)).context("creating an admin client")
}

fn query_client(brokers: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "kafka-mirrord-bench-scale")
        .create()
        .context("creating a query client")
}

/// End offsets of `partitions` (one batched ListOffsets); a partition that errs counts as 0.
fn ends(client: &BaseConsumer, partitions: &[(String, i32)]) -> BTreeMap<(String, i32), i64> {
    match list_offsets(
        client.client(),
        partitions,
        Spec::Latest,
        false,
        Duration::from_secs(30),
    ) {
        Ok(listed) => listed
            .into_iter()
            .map(|(key, offset)| (key, offset.unwrap_or(0)))
            .collect(),
        Err(error) => {
            eprintln!("scale: listing end offsets: {error}");
            BTreeMap::new()
        }
    }
}

fn load(layout: &Layout) -> Result<Value> {
    let started = Instant::now();
    let admin = admin(&layout.source)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let specs: Vec<TopicSpec> = (0..layout.topics)
        .map(|n| TopicSpec {
            name: layout.topic(n),
            partitions: layout.partitions,
            replication_factor: 1,
            configs: Vec::new(),
        })
        .collect();
    for chunk in specs.chunks(100) {
        for (name, created) in runtime.block_on(admin.create_topics(chunk))? {
            if let Created::Failed(why) = created {
                bail!("creating {name}: {why}");
            }
        }
    }
    // Wait until every partition has a leader: producing or listing offsets before that fails.
    let query = query_client(&layout.source)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let metadata = query.fetch_metadata(None, Duration::from_secs(30))?;
        let led: usize = metadata
            .topics()
            .iter()
            .filter(|t| t.name().starts_with(&format!("{}-", layout.prefix)))
            .flat_map(|t| t.partitions())
            .filter(|p| p.leader() >= 0 && p.error().is_none())
            .count();
        if led >= layout.topics * layout.partitions as usize {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {led} partitions have a leader after 300 s");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "scale: created {} topics in {:.1} s",
        layout.topics,
        started.elapsed().as_secs_f64()
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &layout.source)
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()?;
    let wanted = layout.all_partitions(|t| t.to_string());
    for (topic, partition) in &wanted {
        for i in 0..layout.records {
            let value = format!("{topic}/{partition}/{i}");
            let mut record = BaseRecord::<str, str>::to(topic)
                .partition(*partition)
                .payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    let expected = layout.records as i64 * wanted.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let (written, total) = loop {
        // Freshly created partitions may not answer ListOffsets for a moment.
        let written = ends(&query, &wanted);
        let total: i64 = written.values().sum();
        if total == expected || Instant::now() > deadline {
            break (written, total);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if total != expected {
        bail!("{total} records on the source, expected {expected}");
    }
    // Group n has read all of topic n mod TOPICS.
    let requests: Vec<(String, Committed)> = (0..layout.groups)
        .map(|n| {
            let topic = layout.topic(n % layout.topics);
            let offsets = layout
                .partitions(&topic)
                .into_iter()
                .map(|key| {
                    let end = written.get(&key).copied().unwrap_or(0);
                    (key, (end, String::new()))
                })
                .collect();
            (layout.group(n), offsets)
        })
        .collect();
    // A fresh cluster answers "not coordinator" until its offsets topic is ready: retry those.
    let mut pending = requests;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pending.is_empty() {
        let committed = admin.alter_group_offsets(&pending);
        pending.retain(|(group, _)| !committed.get(group).is_some_and(|r| r.is_ok()));
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} groups could not be committed, e.g. {:?}",
                pending.len(),
                committed.get(&pending[0].0)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "scale: {} partitions, {total} records, {} groups in {elapsed:.1} s",
        wanted.len(),
        layout.groups
    );
    Ok(
        json!({"mode": "load", "partitions": wanted.len(), "records": total,
              "groups": layout.groups, "elapsed_s": elapsed}),
    )
}

fn watch(args: &WatchArgs) -> Result<Value> {
    let layout = &args.layout;
    let ticks = clock_ticks();
    let pid = args.pid.to_string();
    let deadline = args.start_ms + args.timeout * 1000;
    let rel = |ms: u64| ms.saturating_sub(args.start_ms) as f64 / 1000.0;
    let remote = |topic: &str| format!("source.{topic}");
    let source_partitions = layout.all_partitions(|t| t.to_string());
    let want = ends(&query_client(&layout.source)?, &source_partitions);
    let expected: i64 = want.values().sum();
    let target_partitions = layout.all_partitions(remote);
    let target = query_client(&args.target)?;
    let alive = || proc_sample(&pid).is_some();

    // 1. Every record on the target, partition for partition.
    let mut first_record_s = None;
    let mut last_report = epoch_ms();
    let records_s = loop {
        let got = ends(&target, &target_partitions);
        let copied: i64 = got.values().sum();
        if copied > 0 && first_record_s.is_none() {
            first_record_s = Some(rel(epoch_ms()));
        }
        if epoch_ms() - last_report >= 2_000 {
            last_report = epoch_ms();
            eprintln!(
                "scale: {copied}/{expected} records after {:.0} s",
                rel(last_report)
            );
        }
        let complete = source_partitions.iter().all(|(topic, partition)| {
            got.get(&(remote(topic), *partition)).copied().unwrap_or(0)
                >= want.get(&(topic.clone(), *partition)).copied().unwrap_or(0)
        });
        let now = epoch_ms();
        if complete {
            break Some(rel(now));
        }
        if now >= deadline || !alive() {
            eprintln!(
                "scale: records not all on the target ({}/{expected})",
                got.values().sum::<i64>()
            );
            break None;
        }
        std::thread::sleep(Duration::from_millis(250));
    };

    // 2. Every group's offsets on the target, for every partition it committed on the source.
    let target_admin = admin(&args.target)?;
    let groups: Vec<String> = (0..layout.groups).map(|n| layout.group(n)).collect();
    let mut synced = 0;
    let groups_s = loop {
        if records_s.is_none() {
            break None;
        }
        let listed = target_admin.list_group_offsets(&groups);
        synced = (0..layout.groups)
            .filter(|n| {
                let topic = remote(&layout.topic(n % layout.topics));
                listed
                    .get(&layout.group(*n))
                    .and_then(|r| r.as_ref().ok())
                    .is_some_and(|offsets| {
                        (0..layout.partitions).all(|p| {
                            offsets
                                .get(&(topic.clone(), p))
                                .is_some_and(|(offset, _)| *offset > 0)
                        })
                    })
            })
            .count();
        let now = epoch_ms();
        if synced == layout.groups {
            break Some(rel(now));
        }
        if now >= deadline || !alive() {
            eprintln!("scale: {synced}/{} groups on the target", layout.groups);
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };

    // 3. Idle: CPU over the next seconds, nothing left to copy.
    let before = proc_sample(&pid);
    std::thread::sleep(Duration::from_secs(args.idle_seconds));
    let after = proc_sample(&pid);
    let idle_core = match (before, after) {
        (Some(b), Some(a)) => Some(
            (a.cpu_ticks.saturating_sub(b.cpu_ticks)) as f64
                / ticks as f64
                / args.idle_seconds as f64,
        ),
        _ => None,
    };
    let peak_rss_mib = after.or(before).map(|s| s.vm_hwm_kb as f64 / 1024.0);
    let rss_mib = after.map(|s| s.vm_rss_kb as f64 / 1024.0);
    Ok(json!({
        "mode": "watch",
        "partitions": source_partitions.len(),
        "records": expected,
        "groups": layout.groups,
        "groups_synced": synced,
        "first_record_s": first_record_s,
        "records_s": records_s,
        "groups_s": groups_s,
        "idle_seconds": args.idle_seconds,
        "idle_core": idle_core,
        "peak_rss_mib": peak_rss_mib,
        "rss_mib": rss_mib,
    }))
}
