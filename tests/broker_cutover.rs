//! A cutover you can trust (issue 11), against the two local Apache Kafka clusters: true lag with
//! transactional sources and a frozen target, exact offset translation (zero re-reads) across
//! transaction markers and a restart, the `cutover` command's gates, and the alarms.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::consumers::{consume_to_end, GroupMember, Seen, TxProducer};
use support::faults::Frozen;
use support::*;

/// A flow `<alias>->target` for `topics`, checkpointing and syncing groups `<topics>-.*` every
/// second, progress stored every second; HTTP on a free port.
struct Flow {
    config: PathBuf,
    http: String,
    alias: String,
}

impl Flow {
    fn new(dir: &Path, alias: &str, topics: &str, extra: &str) -> Flow {
        let (source, target) = endpoints();
        let http = format!("127.0.0.1:{}", free_port());
        let config = write_properties(
            dir,
            &format!("{alias}.properties"),
            &format!(
                "clusters = {alias}, target\n{alias}.bootstrap.servers = {source}\ntarget.bootstrap.servers = {target}\n\
                 {alias}->target.enabled = true\n{alias}->target.topics = {topics}\n{alias}->target.groups = {topics}-.*\n\
                 replication.factor = 1\noffset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
                 heartbeats.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
                 target.offset.flush.interval.ms = 1000\nrefresh.topics.interval.seconds = 2\nrefresh.groups.interval.seconds = 1\n\
                 emit.checkpoints.interval.seconds = 1\nsync.group.offsets.enabled = true\nsync.group.offsets.interval.seconds = 1\n\
                 emit.heartbeats.enabled = false\nmirrord.http.listen = {http}\n{extra}"
            ),
        );
        Flow {
            config,
            http,
            alias: alias.to_string(),
        }
    }

    fn id(&self) -> String {
        format!("{}->target", self.alias)
    }

    fn status(&self) -> serde_json::Value {
        status_of(&self.http)
            .map(|status| flow_status(&status, &self.id()))
            .unwrap_or_default()
    }

    fn remote(&self, topic: &str) -> String {
        format!("{}.{topic}", self.alias)
    }

