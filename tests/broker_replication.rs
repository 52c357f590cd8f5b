//! Source replication against the two local Apache Kafka clusters (issue 3): records copied field
//! for field and in order under both replication policies, topic selection and refresh, no loops
//! in active/active, nothing lost across SIGKILLs, progress stored in Connect's exact format,
//! offset syncs in MM2's layout, exactly-once delivery, MM2 takeover and topic ACL sync.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_mirrord::flow::records::{decode_source_offset, source_offset_key, OffsetSync};
use kafka_mirrord::kafka::admin::Admin;
use support::consumers::TxProducer;
use support::*;

const SETTINGS: &str = "emit.heartbeats.enabled = false\nreplication.factor = 1\noffset-syncs.topic.replication.factor = 1\n\
    checkpoints.topic.replication.factor = 1\nheartbeats.topic.replication.factor = 1\n\
    offset.storage.replication.factor = 1\ntarget.offset.flush.interval.ms = 1000\n\
    refresh.topics.interval.seconds = 2\nmirrord.http.listen = off\n";

/// A config replicating `topics` from the local `source` to the local `target` cluster.
fn config(dir: &Path, topics: &str, extra: &str) -> PathBuf {
    let kafka = test_kafka();
    write_properties(
        dir,
        "mm2.properties",
        &format!(
            "clusters = source, target\nsource.bootstrap.servers = {}\ntarget.bootstrap.servers = {}\n\
             source->target.enabled = true\nsource->target.topics = {topics}\n{SETTINGS}{extra}",
            kafka.get("SOURCE_BOOTSTRAP"),
            kafka.get("TARGET_BOOTSTRAP")
        ),
    )
}

/// Records with keys, headers and explicit timestamps, including null keys/values and empty,
/// duplicate, null and binary headers. `id` makes each record unique across partitions and batches.
fn records(partition: i32, first: usize, count: usize) -> Vec<TestRecord> {
    (first..first + count)
        .map(|i| TestRecord {
            key: (i % 7 != 3).then(|| format!("key-{partition}-{i}").into_bytes()),
            value: (i % 11 != 5)
                .then(|| format!("value-{partition}-{i}-{}", "x".repeat(i % 50)).into_bytes()),
            headers: match i % 4 {
                0 => vec![],
                1 => vec![
                    ("h1".into(), Some(b"v1".to_vec())),
                    ("h1".into(), Some(vec![0, 255, 1])),
                ],
                2 => vec![("empty".into(), Some(vec![])), ("null".into(), None)],
                _ => vec![("id".into(), Some(format!("{partition}-{i}").into_bytes()))],
            },
            timestamp: 1_600_000_000_000 + (i as i64) * 1000 + partition as i64,
        })
        .collect()
}

/// Records are told apart by their timestamp, unique per (partition, index) by construction.
fn identity(record: &TestRecord) -> i64 {
    record.timestamp
}

/// Creates topics with 1, 4 and 8 partitions holding ≥ 100,000 records in all; returns them.
fn load_three_topics(prefix: &str) -> Vec<(String, i32, usize)> {
    let (source, _) = endpoints();
    let layout = [
        (format!("{prefix}-one"), 1, 20_000),
        (format!("{prefix}-four"), 4, 10_000),
        (format!("{prefix}-eight"), 8, 5_000),
    ];
    for (topic, partitions, per_partition) in &layout {
        create_topic(source, topic, *partitions);
        for partition in 0..*partitions {
            produce(
                source,
                topic,
                partition,
                &records(partition, 0, *per_partition),
            );
        }
    }
    layout.to_vec()
}

fn assert_identical_copies(layout: &[(String, i32, usize)], remote: impl Fn(&str) -> String) {
    let (_, target) = endpoints();
    for (topic, partitions, per_partition) in layout {
        let remote_topic = remote(topic);
        assert_eq!(
            watermarks(target, &remote_topic).len(),
            *partitions as usize,
            "{remote_topic} has the source's partition count"
        );
        for partition in 0..*partitions {
            let copied = read_partition(target, &remote_topic, partition, "read_committed");
            assert_eq!(
                copied.len(),
                *per_partition,
                "{remote_topic}/{partition}: record count"
            );
            let expected = records(partition, 0, *per_partition);
            if let Some(index) = (0..copied.len()).find(|i| copied[*i] != expected[*i]) {
                panic!("{remote_topic}/{partition}: record {index} differs:\n  copied   {:?}\n  expected {:?}", copied[index], expected[index]);
            }
        }
    }
}

