//! Checkpoints, consumer-group offset sync and heartbeats against the two local Apache Kafka
//! clusters (issue 4): consumers resume on the target at the translated offset, active groups and
//! targets that are ahead are left alone, heartbeats flow, and Apache MM2's client code reads what
//! kafka-mirrord wrote.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_mirrord::flow::records::Heartbeat;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use support::*;

/// Where a consumer that joins `group` on `topic` starts reading, per partition.
fn resume_positions(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut first = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut errors = Vec::new();
    while first.len() < partitions as usize && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                first.entry(message.partition()).or_insert(message.offset());
            }
            Some(Err(error)) => errors.push(error.to_string()),
            None => {}
        }
    }
    if first.len() < partitions as usize {
        let watermarks: Vec<_> = (0..partitions)
            .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)))
            .collect();
        panic!(
            "the consumer read only partitions {:?} of {partitions}; committed {:?}, \
             watermarks {watermarks:?}, assignment {:?}, positions {:?}, poll errors {errors:?}",
            first.keys().collect::<Vec<_>>(),
            group_offsets(bootstrap, group, topic, partitions),
            consumer.assignment().map(|a| a.to_topic_map()),
            consumer.position().map(|p| p.to_topic_map()),
        );
    }
    first
}

#[test]
fn cutover_resumes_at_the_translated_offset_and_leaves_active_or_ahead_groups_alone() {
    let (source, target) = endpoints();
    let topic = unique("cutover");
    let remote = format!("source.{topic}");
    let (partitions, records) = (2, 1_000);
    create_topic(source, &topic, partitions);
    for partition in 0..partitions {
        produce(source, &topic, partition, &numbered(records));
    }
    let (migrating, active, ahead) = (
        format!("{topic}-migrating"),
        format!("{topic}-active"),
        format!("{topic}-ahead"),
    );
    // The migrating group consumed 600 records of each partition on the source.
    commit_group(source, &migrating, &[(&topic, 0, 600), (&topic, 1, 600)]);
    commit_group(source, &active, &[(&topic, 0, 500), (&topic, 1, 500)]);
    commit_group(source, &ahead, &[(&topic, 0, 300), (&topic, 1, 300)]);

    // The target before kafka-mirrord starts (so no sync round can race the set-up): the remote
    // topic exists, `ahead` already committed past any translation, `active` has a live member.
    create_topic(target, &remote, partitions);
    commit_group(target, &ahead, &[(&remote, 0, 900), (&remote, 1, 900)]);
    let stop_active = Arc::new(AtomicBool::new(false));
    let active_member = {
        let (stop, group, remote) = (stop_active.clone(), active.clone(), remote.clone());
        std::thread::spawn(move || {
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", target)
                .set("group.id", &group)
                .set("enable.auto.commit", "false");
            let consumer: BaseConsumer = config.create().unwrap();
            consumer.subscribe(&[&remote]).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
        })
    };
    wait_until(Duration::from_secs(30), "the active member to join", || {
        group_members(target, &active) > 0
    });

    let dir = tempfile::tempdir().unwrap();
    let file = checkpointing_config(dir.path(), &topic);
    let daemon = Daemon::start(&file);
    wait_until(Duration::from_secs(60), "replication", || {
        record_count(target, &remote) == (partitions as usize * records) as i64
    });

    wait_until(
        Duration::from_secs(60),
        "the migrating group's offsets on the target",
        || {
            group_offsets(target, &migrating, &remote, partitions)
                .iter()
                .all(Option::is_some)
        },
    );
    // Exact translation: once replication and its stored progress passed the committed offsets,
    // the group lands on exactly the record after its last one (MM2 would re-read up to 100).
    wait_until(
        Duration::from_secs(60),
        "the exact translation on the target",
        || group_offsets(target, &migrating, &remote, partitions) == vec![Some(600), Some(600)],
    );
    let synced = group_offsets(target, &migrating, &remote, partitions);
    std::thread::sleep(Duration::from_secs(4)); // several sync rounds
    assert_eq!(
        group_offsets(target, &active, &remote, partitions),
        vec![None, None],
        "a group active on the target is not touched"
    );
    // Once its member leaves, the group is idle and a later round may sync it: that is expected.
    stop_active.store(true, Ordering::Relaxed);
    active_member.join().unwrap();

    let resumed = resume_positions(target, &migrating, &remote, partitions);
    for partition in 0..partitions {
        let at = resumed[&partition];
        assert_eq!(
            Some(at),
            synced[partition as usize],
            "the consumer resumes at the synced offset"
        );
        assert_eq!(at, 600, "partition {partition}: no re-read, no skip");
    }
    assert_eq!(
        group_offsets(target, &ahead, &remote, partitions),
        vec![Some(900), Some(900)],
        "a target ahead is never rewound"
    );
    let log = daemon.log_text();
    assert!(
        log.contains("active_on_target") && log.contains("target_ahead"),
        "skip reasons are logged:\n{log}"
    );

    // `translate-offsets` tells where the group resumes, as do MM2's RemoteClusterUtils.
    let output = Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
        .args([
            "translate-offsets",
            "--json",
            "--group",
            &migrating,
            "--source",
            "source",
            "--target",
            "target",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), partitions as usize);
    for row in rows {
        let partition = row["partition"].as_i64().unwrap() as i32;
        assert_eq!(row["translated"].as_i64(), Some(resumed[&partition]));
        assert_eq!(row["upstream_committed"].as_i64(), Some(600));
        assert_eq!(row["target_topic"], remote.as_str());
        assert!(row["checkpoint_age_ms"].as_i64().unwrap() < 60_000);
    }
    let java = mm2_client(&[target, "translate", &migrating, "source"]);
    let expected: String = (0..partitions)
        .map(|p| format!("{remote} {p} {}\n", resumed[&p]))
        .collect();
    assert_eq!(
        java, expected,
        "Apache MM2's RemoteClusterUtils translates to the same offsets"
    );
}

