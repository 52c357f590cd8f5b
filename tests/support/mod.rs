//! Shared fixture for tests that need real Apache Kafka: starts (or reuses) the local clusters
//! of `scripts/test-kafka` once per test binary and exposes the addresses it wrote.

#![allow(dead_code)] // each test binary uses a different part of the fixture

pub mod connect;
pub mod consumers;
pub mod faults;
pub mod oidc;
pub mod prometheus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The env file of `scripts/test-kafka`: `SOURCE_BOOTSTRAP`, `TARGET_SASL_SSL_BOOTSTRAP`, `TEST_KAFKA_CA`, ...
pub struct TestKafka {
    pub env: BTreeMap<String, String>,
}

impl TestKafka {
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("scripts/test-kafka did not export {key}"))
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the two local clusters if they are not running (idempotent; the script locks).
pub fn test_kafka() -> &'static TestKafka {
    static KAFKA: OnceLock<TestKafka> = OnceLock::new();
    KAFKA.get_or_init(|| {
        let script = repo_root().join("scripts/test-kafka");
        let output = Command::new(&script)
            .arg("start")
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
        assert!(
            output.status.success(),
            "scripts/test-kafka start failed (is Java 17 and Maven installed? see README):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let env = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| {
                (
                    key.trim().to_string(),
                    value
                        .trim()
                        .trim_matches('\'')
                        .trim_matches('"')
                        .to_string(),
                )
            })
            .collect();
        TestKafka { env }
    })
}

/// Writes a properties file into `dir` and returns its path.
pub fn write_properties(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp dir is writable");
    path
}

// === Kafka helpers: topics, records, the daemon ===

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// A record as the tests compare it, field for field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    // librdkafka needs a group id for manual assignment; nothing joins or commits.
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-mirrord-tests");
    config
}

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    create_topic_with_config(bootstrap, topic, partitions, &[]);
}

pub fn create_topic_with_config(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new_topic = configs.iter().fold(
        NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
        |t, (k, v)| t.set(k, v),
    );
    let results = runtime
        .block_on(admin.create_topics(&[new_topic], &AdminOptions::new()))
        .unwrap();
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("cannot create {name}: {code}"));
    }
}

/// Deletes every record of `topic`/`partition` below `before` (Kafka's DeleteRecords: the log start
/// moves, as retention would move it).
pub fn delete_records(bootstrap: &str, topic: &str, partition: i32, before: i64) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, partition, Offset::Offset(before))
        .unwrap();
    let result = runtime
        .block_on(admin.delete_records(&offsets, &AdminOptions::new()))
        .unwrap();
    for element in result.elements() {
        if let Err(error) = element.error() {
            panic!("cannot delete records of {topic}/{partition}: {error}");
        }
    }
}

/// Topic names on a cluster.
pub fn list_topics(bootstrap: &str) -> Vec<String> {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

/// Produces `records` to `partition` of `topic`, waiting for every acknowledgement.
pub fn produce(bootstrap: &str, topic: &str, partition: i32, records: &[TestRecord]) {
    let mut config = client_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("linger.ms", "5");
    let producer: ThreadedProducer<DefaultProducerContext> = config.create().unwrap();
    send_records(&producer, topic, partition, records);
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// An idempotent producer that never gives a record up (`message.timeout.ms = 0`): for streams
/// that must go on across a broker restart without gaps or duplicates.
pub fn patient_producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    let mut config = client_config(bootstrap);
    config
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "0")
        .set("linger.ms", "5");
    config.create().unwrap()
}