fn wait_for_copies(layout: &[(String, i32, usize)], remote: impl Fn(&str) -> String) {
    let (_, target) = endpoints();
    let expected: i64 = layout.iter().map(|(_, p, n)| *p as i64 * *n as i64).sum();
    wait_until(
        Duration::from_secs(120),
        "every record on the target",
        || {
            layout
                .iter()
                .map(|(topic, _, _)| record_count(target, &remote(topic)))
                .sum::<i64>()
                >= expected
        },
    );
}

#[test]
fn default_policy_copies_three_topics_field_for_field_in_order() {
    let prefix = unique("copy");
    let layout = load_three_topics(&prefix);
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&config(
        dir.path(),
        &format!("{prefix}-.*"),
        "source->target.tasks.max = 3\n",
    ));
    let remote = |topic: &str| format!("source.{topic}");
    wait_for_copies(&layout, remote);
    assert_identical_copies(&layout, remote);
    assert_eq!(
        daemon.terminate(Duration::from_secs(30)),
        Some(0),
        "SIGTERM is a clean stop"
    );
}

#[test]
fn identity_policy_keeps_topic_names() {
    let prefix = unique("identity");
    let layout = load_three_topics(&prefix);
    let dir = tempfile::tempdir().unwrap();
    let extra =
        "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n";
    let mut daemon = Daemon::start(&config(dir.path(), &format!("{prefix}-.*"), extra));
    let remote = |topic: &str| topic.to_string();
    wait_for_copies(&layout, remote);
    assert_identical_copies(&layout, remote);
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}

#[test]
fn new_topics_are_picked_up_and_excluded_or_internal_topics_never_appear() {
    let (source, target) = endpoints();
    let prefix = unique("select");
    create_topic(source, &format!("{prefix}-early"), 2);
    produce(source, &format!("{prefix}-early"), 0, &records(0, 0, 10));
    let dir = tempfile::tempdir().unwrap();
    let topics = format!(".*{prefix}.*");
    let extra =
        format!("source->target.topics.exclude = .*{prefix}-skip.*, .*[\\-\\.]internal, __.*\n");
    let _daemon = Daemon::start(&config(dir.path(), &topics, &extra));
    wait_until(Duration::from_secs(30), "the early topic", || {
        record_count(target, &format!("source.{prefix}-early")) == 10
    });

    for (topic, partitions) in [
        (format!("{prefix}-late"), 3),
        (format!("{prefix}-skip-me"), 1),
        (format!("{prefix}-x.internal"), 1),
        (format!("__{prefix}"), 1),
    ] {
        create_topic(source, &topic, partitions);
        produce(source, &topic, 0, &records(0, 0, 5));
    }
    // refresh.topics.interval.seconds = 2: a new topic shows up within a few refreshes.
    wait_until(
        Duration::from_secs(20),
        "the topic created while running",
        || record_count(target, &format!("source.{prefix}-late")) == 5,
    );
    assert_eq!(
        watermarks(target, &format!("source.{prefix}-late")).len(),
        3
    );
    std::thread::sleep(Duration::from_secs(5));
    let on_target = list_topics(target);
    for never in [
        format!("source.{prefix}-skip-me"),
        format!("source.{prefix}-x.internal"),
        format!("source.__{prefix}"),
    ] {
        assert!(
            !on_target.contains(&never),
            "{never} must not be replicated"
        );
    }
}

#[test]
fn active_active_never_loops() {
    let (source, target) = endpoints();
    let prefix = unique("loop");
    create_topic(source, &format!("{prefix}-s"), 1);
    create_topic(target, &format!("{prefix}-t"), 1);
    produce(source, &format!("{prefix}-s"), 0, &records(0, 0, 20));
    produce(target, &format!("{prefix}-t"), 0, &records(0, 0, 20));
    let dir = tempfile::tempdir().unwrap();
    let file = config(
        dir.path(),
        &format!(".*{prefix}.*"),
        &format!("target->source.enabled = true\ntarget->source.topics = .*{prefix}.*\n"),
    );
    let _daemon = Daemon::start(&file);
    wait_until(Duration::from_secs(30), "both directions", || {
        record_count(target, &format!("source.{prefix}-s")) == 20
            && record_count(source, &format!("target.{prefix}-t")) == 20
    });
    std::thread::sleep(Duration::from_secs(6)); // three refresh cycles
    for (cluster, looped) in [
        (source, format!("target.source.{prefix}-s")),
        (target, format!("source.target.{prefix}-t")),
    ] {
        assert!(
            !list_topics(cluster).contains(&looped),
            "{looped} must never exist"
        );
    }
}

