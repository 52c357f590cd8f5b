//! The fault suite (issue 9), against the two local Apache Kafka clusters: a frozen target under a
//! stream and SIGTERM, brokers SIGKILLed and restarted on their log directory, records deleted at
//! the source while running, the offsets topic made unreadable by an ACL, poison records, a
//! hundred reloads of a changed flow under load, and a configuration file written in two steps.
//!
//! Every fault is undone by a guard (`support::faults`) even when a test fails, so the clusters
//! are healthy for the tests that follow.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::Producer;
use support::faults::{self, Frozen, Revive};
use support::*;

const COMMON: &str = "emit.heartbeats.enabled = false\nemit.checkpoints.enabled = false\n\
    replication.factor = 1\noffset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
    heartbeats.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
    offset.flush.interval.ms = 1000\nrefresh.topics.interval.seconds = 2\n";

/// A flow `source->target` (or with other aliases) for `topics`, HTTP on `http`.
fn flow_config(dir: &Path, name: &str, topics: &str, http: &str, extra: &str) -> PathBuf {
    flow_config_from("source", dir, name, topics, http, extra)
}

/// As `flow_config`, with the source cluster under another alias: two daemons running side by
/// side with the same alias pair would be one flow's members (and disagree on the plan).
fn flow_config_from(
    alias: &str,
    dir: &Path,
    name: &str,
    topics: &str,
    http: &str,
    extra: &str,
) -> PathBuf {
    let (source, target) = endpoints();
    write_properties(
        dir,
        name,
        &format!(
            "clusters = {alias}, target\n{alias}.bootstrap.servers = {source}\ntarget.bootstrap.servers = {target}\n\
             {alias}->target.enabled = true\n{alias}->target.topics = {topics}\n{COMMON}\
             target.offset.flush.interval.ms = 1000\nmirrord.http.listen = {http}\n{extra}"
        ),
    )
}

fn http_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Record `i` of partition `p`: key "p-i", the number in the timestamp so order can be checked.
fn record(partition: i32, index: usize) -> TestRecord {
    TestRecord {
        key: Some(format!("{partition}-{index}").into_bytes()),
        value: Some(vec![b'v'; 100]),
        headers: vec![],
        timestamp: 1_700_000_000_000 + index as i64,
    }
}