    /// `kafka-mirrord cutover <args> FILE`: (exit code, stdout).
    fn cutover(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
            .arg("cutover")
            .args(args)
            .arg(&self.config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        eprintln!(
            "cutover {args:?} → {:?}\n{stdout}{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().unwrap_or(-1), stdout)
    }
}

/// A source alias only this test uses (a flow's group and task topic are named after it).
fn alias(test: &str) -> String {
    format!("{test}{}", std::process::id())
}

fn keys(partition: i32, range: std::ops::Range<usize>, tag: &str) -> Vec<String> {
    range.map(|i| format!("{partition}-{tag}{i}")).collect()
}

/// The keys of one partition as a `read_committed` reader sees them.
fn committed_keys(bootstrap: &str, topic: &str, partition: i32, isolation: &str) -> Vec<String> {
    read_partition(bootstrap, topic, partition, isolation)
        .into_iter()
        .map(|record| String::from_utf8(record.key.unwrap_or_default()).unwrap())
        .collect()
}

#[test]
fn a_transactional_source_reaches_lag_zero_and_aborted_records_never_arrive() {
    let (source, target) = endpoints();
    let topic = unique("tx");
    let partitions = 3;
    create_topic(source, &topic, partitions);
    // A backlog first, so that replication takes a while after the start.
    for partition in 0..partitions {
        produce(source, &topic, partition, &numbered(4_000));
    }
    let producer = TxProducer::new(source, &unique("tx-app"));
    let batch = |tag: &str| {
        (0..partitions)
            .map(|p| (p, keys(p, 0..20, tag)))
            .collect::<BTreeMap<_, _>>()
    };
    producer.transaction(&topic, &batch("a"), true);
    producer.transaction(&topic, &batch("b"), true);
    producer.transaction(&topic, &batch("aborted"), false);
    producer.transaction(&topic, &batch("c"), true);
    let dir = tempfile::tempdir().unwrap();
    let flow = Flow::new(dir.path(), &alias("tx"), &topic, "");
    let remote = flow.remote(&topic);
    let expected: Vec<Vec<String>> = (0..partitions)
        .map(|p| committed_keys(source, &topic, p, "read_committed"))
        .collect();
    let total: usize = expected.iter().map(Vec::len).sum();

    let daemon = Daemon::start(&flow.config);
    // Never "caught up" before every committed record is on the target.
    let mut samples = 0;
    wait_until(Duration::from_secs(90), "caught up", || {
        let status = flow.status();
        if status["caught_up"] != true {
            samples += 1;
            return false;
        }
        let copied = record_count(target, &remote);
        assert!(
            copied >= total as i64,
            "caught_up while {copied} of {total} records are on the target: {status}"
        );
        true
    });
    assert!(samples > 0, "observed before catching up");
    let status = flow.status();
    assert_eq!(status["lag_complete"], true);
    for partition in 0..partitions {
        let row = partition_status(
            &status_of(&flow.http).unwrap(),
            &flow.id(),
            &topic,
            partition as i64,
        );
        assert_eq!(row["lag"], 0, "{row}");
        let end = watermarks(source, &topic)[partition as usize].1;
        assert_eq!(
            row["source_end_offset"], end,
            "the end is the last stable offset, markers included: {row}"
        );
        assert!(row["replicated_offset"].as_i64() >= Some(end), "{row}");
        // Aborted records never reach the target, whoever reads it.
        for isolation in ["read_committed", "read_uncommitted"] {
            assert_eq!(
                committed_keys(target, &remote, partition, isolation),
                expected[partition as usize],
                "{remote}/{partition} ({isolation})"
            );
        }
    }
    wait_until(Duration::from_secs(30), "kafka_mirrord_caught_up 1", || {
        metric_of(
            &flow.http,
            "kafka_mirrord_caught_up",
            &[("flow", &flow.id())],
        ) == Some(1.0)
            && metric_of(
                &flow.http,
                "kafka_mirrord_lag_records",
                &[("flow", &flow.id())],
            ) == Some(0.0)
    });

    // Caught up and idle, a transaction aborts with nothing after it: only its records and
    // marker move the source's end, no record reaches the source task, and the caught-up lag
    // monitor saw no lag in its last round. The lag still reaches 0 (the task looks for
    // positions past markers once the monitor sees a lag), with the aborted records never copied.
    // Idle means more than the 10 s after its last record during which the task looks every
    // second anyway: that time has to pass.
    std::thread::sleep(Duration::from_secs(11));
    producer.transaction(&topic, &batch("late-abort"), false);
    let ends: Vec<i64> = watermarks(source, &topic).iter().map(|w| w.1).collect();
    wait_until(Duration::from_secs(30), "lag 0 past the late abort", || {
        let status = status_of(&flow.http).unwrap();
        (0..partitions).all(|partition| {
            let row = partition_status(&status, &flow.id(), &topic, partition as i64);
            row["source_end_offset"] == ends[partition as usize] && row["lag"] == 0
        })
    });
    assert_eq!(flow.status()["caught_up"], true);
    for partition in 0..partitions {
        assert_eq!(
            committed_keys(target, &remote, partition, "read_uncommitted"),
            expected[partition as usize],
            "{remote}/{partition}: nothing of the aborted transaction"
        );
    }
    drop(daemon);
}

#[test]
fn lag_keeps_rising_while_the_target_is_frozen_and_falls_back_to_zero() {
    let (source, _) = endpoints();
    let topic = unique("frozen-lag");
    create_topic(source, &topic, 2);
    let dir = tempfile::tempdir().unwrap();
    let flow = Flow::new(dir.path(), &alias("frozen"), &topic, "");
    let stream = SteadyStream::start(source, &topic, 2, 500);
    let daemon = Daemon::start(&flow.config);
    wait_until(Duration::from_secs(60), "replication under way", || {
        flow.status()["lag_complete"] == true && flow.status()["lag"].as_i64() < Some(500)
    });

    let frozen = Frozen::broker("target");
    let mut lags = Vec::new();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_secs(1));
        lags.push(flow.status()["lag"].as_i64().unwrap_or(-1));
    }
    eprintln!("lag while the target is frozen, once a second: {lags:?}");
    assert!(
        lags.windows(2).filter(|pair| pair[1] > pair[0]).count() >= 5,
        "the lag rises with the records written: {lags:?}"
    );
    // 500 records a second for 8 s: most of them show.
    assert!(
        lags.last().unwrap() - lags[0] >= 2_000,
        "it follows the records written: {lags:?}"
    );
    frozen.thaw();
    let counts = stream.finish();
    wait_until(Duration::from_secs(90), "lag back to 0", || {
        let status = flow.status();
        status["caught_up"] == true && status["lag"] == 0
    });
    let total: usize = counts.iter().sum();
    wait_until(
        Duration::from_secs(30),
        "every record on the target",
        || try_record_count(endpoints().1, &flow.remote(&topic)) >= Some(total as i64),
    );

