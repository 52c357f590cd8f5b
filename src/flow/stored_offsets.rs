//! Reading source progress back from the Connect offsets topic (`mm2-offsets.<source>.internal` on
//! the target): what Java MM2 or an earlier kafka-mirrord stored, so replication resumes where it
//! stopped — including after a takeover from MM2.
//!
//! Anything but a complete read is an error: replication must not start from "nothing stored"
//! because the topic was momentarily unreadable (a restarted broker, a missing ACL) — that would
//! copy everything again, or skip everything with `auto.offset.reset = latest`. The offsets topic
//! is created by the flow's connector before any source task starts, so a missing topic is an
//! error too (retried).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::assignment::TopicPartition;
use super::records::{decode_source_offset_of, StoredProgress};
use super::task::TaskFailure;
use crate::kafka::context::LoggingContext;
use crate::kafka::offsets::{list_offsets, Spec};
use crate::lifecycle::Stop;

/// How soon a topic that does not show in the metadata yet is asked again: the flow's leader
/// creates these topics a moment before the tasks start, and a new topic takes a few tens of
/// milliseconds to show (start-up time).
const METADATA_RETRY: Duration = Duration::from_millis(20);
/// Batched watermark requests before the partitions still failing are asked one at a time.
const BATCHED_ATTEMPTS: usize = 5;