/// Produces to every partition of each topic, `batch` records per partition every 20 ms, until
/// stopped; returns the count per partition.
struct Stream {
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    fn start(topics: Vec<String>, partitions: i32, batch: usize) -> Stream {
        let (source, _) = endpoints();
        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, produced) = (stop.clone(), produced.clone());
            std::thread::spawn(move || {
                // One producer that waits out broker restarts (a restarted broker may take a
                // minute to recover its logs): the stream has neither gaps nor duplicates.
                let producer = patient_producer(source);
                let mut next = 0;
                while !stop.load(Ordering::Relaxed) {
                    for topic in &topics {
                        for partition in 0..partitions {
                            let records: Vec<TestRecord> =
                                (next..next + batch).map(|i| record(partition, i)).collect();
                            send_records(&producer, topic, partition, &records);
                        }
                    }
                    while producer.flush(Duration::from_secs(10)).is_err() {}
                    next += batch;
                    produced.store(next, Ordering::Release);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Stream {
            stop,
            produced,
            thread: Some(thread),
        }
    }

    /// Stops producing; returns how many records went to each partition.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.produced.load(Ordering::Acquire)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Record indexes of a target partition in arrival order.
fn indexes(topic: &str, partition: i32, isolation: &str) -> Vec<usize> {
    let (_, target) = endpoints();
    read_partition(target, topic, partition, isolation)
        .iter()
        .map(|r| (r.timestamp - 1_700_000_000_000) as usize)
        .collect()
}

/// Every record 0..count present, in order (first occurrences), none missing.
fn assert_complete_in_order(topic: &str, partitions: i32, count: usize) -> usize {
    let mut duplicates = 0;
    for partition in 0..partitions {
        let all = indexes(topic, partition, "read_committed");
        let mut seen = HashSet::new();
        let first: Vec<usize> = all.iter().copied().filter(|i| seen.insert(*i)).collect();
        duplicates += all.len() - first.len();
        assert_eq!(
            first,
            (0..count).collect::<Vec<_>>(),
            "{topic}/{partition}: a record is missing or out of order"
        );
    }
    duplicates
}

fn remote_count(topic: &str) -> i64 {
    record_count(endpoints().1, topic)
}

#[test]
fn a_frozen_target_never_holds_the_process_past_its_deadline_and_nothing_is_lost() {
    let (source, _) = endpoints();
    let topic = unique("frozen");
    create_topic(source, &topic, 3);
    let dir = tempfile::tempdir().unwrap();
    let http = http_address();
    let config = flow_config(
        dir.path(),
        "mm2.properties",
        &topic,
        &http,
        "mirrord.shutdown.timeout.ms = 6000\n",
    );
    let stream = Stream::start(vec![topic.clone()], 3, 20);
    let remote = format!("source.{topic}");
    let mut daemon = Daemon::start(&config);
    wait_until(Duration::from_secs(60), "replication under way", || {
        remote_count(&remote) >= 300
    });

    // 1. Frozen target, SIGTERM, then a second SIGTERM: out within 2 s of the second.
    let frozen = Frozen::broker("target");
    std::thread::sleep(Duration::from_secs(2));
    daemon.signal("TERM");
    std::thread::sleep(Duration::from_secs(1));
    daemon.signal("TERM");
    let (code, took) = wait_for_exit(&mut daemon, Duration::from_secs(10));
    assert!(
        took <= Duration::from_secs(2),
        "the second SIGTERM exits within 2 s, took {took:?}"
    );
    assert_eq!(code, Some(1), "an immediate exit is not a clean stop");

    // 2. Started while the target is still frozen, SIGTERM: out within the 6 s deadline.
    let mut daemon = Daemon::start(&config);
    std::thread::sleep(Duration::from_secs(3));
    daemon.signal("TERM");
    let (code, took) = wait_for_exit(&mut daemon, Duration::from_secs(20));
    assert!(
        took <= Duration::from_millis(6_000 + 1_500),
        "exits within the deadline (6 s), took {took:?}\n{}",
        daemon.log_text()
    );
    assert_eq!(code, Some(0));

    // 3. The target answers again: a restart copies everything, in order.
    frozen.thaw();
    let produced = stream.finish();
    let daemon = Daemon::start(&config);
    wait_until(
        Duration::from_secs(120),
        "every record on the target",
        || remote_count(&remote) >= 3 * produced as i64,
    );
    let duplicates = assert_complete_in_order(&remote, 3, produced);
    eprintln!("frozen target: {produced} records per partition, {duplicates} duplicates");
    drop(daemon);
}

#[test]
fn brokers_killed_and_restarted_under_a_stream_lose_nothing_and_exactly_once_stays_exact() {
    let (source, _) = endpoints();
    let (alo, eos) = (unique("crash-alo"), unique("crash-eos"));
    create_topic(source, &alo, 3);
    create_topic(source, &eos, 3);
    let dir = tempfile::tempdir().unwrap();
    let alo_http = http_address();
    let alo_config = flow_config(dir.path(), "alo.properties", &alo, &alo_http, "");
    let eos_config = flow_config_from(
        "eos",
        dir.path(),
        "eos.properties",
        &eos,
        &http_address(),
        "target.exactly.once.source.support = enabled\n",
    );
    let _revive_target = Revive("target");
    let _revive_source = Revive("source");
    let stream = Stream::start(vec![alo.clone(), eos.clone()], 3, 10);
    let alo_daemon = Daemon::start(&alo_config);
    let eos_daemon = Daemon::start(&eos_config);
    let (alo_remote, eos_remote) = (format!("source.{alo}"), format!("eos.{eos}"));
    wait_until(Duration::from_secs(60), "both flows replicating", || {
        remote_count(&alo_remote) >= 150 && remote_count(&eos_remote) >= 150
    });

    faults::crash_and_restart("target", Duration::from_secs(2));
    let after_target = remote_count(&alo_remote);
    wait_until(
        Duration::from_secs(90),
        "progress after the target came back",
        || remote_count(&alo_remote) > after_target + 150,
    );
    faults::crash_and_restart("source", Duration::from_secs(2));
    let after_source = remote_count(&alo_remote);
    wait_until(
        Duration::from_secs(90),
        "progress after the source came back",
        || remote_count(&alo_remote) > after_source + 150,
    );

    let produced = stream.finish();
    wait_until(
        Duration::from_secs(120),
        "every record on the target",
        || {
            remote_count(&alo_remote) >= 3 * produced as i64
                && indexes_len(&eos_remote, 3) >= 3 * produced
        },
    );
    // The lag is measured again after both restarts (a client holding the restarted broker's
    // old leader epochs was answered "leader epoch is older" for good, and librdkafka's
    // offset -1001 for a partition without answer once read as lag 0).
    wait_until(
        Duration::from_secs(60),
        "the lag measured complete and zero after the restarts",
        || {
            status_of(&alo_http).is_some_and(|s| {
                let flow = flow_status(&s, "source->target");
                flow["lag_complete"] == true && flow["lag"] == 0
            })
        },
    );
    let duplicates = assert_complete_in_order(&alo_remote, 3, produced);
    for partition in 0..3 {
        assert_eq!(
            indexes(&eos_remote, partition, "read_committed"),
            (0..produced).collect::<Vec<_>>(),
            "exactly once: each record once, in order ({eos_remote}/{partition})"
        );
    }
    eprintln!("broker crashes: {produced} records per partition, at-least-once duplicates {duplicates}, exactly-once duplicates 0");
    drop((alo_daemon, eos_daemon));
}

/// Records visible to a read_committed reader over all partitions.
fn indexes_len(topic: &str, partitions: i32) -> usize {
    (0..partitions)
        .map(|partition| indexes(topic, partition, "read_committed").len())
        .sum()
}

#[test]
fn records_deleted_while_running_are_counted_and_none_stops_with_the_reason() {
    let (source, target) = endpoints();
    let (skip, none) = (unique("deleted-skip"), unique("deleted-none"));
    create_topic(source, &skip, 1);
    create_topic(source, &none, 1);
    produce(
        source,
        &skip,
        0,
        &(0..100).map(|i| record(0, i)).collect::<Vec<_>>(),
    );
    produce(
        source,
        &none,
        0,
        &(0..100).map(|i| record(0, i)).collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let http = http_address();
    // Two aliases of the source cluster: one flow skips deleted records (earliest, MM2's default),
    // the other refuses to (`auto.offset.reset = none`).
    let config = write_properties(
        dir.path(),
        "mm2.properties",
        &format!(
            "clusters = skipping, strict, target\nskipping.bootstrap.servers = {source}\nstrict.bootstrap.servers = {source}\n\
             target.bootstrap.servers = {target}\nskipping->target.enabled = true\nskipping->target.topics = {skip}\n\
             strict->target.enabled = true\nstrict->target.topics = {none}\nstrict.consumer.auto.offset.reset = none\n\
             skipping.consumer.fetch.max.wait.ms = 500\nstrict.consumer.fetch.max.wait.ms = 500\n\
             {COMMON}mirrord.http.listen = {http}\n"
        ),
    );
    let daemon = Daemon::start(&config);
    let (skip_remote, none_remote) = (format!("skipping.{skip}"), format!("strict.{none}"));
    wait_until(
        Duration::from_secs(60),
        "the first 100 records of each",
        || remote_count(&skip_remote) == 100 && remote_count(&none_remote) == 100,
    );
    // Replication falls behind (the process is paused) while retention deletes records it did
    // not copy yet.
    daemon.signal("STOP");
    // A fetch in flight when the process stopped would still bring the records written next
    // (the broker answers it as soon as they arrive, before they are deleted): let it expire
    // empty first — the broker holds it `fetch.max.wait.ms` (500 ms, set above) at most.
    std::thread::sleep(Duration::from_millis(800));
    produce(
        source,
        &skip,
        0,
        &(100..200).map(|i| record(0, i)).collect::<Vec<_>>(),
    );
    produce(
        source,
        &none,
        0,
        &(100..200).map(|i| record(0, i)).collect::<Vec<_>>(),
    );
    delete_records(source, &skip, 0, 150);
    delete_records(source, &none, 0, 150);
    daemon.signal("CONT");

    wait_until(
        Duration::from_secs(60),
        "the records left at the source",
        || remote_count(&skip_remote) == 150,
    );
    assert_eq!(
        indexes(&skip_remote, 0, "read_committed"),
        (0..100).chain(150..200).collect::<Vec<_>>()
    );
    let mut status = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(30),
        "/status and metrics to count the skip",
        || {
            status = status_of(&http).unwrap_or_default();
            partition_status(&status, "skipping->target", &skip, 0)["records_skipped"] == 50
                && metric_of(
                    &http,
                    "kafka_mirrord_records_skipped_total",
                    &[("flow", "skipping->target"), ("topic", &skip)],
                ) == Some(50.0)
        },
    );
    assert!(daemon
        .log_text()
        .contains("records were deleted from the source before they were replicated"));
    // An alarm: in /status and as a metric, until the daemon restarts.
    wait_until(Duration::from_secs(30), "the records_skipped alarm", || {
        status = status_of(&http).unwrap_or_default();
        let alarms = flow_status(&status, "skipping->target")["alarms"].clone();
        alarms.as_array().is_some_and(|alarms| {
            alarms.iter().any(|alarm| {
                alarm["kind"] == "records_skipped"
                    && alarm["topic"] == skip.as_str()
                    && alarm["partition"] == 0
                    && alarm["count"] == 50
            })
        }) && metric_of(
            &http,
            "kafka_mirrord_alarms",
            &[("flow", "skipping->target"), ("kind", "records_skipped")],
        ) == Some(1.0)
    });

    // `none`: the partition waits at the first deleted record, and says why.
    let mut held = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(30),
        "the strict flow to report the error",
        || {
            status = status_of(&http).unwrap_or_default();
            held = partition_status(&status, "strict->target", &none, 0)["stalled"].clone();
            !held.is_null() && flow_status(&status, "strict->target")["state"] == "error"
        },
    );
    assert_eq!(held["offset"], 100, "{held}");
    let reason = held["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("deleted") && reason.contains("auto.offset.reset"),
        "{held}"
    );
    assert!(held["fix"]
        .as_str()
        .unwrap_or_default()
        .contains("earliest"));
    assert_eq!(remote_count(&none_remote), 100, "nothing skipped");
}

#[test]
fn an_unreadable_offsets_topic_stops_the_flow_without_replaying_or_skipping() {
    let kafka = test_kafka();
    let (source, _) = endpoints();
    let topic = unique("acl");
    create_topic(source, &topic, 1);
    produce(
        source,
        &topic,
        0,
        &(0..100).map(|i| record(0, i)).collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let http = http_address();
    // The target through TLS with a client certificate: a principal that ACLs apply to.
    let alias = format!("acl{}", std::process::id());
    let config = write_properties(
        dir.path(),
        "mm2.properties",
        &format!(
            "clusters = {alias}, target\n{alias}.bootstrap.servers = {source}\n\
             target.bootstrap.servers = {ssl}\ntarget.security.protocol = SSL\n\
             target.ssl.truststore.type = PEM\ntarget.ssl.truststore.location = {ca}\n\
             target.ssl.keystore.type = PKCS12\ntarget.ssl.keystore.location = {p12}\n\
             target.ssl.keystore.password = {password}\n\
             {alias}->target.enabled = true\n{alias}->target.topics = {topic}\n{COMMON}mirrord.http.listen = {http}\n",
            ssl = kafka.get("TARGET_SSL_BOOTSTRAP"),
            ca = kafka.get("TEST_KAFKA_CA"),
            p12 = kafka.get("TEST_KAFKA_CLIENT_P12"),
            password = kafka.get("TEST_KAFKA_CLIENT_P12_PASSWORD"),
        ),
    );
    let remote = format!("{alias}.{topic}");
    let mut daemon = Daemon::start(&config);
    wait_until(Duration::from_secs(60), "the first 100 records", || {
        remote_count(&remote) == 100
    });
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));

    let offsets_topic = format!("mm2-offsets.{alias}.internal");
    let principal = kafka.get("TEST_KAFKA_CLIENT_PRINCIPAL");
    let target_plain = kafka.get("TARGET_BOOTSTRAP");
    let deny = [
        target_plain,
        "create-acl",
        &offsets_topic,
        "LITERAL",
        principal,
        "READ",
        "DENY",
    ];
    mm2_client(&deny);
    produce(
        source,
        &topic,
        0,
        &(100..200).map(|i| record(0, i)).collect::<Vec<_>>(),
    );
    let daemon = Daemon::start(&config);
    let mut flow = serde_json::Value::Null;
    let flow_id = format!("{alias}->target");
    wait_until(
        Duration::from_secs(60),
        "the flow to report the error",
        || {
            flow = flow_status(&status_of(&http).unwrap_or_default(), &flow_id);
            flow["state"] == "error"
        },
    );
    let error = flow["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&offsets_topic) && error.contains("READ"),
        "names the topic and the ACL to grant: {flow}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(remote_count(&remote), 100, "no replay, no new records");

    // Readable again: the flow resumes exactly where it stopped.
    let mut allow = deny;
    allow[1] = "delete-acl";
    mm2_client(&allow);
    wait_until(Duration::from_secs(90), "replication to resume", || {
        remote_count(&remote) >= 200
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        indexes(&remote, 0, "read_committed"),
        (0..200).collect::<Vec<_>>(),
        "resumed at record 100: nothing replayed, nothing skipped"
    );
    drop(daemon);
}

#[test]
fn poison_records_never_panic_are_named_in_status_and_the_others_flow() {
    let (source, target) = endpoints();
    let topic = unique("poison");
    create_topic(source, &topic, 3);
    let remote = format!("source.{topic}");
    create_topic_with_config(target, &remote, 3, &[("max.message.bytes", "4096")]);
    let plain = |partition: i32, index: usize| record(partition, index);
    produce(source, &topic, 0, &[plain(0, 0)]);
    produce(source, &topic, 1, &[plain(1, 0)]);
    produce(source, &topic, 2, &[plain(2, 0)]);
    let not_utf8: &[u8] = b"key-\xff\xfe";
    let with_nul: &[u8] = b"key\0nul";
    faults::produce_with_raw_headers(source, &topic, 0, b"x", &[(not_utf8, b"v")]);
    faults::produce_with_raw_headers(source, &topic, 1, b"x", &[(with_nul, b"v")]);
    produce(
        source,
        &topic,
        2,
        &[TestRecord {
            key: None,
            value: Some(vec![1u8; 20_000]),
            headers: vec![],
            timestamp: 1_700_000_000_001,
        }],
    );
    for partition in 0..3 {
        produce(source, &topic, partition, &[plain(partition, 2)]);
    }
    let dir = tempfile::tempdir().unwrap();
    let http = http_address();
    let config = flow_config(
        dir.path(),
        "mm2.properties",
        &topic,
        &http,
        "sync.topic.configs.enabled = false\n",
    );
    let mut daemon = Daemon::start(&config);
    let mut status = serde_json::Value::Null;
    wait_until(Duration::from_secs(60), "/status to name all three", || {
        status = status_of(&http).unwrap_or_default();
        (0..3).all(|p| {
            let entry = partition_status(&status, "source->target", &topic, p);
            !entry["unusual_records"].is_null() || entry["stalled"]["offset"] == 1
        })
    });
    let p0 = partition_status(&status, "source->target", &topic, 0);
    assert!(p0["unusual_records"]["reason"]
        .as_str()
        .unwrap()
        .contains("not valid UTF-8"));
    assert_eq!(p0["unusual_records"]["last_offset"], 1);
    let p1 = partition_status(&status, "source->target", &topic, 1);
    assert!(p1["unusual_records"]["reason"]
        .as_str()
        .unwrap()
        .contains("NUL"));
    let p2 = partition_status(&status, "source->target", &topic, 2);
    assert!(
        p2["stalled"]["reason"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{p2}"
    );
    assert!(!p2["stalled"]["fix"].as_str().unwrap().is_empty());

    // Copied byte for byte, and the other partitions keep flowing.
    for partition in 0..2 {
        produce(source, &topic, partition, &[plain(partition, 3)]);
    }
    wait_until(
        Duration::from_secs(30),
        "partitions 0 and 1 to keep flowing",
        || {
            (0..2).all(|p| {
                let mut seen = HashSet::new();
                indexes(&remote, p, "read_uncommitted")
                    .into_iter()
                    .filter(|i| seen.insert(*i))
                    .count()
                    == 4
            })
        },
    );
    let keys = faults::header_keys(target, &remote, 0);
    assert!(
        keys.contains(&vec![not_utf8.to_vec()]),
        "the key arrives byte for byte: {keys:?}"
    );
    let java = mm2_client(&[target, "header-keys", &remote, "1"]);
    assert!(
        java.lines().any(|line| line == "6b6579006e756c"),
        "the NUL stays in the key (read by Java): {java}"
    );
    assert_eq!(
        indexes(&remote, 2, "read_committed"),
        vec![0],
        "nothing after the poison record, and nothing out of order"
    );
    assert!(daemon.child.try_wait().unwrap().is_none(), "no panic");
    assert!(!daemon.log_text().contains("panicked"));
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}

#[test]
fn a_hundred_reloads_of_a_changed_flow_under_load_never_overlap_and_lose_nothing() {
    let (source, _) = endpoints();
    let topic = unique("reloads");
    create_topic(source, &topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let http = http_address();
    let write = |variant: usize| {
        // Alternating topic lists change the flow at every reload.
        let topics = if variant % 2 == 0 {
            topic.clone()
        } else {
            format!("{topic}, {topic}-never")
        };
        let text = std::fs::read_to_string(flow_config(
            dir.path(),
            "next.properties",
            &topics,
            &http,
            "",
        ))
        .unwrap();
        let path = dir.path().join("mm2.properties");
        let temporary = dir.path().join("mm2.properties.new");
        std::fs::write(&temporary, text).unwrap();
        std::fs::rename(&temporary, &path).unwrap();
        path
    };
    let config = write(0);
    let stream = Stream::start(vec![topic.clone()], 1, 20);
    let daemon = Daemon::start(&config);
    let remote = format!("source.{topic}");
    wait_until(Duration::from_secs(60), "replication under way", || {
        remote_count(&remote) >= 100
    });
    for variant in 1..=100 {
        write(variant);
        daemon.signal("HUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    let produced = stream.finish();
    wait_until(
        Duration::from_secs(120),
        "every record on the target",
        || {
            remote_count(&remote) >= produced as i64
                && status_of(&http)
                    .is_some_and(|s| flow_status(&s, "source->target")["state"] == "running")
        },
    );
    wait_until(
        Duration::from_secs(60),
        "every record on the target",
        || remote_count(&remote) >= produced as i64,
    );
    let duplicates = assert_complete_in_order(&remote, 1, produced);
    // Old and new tasks never ran at the same time: starts and stops alternate.
    let log = daemon.log_text();
    let mut running = 0i32;
    let mut restarts = 0;
    for line in log.lines() {
        if line.contains("source task started") {
            running += 1;
            restarts += 1;
            assert!(
                running <= 1,
                "a new task started before the old one stopped:\n{log}"
            );
        } else if line.contains("source task stopped") {
            running -= 1;
        }
    }
    let reloads = metric_of(
        &http,
        "kafka_mirrord_reloads_total",
        &[("result", "success")],
    );
    eprintln!(
        "100 SIGHUPs: {restarts} task starts, {reloads:?} successful reloads, {produced} records, {duplicates} duplicates"
    );
    assert!(restarts >= 2, "the flow was restarted");
}

#[test]
fn a_file_written_in_two_steps_is_never_applied_half_written() {
    let (source, target) = endpoints();
    let topic = unique("twostep");
    create_topic(source, &topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let http = http_address();
    let head = format!(
        "clusters = source, target\nsource.bootstrap.servers = {source}\ntarget.bootstrap.servers = {target}\n\
         {COMMON}emit.heartbeats.enabled = true\nmirrord.http.listen = {http}\nsource->target.topics = {topic}\n"
    );
    let path = write_properties(
        dir.path(),
        "mm2.properties",
        &format!("{head}source->target.enabled = true\n"),
    );
    let daemon = Daemon::start(&path);
    wait_until(Duration::from_secs(30), "both flows running", || {
        status_of(&http).is_some_and(|s| s["summary"]["running"] == 2)
    });
    let successes = || {
        metric_of(
            &http,
            "kafka_mirrord_reloads_total",
            &[("result", "success")],
        )
        .unwrap_or(-1.0)
    };
    let before = successes();
    // An editor saving in two writes: without its last line, the file is valid and has no
    // replicating flow.
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.write_all(
            head.replace(&topic, &format!("{topic},{topic}-x"))
                .as_bytes(),
        )
        .unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        file.write_all(b"source->target.enabled = true\n").unwrap();
    }
    wait_until(Duration::from_secs(15), "the reload", || {
        successes() > before
    });
    wait_until(
        Duration::from_secs(30),
        "the changed flow running again",
        || {
            status_of(&http)
                .is_some_and(|s| flow_status(&s, "source->target")["state"] == "running")
        },
    );
    // A second reload (of the half-written file, then the whole one) would follow within the
    // watcher's debounce; give it that long to show.
    std::thread::sleep(Duration::from_secs(2));
    let status = status_of(&http).unwrap();
    assert_eq!(successes(), before + 1.0, "one reload, of the whole file");
    let reload = &status["last_reload"];
    assert_eq!(reload["removed"], serde_json::json!([]), "{reload}");
    assert_eq!(
        reload["changed"],
        serde_json::json!(["source->target"]),
        "{reload}"
    );
    assert_eq!(flow_status(&status, "source->target")["state"], "running");
    drop(daemon);
}
