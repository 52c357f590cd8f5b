//! Consumer groups on both clusters for the checkpoint task: which groups to checkpoint (MM2's
//! `findConsumerGroups`), their committed offsets, and the group offset sync on the target
//! (`syncGroupOffset`, docs/mm2-behaviour.md, *Group offset sync*) — never rewinding, never
//! touching a group with members on the target. Every call goes through the task's long-lived
//! admin clients, one request per group pipelined (`kafka/group_offsets.rs`), so a round of a
//! thousand groups costs a thousand small requests, not a thousand clients.

use std::collections::BTreeMap;

use tracing::warn;

use super::checkpoints::{self, CheckpointStore, CommittedOffsets, SkipReason, TargetGroup};
use crate::kafka::admin::Admin;
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
/// the topic filter accepts, with their members on the source. Groups in `known` had such an
/// offset at an earlier round: they are not asked again (the emit round, which reads every
/// group's offsets anyway, drops a group whose offsets are gone).
pub fn discover_groups(
    flow: &FlowPlan,
    source: &Admin,
    known: &SourceGroups,
) -> Result<SourceGroups, String> {
    let groups = source
        .wanted_groups(|name| flow.checkpoints.groups.matches(name))
        .map_err(|e| e.to_string())?;
    let names: Vec<String> = groups
        .iter()
        .filter(|g| !known.contains_key(&g.name))
        .map(|g| g.name.clone())
        .collect();
    let committed = committed_offsets(flow, source, &names);
    let mut out = SourceGroups::new();
    for group in groups {
        if known.contains_key(&group.name) {
            out.insert(group.name, group.members);
            continue;
        }
        match committed.get(&group.name) {
            Some(Ok(offsets)) if !offsets.is_empty() => {
                out.insert(group.name, group.members);
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                warn!(flow = %flow.id, group = %group.name, "cannot list committed offsets: {error}")
            }
            None => {}
        }
    }
    Ok(out)
}

/// The committed offsets of `groups` on the topics the topic filter accepts.
pub fn committed_offsets(
    flow: &FlowPlan,
    admin: &Admin,
    groups: &[String],
) -> BTreeMap<String, Result<CommittedOffsets, String>> {
    admin
        .list_group_offsets(groups)
        .into_iter()
        .map(|(group, committed)| {
            let selected = committed.map(|offsets| {
                offsets
                    .into_iter()
                    .filter(|((topic, _), _)| flow.source.topics.matches(topic))
                    .collect()
            });
            (group, selected)
        })
        .collect()
}

/// The consumer groups on the target: group → (state, members).
pub type TargetStates = BTreeMap<String, (String, usize)>;

/// Lists the consumer groups on the target that the group filter accepts — the only ones synced
/// (`None`, warned, when it cannot).
pub fn target_groups(flow: &FlowPlan, target: &Admin) -> Option<TargetStates> {
    match target.wanted_groups(|name| flow.checkpoints.groups.matches(name)) {
        Ok(groups) => Some(
            groups
                .into_iter()
                .map(|g| (g.name, (g.state, g.members)))
                .collect(),
        ),
        Err(error) => {
            warn!(flow = %flow.id, "cannot list the consumer groups on the target: {error}");
            None
        }
    }
}

/// Whether a group exists on the target with no member (its offsets may be written).
pub fn idle_on_target(states: &TargetStates, group: &str) -> bool {
    matches!(states.get(group), Some((state, 0)) if state == "Empty")
}

/// One round of group offset sync over the groups of `store`, with the target's groups as
/// `states` listed them: per group, what was committed or why not.
pub fn sync_group_offsets(
    flow: &FlowPlan,
    target: &Admin,
    store: &CheckpointStore,
    states: &TargetStates,
) -> Vec<GroupSync> {
    // Groups idle on the target: what they committed there, in one pipelined round.
    let idle: Vec<String> = store
        .last
        .keys()
        .filter(|group| idle_on_target(states, group))
        .cloned()
        .collect();
    let mut on_target = target.list_group_offsets(&idle);
    let mut plans: Vec<(String, Result<CommittedOffsets, SkipReason>, usize)> = Vec::new();
    for (group, group_checkpoints) in &store.last {
        let (state, members) = states
            .get(group)
            .cloned()
            .unwrap_or_else(|| (String::new(), 0));
        let target_group = match state.as_str() {
            "" | "Dead" => TargetGroup::Missing,
            "Empty" if members == 0 => match on_target.remove(group) {
                Some(Ok(committed)) => TargetGroup::Idle(
                    committed
                        .into_iter()
                        .map(|(partition, (offset, _))| (partition, Some(offset)))
                        .collect(),
                ),
                Some(Err(error)) => {
                    warn!(flow = %flow.id, group = %group, "cannot read the group's offsets on the target: {error}");
                    continue;
                }
                None => continue,
            },
            _ => TargetGroup::Active,
        };
        let plan = checkpoints::group_offsets_to_write(Some(group_checkpoints), &target_group);
        plans.push((group.clone(), plan, members));
    }
    let writes: Vec<(String, CommittedOffsets)> = plans
        .iter()
        .filter_map(|(group, plan, _)| match plan {
            Ok(offsets) if !offsets.is_empty() => Some((group.clone(), offsets.clone())),
            _ => None,
        })
        .collect();
    let mut committed = target.alter_group_offsets(&writes);
    let mut out = Vec::new();
    for (group, plan, target_members) in plans {
        let outcome = match plan {
            Ok(offsets) if offsets.is_empty() => Ok(0),
            Ok(offsets) => match committed.remove(&group) {
                Some(Ok(())) => Ok(offsets.len()),
                // The group became active between the check and the commit: the broker refused.
                Some(Err(error)) if refused_for_members(&error) => Err(SkipReason::ActiveOnTarget),
                Some(Err(error)) => {
                    warn!(flow = %flow.id, group = %group, "cannot commit offsets on the target: {error}");
                    continue;
                }
                None => continue,
            },
            Err(reason) => Err(reason),
        };
        out.push(GroupSync {
            group,
            outcome,
            target_members,
        });
    }
    out
}

/// Whether the broker refused a commit because the group has members now.
fn refused_for_members(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    [
        "member",
        "generation",
        "rebalance",
        "not empty",
        "non-empty",
    ]
    .iter()
    .any(|needle| error.contains(needle))
}
