//! Which source groups committed offsets lately, read from the source's `__consumer_offsets` on a
//! thread of its own, so that an emit round asks the source for the offsets of those groups only
//! instead of one `OffsetFetch` per group per round (docs/operations.md, *Idle cost*).
//!
//! The watch only says which groups to ask again; the offsets themselves still come from the
//! group coordinator. It is trusted for a round only when a round that asked every group started
//! after the watch began reading (from the ends it listed first): every commit since is in what
//! it read or in what it will read. A source that does not let the daemon read
//! `__consumer_offsets` (ACLs, managed services) leaves every round asking every group, as before.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info};

use crate::kafka::context::LoggingContext;
use crate::kafka::offsets::{list_offsets, Spec};
use crate::lifecycle::Stop;
use crate::locks::lock;
use crate::plan::filter::NameFilter;

/// Kafka's internal topic of committed offsets.
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Pause before reading again after the topic could not be read.
const RETRY_AFTER: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the watch read so far.
#[derive(Default)]
struct Watched {
    /// Groups (accepted by the group filter) that committed since the last [`CommitWatch::take`].
    committed: HashSet<String>,
    /// Since when the watch reads every commit (`None`: it does not now).
    reading_since: Option<Instant>,
}

/// The groups that committed since the last round, or that the round must ask every group.
#[derive(Debug, PartialEq, Eq)]
pub enum Committed {
    /// Only these groups may have other offsets than the round before saw.
    Only(HashSet<String>),
    /// The watch cannot tell: ask every group.
    Unknown,
}

/// Reads the source's commits until the stop is requested.
pub struct CommitWatch {
    watched: Arc<Mutex<Watched>>,
    thread: Option<JoinHandle<()>>,
}

impl CommitWatch {
    /// Starts reading with a consumer made from `config` (the source consumer's settings).
    pub fn start(
        flow_id: &str,
        config: &ClientConfig,
        groups: NameFilter,
        stop: Stop,
    ) -> std::io::Result<Self> {
        let watched = Arc::new(Mutex::new(Watched::default()));
        let mut config = config.clone();
        config
            // An aborted transactional commit never changed a group's offsets.
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "500");
        let (state, flow_id) = (watched.clone(), flow_id.to_string());
        let thread = std::thread::Builder::new()
            .name("commit-watch".into())
            .spawn(move || {
                let mut logged = false;
                while !stop.is_requested() {
                    if let Err(problem) = follow(&config, &groups, &state, &stop) {
                        lock(&state).reading_since = None;
                        if !logged {
                            info!(flow = %flow_id, "cannot read the source's `{OFFSETS_TOPIC}` ({problem}): every checkpoint round asks every group for its offsets; trying again every {} s", RETRY_AFTER.as_secs());
                            logged = true;
                        } else {
                            debug!(flow = %flow_id, "cannot read `{OFFSETS_TOPIC}`: {problem}");
                        }
                        if stop.sleep_blocking(RETRY_AFTER) {
                            return;
                        }
                    }
                }
            })?;
        Ok(CommitWatch {
            watched,
            thread: Some(thread),
        })
    }

    /// The groups that committed since the last call, given when the last round that asked
    /// every group started. Clears them: call it just before asking.
    pub fn take(&self, last_full_round: Option<Instant>) -> Committed {
        let mut watched = lock(&self.watched);
        let committed = std::mem::take(&mut watched.committed);
        match (watched.reading_since, last_full_round) {
            (Some(since), Some(full)) if full >= since => Committed::Only(committed),
            _ => Committed::Unknown,
        }
    }

    /// Asks for `group` again at the next round (its offsets could not be read this one).
    pub fn again(&self, group: &str) {
        lock(&self.watched).committed.insert(group.to_string());
    }

    /// Waits for the thread (it sees the stop within 200 ms). Blocking.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads from the topic's current ends until the stop or an error.