#[test]
fn heartbeats_are_emitted_replicated_and_understood_by_mm2() {
    let (source, target) = endpoints();
    let topic = unique("beats");
    create_topic(source, &topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let started = kafka_mirrord::clock::unix_ms();
    let _daemon = Daemon::start(&checkpointing_config(dir.path(), &topic));
    let recent = |bootstrap: &str, topic: &str| -> Vec<Heartbeat> {
        if !list_topics(bootstrap).iter().any(|t| t == topic) {
            return Vec::new();
        }
        read_raw(bootstrap, topic)
            .into_iter()
            .map(|(partition, key, value)| {
                assert_eq!(partition, 0);
                Heartbeat::decode(&key, value.as_deref().unwrap()).expect("MM2's heartbeat layout")
            })
            .filter(|h| h.timestamp >= started)
            .collect()
    };
    wait_until(
        Duration::from_secs(40),
        "heartbeats on both clusters and the replicated copy",
        || {
            recent(target, "heartbeats")
                .iter()
                .filter(|h| h.source == "source" && h.target == "target")
                .count()
                >= 4
                && recent(source, "heartbeats")
                    .iter()
                    .any(|h| h.source == "target" && h.target == "source")
                && recent(target, "source.heartbeats")
                    .iter()
                    .any(|h| h.source == "target" && h.target == "source")
        },
    );
    let ours: Vec<i64> = recent(target, "heartbeats")
        .iter()
        .filter(|h| h.source == "source")
        .map(|h| h.timestamp)
        .collect();
    // Other tests' daemons may write `source`->`target` heartbeats too, so only the upper bound of
    // the spacing is meaningful: a heartbeat at least every ~1 s.
    for pair in ours.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap <= 2_500, "heartbeats every ~1 s, saw a gap of {gap} ms");
    }
    let upstream = mm2_client(&[target, "upstream"]);
    assert!(
        upstream.lines().any(|l| l == "source"),
        "MirrorClient.upstreamClusters sees `source`: {upstream}"
    );
    assert!(
        upstream.lines().any(|l| l == "hops source 1"),
        "replicationHops(source) = 1: {upstream}"
    );
}

#[test]
fn a_group_listing_counts_members_only_of_groups_that_have_them() {
    use kafka_mirrord::kafka::admin::Admin;
    let (source, _) = endpoints();
    let topic = unique("listing");
    create_topic(source, &topic, 1);
    produce(source, &topic, 0, &numbered(3));
    let (idle, active) = (unique("listing-idle"), unique("listing-active"));
    commit_group(source, &idle, &[(&topic, 0, 2)]);
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", source);
    let admin = Admin::new(&config, Duration::from_secs(10)).unwrap();

    // Only empty groups wanted: their states are listed, nobody is described.
    let listed = admin.wanted_groups(|name| name == idle).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].name.as_str(),
            listed[0].state.as_str(),
            listed[0].members
        ),
        (idle.as_str(), "Empty", 0)
    );

    // A wanted group with a member: the members are counted.
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", source)
        .set("group.id", &active)
        .create()
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    wait_until(Duration::from_secs(60), "the member joined", || {
        let _ = member.poll(Duration::from_millis(100));
        group_members(source, &active) == 1
    });
    let listed = admin
        .wanted_groups(|name| name == idle || name == active)
        .unwrap();
    let by_name: BTreeMap<&str, (&str, usize)> = listed
        .iter()
        .map(|g| (g.name.as_str(), (g.state.as_str(), g.members)))
        .collect();
    assert_eq!(by_name.len(), 2, "{listed:?}");
    assert_eq!(by_name[idle.as_str()], ("Empty", 0));
    assert_eq!(by_name[active.as_str()].1, 1, "{listed:?}");
    assert_ne!(by_name[active.as_str()].0, "Empty");
}