    // Idle (caught up, nothing changes), the monitor measures every few seconds; `/status` still
    // answers with a measurement at most a second old, so a record written more than a second
    // before it shows in the ends and the last write (what the quiet gate goes by).
    std::thread::sleep(Duration::from_secs(13));
    let asked_at = now_ms();
    let status = flow.status();
    let measured_at = status["lag_measured_unix_ms"].as_u64().unwrap();
    assert!(
        measured_at + 1_000 >= asked_at,
        "measured {} ms before it was asked",
        asked_at - measured_at
    );
    let end_before = partition_end(&status, 0);
    let written_at = now_ms();
    produce(source, &topic, 0, &numbered(1));
    std::thread::sleep(Duration::from_millis(1_200));
    let status = flow.status();
    assert_eq!(
        partition_end(&status, 0),
        end_before + 1,
        "a write 1.2 s old shows in the status"
    );
    let last_write = status["topics"][0]["last_write_unix_ms"].as_u64().unwrap();
    assert!(last_write >= written_at, "{last_write} < {written_at}");
    drop(daemon);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The source end offset of partition `partition` of the flow's only topic in `/status`.
fn partition_end(status: &serde_json::Value, partition: i64) -> i64 {
    status["topics"][0]["partitions"]
        .as_array()
        .and_then(|partitions| {
            partitions
                .iter()
                .find(|p| p["partition"].as_i64() == Some(partition))
        })
        .and_then(|p| p["source_end_offset"].as_i64())
        .unwrap_or_else(|| panic!("no end offset of partition {partition}: {status}"))
}

#[test]
fn a_group_behind_the_tip_moves_with_zero_rereads_across_markers_and_a_restart() {
    let (source, target) = endpoints();
    let topic = unique("exact");
    create_topic(source, &topic, 2);
    let producer = TxProducer::new(source, &unique("exact-app"));
    let both = |range: std::ops::Range<usize>, tag: &str| {
        (0..2)
            .map(|p| (p, keys(p, range.clone(), tag)))
            .collect::<BTreeMap<_, _>>()
    };
    producer.transaction(&topic, &both(0..100, "a"), true);
    producer.transaction(&topic, &both(0..50, "x"), false);
    producer.transaction(&topic, &both(0..100, "b"), true);
    producer.transaction(&topic, &both(0..100, "c"), true);
    let dir = tempfile::tempdir().unwrap();
    let flow = Flow::new(dir.path(), &alias("exact"), &topic, "");
    let remote = flow.remote(&topic);
    let mut daemon = Daemon::start(&flow.config);
    wait_until(Duration::from_secs(60), "caught up", || {
        flow.status()["caught_up"] == true
    });
    // A restart in between: the history of the first run must still hold.
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let daemon = Daemon::start(&flow.config);
    producer.transaction(&topic, &both(0..100, "d"), true);
    producer.transaction(&topic, &both(0..30, "y"), false);
    producer.transaction(&topic, &both(0..100, "e"), true);
    wait_until(Duration::from_secs(60), "caught up again", || {
        flow.status()["caught_up"] == true
    });

    // Source offsets per partition: a 0..=99, marker 100, aborted 101..=150, marker 151,
    // b 152..=251, marker 252, c 253..=352, marker 353, then d, y (aborted), e.
    // Partition 0 committed inside b; partition 1 committed at a commit marker.
    let group = format!("{topic}-app");
    let committed = [(topic.as_str(), 0, 180), (topic.as_str(), 1, 252)];
    commit_group(source, &group, &committed);
    let mut translation = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(60),
        "the group translated and synced",
        || {
            let status = flow.status();
            let found = status["groups"]
                .as_array()
                .and_then(|groups| {
                    groups
                        .iter()
                        .find(|g| g["group"] == group.as_str())
                        .cloned()
                })
                .unwrap_or_default();
            translation = found["translation"].clone();
            found["target_offsets"] == "in_sync"
        },
    );
    assert_eq!(translation["kind"], "exact", "{translation}");
    // In sync is a state of its own, not a skip.
    let labels = [("flow", flow.id()), ("group", group.clone())];
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    wait_until(Duration::from_secs(30), "the group's metrics", || {
        let state = |name: &str| {
            let mut with_state = labels.clone();
            with_state.push(("state", name));
            metric_of(&flow.http, "kafka_mirrord_group_sync_state", &with_state)
        };
        state("in_sync") == Some(1.0)
            && state("target_ahead") == Some(0.0)
            && metric_of(&flow.http, "kafka_mirrord_group_translation_exact", &labels) == Some(1.0)
            && metric_of(&flow.http, "kafka_mirrord_group_max_rereads", &labels) == Some(0.0)
    });
    // Both rounds covered this group once (its first emit and the first sync are full rounds),
    // and say how long they took.
    for round in ["emit", "sync"] {
        let labels = [("flow", flow.id()), ("round", round.to_string())];
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let groups = metric_of(&flow.http, "kafka_mirrord_group_round_groups", &labels);
        assert!(groups >= Some(1.0), "{round} round groups: {groups:?}");
        let seconds = metric_of(&flow.http, "kafka_mirrord_group_round_seconds", &labels);
        assert!(
            seconds.is_some_and(|s| s > 0.0 && s < 30.0),
            "{round} round seconds: {seconds:?}"
        );
    }
    assert_ne!(
        metric_of(
            &flow.http,
            "kafka_mirrord_groups_skipped",
            &[("flow", &flow.id()), ("reason", "target_ahead")]
        ),
        Some(1.0),
        "a group in sync is not skipped"
    );

