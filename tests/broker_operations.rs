//! Operating the daemon against the two local Apache Kafka clusters (issue 5): hot reload per
//! flow (add, remove, change, invalid file, rename-replace, SIGHUP, bursts), graceful shutdown with
//! stored progress, systemd notifications, and the HTTP endpoint.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;

const COMMON: &str = "emit.heartbeats.enabled = false\nreplication.factor = 1\noffset-syncs.topic.replication.factor = 1\n\
    checkpoints.topic.replication.factor = 1\nheartbeats.topic.replication.factor = 1\n\
    target.offset.storage.replication.factor = 1\nsource.offset.storage.replication.factor = 1\n\
    target.offset.flush.interval.ms = 1000\nsource.offset.flush.interval.ms = 1000\nrefresh.topics.interval.seconds = 2\n\
    emit.checkpoints.enabled = false\n";

fn properties(flows: &str, http: &str) -> String {
    let kafka = test_kafka();
    format!(
        "clusters = source, target\nsource.bootstrap.servers = {}\ntarget.bootstrap.servers = {}\n{COMMON}mirrord.http.listen = {http}\n{flows}",
        kafka.get("SOURCE_BOOTSTRAP"),
        kafka.get("TARGET_BOOTSTRAP")
    )
}

fn numbered(first: usize, count: usize) -> Vec<TestRecord> {
    (first..first + count)
        .map(|i| TestRecord {
            key: Some(i.to_string().into_bytes()),
            value: Some(vec![b'x'; 64]),
            headers: vec![],
            timestamp: 1_650_000_000_000 + i as i64,
        })
        .collect()
}

/// Produces batches to partition 0 of `topic` until stopped; returns how many were produced.
fn keep_producing(
    bootstrap: &'static str,
    topic: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut produced = 0;
        while !stop.load(Ordering::Relaxed) {
            produce(bootstrap, &topic, 0, &numbered(produced, 200));
            produced += 200;
            std::thread::sleep(Duration::from_millis(50));
        }
        produced
    })
}

/// Every record 0..count on the target partition, in order, each at least once, none missing.
fn assert_complete(bootstrap: &str, topic: &str, count: usize) {
    let records = read_partition(bootstrap, topic, 0, "read_committed");
    let mut seen = std::collections::HashSet::new();
    let order: Vec<i64> = records
        .iter()
        .map(|r| r.timestamp)
        .filter(|t| seen.insert(*t))
        .collect();
    let expected: Vec<i64> = numbered(0, count).iter().map(|r| r.timestamp).collect();
    assert_eq!(order.len(), expected.len(), "{topic}: distinct records");
    assert_eq!(
        order, expected,
        "{topic}: a record is missing or out of order"
    );
}