fn follow(
    config: &ClientConfig,
    groups: &NameFilter,
    watched: &Mutex<Watched>,
    stop: &Stop,
) -> Result<(), String> {
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("commit-watch"))
        .map_err(|e| e.to_string())?;
    let partitions = offsets_topic_partitions(&consumer)?;
    // Every commit after this moment lands at or past the ends listed next.
    let since = Instant::now();
    let wanted: Vec<(String, i32)> = partitions
        .iter()
        .map(|partition| (OFFSETS_TOPIC.to_string(), *partition))
        .collect();
    let ends = list_offsets(
        consumer.client(),
        &wanted,
        Spec::Latest,
        true,
        REQUEST_TIMEOUT,
    )
    .map_err(|e| e.to_string())?;
    let mut assignment = TopicPartitionList::new();
    for key in &wanted {
        let end = match ends.get(key) {
            Some(Ok(end)) => *end,
            Some(Err(error)) => return Err(format!("partition {}: {error}", key.1)),
            None => return Err(format!("partition {}: no end offset", key.1)),
        };
        assignment
            .add_partition_offset(OFFSETS_TOPIC, key.1, Offset::Offset(end))
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    lock(watched).reading_since = Some(since);
    while !stop.is_requested() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let group = message.key().and_then(committing_group);
                if let Some(group) = group.filter(|group| groups.matches(group)) {
                    lock(watched).committed.insert(group.to_string());
                }
            }
            Some(Err(error)) => return Err(error.to_string()),
            None => {}
        }
    }
    Ok(())
}

/// The partition ids of `__consumer_offsets` (missing until a group first commits).
fn offsets_topic_partitions(consumer: &BaseConsumer<LoggingContext>) -> Result<Vec<i32>, String> {
    let metadata = consumer
        .fetch_metadata(Some(OFFSETS_TOPIC), REQUEST_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let topic = metadata
        .topics()
        .iter()
        .find(|topic| topic.name() == OFFSETS_TOPIC)
        .ok_or("not described by the cluster")?;
    if let Some(error) = topic.error() {
        return Err(rdkafka::types::RDKafkaErrorCode::from(error).to_string());
    }
    if topic.partitions().is_empty() {
        return Err("it has no partitions (no group committed yet?)".to_string());
    }
    Ok(topic.partitions().iter().map(|p| p.id()).collect())
}

/// The group of an offset-commit record's key (key versions 0 and 1: group, topic, partition);
/// `None` for every other record (group metadata, the newer coordinator's records, or bytes that
/// are not a key Kafka writes).
fn committing_group(key: &[u8]) -> Option<&str> {
    let version = i16::from_be_bytes(key.get(0..2)?.try_into().ok()?);
    if version != 0 && version != 1 {
        return None;
    }
    let length = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
    let length = usize::try_from(length).ok()?;
    std::str::from_utf8(key.get(4..4 + length)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_key(version: i16, group: &str, topic: &str, partition: i32) -> Vec<u8> {
        let mut key = version.to_be_bytes().to_vec();
        for text in [group, topic] {
            key.extend((text.len() as i16).to_be_bytes());
            key.extend(text.as_bytes());
        }
        key.extend(partition.to_be_bytes());
        key
    }

    #[test]
    fn offset_commit_keys_name_their_group() {
        assert_eq!(
            committing_group(&commit_key(1, "orders-app", "orders", 3)),
            Some("orders-app")
        );
        assert_eq!(committing_group(&commit_key(0, "g", "t", 0)), Some("g"));
    }

    #[test]
    fn other_records_and_bad_bytes_name_no_group() {
        // Group metadata (version 2) and the newer coordinator's records.
        assert_eq!(committing_group(&commit_key(2, "g", "t", 0)), None);
        assert_eq!(committing_group(&commit_key(11, "g", "t", 0)), None);
        // Truncated, negative length, not UTF-8.
        assert_eq!(committing_group(&[0, 1, 0]), None);
        assert_eq!(committing_group(&[0, 1, 0, 9, b'a']), None);
        assert_eq!(committing_group(&[0, 1, 0xff, 0xff]), None);
        assert_eq!(committing_group(&[0, 1, 0, 2, 0xc3, 0x28]), None);
        assert_eq!(committing_group(&[]), None);
    }

    #[test]
    fn the_watch_is_trusted_only_after_a_full_round_that_started_after_it() {
        let watch = CommitWatch {
            watched: Arc::new(Mutex::new(Watched::default())),
            thread: None,
        };
        let before = Instant::now();
        assert_eq!(watch.take(Some(before)), Committed::Unknown, "not reading");
        let since = Instant::now();
        lock(&watch.watched).reading_since = Some(since);
        lock(&watch.watched).committed.insert("a".into());
        assert_eq!(watch.take(Some(before)), Committed::Unknown);
        assert_eq!(watch.take(None), Committed::Unknown);
        // Taken (and cleared) by the untrusted calls above.
        assert_eq!(watch.take(Some(since)), Committed::Only(HashSet::new()));
        watch.again("b");
        assert_eq!(
            watch.take(Some(Instant::now())),
            Committed::Only(HashSet::from(["b".to_string()]))
        );
        lock(&watch.watched).reading_since = None;
        assert_eq!(watch.take(Some(Instant::now())), Committed::Unknown);
    }
}
