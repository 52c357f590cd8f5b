//! Clients the cutover tests drive like an application would: a transactional producer, and a
//! consumer-group member that records every record it processed and commits what it processed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// A transactional producer (`transactional.id` unique per test).
pub struct TxProducer {
    producer: ThreadedProducer<DefaultProducerContext>,
}

impl TxProducer {
    pub fn new(bootstrap: &str, transactional_id: &str) -> TxProducer {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", transactional_id)
            .set("linger.ms", "5")
            .create()
            .unwrap();
        producer.init_transactions(Duration::from_secs(30)).unwrap();
        TxProducer { producer }
    }

    /// One transaction writing `keys` (`partition → keys`), committed or aborted.
    pub fn transaction(&self, topic: &str, keys: &BTreeMap<i32, Vec<String>>, commit: bool) {
        self.begin(topic, keys);
        if commit {
            self.commit();
        } else {
            self.producer
                .abort_transaction(Duration::from_secs(30))
                .unwrap();
        }
    }

    /// Begins a transaction and writes `keys` (`partition → keys`, each its own value) in it,
    /// flushed to the broker; the transaction stays open until [`TxProducer::commit`].
    pub fn begin(&self, topic: &str, keys: &BTreeMap<i32, Vec<String>>) {
        let records: Vec<(i32, &[u8], &[u8])> = keys
            .iter()
            .flat_map(|(partition, keys)| {
                keys.iter()
                    .map(|key| (*partition, key.as_bytes(), key.as_bytes()))
            })
            .collect();
        self.begin_with(topic, &records);
    }

    /// Begins a transaction and writes `records` (partition, key, value) in it, flushed.
    pub fn begin_with(&self, topic: &str, records: &[(i32, &[u8], &[u8])]) {
        self.producer.begin_transaction().unwrap();
        for (partition, key, value) in records {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic)
                .partition(*partition)
                .key(key)
                .payload(value);
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((_, returned)) => {
                        record = returned;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        }
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Commits the open transaction.
    pub fn commit(&self) {
        self.producer
            .commit_transaction(Duration::from_secs(30))
            .unwrap();
    }
}

/// A record as a consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
}

fn group_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000");
    config
}

/// Commits the consumer's position of every assigned partition.
fn commit_position(consumer: &BaseConsumer) {
    if let Ok(position) = consumer.position() {
        let mut list = TopicPartitionList::new();
        for element in position.elements() {
            if let Offset::Offset(offset) = element.offset() {
                list.add_partition_offset(
                    element.topic(),
                    element.partition(),
                    Offset::Offset(offset),
                )
                .unwrap();
            }
        }
        if list.count() > 0 {
            let _ = consumer.commit(&list, CommitMode::Sync);
        }
    }
}

/// A group member consuming `topic` on its own thread until stopped, committing what it
/// processed; `stop` commits the final position and leaves the group.
pub struct GroupMember {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Seen>>>,
}

impl GroupMember {
    pub fn start(bootstrap: &str, group: &str, topic: &str) -> GroupMember {
        let stop = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer = group_config(bootstrap, group).create().unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut last_commit = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                        seen.push(Seen {
                            partition: message.partition(),
                            offset: message.offset(),
                            key: String::from_utf8_lossy(message.key().unwrap_or_default())
                                .into_owned(),
                        });
                    }
                    if last_commit.elapsed() >= Duration::from_millis(200) {
                        commit_position(&consumer);
                        last_commit = Instant::now();
                    }
                }
                commit_position(&consumer);
                consumer.unsubscribe();
                drop(consumer);
                seen
            })
        };
        GroupMember {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops: commits the position, leaves the group; what it processed.
    pub fn stop(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A consumer of `group` reading `topic` from the group's committed offsets (as a moved
/// application does) up to the end as of the call; commits and leaves.
pub fn consume_to_end(bootstrap: &str, group: &str, topic: &str) -> Vec<Seen> {
    let consumer: BaseConsumer = group_config(bootstrap, group).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut ends = BTreeMap::new();
    for partition in &partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, *partition, Duration::from_secs(10))
            .unwrap();
        ends.insert(*partition, high);
    }
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let mut started_at: Option<TopicPartitionList> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {topic} as {group} did not reach the end"
        );
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            seen.push(Seen {
                partition: message.partition(),
                offset: message.offset(),
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            });
        }
        let assigned = consumer.assignment().unwrap_or_default().count();
        if assigned < partitions.len() {
            continue;
        }
        // Where the group resumed: a partition already at its end fetches nothing.
        if started_at.is_none() {
            started_at = consumer.committed(Duration::from_secs(10)).ok();
        }
        let position = consumer.position().unwrap_or_default();
        let reached = |list: &TopicPartitionList, partition: i32, end: i64| {
            list.find_partition(topic, partition)
                .is_some_and(|e| matches!(e.offset(), Offset::Offset(o) if o >= end))
        };
        let done = ends.iter().all(|(partition, end)| {
            *end == 0
                || reached(&position, *partition, *end)
                || started_at
                    .as_ref()
                    .is_some_and(|list| reached(list, *partition, *end))
        });
        if done {
            break;
        }
    }
    commit_position(&consumer);
    consumer.unsubscribe();
    seen
}