    // The group commits again on the source while idle: the checkpoint round learns it from the
    // source's `__consumer_offsets` (it asks every group only every few minutes) and the target
    // follows within seconds. Partition 0 moves inside c.
    let before = group_offsets(target, &group, &remote, 2);
    let committed = [(topic.as_str(), 0, 300), (topic.as_str(), 1, 252)];
    commit_group(source, &group, &committed);
    wait_until(
        Duration::from_secs(30),
        "the new commit on the target",
        || {
            let now = group_offsets(target, &group, &remote, 2);
            now[0] != before[0] && now[1] == before[1]
        },
    );
    assert_eq!(
        flow.status()["group_commit_watch"],
        true,
        "the round knew which group committed"
    );

    let moved = consume_to_end(target, &group, &remote);
    for (topic_name, partition, offset) in committed {
        let source_records = read_partition(source, topic_name, partition, "read_committed");
        let consumed_on_source: BTreeSet<String> = {
            // Everything before the committed offset was processed on the source.
            let all = read_with_offsets(source, topic_name, partition);
            all.into_iter()
                .filter(|(o, _)| *o < offset)
                .map(|(_, key)| key)
                .collect()
        };
        let expected: Vec<String> = source_records
            .iter()
            .map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap())
            .filter(|key| !consumed_on_source.contains(key))
            .collect();
        let got: Vec<String> = moved
            .iter()
            .filter(|seen| seen.partition == partition)
            .map(|seen| seen.key.clone())
            .collect();
        let rereads = got
            .iter()
            .filter(|key| consumed_on_source.contains(*key))
            .count();
        assert_eq!(rereads, 0, "partition {partition}: re-read records");
        assert_eq!(
            got, expected,
            "partition {partition}: resumes at the next record, skips none"
        );
    }

    // Its offsets deleted on the source (`kafka-consumer-groups --delete-offsets`), the group is
    // no longer checkpointed: the round that reads it again, told by `__consumer_offsets`,
    // finds no offset (MM2 stops checkpointing such a group too).
    mm2_client(&[source, "delete-offsets", &group, &topic, "0", "1"]);
    wait_until(Duration::from_secs(30), "the group dropped", || {
        let status = flow.status();
        status["groups"]
            .as_array()
            .is_some_and(|groups| groups.iter().all(|g| g["group"] != group.as_str()))
    });
    drop(daemon);
}

