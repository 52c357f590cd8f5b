//! Consumer groups on both clusters for the checkpoint task: which groups to checkpoint (MM2's
//! `findConsumerGroups`), their committed offsets, and the group offset sync on the target
//! (`syncGroupOffset`, docs/mm2-behaviour.md, *Group offset sync*) — never rewinding, never
//! touching a group with members on the target.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use super::checkpoints::{self, CheckpointStore, CommittedOffsets, SkipReason, TargetGroup};
use crate::kafka::admin::Admin;
use crate::kafka::context::LoggingContext;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// A group to checkpoint and how many members it has on the source now.
pub type SourceGroups = BTreeMap<String, usize>;

/// What one round of group offset sync did for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSync {
    pub group: String,
    /// Partitions committed this round (`Ok(0)`: already in sync), or why not.
    pub outcome: Result<usize, SkipReason>,
    /// Members of the group on the target.
    pub target_members: usize,
}

/// `findConsumerGroups`: groups accepted by the group filter with a committed offset on a topic
/// the topic filter accepts.
pub fn discover_groups(flow: &FlowPlan, source: &Admin) -> Result<SourceGroups, String> {
    let groups = source.groups(None).map_err(|e| e.to_string())?;
    let partitions = source_partitions(flow, source)?;
    let mut out = SourceGroups::new();
    for group in groups
        .into_iter()
        .filter(|g| flow.checkpoints.groups.matches(&g.name))
    {
        if !committed_offsets(
            &flow.clients[&ClientRole::SourceConsumer].client_config(),
            &group.name,
            &partitions,
        )?
        .is_empty()
        {
            out.insert(group.name, group.members);
        }
    }
    Ok(out)
}

/// Partitions of the source topics the topic filter accepts.
pub fn source_partitions(flow: &FlowPlan, source: &Admin) -> Result<Vec<(String, i32)>, String> {
    let topics = source.list_topics().map_err(|e| e.to_string())?;
    Ok(topics
        .into_iter()
        .filter(|(topic, _)| flow.source.topics.matches(topic))
        .flat_map(|(topic, count)| (0..count).map(move |p| (topic.clone(), p)))
        .collect())
}

/// A group's committed offsets on `partitions`, read with a client of that group id (it never
/// joins the group).
pub fn committed_offsets(
    consumer: &ClientConfig,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<CommittedOffsets, String> {
    if partitions.is_empty() {
        return Ok(CommittedOffsets::new());
    }
    let mut config = consumer.clone();
    config.set("group.id", group);
    let client: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("group-offsets"))
        .map_err(|e| e.to_string())?;
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let committed = client
        .committed_offsets(list, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    Ok(crate::kafka::groups::offsets_with_metadata(&committed)
        .into_iter()
        .map(|(topic, partition, offset, metadata)| ((topic, partition), (offset, metadata)))
        .collect())
}

/// One round of group offset sync: per group, what was committed or why not.
pub fn sync_group_offsets(
    flow: &FlowPlan,
    target: &Admin,
    store: &CheckpointStore,
) -> Vec<GroupSync> {
    let consumer = flow.clients[&ClientRole::TargetConsumer].client_config();
    let mut out = Vec::new();
    for (group, group_checkpoints) in &store.last {
        let state = match target.groups(Some(group)) {
            Ok(groups) => groups.into_iter().next(),
            Err(error) => {
                warn!(flow = %flow.id, group = %group, "cannot describe the group on the target: {error}");
                continue;
            }
        };
        let target_members = state.as_ref().map_or(0, |info| info.members);
        let result = |outcome| GroupSync {
            group: group.clone(),
            outcome,
            target_members,
        };
        let target_group = match state {
            None => TargetGroup::Missing,
            Some(info) if info.state == "Dead" || info.state.is_empty() => TargetGroup::Missing,
            Some(info) if info.state == "Empty" && info.members == 0 => {
                let partitions: Vec<(String, i32)> = group_checkpoints.keys().cloned().collect();
                match committed_offsets(&consumer, group, &partitions) {
                    Ok(committed) => TargetGroup::Idle(
                        committed
                            .into_iter()
                            .map(|(tp, (offset, _))| (tp, Some(offset)))
                            .collect(),
                    ),
                    Err(error) => {
                        warn!(flow = %flow.id, group = %group, "cannot read the group's offsets on the target: {error}");
                        continue;
                    }
                }
            }
            Some(_) => TargetGroup::Active,
        };
        match checkpoints::group_offsets_to_write(Some(group_checkpoints), &target_group) {
            Ok(offsets) if offsets.is_empty() => out.push(result(Ok(0))),
            Ok(offsets) => match commit(&consumer, group, &offsets) {
                Ok(()) => out.push(result(Ok(offsets.len()))),
                // The group became active between the check and the commit: the broker refused.
                Err(error)
                    if error.contains("member")
                        || error.contains("generation")
                        || error.contains("rebalance") =>
                {
                    out.push(result(Err(SkipReason::ActiveOnTarget)))
                }
                Err(error) => {
                    warn!(flow = %flow.id, group = %group, "cannot commit offsets on the target: {error}")
                }
            },
            Err(reason) => out.push(result(Err(reason))),
        }
    }
    out
}

fn commit(
    consumer: &ClientConfig,
    group: &str,
    offsets: &BTreeMap<(String, i32), (i64, String)>,
) -> Result<(), String> {
    let mut config = consumer.clone();
    config.set("group.id", group);
    let client: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("group-offset-sync"))
        .map_err(|e| e.to_string())?;
    let mut list = TopicPartitionList::new();
    for ((topic, partition), (offset, metadata)) in offsets {
        let mut element = list.add_partition(topic, *partition);
        element
            .set_offset(Offset::Offset(*offset))
            .map_err(|e| e.to_string())?;
        element.set_metadata(metadata.clone());
    }
    client
        .commit(&list, CommitMode::Sync)
        .map_err(|e| e.to_string())
}