/// Produces `per_partition` records to each partition in small steps until done or `stop`.
/// A position stored while stopped that the source has since deleted (retention outran
/// replication): the restarted daemon resumes at the earliest record left, like MM2, and says how
/// many records were never replicated.
#[test]
fn records_deleted_at_the_source_while_stopped_are_reported_and_replication_resumes() {
    let (source, target) = endpoints();
    let topic = unique("deleted");
    create_topic(source, &topic, 1);
    produce(source, &topic, 0, &records(0, 0, 100));
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &topic, "");
    let remote = format!("source.{topic}");

    let mut daemon = Daemon::start(&config);
    wait_until(Duration::from_secs(60), "the first 100 records", || {
        record_count(target, &remote) == 100
    });
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));

    produce(source, &topic, 0, &records(0, 100, 100));
    delete_records(source, &topic, 0, 150);

    let daemon = Daemon::start(&config);
    wait_until(
        Duration::from_secs(60),
        "the records left at the source",
        || record_count(target, &remote) == 150,
    );
    let copied: Vec<i64> = read_partition(target, &remote, 0, "read_committed")
        .iter()
        .map(identity)
        .collect();
    let expected: Vec<i64> = records(0, 0, 100)
        .iter()
        .chain(&records(0, 150, 50))
        .map(identity)
        .collect();
    assert_eq!(copied, expected, "records 0-99, then 150-199, in order");
    let log = daemon.log_text();
    assert!(
        log.contains("records were deleted from the source before they were replicated")
            && log.contains("skipped=50"),
        "the skip is reported with its size:\n{log}"
    );
}

