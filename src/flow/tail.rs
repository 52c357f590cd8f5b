//! Follows an internal topic of the target from its beginning, every partition, on a thread of its
//! own: the offsets topic (stored progress of every partition, whichever node stored it) and the
//! offset-history topic. `read_committed`, so an exactly-once writer's aborted writes never count.
//!
//! [`TailState::caught_up_with`] tells whether everything written before a given moment was read:
//! callers take the topic's end offsets, then wait for the tail to pass them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, warn};

use crate::kafka::context::LoggingContext;
use crate::kafka::offsets::{self, Spec};
use crate::lifecycle::Stop;
use crate::locks::lock;

/// What a tail has read so far.
#[derive(Default)]
pub struct TailState {
    /// Partition → next offset to read.
    positions: Mutex<HashMap<i32, i64>>,
    /// Every partition was read to its end once.
    read_to_end: AtomicBool,
    /// Records read so far (readers compare it to tell whether anything changed).
    records_read: AtomicU64,
    /// Why the topic cannot be read now (shown until the next successful read).
    problem: Mutex<Option<String>>,
}

impl TailState {
    pub fn read_to_end(&self) -> bool {
        self.read_to_end.load(Ordering::Acquire)
    }

    /// How many records were read so far: unchanged, so is what they were read into.
    pub fn records_read(&self) -> u64 {
        self.records_read.load(Ordering::Acquire)
    }

    pub fn problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }

    /// Whether the tail read past every `ends` offset (partition → end offset taken earlier).
    pub fn caught_up_with(&self, ends: &HashMap<i32, i64>) -> bool {
        let positions = lock(&self.positions);
        ends.iter()
            .all(|(partition, end)| *end <= 0 || positions.get(partition).is_some_and(|p| p >= end))
    }
}

/// Starts following `topic` with a consumer made from `config` until `stop`; `each` gets every
/// record's key and value (`None`: a tombstone). The thread ends within 200 ms of the stop.
pub fn spawn(
    name: &str,
    config: &ClientConfig,
    topic: &str,
    stop: Stop,
    mut each: impl FnMut(&[u8], Option<&[u8]>) + Send + 'static,
) -> std::io::Result<(Arc<TailState>, std::thread::JoinHandle<()>)> {
    let state = Arc::new(TailState::default());
    let (thread_state, topic, name) = (state.clone(), topic.to_string(), name.to_string());
    let mut config = config.clone();
    config
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        // Idle topics most of the time: a fetch every half second per broker is enough.
        .set("fetch.wait.max.ms", "500");
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            while !stop.is_requested() {
                if let Err(error) = follow(&config, &topic, &stop, &thread_state, &mut each) {
                    debug!(topic = %topic, "{name}: {error}; retrying in 5 s");
                    if lock(&thread_state.problem).replace(error.clone()).is_none() {
                        warn!(topic = %topic, "cannot read `{topic}`: {error}; retrying every 5 s");
                    }
                    if stop.sleep_blocking(Duration::from_secs(5)) {
                        return;
                    }
                }
            }
        })?;
    Ok((state, handle))
}

/// The soonest a tail asks its position again after a partition reached its end.
const POSITION_AFTER_END: Duration = Duration::from_millis(200);
/// A tail asks its position at least this often.
const POSITION_EVERY: Duration = Duration::from_secs(1);

