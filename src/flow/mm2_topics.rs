//! Reading MM2's single-partition internal topics for the checkpoint task: the checkpoints already
//! on the target (so translations never move backwards across restarts) and the offset syncs
//! (tailed into MM2's `OffsetSyncStore`).

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use super::checkpoints::CheckpointStore;
use super::offset_sync_store::OffsetSyncStore;
use super::records::{Checkpoint, OffsetSync};
use crate::kafka::context::LoggingContext;
use crate::lifecycle::Stop;
use crate::locks::lock;
use crate::plan::FlowPlan;

/// Reads partition 0 of `topic` from the beginning to its end; calls `each` per record.
fn read_partition_zero(
    consumer_config: &ClientConfig,
    topic: &str,
    timeout: Duration,
    stop: Option<&Stop>,
    mut each: impl FnMut(&[u8], &[u8]),
    mut at_end: impl FnMut(),
) -> Result<(), String> {
    let mut config = consumer_config.clone();
    config
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("internal-topic-reader"))
        .map_err(|e| e.to_string())?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    // Tailing (with a stop flag) has no deadline; a one-off read must finish in time.
    let deadline = stop.is_none().then(|| std::time::Instant::now() + timeout);
    let mut reached_end = false;
    loop {
        if stop.is_some_and(Stop::is_requested) {
            return Ok(());
        }
        if deadline.is_some_and(|deadline| std::time::Instant::now() > deadline) {
            return Err(format!("reading `{topic}` did not reach its end in time"));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => each(
                message.key().unwrap_or_default(),
                message.payload().unwrap_or_default(),
            ),
            Some(Err(KafkaError::PartitionEOF(_))) => {
                if !reached_end {
                    reached_end = true;
                    at_end();
                }
                if stop.is_none() {
                    return Ok(());
                }
            }
            Some(Err(error)) => return Err(error.to_string()),
            None => {}
        }
    }
}

/// `CheckpointStore.start()`: the last checkpoint per (group, partition) already on the target.
pub(super) fn load_checkpoints(
    flow: &FlowPlan,
    consumer: &ClientConfig,
    timeout: Duration,
) -> Option<CheckpointStore> {
    let mut store = CheckpointStore::default();
    let result = read_partition_zero(
        consumer,
        &flow.checkpoints.topic,
        timeout,
        None,
        |key, value| {
            if let Ok(checkpoint) = Checkpoint::decode(key, value) {
                if flow.checkpoints.groups.matches(&checkpoint.group) {
                    store.update(&checkpoint);
                }
            }
        },
        || {},
    );
    result.ok().map(|_| store)
}

/// Tails partition 0 of the offset-syncs topic into the store until `stop`.
pub(super) fn tail_offset_syncs(
    flow: &str,
    consumer: ClientConfig,
    topic: &str,
    syncs: &Mutex<OffsetSyncStore>,
    stop: &Stop,
) {
    while !stop.is_requested() {
        let result = read_partition_zero(
            &consumer,
            topic,
            Duration::MAX,
            Some(stop),
            |key, value| match OffsetSync::decode(key, value) {
                Ok(sync) => {
                    lock(syncs).update(&sync.topic, sync.partition, sync.upstream, sync.downstream)
                }
                Err(error) => warn!(flow, "skipping undecodable offset sync: {error}"),
            },
            || lock(syncs).mark_read_to_end(),
        );
        if let Err(error) = result {
            // Typically the topic does not exist yet (the source flow creates it); retry.
            warn!(
                flow,
                topic, "reading offset syncs: {error}; retrying in 5 s"
            );
            if stop.sleep_blocking(Duration::from_secs(5)) {
                return;
            }
        }
    }
}