fn produce_slowly(
    topic: String,
    partitions: i32,
    per_partition: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (source, _) = endpoints();
    std::thread::spawn(move || {
        let step = 500;
        let mut first = 0;
        while first < per_partition && !stop.load(Ordering::Relaxed) {
            for partition in 0..partitions {
                produce(
                    source,
                    &topic,
                    partition,
                    &records(partition, first, step.min(per_partition - first)),
                );
            }
            first += step;
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Every source record is on the target, in source order after dropping re-sent duplicates.
fn assert_nothing_missing(
    topic: &str,
    remote: &str,
    partitions: i32,
    per_partition: usize,
) -> usize {
    let (_, target) = endpoints();
    let mut duplicates = 0;
    for partition in 0..partitions {
        let copied = read_partition(target, remote, partition, "read_committed");
        let mut seen = std::collections::HashSet::new();
        let first_occurrences: Vec<i64> = copied
            .iter()
            .map(identity)
            .filter(|id| seen.insert(*id))
            .collect();
        duplicates += copied.len() - first_occurrences.len();
        let expected: Vec<i64> = records(partition, 0, per_partition)
            .iter()
            .map(identity)
            .collect();
        assert_eq!(
            first_occurrences.len(),
            expected.len(),
            "{topic}/{partition}: distinct records on the target"
        );
        assert_eq!(
            first_occurrences, expected,
            "{topic}/{partition}: records missing or out of order"
        );
    }
    duplicates
}

#[test]
fn sigkill_three_times_loses_nothing_and_progress_is_stored_in_connect_format() {
    let (source, target) = endpoints();
    let topic = unique("kill");
    let (partitions, per_partition) = (4, 6_000);
    create_topic(source, &topic, partitions);
    let stop = Arc::new(AtomicBool::new(false));
    let producer = produce_slowly(topic.clone(), partitions, per_partition, stop.clone());
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &topic, "");
    let remote = format!("source.{topic}");
    for round in 0..3 {
        let mut daemon = Daemon::start(&file);
        wait_until(Duration::from_secs(30), "some progress", || {
            record_count(target, &remote) > (round as i64 + 1) * 1_000
        });
        std::thread::sleep(Duration::from_millis(700 + round * 300));
        daemon.kill(); // SIGKILL
    }
    producer.join().unwrap();
    let mut daemon = Daemon::start(&file);
    wait_until(Duration::from_secs(240), "catch-up", || {
        record_count(target, &remote) >= (partitions as usize * per_partition) as i64
    });
    // Stored progress reaches the end once the flush interval (1 s) passed; then stop cleanly.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let duplicates = assert_nothing_missing(&topic, &remote, partitions, per_partition);
    eprintln!("re-sent after 3 SIGKILLs: {duplicates} records");
    stop.store(true, Ordering::Relaxed);

    // mm2-offsets.source.internal: Connect's exact key and value bytes, on the partition Java
    // Connect would choose, ending at the last source offset of each partition.
    let offsets_topic = "mm2-offsets.source.internal";
    let offset_partitions = watermarks(target, offsets_topic).len() as i32;
    assert_eq!(offset_partitions, 25, "offset.storage.partitions default");
    let mut latest: BTreeMap<i32, i64> = BTreeMap::new();
    let mut next_downstreams: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition_of_record, key, value) in read_raw(target, offsets_topic) {
        let Some((cluster, stored_topic, partition, offset)) =
            decode_source_offset(&key, value.as_deref())
        else {
            continue;
        };
        if stored_topic != topic {
            continue;
        }
        assert_eq!(cluster, "source");
        assert_eq!(
            key,
            source_offset_key("source", &topic, partition),
            "key bytes"
        );
        assert_eq!(
            String::from_utf8(key.clone()).unwrap(),
            format!(
                r#"["MirrorSourceConnector",{{"cluster":"source","partition":{partition},"topic":"{topic}"}}]"#
            )
        );
        let value = String::from_utf8(value.unwrap()).unwrap();
        let stored = offset.unwrap();
        let offset = stored.offset;
        // MM2's `{"offset":N}` plus the target offset of the next record (MM2 reads only `offset`).
        let next_downstream = stored.next_downstream.expect("kafka-mirrord stores it");
        assert_eq!(
            value,
            format!(r#"{{"offset":{offset},"next_downstream":{next_downstream}}}"#),
            "value bytes"
        );
        next_downstreams.insert(partition, next_downstream);
        assert_eq!(
            partition_of_record,
            kafka_partition(&key, offset_partitions),
            "offsets record on Java Connect's partition"
        );
        latest.insert(partition, offset);
    }
    let expected: BTreeMap<i32, i64> = (0..partitions)
        .map(|p| (p, per_partition as i64 - 1))
        .collect();
    assert_eq!(
        latest, expected,
        "stored progress = last replicated offset per partition"
    );
    // The last progress names where the next record goes: the end of the remote partition
    // (records copied twice after the kills included).
    let remote_ends: BTreeMap<i32, i64> = watermarks(target, &remote)
        .iter()
        .enumerate()
        .map(|(p, (_, high))| (p as i32, *high))
        .collect();
    assert_eq!(
        next_downstreams, remote_ends,
        "next_downstream = remote end"
    );
}

#[test]
fn offset_syncs_decode_to_mm2_layout_and_follow_the_emission_rules() {
    let (source, target) = endpoints();
    let topic = unique("syncs");
    create_topic(source, &topic, 1);
    produce(source, &topic, 0, &records(0, 0, 1_000));
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&config(dir.path(), &topic, "offset.lag.max = 100\n"));
    let remote = format!("source.{topic}");
    wait_until(Duration::from_secs(60), "copies", || {
        record_count(target, &remote) >= 1_000
    });
    assert_eq!(record_count(target, &remote), 1_000, "no duplicates");
    let syncs_for_topic = || -> Vec<OffsetSync> {
        read_raw(source, "mm2-offset-syncs.target.internal")
            .into_iter()
            .map(|(partition, key, value)| {
                assert_eq!(partition, 0, "offset syncs go to partition 0");
                OffsetSync::decode(&key, value.as_deref().unwrap())
                    .expect("MM2's offset-sync layout")
            })
            .filter(|sync| sync.topic == topic)
            .collect()
    };
    // The delayed latest position is promoted at each progress flush (1 s).
    wait_until(Duration::from_secs(20), "the final offset sync", || {
        syncs_for_topic().last().is_some_and(|s| s.upstream == 999)
    });
    daemon.terminate(Duration::from_secs(30));
    let syncs = syncs_for_topic();
    assert_eq!(
        (syncs[0].upstream, syncs[0].downstream),
        (0, 0),
        "the first record always syncs"
    );
    for pair in syncs.windows(2) {
        assert!(
            pair[1].upstream > pair[0].upstream,
            "syncs move forward: {pair:?}"
        );
        // offset.lag.max = 100: never more than 100 records past the last sync before the next.
        assert!(pair[1].downstream - pair[0].downstream <= 101, "{pair:?}");
    }
    assert!(
        syncs.iter().all(|s| s.upstream == s.downstream),
        "fresh target: offsets match"
    );
    assert!(
        syncs.len() >= 10,
        "at least one sync per 101 records: {}",
        syncs.len()
    );
}

#[test]
fn exactly_once_counts_each_record_once_across_sigkills() {
    let (source, target) = endpoints();
    let topic = unique("eos");
    let (partitions, per_partition) = (3, 5_000);
    create_topic(source, &topic, partitions);
    let stop = Arc::new(AtomicBool::new(false));
    let producer = produce_slowly(topic.clone(), partitions, per_partition, stop.clone());
    let dir = tempfile::tempdir().unwrap();
    let file = config(
        dir.path(),
        &topic,
        "source->target.exactly.once.support = enabled\n",
    );
    let remote = format!("source.{topic}");
    for round in 0..2 {
        let mut daemon = Daemon::start(&file);
        wait_until(Duration::from_secs(60), "some progress", || {
            record_count(target, &remote) > (round as i64 + 1) * 1_500
        });
        std::thread::sleep(Duration::from_millis(500));
        daemon.kill();
    }
    producer.join().unwrap();
    let mut daemon = Daemon::start(&file);
    let total = partitions as usize * per_partition;
    wait_until(Duration::from_secs(240), "catch-up", || {
        (0..partitions)
            .map(|p| read_partition(target, &remote, p, "read_committed").len())
            .sum::<usize>()
            >= total
    });
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let duplicates = assert_nothing_missing(&topic, &remote, partitions, per_partition);
    assert_eq!(
        duplicates, 0,
        "a read_committed consumer sees every record exactly once"
    );
}

/// Exactly-once tasks share the partitions of the offsets topic. Progress that one task committed
/// after another task's transaction began lies past the last stable offset until that transaction
/// ends; a task starting meanwhile (taking over a fenced member's partitions) must still read it,
/// or it copies the fenced task's last transactions a second time.
#[test]
fn stored_progress_is_read_past_another_tasks_open_transaction() {
    let (_, target) = endpoints();
    let offsets_topic = unique("eos-offsets");
    create_topic(target, &offsets_topic, 1);
    let mut one = BTreeMap::new();
    one.insert(0, vec!["another task's record".to_string()]);
    let open = TxProducer::new(target, &unique("open-tx"));
    open.begin(&offsets_topic, &one);
    let progress = TxProducer::new(target, &unique("progress-tx"));
    let key = source_offset_key("source", "orders", 3);
    let value = kafka_mirrord::flow::records::source_offset_value(41, None);
    progress.begin_with(&offsets_topic, &[(0, &key, &value)]);
    progress.commit();

    let reader = {
        let topic = offsets_topic.clone();
        std::thread::spawn(move || {
            let mut config = rdkafka::config::ClientConfig::new();
            config
                .set("bootstrap.servers", target)
                .set("group.id", "kafka-mirrord-assign-only")
                .set("enable.auto.commit", "false");
            kafka_mirrord::flow::stored_offsets::load(
                &config,
                &topic,
                "source",
                &["MirrorSourceConnector"],
                Duration::from_secs(60),
                &kafka_mirrord::lifecycle::Stop::new(),
            )
        })
    };
    // The other task's transaction ends a moment later, as a live task's does.
    std::thread::sleep(Duration::from_millis(1500));
    open.commit();
    let stored = reader.join().unwrap().unwrap().unwrap();
    assert_eq!(
        stored.get(&("orders".to_string(), 3)).map(|p| p.offset),
        Some(41),
        "the committed progress behind an open transaction is read: {stored:?}"
    );
}

/// MM2 config for the takeover tests (same file for both replicators).
fn takeover_config(dir: &Path, topic: &str) -> PathBuf {
    config(
        dir,
        topic,
        "target.config.storage.replication.factor = 1\ntarget.status.storage.replication.factor = 1\n\
         sync.topic.acls.enabled = false\nemit.checkpoints.enabled = true\n",
    )
}

#[test]
fn takeover_from_mirror_maker_2_and_back() {
    let (source, target) = endpoints();
    let topic = unique("takeover");
    let partitions = 2;
    create_topic(source, &topic, partitions);
    let dir = tempfile::tempdir().unwrap();
    let file = takeover_config(dir.path(), &topic);
    let remote = format!("source.{topic}");
    let batch = 3_000;

    // 1. Apache MM2 copies the first backlog and stops cleanly (Connect commits its offsets).
    for partition in 0..partitions {
        produce(source, &topic, partition, &records(partition, 0, batch));
    }
    let mut mm2 = MirrorMaker::start(&file);
    wait_until(
        Duration::from_secs(120),
        "MM2 copied the first backlog",
        || record_count(target, &remote) >= (partitions as usize * batch) as i64,
    );
    std::thread::sleep(Duration::from_secs(3)); // an offset flush (1 s) after the last record
    mm2.stop();
    let after_mm2 = record_count(target, &remote);

    // 2. kafka-mirrord resumes from MM2's stored offsets: nothing re-copied, nothing missing.
    for partition in 0..partitions {
        produce(source, &topic, partition, &records(partition, batch, batch));
    }
    let mut daemon = Daemon::start(&file);
    wait_until(
        Duration::from_secs(60),
        "kafka-mirrord copied the second backlog",
        || record_count(target, &remote) >= after_mm2 + (partitions as usize * batch) as i64,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        record_count(target, &remote),
        (partitions as usize * 2 * batch) as i64,
        "no record re-copied after MM2's committed offsets"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));

    // 3. And back: MM2 resumes where kafka-mirrord stopped.
    for partition in 0..partitions {
        produce(
            source,
            &topic,
            partition,
            &records(partition, 2 * batch, batch),
        );
    }
    let mut mm2 = MirrorMaker::start(&file);
    wait_until(
        Duration::from_secs(120),
        "MM2 copied the third backlog",
        || record_count(target, &remote) >= (partitions as usize * 3 * batch) as i64,
    );
    std::thread::sleep(Duration::from_secs(3));
    mm2.stop();
    assert_eq!(
        record_count(target, &remote),
        (partitions as usize * 3 * batch) as i64,
        "MM2 re-copied nothing kafka-mirrord had stored"
    );
    assert_eq!(
        assert_nothing_missing(&topic, &remote, partitions, 3 * batch),
        0
    );
}

#[test]
fn a_record_too_large_for_the_target_holds_only_its_partition_and_is_retried() {
    let (source, target) = endpoints();
    let prefix = unique("large");
    let (big, small) = (format!("{prefix}-a-big"), format!("{prefix}-b-ok"));
    create_topic(source, &big, 1);
    create_topic(source, &small, 1);
    // The remote copy of `big` exists already and refuses records over 1 KB.
    create_topic_with_config(
        target,
        &format!("source.{big}"),
        1,
        &[("max.message.bytes", "1024")],
    );
    let large = TestRecord {
        key: None,
        value: Some(vec![7u8; 20_000]),
        headers: vec![],
        timestamp: 1_700_000_000_000,
    };
    produce(source, &big, 0, &records(0, 0, 3));
    produce(source, &big, 0, &[large]);
    produce(source, &small, 0, &records(0, 0, 100));
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    // One task: both topics share it, so "only its partition" is what is tested.
    let mut daemon = Daemon::start(&config(
        dir.path(),
        &format!("{prefix}-.*"),
        &format!("sync.topic.configs.enabled = false\nmirrord.http.listen = {http}\n"),
    ));
    wait_until(
        Duration::from_secs(30),
        "the healthy topic keeps flowing",
        || record_count(target, &format!("source.{small}")) == 100,
    );
    produce(source, &small, 0, &records(0, 100, 100));
    wait_until(
        Duration::from_secs(30),
        "more records on the healthy topic",
        || record_count(target, &format!("source.{small}")) == 200,
    );
    // The first refusal covers the whole request (the three small records were in the same batch);
    // the retry copies them one by one and the partition ends up held at the poison record.
    let mut stalled = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(60),
        "/status to name the poison record",
        || {
            let (_, body) = http_get(&http, "/status");
            let Ok(report) = serde_json::from_str::<serde_json::Value>(&body) else {
                return false;
            };
            stalled = report["flows"][0]["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|topic| topic["name"] == big.as_str())
                .map(|topic| topic["partitions"][0]["stalled"].clone())
                .unwrap_or_default();
            stalled["offset"] == 3
        },
    );
    let reason = stalled["reason"].as_str().unwrap();
    assert!(reason.contains("too large"), "{stalled}");
    assert!(stalled["fix"]
        .as_str()
        .unwrap()
        .contains("max.message.bytes"));
    assert!(stalled["attempts"].as_u64().unwrap() >= 1);
    // The three records before the poison one were copied; nothing after it.
    assert_eq!(record_count(target, &format!("source.{big}")), 3);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the process keeps running"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}

/// The remote-topic ACL lines Java's admin client reads on `bootstrap` for `topic`.
fn acl_lines(bootstrap: &str, topic: &str) -> Vec<String> {
    mm2_client(&[bootstrap, "acls"])
        .lines()
        .filter(|line| line.split(' ').next() == Some(topic))
        .map(str::to_string)
        .collect()
}

#[test]
fn topic_acls_are_synced_by_mm2_rules_and_never_removed() {
    let (source, target) = endpoints();
    let topic = unique("acls");
    let other = unique("unmirrored");
    create_topic(source, &topic, 1);
    create_topic(source, &other, 1);
    #[rustfmt::skip]
    mm2_client(&[
        source, "create-acl",
        &topic, "LITERAL", "User:alice", "ALL", "ALLOW",   // → READ ALLOW
        &topic, "LITERAL", "User:bob", "WRITE", "ALLOW",   // never copied
        &topic, "LITERAL", "User:eve", "READ", "DENY",     // copied as is
        &topic, "PREFIXED", "User:carol", "READ", "ALLOW", // prefixed: not copied
        &other, "LITERAL", "User:dave", "READ", "ALLOW",   // topic not replicated
    ]);

    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &topic, "sync.topic.acls.interval.seconds = 2\n");
    let daemon = Daemon::start(&file);
    let remote = format!("source.{topic}");
    let copied = |extra: &[String]| {
        let mut lines = vec![
            format!("{remote} LITERAL User:alice * READ ALLOW"),
            format!("{remote} LITERAL User:eve * READ DENY"),
        ];
        lines.extend_from_slice(extra);
        lines.sort();
        lines
    };
    let listed = |bootstrap: &str, topic: &str| {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        let admin = Admin::new(&config, Duration::from_secs(10)).unwrap();
        let mut acls: Vec<String> = admin
            .topic_acls()
            .expect("test clusters started by an older scripts/test-kafka lack the authorizer: run `scripts/test-kafka stop` and retry")
            .into_iter()
            .filter(|acl| acl.topic == topic)
            .map(|acl| {
                let upper = |value: &dyn std::fmt::Debug| format!("{value:?}").to_uppercase();
                format!(
                    "{} {} {} {} {} {}",
                    acl.topic,
                    upper(&acl.pattern),
                    acl.principal,
                    acl.host,
                    upper(&acl.operation),
                    upper(&acl.permission)
                )
            })
            .collect();
        acls.sort();
        acls
    };
    wait_until(
        Duration::from_secs(60),
        "the ACLs on the remote topic",
        || listed(target, &remote) == copied(&[]),
    );
    assert_eq!(
        acl_lines(target, &remote),
        copied(&[]),
        "Java's admin client reads the same ACLs"
    );

    // A later source ACL is picked up by the periodic sync; one removed on the source stays on
    // the target (MM2 only ever creates ACLs).
    mm2_client(&[
        source,
        "create-acl",
        &topic,
        "LITERAL",
        "User:frank",
        "DESCRIBE",
        "ALLOW",
    ]);
    mm2_client(&[
        source,
        "delete-acl",
        &topic,
        "LITERAL",
        "User:eve",
        "READ",
        "DENY",
    ]);
    let frank = format!("{remote} LITERAL User:frank * DESCRIBE ALLOW");
    wait_until(
        Duration::from_secs(60),
        "the new ACL on the remote topic",
        || listed(target, &remote) == copied(std::slice::from_ref(&frank)),
    );
    assert!(
        !acl_lines(source, &topic)
            .iter()
            .any(|l| l.contains("User:eve")),
        "eve's ACL was removed on the source"
    );
    assert!(
        mm2_client(&[target, "acls"])
            .lines()
            .all(|line| !line.contains("User:bob")
                && !line.contains("User:carol")
                && !line.contains("User:dave")),
        "ALLOW WRITE, prefixed and unreplicated-topic ACLs are not copied"
    );
    let log = daemon.log_text();
    assert!(log.contains("created topic ACL on the target"), "{log}");
}

#[test]
fn a_schema_registry_store_keeps_order_tombstones_and_compaction() {
    // A registry's store topic (Confluent's `kafkastore.topic`, `_schemas` by default): compacted,
    // one partition, keys rewritten and deleted. IdentityReplicationPolicy keeps its name, so a
    // registry on the target started after cutover reads the same ids (docs/schema-registry.md).
    let (source, target) = endpoints();
    let topic = format!("_{}", unique("schemas"));
    create_topic_with_config(source, &topic, 1, &[("cleanup.policy", "compact")]);
    let schema_key = |subject: &str, version: u32| {
        format!(r#"{{"keytype":"SCHEMA","subject":"{subject}","version":{version},"magic":1}}"#)
    };
    let mut store = Vec::new();
    for (i, (key, value)) in [
        (r#"{"keytype":"CONFIG","subject":null,"magic":0}"#.to_string(), Some(r#"{"compatibilityLevel":"BACKWARD"}"#.to_string())),
        (schema_key("orders-value", 1), Some(r#"{"subject":"orders-value","version":1,"id":1,"schema":"\"string\"","deleted":false}"#.to_string())),
        (schema_key("orders-value", 2), Some(r#"{"subject":"orders-value","version":2,"id":2,"schema":"\"long\"","deleted":false}"#.to_string())),
        (r#"{"keytype":"NOOP","magic":0}"#.to_string(), None),
        (schema_key("orders-value", 2), Some(r#"{"subject":"orders-value","version":2,"id":2,"schema":"\"long\"","deleted":true}"#.to_string())),
        // A hard delete: the tombstone must arrive as a tombstone.
        (schema_key("orders-value", 2), None),
        (schema_key("payments-value", 1), Some(r#"{"subject":"payments-value","version":1,"id":3,"schema":"\"int\"","deleted":false}"#.to_string())),
    ]
    .into_iter()
    .enumerate()
    {
        store.push(TestRecord {
            key: Some(key.into_bytes()),
            value: value.map(String::into_bytes),
            headers: vec![],
            timestamp: 1_700_000_000_000 + i as i64,
        });
    }
    produce(source, &topic, 0, &store);
    let dir = tempfile::tempdir().unwrap();
    let extra =
        "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n";
    let mut daemon = Daemon::start(&config(dir.path(), &regex::escape(&topic), extra));
    wait_until(Duration::from_secs(60), "the store on the target", || {
        try_record_count(target, &topic) == Some(store.len() as i64)
    });
    let copied = read_raw(target, &topic);
    assert_eq!(copied, read_raw(source, &topic), "same records, same order");
    assert_eq!(
        copied
            .iter()
            .filter(|(_, _, value)| value.is_none())
            .count(),
        2,
        "both tombstones arrive as tombstones"
    );
    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", target);
    let admin = Admin::new(&client, Duration::from_secs(10)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let configs = runtime
        .block_on(admin.describe_topic_configs(std::slice::from_ref(&topic)))
        .unwrap();
    let cleanup = configs[&topic]
        .iter()
        .find(|entry| entry.name == "cleanup.policy")
        .and_then(|entry| entry.value.clone());
    assert_eq!(
        cleanup.as_deref(),
        Some("compact"),
        "compacted on the target too"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}