/// Queues `records` to `topic`/`partition` (waiting for room in the queue, never dropping one).
pub fn send_records(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: i32,
    records: &[TestRecord],
) {
    for record in records {
        let headers = record
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: value.as_deref(),
                })
            });
        let mut base = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .timestamp(record.timestamp)
            .headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            base = base.payload(value.as_slice());
        }
        let mut pending = base;
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((_, returned)) => {
                    pending = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

/// Partition → (low, high) watermarks. Retried for a while when a broker answers with a passing
/// error (a leader not elected yet after a broker restart in an earlier test).
pub fn watermarks(bootstrap: &str, topic: &str) -> Vec<(i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match try_watermarks(bootstrap, topic) {
            Ok(marks) => return marks,
            Err(error) if Instant::now() < deadline => {
                eprintln!("watermarks of {topic}: {error}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => panic!("watermarks of {topic}: {error}"),
        }
    }
}

fn try_watermarks(bootstrap: &str, topic: &str) -> Result<Vec<(i64, i64)>, String> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let partitions = metadata
        .topics()
        .first()
        .ok_or("no such topic")?
        .partitions()
        .len() as i32;
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// [`record_count`], `None` while the cluster answers with an error (e.g. a broker just thawed).
pub fn try_record_count(bootstrap: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = client_config(bootstrap).create().ok()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .ok()?;
    let partitions = metadata.topics().first()?.partitions().len() as i32;
    let mut total = 0;
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .ok()?;
        total += high - low;
    }
    Some(total)
}

/// Total records (high watermark sum) of a topic, 0 if it does not exist.
pub fn record_count(bootstrap: &str, topic: &str) -> i64 {
    if !list_topics(bootstrap).iter().any(|t| t == topic) {
        return 0;
    }
    watermarks(bootstrap, topic)
        .iter()
        .map(|(low, high)| high - low)
        .sum()
}

/// Every record of one partition, in order (read_committed unless `uncommitted`), up to its end
/// at the time of the call (records appended meanwhile may or may not be included).
pub fn read_partition(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    isolation: &str,
) -> Vec<TestRecord> {
    let mut config = client_config(bootstrap);
    config
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = config.create().unwrap();
    // The end now: a partition written to all the time never reports end-of-partition.
    let (_, end) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The position passes transaction markers too, so it reaches `end` (the last stable offset
    // for read_committed) even when the last offsets hold no record.
    let reached_end = |consumer: &BaseConsumer| {
        consumer.position().ok().is_some_and(|list| {
            list.find_partition(topic, partition)
                .is_some_and(|element| matches!(element.offset(), Offset::Offset(o) if o >= end))
        })
    };
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => records.push(TestRecord {
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers: faults::lenient_headers(&message),
                timestamp: message.timestamp().to_millis().unwrap_or(-1),
            }),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return records,
            Some(Err(error)) => panic!("reading {topic}/{partition}: {error}"),
            None => {}
        }
        if reached_end(&consumer) {
            return records;
        }
    }
    panic!("reading {topic}/{partition} did not reach the end");
}

/// Every (key, value) of the offsets-storage topic, with the partition it is in.
pub fn read_raw(bootstrap: &str, topic: &str) -> Vec<(i32, Vec<u8>, Option<Vec<u8>>)> {
    let partitions = watermarks(bootstrap, topic).len() as i32;
    let mut config = client_config(bootstrap);
    config.set("enable.partition.eof", "true");
    let consumer: BaseConsumer = config.create().unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.len() < partitions as usize && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => out.push((
                message.partition(),
                message.key().unwrap_or_default().to_vec(),
                message.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                done.insert(p);
            }
            Some(Err(error)) => panic!("reading {topic}: {error}"),
            None => {}
        }
    }
    out
}

/// Polls `condition` every 200 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {} s waiting for {what}", timeout.as_secs());
}

/// The daemon, stopped when dropped (its log is printed when the test failed).
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(config: &Path) -> Self {
        let log = config.with_extension(format!("{}.log", unique("daemon")));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
            .arg(config)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "daemon did not stop within {} s of SIGTERM",
            timeout.as_secs()
        );
    }
}