fn follow(
    config: &ClientConfig,
    topic: &str,
    stop: &Stop,
    state: &TailState,
    each: &mut impl FnMut(&[u8], Option<&[u8]>),
) -> Result<(), String> {
    let (consumer, partitions) = consumer_of(config, topic, "internal-topic-tail")?;
    let mut assignment = TopicPartitionList::new();
    {
        let positions = lock(&state.positions);
        for partition in &partitions {
            // Resumes where an earlier attempt stopped: records are applied once.
            let offset = positions
                .get(partition)
                .map_or(Offset::Beginning, |next| Offset::Offset(*next));
            assignment
                .add_partition_offset(topic, *partition, offset)
                .map_err(|e| e.to_string())?;
        }
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let mut at_end: std::collections::HashSet<i32> = std::collections::HashSet::new();
    let mut last_position_check = Instant::now();
    let mut position_due = false;
    *lock(&state.problem) = None;
    while !stop.is_requested() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                if let Some(key) = message.key() {
                    each(key, message.payload());
                }
                lock(&state.positions).insert(message.partition(), message.offset() + 1);
                state.records_read.fetch_add(1, Ordering::AcqRel);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                position_due = true;
                at_end.insert(partition);
                if at_end.len() >= partitions.len() {
                    state.read_to_end.store(true, Ordering::Release);
                }
            }
            Some(Err(error)) => return Err(error.to_string()),
            None => {}
        }
        // Markers and aborted records move the position without a message: take it from the
        // consumer when a partition reached its end (librdkafka tells again once it skipped
        // them) and now and then, so `caught_up_with` sees the end of a quiet partition. Every
        // 200 ms whatever happened, it was a round trip to librdkafka's main thread five times a
        // second per tail, idle.
        let since_check = last_position_check.elapsed();
        if (position_due && since_check >= POSITION_AFTER_END) || since_check >= POSITION_EVERY {
            last_position_check = Instant::now();
            position_due = false;
            if let Ok(list) = consumer.position() {
                let mut positions = lock(&state.positions);
                for element in list.elements() {
                    if let Offset::Offset(next) = element.offset() {
                        let known = positions.entry(element.partition()).or_insert(next);
                        *known = (*known).max(next);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The end offsets of every partition of a topic, to wait for with
/// [`TailState::caught_up_with`], asked through one consumer kept between calls (a client made
/// per call, every checkpoint round, cost more than the question).
///
/// High watermarks, not last stable offsets: a transaction committed before this moment may lie
/// past the last stable offset while another writer's transaction that began earlier is still
/// open. The tail's position passes the high watermark only once every transaction open now has
/// ended, so what was committed before this moment has been read by then.
pub struct TopicEnds {
    config: ClientConfig,
    topic: String,
    /// Made again after an error, and every [`TOPIC_ENDS_RENEW_EVERY`] so added partitions count.
    reader: Option<EndsReader>,
}

/// The consumer, the topic's partitions, and when they were read.
struct EndsReader {
    consumer: BaseConsumer<LoggingContext>,
    partitions: Vec<(String, i32)>,
    since: Instant,
}

/// How long [`TopicEnds`] trusts the partitions it read.
const TOPIC_ENDS_RENEW_EVERY: Duration = Duration::from_secs(300);

impl TopicEnds {
    pub fn new(config: &ClientConfig, topic: &str) -> TopicEnds {
        TopicEnds {
            config: config.clone(),
            topic: topic.to_string(),
            reader: None,
        }
    }

    /// Partition → end offset now. Blocking.
    pub fn get(&mut self, timeout: Duration) -> Result<HashMap<i32, i64>, String> {
        let reader = match self.reader.take() {
            Some(reader) if reader.since.elapsed() < TOPIC_ENDS_RENEW_EVERY => reader,
            _ => {
                let (consumer, partitions) =
                    consumer_of(&self.config, &self.topic, "internal-topic-ends")?;
                EndsReader {
                    consumer,
                    partitions: partitions
                        .iter()
                        .map(|p| (self.topic.clone(), *p))
                        .collect(),
                    since: Instant::now(),
                }
            }
        };
        let ends = offsets::list_offsets(
            reader.consumer.client(),
            &reader.partitions,
            Spec::Latest,
            false,
            timeout,
        )
        .map_err(|e| e.to_string())
        .and_then(|listed| {
            listed
                .into_iter()
                .map(|((_, partition), offset)| Ok((partition, offset?)))
                .collect()
        });
        // Kept only while it answers: after an error the next call starts afresh.
        if ends.is_ok() {
            self.reader = Some(reader);
        }
        ends
    }
}

/// A consumer made from `config` (logging as `name`) and the partition ids of `topic`.
fn consumer_of(
    config: &ClientConfig,
    topic: &str,
    name: &'static str,
) -> Result<(BaseConsumer<LoggingContext>, Vec<i32>), String> {
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new(name))
        .map_err(|e| e.to_string())?;
    match super::stored_offsets::partitions_of(&consumer, topic) {
        Ok(partitions) => Ok((consumer, partitions)),
        Err(super::stored_offsets::MetadataProblem::NotAuthorized(error))
        | Err(super::stored_offsets::MetadataProblem::Other(error)) => Err(error),
    }
}
