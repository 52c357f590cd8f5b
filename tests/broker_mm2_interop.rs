//! Offset translation from offset syncs written by Apache MirrorMaker 2 itself (issue 4): its own
//! test binary, so the MM2 JVM never shares the 2 CPUs with the other checkpoint tests.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;

/// Checkpoints written by `source.checkpoints.internal` readers: (group, partition) → downstream.
fn checkpoints_of(group: &str) -> BTreeMap<i32, i64> {
    let (_, target) = endpoints();
    read_raw(target, "source.checkpoints.internal")
        .into_iter()
        .filter_map(|(_, key, value)| {
            kafka_mirrord::flow::records::Checkpoint::decode(&key, value.as_deref()?).ok()
        })
        .filter(|c| c.group == group)
        .map(|c| (c.partition, c.downstream))
        .collect()
}

#[test]
fn translation_from_offset_syncs_written_by_mirror_maker_2() {
    let (source, target) = endpoints();
    let topic = unique("mm2syncs");
    let remote = format!("source.{topic}");
    create_topic(source, &topic, 1);
    produce(source, &topic, 0, &numbered(2_000));
    let (by_mm2, by_us) = (format!("{topic}-java"), format!("{topic}-rust"));
    // Both groups stand at the same upstream offset; MM2 checkpoints one, kafka-mirrord the other.
    commit_group(source, &by_mm2, &[(&topic, 0, 1_234)]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_properties(
        dir.path(),
        "mm2.properties",
        &(std::fs::read_to_string(checkpointing_config(dir.path(), &topic)).unwrap()
            + "target.config.storage.replication.factor = 1\ntarget.status.storage.replication.factor = 1\nsync.topic.acls.enabled = false\n"),
    );
    let mut mm2 = MirrorMaker::start(&file);
    wait_until(Duration::from_secs(300), "MM2 to copy the topic", || {
        record_count(target, &remote) == 2_000
    });
    // Let MM2 flush its offsets and its last (delayed) offset sync, and checkpoint if it gets to it.
    std::thread::sleep(Duration::from_secs(5));
    mm2.stop();
    // MM2's own checkpoint, when it emitted one in time (its checkpoint connector is not always
    // that quick on 2 loaded CPUs): kafka-mirrord must never translate past it.
    let java = checkpoints_of(&by_mm2).get(&0).copied();

    // kafka-mirrord reads the offset syncs MM2 wrote (nothing new to replicate) and translates.
    commit_group(source, &by_us, &[(&topic, 0, 1_234)]);
    let _daemon = Daemon::start(&file);
    wait_until(
        Duration::from_secs(60),
        "kafka-mirrord's checkpoint",
        || checkpoints_of(&by_us).contains_key(&0),
    );
    let ours = checkpoints_of(&by_us)[&0];
    // The syncs MM2 wrote for this partition, in topic order, through MM2's store algorithm (ours,
    // checked against MM2's test vectors): kafka-mirrord must land exactly there. MM2's own
    // checkpoint may be nearer, because MM2 translated while its store still held the syncs that
    // later ones thinned out (a checkpoint never moves backwards, so it keeps the nearer one).
    let (source, _) = endpoints();
    let mut store = kafka_mirrord::flow::offset_sync_store::OffsetSyncStore::new(false);
    let mut sync_upstreams = Vec::new();
    for (_, key, value) in read_raw(source, "mm2-offset-syncs.target.internal") {
        let sync =
            kafka_mirrord::flow::records::OffsetSync::decode(&key, value.as_deref().unwrap())
                .unwrap();
        if sync.topic == topic {
            store.update(&sync.topic, sync.partition, sync.upstream, sync.downstream);
            sync_upstreams.push(sync.upstream);
        }
    }
    store.mark_read_to_end();
    eprintln!("offset 1234 translates to {java:?} (MM2, at its time) and {ours} (kafka-mirrord)");
    assert!(!sync_upstreams.is_empty(), "MM2 wrote offset syncs");
    assert_eq!(
        Some(ours),
        store.translate(&topic, 0, 1_234),
        "MM2's store rules applied to MM2's syncs"
    );
    assert!(ours <= 1_234, "never past the group's position");
    if let Some(java) = java {
        assert!(
            ours <= java && java <= 1_234,
            "never past what MM2 itself translated"
        );
    }
    assert!(
        sync_upstreams.contains(&(ours - 1)) || sync_upstreams.contains(&ours),
        "one past an MM2 offset sync"
    );
}

/// Records `first..first + count` of a partition: the value says which, so a copy can be checked
/// for gaps and duplicates.
fn indexed(partition: i32, first: usize, count: usize) -> Vec<TestRecord> {
    (first..first + count)
        .map(|i| TestRecord {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("{partition}:{i}").into_bytes()),
            headers: vec![],
            timestamp: 1_650_000_000_000 + i as i64,
        })
        .collect()
}