impl Drop for Daemon {
    /// SIGTERM first, so the daemon leaves its flows' groups: a killed member stays in a group
    /// until its session times out, and the next test's daemon on the same aliases would stand by
    /// behind it (its plan differs). SIGKILL if it has not stopped within 5 s.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- kafka-mirrord log ({}) ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// Kafka's default partitioner: `toPositive(murmur2(key)) % partitions`.
pub fn kafka_partition(key: &[u8], partitions: i32) -> i32 {
    ((murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff) % partitions as u32) as i32
}

/// The Java class path of Apache MirrorMaker 2 and Kafka Connect from the same Maven Central
/// release as the brokers (fetched once).
pub fn mm2_classpath() -> String {
    static MM2_LIBS: OnceLock<String> = OnceLock::new();
    let mm2_libs = MM2_LIBS.get_or_init(|| {
        let output = std::process::Command::new(repo_root().join("scripts/test-kafka"))
            .arg("fetch-mm2")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "fetch-mm2 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // fetch-mm2 puts the MM2 jars next to the broker's: <cache>/kafka-<version>/mm2-libs.
        let libs = Path::new(test_kafka().get("KAFKA_LIBS")).with_file_name("mm2-libs");
        assert!(libs.is_dir(), "{} missing after fetch-mm2", libs.display());
        libs.display().to_string()
    });
    format!("{mm2_libs}/*:{}/*", test_kafka().get("KAFKA_LIBS"))
}

/// Apache MirrorMaker 2 (dedicated mode) from the same Maven Central release as the brokers.
pub struct MirrorMaker {
    child: Child,
    pub log: PathBuf,
}

impl MirrorMaker {
    pub fn start(config: &Path) -> Self {
        let log = config.with_extension(format!("{}.mm2.log", unique("mm2")));
        // MM2 3.x logs through log4j 1 (reload4j): INFO to stdout, which goes to the log file.
        let log4j = config.with_extension("log4j.properties");
        std::fs::write(
            &log4j,
            "log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n\
             log4j.logger.org.apache.kafka.connect.mirror.MirrorSourceTask=TRACE\n",
        )
        .unwrap();
        let child = std::process::Command::new("java")
            .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
            .args(["-Xms256M", "-Xmx1G", "-cp"])
            .arg(mm2_classpath())
            .arg("org.apache.kafka.connect.mirror.MirrorMaker")
            .arg(config)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// SIGTERM (Connect commits source offsets on a clean stop) and wait.
    pub fn stop(&mut self) {
        stop_java(&mut self.child, "MirrorMaker 2");
    }
}

/// SIGTERM to a JVM (Connect commits source offsets on a clean stop), and wait up to 90 s.
pub fn stop_java(child: &mut Child, what: &str) {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not stop within 90 s");
}

impl Drop for MirrorMaker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // Where MM2 started reading and what went wrong, without its config dumps.
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let telling = |line: &&str| {
                [
                    "WARN",
                    "ERROR",
                    "eek",
                    "esetting offset",
                    "uncommitted",
                    "Starting with",
                ]
                .iter()
                .any(|word| line.contains(word))
            };
            eprintln!(
                "---- MirrorMaker 2 log, selected lines ({}) ----",
                self.log.display()
            );
            for line in log.lines().filter(telling).take(200) {
                eprintln!("{line}");
            }
        }
    }
}

/// Runs `tests/support/Mm2Client.java` (MM2's RemoteClusterUtils/MirrorClient) against a cluster.
pub fn mm2_client(args: &[&str]) -> String {
    let output = std::process::Command::new("java")
        .arg("-cp")
        .arg(mm2_classpath())
        .arg(repo_root().join("tests/support/Mm2Client.java"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "Mm2Client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Commits `offsets` for `group` without joining it (the group must have no active members).
pub fn commit_group(bootstrap: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().unwrap();
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    // A topic created a moment ago may not be known to the group coordinator yet.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match consumer.commit(&list, rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => return,
            Err(error)
                if Instant::now() < deadline
                    && error.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition) =>
            {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(error) => panic!("committing {group}: {error}"),
        }
    }
}

/// Members a consumer group has right now (0 if it does not exist).
pub fn group_members(bootstrap: &str, group: &str) -> usize {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    consumer
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .map(|list| list.groups().iter().map(|g| g.members().len()).sum())
        .unwrap_or(0)
}

/// A group's committed offset per partition (`None` when it has none).
pub fn group_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let mut config = client_config(bootstrap);
    config.set("group.id", group);
    let consumer: BaseConsumer = config.create().unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    (0..partitions)
        .map(
            |p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(offset)) => Some(offset),
                _ => None,
            },
        )
        .collect()
}