/// (offset, key) of every committed record of a source partition.
fn read_with_offsets(bootstrap: &str, topic: &str, partition: i32) -> Vec<(i64, String)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-mirrord-tests")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    loop {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(message)) => out.push((
                message.offset(),
                String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => return out,
            Some(Err(error)) => panic!("{error}"),
        }
    }
}

#[test]
fn cutover_waits_for_producers_and_consumers_then_moved_consumers_read_each_record_once() {
    let (source, target) = endpoints();
    let topic = unique("cutover");
    create_topic(source, &topic, 2);
    let dir = tempfile::tempdir().unwrap();
    let flow = Flow::new(dir.path(), &alias("cut"), &topic, "");
    let remote = flow.remote(&topic);
    let group = format!("{topic}-app");
    let stream = SteadyStream::start(source, &topic, 2, 300);
    let member = GroupMember::start(source, &group, &topic);
    let daemon = Daemon::start(&flow.config);
    wait_until(Duration::from_secs(60), "the group checkpointed", || {
        flow.status()["groups"].as_array().is_some_and(|groups| {
            groups
                .iter()
                .any(|g| g["group"] == group.as_str() && g["checkpointed"] == true)
        })
    });

    // Producer and consumer still at work: not yet, and it says why.
    let (code, out) = flow.cutover(&["--quiet-seconds", "5"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("NOT READY"), "{out}");
    assert!(out.contains("[WAIT] quiet"), "{out}");
    assert!(out.contains("member(s) still on the source"), "{out}");
    let (code, json) = flow.cutover(&["--quiet-seconds", "5", "--json"]);
    assert_eq!(code, 2);
    let verdict: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(verdict["ready"], false);

    // The application stops writing, then its consumers stop.
    let counts = stream.finish();
    let on_source = member.stop();
    let (code, out) = flow.cutover(&[
        "--final-sync",
        "--wait",
        "--timeout",
        "120",
        "--quiet-seconds",
        "5",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("READY to cut over"), "{out}");
    assert!(out.contains("exact"), "{out}");

    // The consumers start on the target: every record exactly once, over both clusters.
    let on_target = consume_to_end(target, &group, &remote);
    assert_each_record_once(&counts, &on_source, &on_target);
    drop(daemon);
}

/// Every record of the stream (`p-i` for i < counts[p]) was processed once: on the source or, after
/// the move, on the target.
fn assert_each_record_once(counts: &[usize], on_source: &[Seen], on_target: &[Seen]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for record in on_source.iter().chain(on_target) {
        *seen.entry(record.key.clone()).or_default() += 1;
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    let expected: BTreeSet<String> = counts
        .iter()
        .enumerate()
        .flat_map(|(p, n)| (0..*n).map(move |i| format!("{p}-{i}")))
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|k| !seen.contains_key(*k)).collect();
    eprintln!(
        "{} records: {} processed on the source, {} on the target, {} twice, {} missing",
        expected.len(),
        on_source.len(),
        on_target.len(),
        twice.len(),
        missing.len()
    );
    assert!(
        twice.is_empty(),
        "re-read: {:?}",
        &twice[..twice.len().min(10)]
    );
    assert!(
        missing.is_empty(),
        "lost: {:?}",
        &missing[..missing.len().min(10)]
    );
    assert_eq!(seen.len(), expected.len(), "nothing else was read");
}

#[test]
fn a_foreign_write_to_a_remote_topic_raises_its_alarm() {
    let (source, target) = endpoints();
    let topic = unique("foreign");
    create_topic(source, &topic, 2);
    for partition in 0..2 {
        produce(source, &topic, partition, &numbered(100));
    }
    let dir = tempfile::tempdir().unwrap();
    let flow = Flow::new(dir.path(), &alias("foreign"), &topic, "");
    let daemon = Daemon::start(&flow.config);
    wait_until(Duration::from_secs(60), "caught up", || {
        flow.status()["caught_up"] == true
    });
    // Someone writes to the remote topic (an application moved too early).
    produce(target, &flow.remote(&topic), 1, &numbered(3));
    wait_until(Duration::from_secs(60), "the foreign_writes alarm", || {
        let alarms = flow.status()["alarms"].clone();
        alarms.as_array().is_some_and(|alarms| {
            alarms.iter().any(|a| {
                a["kind"] == "foreign_writes" && a["partition"] == 1 && a["topic"] == topic.as_str()
            })
        }) && metric_of(
            &flow.http,
            "kafka_mirrord_alarms",
            &[("flow", &flow.id()), ("kind", "foreign_writes")],
        ) == Some(1.0)
    });
    let status = flow.status();
    let gate = status["cutover"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "no_foreign_writes")
        .cloned()
        .unwrap();
    assert_eq!(gate["passed"], false, "{gate}");
    assert!(daemon.log_text().contains("alarm foreign_writes"));
}

#[test]
fn the_runbook_moves_two_groups_and_their_producer_with_nothing_lost_or_read_twice() {
    let (source, target) = endpoints();
    let topic = unique("runbook");
    create_topic(source, &topic, 3);
    let dir = tempfile::tempdir().unwrap();
    // The guides' set-up: old -> new, topic names kept (IdentityReplicationPolicy), group offsets
    // synced to the new cluster.
    let old = alias("old");
    let http = format!("127.0.0.1:{}", free_port());
    let config = write_properties(
        dir.path(),
        "migration.properties",
        &format!(
            "clusters = {old}, new\n{old}.bootstrap.servers = {source}\nnew.bootstrap.servers = {target}\n\
             {old}->new.enabled = true\n{old}->new.topics = {topic}\n{old}->new.groups = {topic}-.*\n\
             replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n\
             sync.group.offsets.enabled = true\nsync.group.offsets.interval.seconds = 1\n\
             emit.checkpoints.interval.seconds = 1\nrefresh.groups.interval.seconds = 1\nrefresh.topics.interval.seconds = 2\n\
             replication.factor = 1\noffset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
             new.offset.flush.interval.ms = 1000\nmirrord.http.listen = {http}\n"
        ),
    );
    let flow = Flow {
        config: config.clone(),
        http: http.clone(),
        alias: old.clone(),
    };
    let flow_id = format!("{old}->new");
    let kafka_mirrord = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
            .args(args)
            .arg(&config)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    // 1. Check the file and both clusters.
    let (code, out) = kafka_mirrord(&["check", "--connect"]);
    assert_eq!(code, Some(0), "{out}");

    // 2. The application runs on the old cluster: a producer and two consumer groups.
    let stream = SteadyStream::start(source, &topic, 3, 300);
    let (first, second) = (format!("{topic}-billing"), format!("{topic}-shipping"));
    let billing = GroupMember::start(source, &first, &topic);
    let shipping = GroupMember::start(source, &second, &topic);

    // 3. Start kafka-mirrord; watch it catch up.
    let daemon = Daemon::start(&config);
    wait_until(Duration::from_secs(60), "both groups checkpointed", || {
        let status = status_of(&http).unwrap_or_default();
        let groups = flow_status(&status, &flow_id)["groups"].clone();
        [&first, &second].iter().all(|group| {
            groups.as_array().is_some_and(|g| {
                g.iter()
                    .any(|g| g["group"] == group.as_str() && g["checkpointed"] == true)
            })
        })
    });

    // 4. Stop the producers, then the consumers (they commit what they processed).
    let counts = stream.finish();
    let on_old = [billing.stop(), shipping.stop()];

    // 5. Wait for the cutover verdict.
    let (code, out) = flow.cutover(&[
        "--flow",
        &flow_id,
        "--final-sync",
        "--wait",
        "--timeout",
        "120",
        "--quiet-seconds",
        "5",
    ]);
    assert_eq!(code, 0, "{out}");

    // 6. Consumers start on the new cluster (same topic name, same group).
    let on_new = [
        consume_to_end(target, &first, &topic),
        consume_to_end(target, &second, &topic),
    ];
    for (old, new) in on_old.iter().zip(&on_new) {
        assert_each_record_once(&counts, old, new);
    }

    // 7. Producers move to the new cluster: the moved consumers read their records, and only them.
    drop(daemon);
    produce(target, &topic, 0, &numbered(30));
    for group in [&first, &second] {
        let fresh = consume_to_end(target, group, &topic);
        assert_eq!(fresh.len(), 30, "{group}: only the new records");
        assert!(fresh
            .iter()
            .all(|seen| seen.partition == 0 && !seen.key.contains('-')));
    }
}
