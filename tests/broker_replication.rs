//! Source replication against the two local Apache Kafka clusters: records copied field for field
//! and in order, resume after SIGKILL, progress stored in Connect's format, topic selection.

mod support;

use std::time::Duration;

use support::*;

/// A config replicating `topics` from the local `source` to the local `target` cluster.
fn config(dir: &std::path::Path, topics: &str, extra: &str) -> std::path::PathBuf {
    let kafka = test_kafka();
    write_properties(
        dir,
        "mm2.properties",
        &format!(
            "clusters = source, target\nsource.bootstrap.servers = {}\ntarget.bootstrap.servers = {}\n\
             source->target.enabled = true\nsource->target.topics = {topics}\nemit.heartbeats.enabled = false\n\
             replication.factor = 1\noffset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\ntarget.offset.storage.replication.factor = 1\n\
             target.offset.flush.interval.ms = 1000\nrefresh.topics.interval.seconds = 2\nmirrord.http.listen = off\n{extra}",
            kafka.get("SOURCE_BOOTSTRAP"),
            kafka.get("TARGET_BOOTSTRAP")
        ),
    )
}

/// Records with keys, headers and explicit timestamps, including null keys/values and empty and
/// binary headers.
fn records(partition: i32, count: usize) -> Vec<TestRecord> {
    (0..count)
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
                _ => vec![("n".into(), Some(i.to_le_bytes().to_vec()))],
            },
            timestamp: 1_600_000_000_000 + (i as i64) * 1000 + partition as i64,
        })
        .collect()
}

#[test]
fn copies_every_record_field_for_field_in_order() {
    let kafka = test_kafka();
    let (source, target) = (kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP"));
    let topic = unique("copy");
    create_topic(source, &topic, 3);
    let per_partition = 2_000;
    for partition in 0..3 {
        produce(
            source,
            &topic,
            partition,
            &records(partition, per_partition),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&config(dir.path(), &topic, ""));
    let remote = format!("source.{topic}");
    wait_until(Duration::from_secs(60), "all records on the target", || {
        record_count(target, &remote) >= 3 * per_partition as i64
    });
    for partition in 0..3 {
        let copied = read_partition(target, &remote, partition, "read_committed");
        assert_eq!(copied.len(), per_partition, "partition {partition}");
        assert_eq!(
            copied,
            records(partition, per_partition),
            "partition {partition} differs"
        );
    }
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}