/// Issue 12: a flow run by Apache MM2's MirrorSourceConnector on a Kafka Connect cluster (created
/// through its REST API, as the KubeDB and Strimzi guides do) moves to kafka-mirrord through
/// `import-connect` and the takeover settings: nothing copied twice, nothing missing — also for
/// a partition that stays idle, after the takeover settings are gone.
#[test]
fn a_flow_moves_from_mirror_maker_2_on_kafka_connect_without_copying_twice() {
    let (source, target) = endpoints();
    let topic = unique("connect-takeover");
    let (from, to) = (unique("cs"), unique("ct"));
    // Partition 2 gets no record after the takeover.
    let (partitions, busy) = (3, 2);
    let batch = 2_000;
    create_topic(source, &topic, partitions);
    for partition in 0..partitions {
        produce(source, &topic, partition, &indexed(partition, 0, batch));
    }
    let dir = tempfile::tempdir().unwrap();

    // 1. MM2 on Connect copies the first backlog; the connector is deleted (its offsets flushed)
    //    and the worker stopped, as at the start of a move.
    let mut worker = support::connect::ConnectWorker::start(dir.path(), target);
    let connector = "mirror-source-connector";
    let config = serde_json::json!({
        "connector.class": "org.apache.kafka.connect.mirror.MirrorSourceConnector",
        "tasks.max": "1",
        "source.cluster.alias": from,
        "target.cluster.alias": to,
        "source.cluster.bootstrap.servers": source,
        "target.cluster.bootstrap.servers": target,
        "topics": topic,
        "replication.factor": "1",
        "offset-syncs.topic.replication.factor": "1",
        "sync.topic.acls.enabled": "false",
        "refresh.topics.interval.seconds": "5",
        "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
    });
    worker.put_connector(connector, &config);
    let remote = format!("{from}.{topic}");
    wait_until(
        Duration::from_secs(180),
        "MM2 on Connect copied the backlog",
        || try_record_count(target, &remote).unwrap_or(0) >= (partitions as usize * batch) as i64,
    );
    std::thread::sleep(Duration::from_secs(3)); // an offset flush (1 s) after the last record
    worker.delete_connector(connector);
    std::thread::sleep(Duration::from_secs(2));
    worker.stop();
    let offsets_topic = worker.offsets_topic.clone();
    let copied_by_connect = record_count(target, &remote);
    assert_eq!(copied_by_connect, (partitions as usize * batch) as i64);

    // 2. The connector's config becomes a dedicated-mode file that takes its progress over.
    std::fs::write(
        dir.path().join("source.json"),
        serde_json::json!({ "name": connector, "config": config }).to_string(),
    )
    .unwrap();
    let file = dir.path().join("imported.properties");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
        .arg("import-connect")
        .args(["--offsets-topic", &offsets_topic, "-o"])
        .arg(&file)
        .arg(dir.path().join("source.json"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut text = std::fs::read_to_string(&file).unwrap();
    // What a single-broker test cluster needs besides (MM2 on Connect created none of these).
    text.push_str(&format!(
        "{to}.offset.storage.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\nmirrord.http.listen = off\n"
    ));
    std::fs::write(&file, text).unwrap();

    // 3. kafka-mirrord resumes where the connector stopped.
    for partition in 0..busy {
        produce(source, &topic, partition, &indexed(partition, batch, batch));
    }
    let mut daemon = Daemon::start(&file);
    let total = ((partitions + busy) as usize * batch) as i64;
    wait_until(
        Duration::from_secs(90),
        "kafka-mirrord copied the rest",
        || record_count(target, &remote) >= total,
    );
    std::thread::sleep(Duration::from_secs(3)); // anything copied twice would arrive meanwhile
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));

    // 4. The taken-over progress is kafka-mirrord's own now: without the settings (the Connect
    //    cluster decommissioned), the idle partition is not copied again either.
    let text = std::fs::read_to_string(&file).unwrap();
    let without: String = text
        .lines()
        .filter(|line| !line.starts_with("mirrord.takeover."))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&file, without).unwrap();
    let mut daemon = Daemon::start(&file);
    wait_until(
        Duration::from_secs(60),
        "the restarted flow running",
        || daemon.log_text().contains("source task started"),
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    for partition in 0..partitions {
        let values: Vec<String> = read_partition(target, &remote, partition, "read_uncommitted")
            .into_iter()
            .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
            .collect();
        let copies = if partition < busy { 2 * batch } else { batch };
        let expected: Vec<String> = (0..copies).map(|i| format!("{partition}:{i}")).collect();
        assert_eq!(
            values.len(),
            expected.len(),
            "partition {partition}: {} records for {} (0 copied twice, 0 missing expected)",
            values.len(),
            expected.len()
        );
        assert!(
            values == expected,
            "partition {partition}: order or content differs"
        );
    }
}
