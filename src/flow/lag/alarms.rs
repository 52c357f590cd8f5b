//! The alarms the lag monitor raises from what a round measured: records deleted at the source
//! before they were copied, a re-created source topic, and someone else writing to a remote topic.

use std::collections::{BTreeSet, HashMap};

use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::{debug, warn};

use super::{LagInput, Seen, REQUEST_TIMEOUT, TARGET_TIMEOUT};
use crate::flow::assignment::PartitionSet;
use crate::flow::offset_history::StoredProgress;
use crate::kafka::context::LoggingContext;
use crate::kafka::offsets::{list_offsets, Spec};
use crate::kafka::topic_ids::describe_topic_ids;
use crate::status::AlarmKind;

/// Records deleted at the source before they were copied: counted by the source task when it
/// skips them, and seen here when the log start passed the next offset to copy.
pub(super) fn check_skipped(input: &LagInput, key: &(String, i32), earliest: i64, next: i64) {
    let status = &input.telemetry.status;
    let counted = status.records_skipped(&key.0, key.1);
    let pending = (earliest - next).max(0) as u64;
    if counted == 0 && pending == 0 {
        return;
    }
    let detail = if pending > 0 {
        format!("the source's log start ({earliest}) passed the next offset to copy ({next}): {pending} records deleted before they were replicated")
    } else {
        format!("{counted} records were deleted at the source before they were replicated")
    };
    if status.raise_alarm(
        AlarmKind::RecordsSkipped,
        &key.0,
        key.1,
        counted.max(pending),
        detail.clone(),
    ) {
        warn!(flow = %input.flow.id, topic = %key.0, partition = key.1, "alarm records_skipped: {detail}; raise the source topic's retention or replicate faster");
    }
}

/// A source partition whose end fell below the stored progress: the topic was deleted and
/// created again (or truncated), so its offsets started over.
pub(super) fn check_recreated(
    input: &LagInput,
    key: &(String, i32),
    end: i64,
    stored: Option<StoredProgress>,
) {
    let Some(stored) = stored else {
        return;
    };
    if end < stored.offset + 1 {
        let detail = format!("the source partition ends at {end}, below the replicated position {}: the topic was deleted and created again (or truncated)", stored.offset + 1);
        raise_recreated(input, key, detail);
    }
}

fn raise_recreated(input: &LagInput, key: &(String, i32), detail: String) {
    if input.telemetry.status.raise_alarm(
        AlarmKind::TopicRecreated,
        &key.0,
        key.1,
        0,
        detail.clone(),
    ) {
        warn!(flow = %input.flow.id, topic = %key.0, partition = key.1, "alarm topic_recreated: {detail}; its new records are not copied until its stored progress is reset");
    }
}

/// Compares the source topics' ids with those seen before: a new id is a re-created topic.
pub(super) fn check_topic_ids(
    input: &LagInput,
    source: &BaseConsumer<LoggingContext>,
    selected: &PartitionSet,
    known: &mut HashMap<String, String>,
) {
    let topics: Vec<String> = selected
        .iter()
        .map(|(topic, _)| topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ids = match describe_topic_ids(source.client(), &topics, REQUEST_TIMEOUT) {
        Ok(ids) => ids,
        Err(error) => {
            debug!(flow = %input.flow.id, "cannot describe the source topics: {error}");
            return;
        }
    };
    known.retain(|topic, _| ids.contains_key(topic));
    for (topic, id) in ids {
        let Ok(id) = id else { continue };
        match known.insert(topic.clone(), id.clone()) {
            Some(before) if before != id => {
                for (_, partition) in selected.iter().filter(|(t, _)| *t == topic) {
                    raise_recreated(
                        input,
                        &(topic.clone(), *partition),
                        format!("the source topic's id changed from {before} to {id}: it was deleted and created again"),
                    );
                }
            }
            _ => {}
        }
    }
}

/// The remote partitions of partitions that are fully replicated and stored: their end must be
/// where kafka-mirrord's next record goes (one more with exactly-once: the commit marker). Seen
/// beyond that twice in a row, unchanged, someone else writes to them. False when the target did
/// not answer (checked again later).
pub(super) fn check_foreign_writes(
    input: &LagInput,
    target: &BaseConsumer<LoggingContext>,
    quiet: &[((String, i32), i64)],
    seen: &mut HashMap<(String, i32), Seen>,
) -> bool {
    if quiet.is_empty() {
        return true;
    }
    let flow = &input.flow;
    let remote = |topic: &str| {
        flow.replication_policy
            .format_remote_topic(&flow.id.source, topic)
    };
    let wanted: Vec<(String, i32)> = quiet
        .iter()
        .map(|((topic, partition), _)| (remote(topic), *partition))
        .collect();
    let ends = match list_offsets(
        target.client(),
        &wanted,
        Spec::Latest,
        false,
        TARGET_TIMEOUT,
    ) {
        Ok(ends) => ends,
        Err(error) => {
            debug!(flow = %flow.id, "cannot list the remote topics' ends: {error}");
            return false;
        }
    };
    let allowance = i64::from(flow.exactly_once.enabled);
    for ((key, next_downstream), remote_key) in quiet.iter().zip(&wanted) {
        let Some(Ok(remote_end)) = ends.get(remote_key) else {
            continue;
        };
        let memory = seen.entry(key.clone()).or_default();
        if *remote_end <= next_downstream + allowance {
            memory.suspicious = None;
            continue;
        }
        let now = (*remote_end, *next_downstream);
        if memory.suspicious == Some(now) {
            let extra = remote_end - next_downstream - allowance;
            let detail = format!("`{}` partition {} ends at {remote_end}, {extra} beyond the {next_downstream} kafka-mirrord wrote: someone else writes to it", remote_key.0, key.1);
            if input.telemetry.status.raise_alarm(
                AlarmKind::ForeignWrites,
                &key.0,
                key.1,
                extra as u64,
                detail.clone(),
            ) {
                warn!(flow = %flow.id, topic = %key.0, partition = key.1, "alarm foreign_writes: {detail}; stop that producer before the cutover (or it is the cutover already)");
            }
        }
        memory.suspicious = Some(now);
    }
    true
}