impl Daemon {
    /// Starts the daemon with extra environment variables.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        let log = config.with_extension(format!("{}.log", unique("daemon")));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"));
        command
            .arg(config)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (key, value) in env {
            command.env(key, value);
        }
        Self {
            child: command.spawn().unwrap(),
            log,
        }
    }

    pub fn signal(&self, signal: &str) {
        std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

/// A plain HTTP/1.1 GET on loopback; returns (status code, body).
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    http_request(address, "GET", path, None)
}

/// One HTTP/1.1 request with an optional JSON body: (status, body); status 0 when nothing listens.
pub fn http_request(address: &str, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    // Not listening yet (the daemon is starting): report it as status 0.
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = json.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    status_and_body(&response)
}

/// (status code, body) of a whole HTTP response without chunked encoding.
pub fn status_and_body(response: &str) -> (u16, String) {
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// === Flows used by several test binaries ===

/// A flow `source->target` replicating `topic` and checkpointing groups `<topic>-*` every second,
/// with group offset sync on; single-broker replication factors.
pub fn checkpointing_config(dir: &Path, topic: &str) -> PathBuf {
    let kafka = test_kafka();
    write_properties(
        dir,
        "mm2.properties",
        &format!(
            "clusters = source, target\nsource.bootstrap.servers = {}\ntarget.bootstrap.servers = {}\n\
             source->target.enabled = true\nsource->target.topics = {topic}\nsource->target.groups = {topic}-.*\n\
             replication.factor = 1\noffset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\ntarget.offset.storage.replication.factor = 1\n\
             target.offset.flush.interval.ms = 1000\nrefresh.topics.interval.seconds = 2\nrefresh.groups.interval.seconds = 1\n\
             emit.checkpoints.interval.seconds = 1\nsync.group.offsets.enabled = true\nsync.group.offsets.interval.seconds = 1\n\
             emit.heartbeats.interval.seconds = 1\nmirrord.http.listen = off\n",
            kafka.get("SOURCE_BOOTSTRAP"),
            kafka.get("TARGET_BOOTSTRAP")
        ),
    )
}

/// (source, target) bootstrap addresses.
pub fn endpoints() -> (&'static str, &'static str) {
    let kafka = test_kafka();
    (kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP"))
}

/// `count` records keyed by their index, with distinct timestamps.
pub fn numbered(count: usize) -> Vec<TestRecord> {
    (0..count)
        .map(|i| TestRecord {
            key: Some(i.to_string().into_bytes()),
            value: Some(format!("v{i}").into_bytes()),
            headers: vec![],
            timestamp: 1_650_000_000_000 + i as i64,
        })
        .collect()
}

/// The daemon's `/status` as JSON (`None` while it does not answer).
pub fn status_of(http: &str) -> Option<serde_json::Value> {
    let (code, body) = http_get(http, "/status");
    (code == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The value of the metric sample `name{labels...}` from the daemon's `/metrics` (the labels given
/// must all match; others may exist).
pub fn metric_of(http: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let (code, body) = http_get(http, "/metrics");
    if code != 200 {
        return None;
    }
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(name)
                && line[name.len()..].starts_with(['{', ' '])
                && labels
                    .iter()
                    .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

/// The status entry of one source partition of the first flow whose id is `flow`.
pub fn partition_status(
    status: &serde_json::Value,
    flow: &str,
    topic: &str,
    partition: i64,
) -> serde_json::Value {
    status["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["id"] == flow)
        .flat_map(|f| f["topics"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["name"] == topic)
        .flat_map(|t| t["partitions"].as_array().cloned().unwrap_or_default())
        .find(|p| p["partition"] == partition)
        .unwrap_or_default()
}

/// The status of flow `flow`.
pub fn flow_status(status: &serde_json::Value, flow: &str) -> serde_json::Value {
    status["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["id"] == flow)
        .cloned()
        .unwrap_or_default()
}

/// Waits until the process exits; returns its exit code and how long it took, or panics after
/// `timeout`.
pub fn wait_for_exit(daemon: &mut Daemon, timeout: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            return (status.code(), started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the daemon did not exit within {} s", timeout.as_secs());
}

/// A steady producer for the several-node tests: one long-lived idempotent producer writing
/// record `i` of partition `p` (key `p-i`, timestamp `1_700_000_000_000 + i`) to every partition in
/// turn, about `per_second` records a second in total, until stopped.
pub struct SteadyStream {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<usize>>>,
}

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

impl SteadyStream {
    pub fn start(bootstrap: &str, topic: &str, partitions: i32, per_second: usize) -> SteadyStream {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, bootstrap, topic) = (stop.clone(), bootstrap.to_string(), topic.to_string());
            std::thread::spawn(move || {
                let mut config = client_config(&bootstrap);
                config
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "5");
                let producer: ThreadedProducer<DefaultProducerContext> = config.create().unwrap();
                let mut next = vec![0usize; partitions as usize];
                let round = Duration::from_millis(20);
                let per_round = (per_second * 20 / 1000).max(partitions as usize);
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let started = Instant::now();
                    for n in 0..per_round {
                        let partition = (n % partitions as usize) as i32;
                        let index = next[partition as usize];
                        let key = format!("{partition}-{index}");
                        let mut record = BaseRecord::<[u8], [u8]>::to(&topic)
                            .partition(partition)
                            .key(key.as_bytes())
                            .payload(&[b'v'; 100][..])
                            .timestamp(1_700_000_000_000 + index as i64);
                        loop {
                            match producer.send(record) {
                                Ok(()) => break,
                                Err((_, returned)) => {
                                    record = returned;
                                    std::thread::sleep(Duration::from_millis(5));
                                }
                            }
                        }
                        next[partition as usize] += 1;
                    }
                    std::thread::sleep(round.saturating_sub(started.elapsed()));
                }
                producer.flush(Duration::from_secs(60)).unwrap();
                next
            })
        };
        SteadyStream {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; returns how many records went to each partition (all acknowledged).
    pub fn finish(mut self) -> Vec<usize> {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for SteadyStream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Record indexes (from the timestamps of [`SteadyStream`]) of a partition, in arrival order.
pub fn stream_indexes(bootstrap: &str, topic: &str, partition: i32, isolation: &str) -> Vec<usize> {
    read_partition(bootstrap, topic, partition, isolation)
        .iter()
        .map(|r| (r.timestamp - 1_700_000_000_000) as usize)
        .collect()
}

/// Checks that every record 0..count of each partition is there, first occurrences in order;
/// returns the number of duplicates.
pub fn assert_stream_complete(
    bootstrap: &str,
    topic: &str,
    counts: &[usize],
    isolation: &str,
) -> usize {
    let mut duplicates = 0;
    for (partition, count) in counts.iter().enumerate() {
        let all = stream_indexes(bootstrap, topic, partition as i32, isolation);
        let mut seen = std::collections::HashSet::new();
        let first: Vec<usize> = all.iter().copied().filter(|i| seen.insert(*i)).collect();
        duplicates += all.len() - first.len();
        assert_eq!(
            first,
            (0..*count).collect::<Vec<_>>(),
            "{topic}/{partition}: a record is missing or out of order"
        );
    }
    duplicates
}
