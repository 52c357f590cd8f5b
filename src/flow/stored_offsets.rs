//! Reading source progress back from the Connect offsets topic (`mm2-offsets.<source>.internal` on
//! the target): what Java MM2 or an earlier kafka-mirrord stored, so replication resumes where it
//! stopped — including after a takeover from MM2.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::assignment::TopicPartition;
use super::records::decode_source_offset;
use crate::kafka::context::LoggingContext;

/// (topic, partition) → last replicated upstream offset, for source cluster `cluster`.
/// Reads every partition to its end with `read_committed`, so uncommitted or aborted offsets of an
/// exactly-once writer never count. A missing topic means nothing was stored yet.
pub fn load(
    target_consumer: &ClientConfig,
    topic: &str,
    cluster: &str,
    timeout: Duration,
) -> Result<HashMap<TopicPartition, i64>, String> {
    let mut config = target_consumer.clone();
    config.set("isolation.level", "read_committed");
    config.set("enable.partition.eof", "true");
    config.set("auto.offset.reset", "earliest");
    // End-of-partition is only reported after a fetch that returned nothing; do not let the broker
    // hold that fetch for the default 500 ms.
    config.set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("offsets-reader"))
        .map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("cannot read metadata of `{topic}`: {e}"))?;
    let partitions: Vec<i32> = match metadata.topics().first() {
        Some(t) if t.error().is_none() => t.partitions().iter().map(|p| p.id()).collect(),
        _ => return Ok(HashMap::new()),
    };
    // Empty partitions (most of them: 25 partitions, one key per source partition) need no read:
    // asking the broker for their watermarks is quicker than waiting for an end-of-partition
    // fetch, which the broker holds for `fetch.wait.max.ms` when there is nothing to return.
    let deadline = Instant::now() + timeout;
    let mut assignment = TopicPartitionList::new();
    let mut to_read = 0;
    for partition in &partitions {
        let (low, high) = loop {
            match consumer.fetch_watermarks(topic, *partition, Duration::from_secs(5)) {
                Ok(marks) => break marks,
                // A topic created a moment ago may not have a leader yet; anything else (an
                // authorization error, ...) is reported at once.
                Err(e) if leader_pending(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read the end of `{topic}` partition {partition}: {e}"
                    ))
                }
            }
        };
        if high > low {
            assignment
                .add_partition_offset(topic, *partition, Offset::Offset(low))
                .map_err(|e| e.to_string())?;
            to_read += 1;
        }
    }
    if to_read == 0 {
        return Ok(HashMap::new());
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;

    let mut offsets = HashMap::new();
    let mut finished: HashSet<i32> = HashSet::new();
    while finished.len() < to_read {
        if Instant::now() > deadline {
            return Err(format!(
                "reading `{topic}` did not reach its end within {} s",
                timeout.as_secs()
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let Some(key) = message.key() else { continue };
                if let Some((stored_cluster, source_topic, partition, offset)) =
                    decode_source_offset(key, message.payload())
                {
                    if stored_cluster == cluster {
                        match offset {
                            Some(offset) => offsets.insert((source_topic, partition), offset),
                            None => offsets.remove(&(source_topic, partition)),
                        };
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                finished.insert(partition);
            }
            Some(Err(error)) => return Err(format!("cannot read `{topic}`: {error}")),
            None => {}
        }
    }
    Ok(offsets)
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