fn replace_by_rename(path: &Path, text: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[test]
fn reload_adds_changes_and_removes_flows_without_touching_the_others() {
    let kafka = test_kafka();
    let (source, target) = (kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP"));
    let prefix = unique("reload");
    let (forward, backward, extra) = (
        format!("{prefix}-fwd"),
        format!("{prefix}-back"),
        format!("{prefix}-extra"),
    );
    create_topic(source, &forward, 1);
    create_topic(source, &extra, 1);
    create_topic(target, &backward, 1);
    produce(source, &extra, 0, &numbered(0, 50));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mm2.properties");
    let port = free_port();
    let http = format!("127.0.0.1:{port}");
    let flow_forward =
        |topics: &str| format!("source->target.enabled = true\nsource->target.topics = {topics}\n");
    let flow_backward =
        format!("target->source.enabled = true\ntarget->source.topics = {backward}\n");
    std::fs::write(&file, properties(&flow_forward(&forward), &http)).unwrap();
    let mut daemon = Daemon::start(&file);

    let stop = Arc::new(AtomicBool::new(false));
    let forward_producer = keep_producing(source, forward.clone(), stop.clone());
    let backward_producer = keep_producing(target, backward.clone(), stop.clone());
    wait_until(Duration::from_secs(60), "the forward flow", || {
        record_count(target, &format!("source.{forward}")) > 0
    });

    // 1. Add a flow (file replaced by rename, as editors and config management do).
    replace_by_rename(
        &file,
        &properties(&(flow_forward(&forward) + &flow_backward), &http),
    );
    wait_until(Duration::from_secs(60), "the added backward flow", || {
        record_count(source, &format!("target.{backward}")) > 0
    });
    let forward_starts = |log: &str| {
        log.matches("source task started flow=source->target")
            .count()
    };
    let backward_starts = |log: &str| {
        log.matches("source task started flow=target->source")
            .count()
    };
    assert_eq!(
        forward_starts(&daemon.log_text()),
        1,
        "adding a flow does not restart the others"
    );

    // 2. An invalid file keeps everything running and is reported.
    std::fs::write(
        &file,
        properties(&(flow_forward(&forward) + &flow_backward), &http)
            + "source->target.tasks.max = many\n",
    )
    .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the invalid file to be reported",
        || {
            let (_, status) = http_get(&http, "/status");
            status.contains("invalid_config")
        },
    );
    let (_, metrics) = http_get(&http, "/metrics");
    assert!(
        metrics.contains("kafka_mirrord_reloads_total{result=\"invalid_config\"} 1"),
        "{metrics}"
    );
    assert_eq!(forward_starts(&daemon.log_text()), 1);

    // 3. Change the forward flow's topics (SIGHUP this time): only it restarts, from stored progress.
    std::fs::write(
        &file,
        properties(
            &(flow_forward(&format!("{forward}|{extra}")) + &flow_backward),
            &http,
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    wait_until(
        Duration::from_secs(60),
        "the changed flow to pick up the extra topic",
        || record_count(target, &format!("source.{extra}")) == 50,
    );
    let log = daemon.log_text();
    assert_eq!(forward_starts(&log), 2, "the changed flow restarted once");
    assert_eq!(
        backward_starts(&log),
        1,
        "the untouched flow's consumer was not recreated"
    );

    // 4. A burst of 50 reloads under load loses nothing.
    for round in 0..50 {
        let topics = if round % 2 == 0 {
            format!("{forward}|{extra}")
        } else {
            format!("{extra}|{forward}")
        };
        std::fs::write(
            &file,
            properties(&(flow_forward(&topics) + &flow_backward), &http),
        )
        .unwrap();
        daemon.signal("HUP");
    }
    std::thread::sleep(Duration::from_secs(3));

    // 5. Remove the backward flow.
    std::fs::write(
        &file,
        properties(&flow_forward(&format!("{forward}|{extra}")), &http),
    )
    .unwrap();
    wait_until(Duration::from_secs(60), "the backward flow to stop", || {
        daemon
            .log_text()
            .contains("flow stopped flow=target->source")
    });

    stop.store(true, Ordering::Relaxed);
    let forward_count = forward_producer.join().unwrap();
    let backward_count = backward_producer.join().unwrap();
    wait_until(
        Duration::from_secs(120),
        "the forward flow to catch up",
        || record_count(target, &format!("source.{forward}")) >= forward_count as i64,
    );
    assert_eq!(daemon.terminate(Duration::from_secs(60)), Some(0));
    assert_complete(target, &format!("source.{forward}"), forward_count);
    // The backward flow was removed while its producer ran: what it copied has no gap.
    let copied_backward =
        read_partition(source, &format!("target.{backward}"), 0, "read_committed");
    let mut seen = std::collections::HashSet::new();
    let distinct: Vec<i64> = copied_backward
        .iter()
        .map(|r| r.timestamp)
        .filter(|t| seen.insert(*t))
        .collect();
    let expected: Vec<i64> = numbered(0, distinct.len())
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(
        distinct, expected,
        "the untouched (later removed) flow's stream had no gap"
    );
    assert!(distinct.len() <= backward_count);
}

#[test]
fn sigterm_under_load_drains_and_a_restart_resends_nothing_acknowledged() {
    let kafka = test_kafka();
    let (source, target) = (kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP"));
    let topic = unique("drain");
    create_topic(source, &topic, 1);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mm2.properties");
    std::fs::write(&file, properties(&format!("source->target.enabled = true\nsource->target.topics = {topic}\nmirrord.shutdown.timeout.ms = 20000\n"), "off")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = keep_producing(source, topic.clone(), stop.clone());
    let remote = format!("source.{topic}");
    let mut daemon = Daemon::start(&file);
    wait_until(Duration::from_secs(60), "replication under load", || {
        record_count(target, &remote) > 2_000
    });
    let started = std::time::Instant::now();
    assert_eq!(
        daemon.terminate(Duration::from_secs(30)),
        Some(0),
        "SIGTERM is a clean stop"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "within the deadline"
    );
    stop.store(true, Ordering::Relaxed);
    let produced = producer.join().unwrap();
    let copied_before_restart = record_count(target, &remote);

    // Everything acknowledged before the stop has its progress stored: a restart sends only the rest.
    let mut daemon = Daemon::start(&file);
    wait_until(Duration::from_secs(120), "catch-up after restart", || {
        record_count(target, &remote) >= produced as i64
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    assert_eq!(
        record_count(target, &remote),
        produced as i64,
        "no record re-sent after a clean stop (copied {copied_before_restart} before it)"
    );
    assert_complete(target, &remote, produced);
}

#[test]
fn systemd_notifications_and_http_endpoint() {
    let kafka = test_kafka();
    let (source, target) = (kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP"));
    let topic = unique("notify");
    create_topic(source, &topic, 2);
    produce(source, &topic, 0, &numbered(0, 300));
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let file = dir.path().join("mm2.properties");
    let http = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &file,
        properties(
            &format!("source->target.enabled = true\nsource->target.topics = {topic}\n"),
            &http,
        ),
    )
    .unwrap();
    let mut daemon =
        Daemon::start_with_env(&file, &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())]);

    let mut messages: Vec<String> = Vec::new();
    let receive_until = |wanted: &str, messages: &mut Vec<String>| {
        let mut buffer = [0u8; 4096];
        while !messages.iter().any(|m| m.contains(wanted)) {
            let length = socket
                .recv(&mut buffer)
                .unwrap_or_else(|_| panic!("no `{wanted}` from the daemon; got {messages:?}"));
            messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
    };
    receive_until("READY=1", &mut messages);
    wait_until(Duration::from_secs(60), "replication", || {
        record_count(target, &format!("source.{topic}")) == 300
    });

    // HTTP: liveness, readiness, MM2-named and own metrics, lag per partition, /status.
    assert_eq!(http_get(&http, "/live").0, 200);
    assert_eq!(http_get(&http, "/ready").0, 200);
    let partition_zero = |status: &serde_json::Value| -> Option<serde_json::Value> {
        let flows = status["flows"].as_array()?;
        let flow = flows.iter().find(|f| f["id"] == "source->target")?;
        let topic_status = flow["topics"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == topic.as_str())?;
        topic_status["partitions"]
            .as_array()?
            .iter()
            .find(|p| p["partition"] == 0)
            .cloned()
    };
    wait_until(Duration::from_secs(20), "progress in /status", || {
        let status: serde_json::Value =
            serde_json::from_str(&http_get(&http, "/status").1).unwrap_or_default();
        partition_zero(&status).is_some_and(|p| p["replicated_offset"] == 300 && p["lag"] == 0)
    });
    let (code, metrics) = http_get(&http, "/metrics");
    assert_eq!(code, 200);
    for name in [
        "kafka_connect_mirror_mirrorsourceconnector_record_count{",
        "kafka_mirrord_records_total{",
        "kafka_mirrord_replication_lag_records{",
        "kafka_mirrord_build_info{",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    // The lag series follow the lag monitor's rounds (once a second).
    let lag_zero = format!("kafka_mirrord_replication_lag_records{{flow=\"source->target\",partition=\"0\",topic=\"{topic}\"}} 0\n");
    wait_until(
        Duration::from_secs(20),
        "lag 0 in the metrics once caught up",
        || http_get(&http, "/metrics").1.contains(&lag_zero),
    );
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
        .arg("status")
        .arg(&file)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("source->target") && table.contains("running") && table.contains(&topic),
        "`kafka-mirrord status`:\n{table}"
    );

    // Reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 again.
    daemon.signal("HUP");
    receive_until("RELOADING=1", &mut messages);
    let reloading = messages.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let ready_count = || messages.iter().filter(|m| m.contains("READY=1")).count();
    let before = ready_count();
    let mut buffer = [0u8; 4096];
    while messages.iter().filter(|m| m.contains("READY=1")).count() == before {
        let length = socket.recv(&mut buffer).expect("READY=1 after the reload");
        messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
    }
    assert!(
        messages.iter().any(|m| m.starts_with("STATUS=")),
        "a STATUS= line: {messages:?}"
    );

    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    receive_until("STOPPING=1", &mut messages);
}

#[test]
fn lag_rises_while_replication_is_stalled_and_shows_in_status() {
    let kafka = test_kafka();
    let (source, target) = (kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP"));
    let topic = unique("stall");
    create_topic(source, &topic, 1);
    // The remote topic refuses batches over 64 KiB, and config sync is off so it stays that way: the
    // partition cannot make progress past the big record.
    create_topic_with_config(
        target,
        &format!("source.{topic}"),
        1,
        &[("max.message.bytes", "65536")],
    );
    produce(source, &topic, 0, &numbered(0, 100));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mm2.properties");
    let http = format!("127.0.0.1:{}", free_port());
    std::fs::write(&file, properties(&format!("source->target.enabled = true\nsource->target.topics = {topic}\nsync.topic.configs.enabled = false\n"), &http)).unwrap();
    let mut daemon = Daemon::start(&file);
    let lag = || -> Option<i64> {
        let (_, metrics) = http_get(&http, "/metrics");
        let prefix = format!("kafka_mirrord_replication_lag_records{{flow=\"source->target\",partition=\"0\",topic=\"{topic}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as i64)
    };
    wait_until(Duration::from_secs(60), "lag 0 after catch-up", || {
        lag() == Some(0) && record_count(target, &format!("source.{topic}")) == 100
    });

    let big = TestRecord {
        key: None,
        value: Some(vec![1u8; 200_000]),
        headers: vec![],
        timestamp: 1_700_000_000_000,
    };
    produce(source, &topic, 0, &[big]);
    produce(source, &topic, 0, &numbered(100, 500));
    // 501 records cannot be replicated: the lag rises to them (end offsets come from librdkafka's
    // statistics every 5 s).
    wait_until(Duration::from_secs(30), "the lag to rise", || {
        lag() == Some(501)
    });
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
        .arg("status")
        .arg(&file)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("501"),
        "`kafka-mirrord status` shows the lag:\n{table}"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(40)), Some(0));
}

/// Every partition's lag of a source task with more partitions than one `ListOffsets` batch (128)
/// and the longer fetch wait of many partitions: each partition is measured, and a topic created
/// while every partition is idle (its log starts asked in batches behind a held fetch) is copied.
#[test]
fn a_task_with_many_partitions_measures_each_one_and_picks_up_a_topic_created_while_idle() {
    let kafka = test_kafka();
    let (source, target) = (kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP"));
    let first = unique("wide");
    let second = format!("{first}-later");
    let partitions = 150;
    let fill = |topic: &str| {
        create_topic(source, topic, partitions);
        let producer = patient_producer(source);
        for partition in 0..partitions {
            send_records(
                &producer,
                topic,
                partition,
                &numbered(partition as usize, 1),
            );
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(60)).unwrap();
    };
    // Every partition measured, none behind, by `/status` (the lag monitor's batched requests).
    let all_measured = |http: &str, topic: &str| {
        let Some(status) = status_of(http) else {
            return false;
        };
        let rows: Vec<serde_json::Value> = flow_status(&status, "source->target")["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["name"] == topic)
            .flat_map(|t| t["partitions"].as_array().cloned().unwrap_or_default())
            .collect();
        rows.len() == partitions as usize
            && rows
                .iter()
                .all(|row| row["source_end_offset"] == 1 && row["lag"] == 0)
    };
    fill(&first);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mm2.properties");
    let http = format!("127.0.0.1:{}", free_port());
    let flows = format!("source->target.enabled = true\nsource->target.topics = {first}.*\n");
    std::fs::write(&file, properties(&flows, &http)).unwrap();
    let mut daemon = Daemon::start(&file);
    wait_until(Duration::from_secs(90), "the first topic copied", || {
        try_record_count(target, &format!("source.{first}")) == Some(partitions as i64)
    });
    wait_until(Duration::from_secs(30), "every partition measured", || {
        all_measured(&http, &first)
    });
    // Idle now: the broker holds each fetch of the 150 partitions.
    fill(&second);
    wait_until(
        Duration::from_secs(90),
        "the topic created while idle copied",
        || try_record_count(target, &format!("source.{second}")) == Some(partitions as i64),
    );
    wait_until(
        Duration::from_secs(30),
        "every partition of both measured",
        || all_measured(&http, &first) && all_measured(&http, &second),
    );
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    for topic in [&first, &second] {
        let copied = read_raw(target, &format!("source.{topic}"));
        assert_eq!(
            copied.len(),
            partitions as usize,
            "{topic}: each record once"
        );
        for (partition, key, _) in copied {
            assert_eq!(
                key,
                partition.to_string().into_bytes(),
                "{topic}: partition kept"
            );
        }
    }
}