/// (topic, partition) → stored progress (last replicated upstream offset), for source cluster
/// `cluster`.
/// Reads every partition with `read_committed`, so uncommitted or aborted offsets of an
/// exactly-once writer never count, up to the partition's high watermark as it was when the read
/// began — not merely to the last stable offset. Several tasks' transactions share a partition of
/// this topic: while another task's transaction is open, the last stable offset sits at its first
/// record, and progress committed after that point (the fenced task's last transactions) would be
/// missed; the task would then copy those records a second time. `Ok(None)` when a stop was
/// requested meanwhile.
pub fn load(
    target_consumer: &ClientConfig,
    topic: &str,
    cluster: &str,
    connectors: &[&str],
    timeout: Duration,
    stop: &Stop,
) -> Result<Option<HashMap<TopicPartition, StoredProgress>>, TaskFailure> {
    let failure = |reason: String| TaskFailure::Progress {
        topic: topic.to_string(),
        reason,
    };
    let mut config = target_consumer.clone();
    config.set("isolation.level", "read_committed");
    config.set("enable.partition.eof", "true");
    config.set("auto.offset.reset", "earliest");
    // End-of-partition is only reported after a fetch that returned nothing; do not let the broker
    // hold that fetch for the default 500 ms.
    config.set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("offsets-reader"))
        .map_err(|e| TaskFailure::Client(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let partitions = loop {
        match partitions_of(&consumer, topic) {
            Ok(partitions) => break partitions,
            Err(MetadataProblem::NotAuthorized(error)) => {
                return Err(not_authorized(topic, &error));
            }
            Err(MetadataProblem::Other(error)) if Instant::now() < deadline => {
                tracing::debug!(topic, "offsets topic not readable yet: {error}");
                if stop.sleep_blocking(METADATA_RETRY) {
                    return Ok(None);
                }
            }
            Err(MetadataProblem::Other(error)) => return Err(failure(error)),
        }
    };
    // Empty partitions (most of them: 25 partitions, one key per source partition) need no read:
    // asking the broker for their watermarks is quicker than waiting for an end-of-partition
    // fetch, which the broker holds for `fetch.wait.max.ms` when there is nothing to return.
    // Both ends of every partition in two batched requests; the partitions whose answer was an
    // error (a topic created a moment ago has no leaders yet) are asked again together a few
    // times, then one at a time below (which tells an authorization error apart).
    let keys: Vec<(String, i32)> = partitions.iter().map(|p| (topic.to_string(), *p)).collect();
    let mut marks: HashMap<i32, (i64, i64)> = HashMap::new();
    for attempt in 0..BATCHED_ATTEMPTS {
        let pending: Vec<(String, i32)> = keys
            .iter()
            .filter(|(_, partition)| !marks.contains_key(partition))
            .cloned()
            .collect();
        if pending.is_empty() {
            break;
        }
        if attempt > 0 && stop.sleep_blocking(METADATA_RETRY) {
            return Ok(None);
        }
        let list = |spec| {
            list_offsets(
                consumer.client(),
                &pending,
                spec,
                false,
                Duration::from_secs(5),
            )
            .unwrap_or_default()
        };
        let (starts, ends) = (list(Spec::Earliest), list(Spec::Latest));
        for key in &pending {
            if let (Some(Ok(low)), Some(Ok(high))) = (starts.get(key), ends.get(key)) {
                marks.insert(key.1, (*low, *high));
            }
        }
    }
    let mut assignment = TopicPartitionList::new();
    // Partition → the offset the read must reach (the high watermark when the read began).
    let mut read_to: HashMap<i32, i64> = HashMap::new();
    for partition in &partitions {
        let key = (topic.to_string(), *partition);
        let batched = marks.get(partition).copied();
        let (low, high) = loop {
            if let Some(marks) = batched {
                break marks;
            }
            if stop.is_requested() {
                return Ok(None);
            }
            // With `read_committed` this "high" is the last stable offset; the high watermark
            // (uncommitted) is asked on its own, and the larger one is the end to reach.
            match consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5)) {
                Ok((low, stable)) => break (low, stable.max(high_watermark(&consumer, &key))),
                Err(error) if is_not_authorized_kafka(&error) => {
                    return Err(not_authorized(topic, &error.to_string()))
                }
                // A topic created a moment ago may not have a leader yet.
                Err(error) if leader_pending(&error) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(error) => {
                    return Err(failure(format!(
                        "cannot read the end of partition {partition}: {error}"
                    )))
                }
            }
        };
        if high > low {
            assignment
                .add_partition_offset(topic, *partition, Offset::Offset(low))
                .map_err(|e| failure(e.to_string()))?;
            read_to.insert(*partition, high);
        }
    }
    let to_read = read_to.len();
    if to_read == 0 {
        crate::kafka::destroy_in_background(consumer);
        return Ok(Some(HashMap::new()));
    }
    consumer
        .assign(&assignment)
        .map_err(|e| failure(e.to_string()))?;

    let mut offsets = HashMap::new();
    let mut finished: HashSet<i32> = HashSet::new();
    while finished.len() < to_read {
        if stop.is_requested() {
            return Ok(None);
        }
        if Instant::now() > deadline {
            let behind = unfinished_positions(&consumer, topic, &read_to, &finished);
            return Err(failure(format!(
                "reading did not reach the end within {} s (partition: position/end {behind}); \
                 an open transaction holds back what read_committed readers can get until it \
                 commits, aborts or times out",
                timeout.as_secs()
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let Some(key) = message.key() else { continue };
                if let Some((stored_cluster, source_topic, partition, offset)) =
                    decode_source_offset_of(key, message.payload(), connectors)
                {
                    if stored_cluster == cluster {
                        match offset {
                            Some(offset) => offsets.insert((source_topic, partition), offset),
                            None => offsets.remove(&(source_topic, partition)),
                        };
                    }
                }
            }
            // The end a `read_committed` reader reports is the last stable offset; the
            // partition is read once the position (which moves past transaction markers and
            // aborted records too) reaches the high watermark taken at the start.
            Some(Err(KafkaError::PartitionEOF(partition)))
                if read_to
                    .get(&partition)
                    .map_or(true, |end| position_of(&consumer, topic, partition) >= *end) =>
            {
                finished.insert(partition);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {} // an open transaction: read on
            Some(Err(error)) if is_not_authorized_kafka(&error) => {
                return Err(not_authorized(topic, &error.to_string()))
            }
            Some(Err(error)) => return Err(failure(error.to_string())),
            None => {}
        }
    }
    crate::kafka::destroy_in_background(consumer);
    Ok(Some(offsets))
}

/// The high watermark (counting uncommitted records) of `key`, or `i64::MIN` when it cannot be
/// had (the last stable offset is used then).
fn high_watermark<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    key: &TopicPartition,
) -> i64 {
    list_offsets(
        consumer.client(),
        std::slice::from_ref(key),
        Spec::Latest,
        false,
        Duration::from_secs(5),
    )
    .ok()
    .and_then(|mut offsets| offsets.remove(key))
    .and_then(Result::ok)
    .unwrap_or(i64::MIN)
}

/// The consumer's position in `partition` of `topic`: the offset after the last record,
/// transaction marker or skipped aborted record it has passed; -1 when it has none yet.
fn position_of<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> i64 {
    consumer
        .position()
        .ok()
        .and_then(|positions| {
            positions
                .find_partition(topic, partition)
                .and_then(|entry| entry.offset().to_raw())
        })
        .unwrap_or(-1)
}

/// "p: position/end" for each partition not read to its end yet, for the timeout error.
fn unfinished_positions<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    read_to: &HashMap<i32, i64>,
    finished: &HashSet<i32>,
) -> String {
    let mut unfinished: Vec<(&i32, &i64)> = read_to
        .iter()
        .filter(|(partition, _)| !finished.contains(partition))
        .collect();
    unfinished.sort();
    unfinished
        .into_iter()
        .map(|(partition, end)| {
            let at = position_of(consumer, topic, *partition);
            format!("{partition}: {at}/{end}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until `topic` exists on the target (another node's connector may be creating it), up to
/// `timeout`. `Ok(false)` when a stop was requested meanwhile.
pub fn require_topic(
    target_consumer: &ClientConfig,
    topic: &str,
    timeout: Duration,
    stop: &Stop,
) -> Result<bool, TaskFailure> {
    let consumer: BaseConsumer<LoggingContext> = target_consumer
        .create_with_context(LoggingContext::new("topic-check"))
        .map_err(|e| TaskFailure::Client(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    loop {
        match partitions_of(&consumer, topic) {
            Ok(_) => {
                crate::kafka::destroy_in_background(consumer);
                return Ok(true);
            }
            Err(MetadataProblem::NotAuthorized(error)) => {
                return Err(TaskFailure::NotAuthorized {
                    message: format!("cannot use `{topic}`: {error}"),
                    fix: format!("allow this principal DESCRIBE, READ and WRITE on topic `{topic}` of the target cluster"),
                })
            }
            Err(MetadataProblem::Other(error)) if Instant::now() >= deadline => {
                return Err(TaskFailure::Unavailable(format!("`{topic}` on the target: {error}")))
            }
            Err(MetadataProblem::Other(_)) => {
                if stop.sleep_blocking(METADATA_RETRY) {
                    return Ok(false);
                }
            }
        }
    }
}

pub(crate) enum MetadataProblem {
    NotAuthorized(String),
    Other(String),
}

/// The partition ids of `topic`; an error for a missing topic or any topic-level error.
pub(crate) fn partitions_of<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Result<Vec<i32>, MetadataProblem> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .map_err(|e| MetadataProblem::Other(format!("cannot read its metadata: {e}")))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(MetadataProblem::Other(
            "the cluster did not describe it".to_string(),
        ));
    };
    if let Some(error) = found.error() {
        let code = RDKafkaErrorCode::from(error);
        let text = code.to_string();
        return Err(match code {
            RDKafkaErrorCode::TopicAuthorizationFailed => MetadataProblem::NotAuthorized(text),
            RDKafkaErrorCode::UnknownTopicOrPartition => MetadataProblem::Other(
                "it does not exist; the flow creates it at start (compacted): if that failed, \
                 the log says why (often a replication factor above the broker count: set \
                 `<target>.offset.storage.replication.factor`), or create it yourself"
                    .to_string(),
            ),
            _ => MetadataProblem::Other(text),
        });
    }
    if found.partitions().is_empty() {
        return Err(MetadataProblem::Other(
            "it has no partitions (not created yet?)".to_string(),
        ));
    }
    Ok(found.partitions().iter().map(|p| p.id()).collect())
}

fn is_not_authorized_kafka(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
        )
    )
}

fn not_authorized(topic: &str, error: &str) -> TaskFailure {
    TaskFailure::NotAuthorized {
        message: format!("cannot read stored progress from `{topic}`: {error}"),
        fix: format!("allow this principal READ and DESCRIBE on topic `{topic}` of the target cluster (kafka-acls.sh --add --allow-principal … --operation Read --operation Describe --topic {topic})"),
    }
}

/// Errors of a partition whose leader is not elected or known yet, which a retry resolves.
fn leader_pending(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
        )
    )
}
