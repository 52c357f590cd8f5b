//! Whether consumers and producers may move to the target now: the cutover gates, judged from a
//! flow's `/status` (docs/cutover.md). The daemon shows the verdict with the default options in
//! `/status` and on the status page; `kafka-mirrord cutover` judges with the operator's options and
//! with group memberships it reads from the clusters itself.
//!
//! The gates: (a) `lag` — nothing a `read_committed` consumer could read is left on the source,
//! by the stored progress;
//! (b) `quiet` — no record written to the selected topics for the quiet period (producers were
//! stopped); (c) `groups` — every selected group has left the source, is translated and, with
//! `sync.group.offsets.enabled`, committed on the target; (d) `target_groups_idle` — none has
//! members on the target yet (they would not be synced); (e) `no_foreign_writes` — nobody else
//! writes to the remote topics.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::report::{AlarmKind, FlowStatus, GroupStatus};

/// What the operator selects (`kafka-mirrord cutover` flags).
#[derive(Debug, Clone)]
pub struct CutoverOptions {
    /// Source topics to judge (all when `None`).
    pub topics: Option<Regex>,
    /// Consumer groups to judge (all when `None`).
    pub groups: Option<Regex>,
    /// How long the selected topics must have had no new record.
    pub quiet_seconds: u64,
}

impl Default for CutoverOptions {
    fn default() -> Self {
        CutoverOptions {
            topics: None,
            groups: None,
            quiet_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoverVerdict {
    /// Every gate passes.
    pub ready: bool,
    pub gates: Vec<Gate>,
    pub topics: Vec<TopicVerdict>,
    pub groups: Vec<GroupVerdict>,
    /// Things to know that do not block (records lost at the source, a re-created topic).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// `lag`, `quiet`, `groups`, `target_groups_idle`, `no_foreign_writes`.
    pub gate: String,
    pub passed: bool,
    /// What passed, or what to wait for.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicVerdict {
    pub topic: String,
    pub ready: bool,
    /// Records left to copy; `None` while not measured.
    pub lag: Option<i64>,
    /// Seconds since the last record was written to it (as long as the daemon watched).
    pub quiet_seconds: u64,
    pub foreign_writes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupVerdict {
    pub group: String,
    pub ready: bool,
    /// `exact` or `approximate (at most N re-reads)`; absent while not translated.
    pub translation: Option<String>,
    /// What the group waits for (empty when ready).
    pub waiting_for: Vec<String>,
}

fn gate(name: &str, passed: bool, detail: String) -> Gate {
    Gate {
        gate: name.to_string(),
        passed,
        detail,
    }
}

/// Judges `flow` at `now_ms` (Unix milliseconds).
pub fn judge(flow: &FlowStatus, options: &CutoverOptions, now_ms: u64) -> CutoverVerdict {
    let selected_topic = |topic: &str| selects(&options.topics, topic);
    let watched_ms = flow
        .lag_monitor_since_unix_ms
        .map_or(0, |since| now_ms.saturating_sub(since));
    let mut topics = Vec::new();
    let (mut lag_total, mut unknown, mut stalled, mut noisy, mut foreign) = (0i64, 0, 0, 0, 0);
    for topic in flow
        .topics
        .iter()
        .filter(|t| !t.heartbeats && selected_topic(&t.name))
    {
        // What is stored counts: a restart, another node and the translation rely on it.
        let mut lag = Some(0i64);
        for partition in &topic.partitions {
            let stored_lag = match (partition.source_end_offset, partition.stored_offset) {
                (Some(end), Some(stored)) => {
                    Some((end - stored.max(partition.earliest_offset.unwrap_or(0))).max(0))
                }
                _ => None,
            };
            match stored_lag {
                Some(value) => lag = lag.map(|sum| sum.saturating_add(value)),
                None => lag = None,
            }
            if partition.stalled.is_some() {
                stalled += 1;
            }
        }
        let quiet_ms = topic.last_write_unix_ms.map_or(watched_ms, |last| {
            now_ms.saturating_sub(last).min(watched_ms)
        });
        let quiet = quiet_ms >= options.quiet_seconds * 1000;
        let foreign_writes = flow
            .alarms
            .iter()
            .any(|a| a.kind == AlarmKind::ForeignWrites && a.topic == topic.name);
        match lag {
            Some(value) => lag_total = lag_total.saturating_add(value),
            None => unknown += 1,
        }
        noisy += usize::from(!quiet);
        foreign += usize::from(foreign_writes);
        topics.push(TopicVerdict {
            topic: topic.name.clone(),
            ready: lag == Some(0) && quiet && !foreign_writes,
            lag,
            quiet_seconds: quiet_ms / 1000,
            foreign_writes,
        });
    }

    let mut gates = Vec::new();
    let lag_passed = flow.lag_complete && unknown == 0 && lag_total == 0 && stalled == 0;
    gates.push(gate(
        "lag",
        lag_passed,
        if !flow.lag_complete || unknown > 0 {
            format!("lag not measured yet on {} topic(s)", unknown.max(1))
        } else if stalled > 0 {
            format!("{stalled} partition(s) held at a record the target refuses")
        } else if lag_total > 0 {
            format!("{lag_total} record(s) still to copy or to store (progress is stored every `offset.flush.interval.ms`)")
        } else {
            format!("every record of {} topic(s) is on the target", topics.len())
        },
    ));
    let quiet_needed = options.quiet_seconds;
    gates.push(gate(
        "quiet",
        noisy == 0 && watched_ms >= quiet_needed * 1000,
        if watched_ms < quiet_needed * 1000 {
            format!(
                "watching the source for {} s of the {quiet_needed} s needed",
                watched_ms / 1000
            )
        } else if noisy > 0 {
            format!("{noisy} topic(s) had records written in the last {quiet_needed} s: stop the producers")
        } else {
            format!("no record written for {quiet_needed} s")
        },
    ));

    let groups: Vec<GroupVerdict> = flow
        .groups
        .iter()
        .filter(|g| selects(&options.groups, &g.group))
        .map(|g| group_verdict(g, flow.sync_group_offsets))
        .collect();
    let waiting: Vec<&GroupVerdict> = groups.iter().filter(|g| !g.ready).collect();
    let checkpoints_here = flow.tasks.iter().any(|task| task.name == "checkpoints");
    let on_target: Vec<&str> = flow
        .groups
        .iter()
        .filter(|g| selects(&options.groups, &g.group))
        .filter(|g| g.target_members.unwrap_or(0) > 0)
        .map(|g| g.group.as_str())
        .collect();
    let groups_detail = if groups.is_empty() {
        if checkpoints_here {
            "no consumer group selected".to_string()
        } else {
            "consumer groups are checkpointed by the flow's leader: ask that node".to_string()
        }
    } else if waiting.is_empty() {
        format!("{} group(s) translated and synced", groups.len())
    } else {
        waiting
            .iter()
            .map(|g| format!("{}: {}", g.group, g.waiting_for.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    gates.push(gate(
        "groups",
        waiting.is_empty() && (checkpoints_here || !groups.is_empty()),
        groups_detail,
    ));
    gates.push(gate(
        "target_groups_idle",
        on_target.is_empty(),
        if on_target.is_empty() {
            "no selected group has members on the target".to_string()
        } else {
            format!(
                "members on the target (they would not be synced): {}",
                on_target.join(", ")
            )
        },
    ));
    gates.push(gate(
        "no_foreign_writes",
        foreign == 0,
        if foreign == 0 {
            "only kafka-mirrord writes to the remote topics".to_string()
        } else {
            format!("{foreign} remote topic(s) written by someone else")
        },
    ));
    let warnings = flow
        .alarms
        .iter()
        .filter(|a| a.kind != AlarmKind::ForeignWrites && selected_topic(&a.topic))
        .map(|a| {
            format!(
                "{} {}/{}: {}",
                a.kind.as_str(),
                a.topic,
                a.partition,
                a.detail
            )
        })
        .collect();
    CutoverVerdict {
        ready: gates.iter().all(|g| g.passed),
        gates,
        topics,
        groups,
        warnings,
    }
}

fn group_verdict(group: &GroupStatus, sync_enabled: bool) -> GroupVerdict {
    let mut waiting_for = Vec::new();
    match group.source_members {
        Some(0) => {}
        Some(members) => waiting_for.push(format!("{members} member(s) still on the source")),
        None => waiting_for.push("members on the source not known yet".to_string()),
    }
    if group.translation.is_none() {
        waiting_for.push("not translated yet".to_string());
    }
    if sync_enabled && group.target_offsets.as_deref() != Some("in_sync") {
        waiting_for.push(match group.target_offsets.as_deref() {
            Some(state) => format!("offsets on the target: {state}"),
            None => "offsets not committed on the target yet".to_string(),
        });
    }
    if group.target_members.unwrap_or(0) > 0 {
        waiting_for.push("members on the target".to_string());
    }
    GroupVerdict {
        group: group.group.clone(),
        ready: waiting_for.is_empty(),
        translation: group.translation.map(|t| t.describe()),
        waiting_for,
    }
}

/// No filter selects everything.
fn selects(filter: &Option<Regex>, text: &str) -> bool {
    filter.as_ref().map_or(true, |regex| regex.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::report::{
        Alarm, GroupTranslation, PartitionStatus, TaskStatus, TopicStatus,
    };
    use crate::status::{FlowState, TaskState};

    const NOW: u64 = 1_000_000;

    fn partition(end: i64, stored: i64) -> PartitionStatus {
        PartitionStatus {
            partition: 0,
            source_end_offset: Some(end),
            replicated_offset: Some(end),
            lag: Some(0),
            stored_offset: Some(stored),
            earliest_offset: Some(0),
            last_write_unix_ms: None,
            stalled: None,
            records_skipped: 0,
            unusual_records: None,
        }
    }

    fn topic(name: &str, last_write_ago_ms: u64, stored: i64) -> TopicStatus {
        TopicStatus {
            name: name.into(),
            lag: 0,
            heartbeats: name == "heartbeats",
            last_write_unix_ms: Some(NOW - last_write_ago_ms),
            lag_trend: vec![],
            partitions: vec![partition(100, stored)],
        }
    }

    fn group(source_members: usize, target: Option<&str>) -> GroupStatus {
        GroupStatus {
            group: "billing".into(),
            checkpointed: true,
            skipped_reason: None,
            last_checkpoint_unix_ms: Some(NOW),
            translation: Some(GroupTranslation::Exact),
            target_offsets: target.map(str::to_string),
            source_members: Some(source_members),
            target_members: Some(0),
        }
    }

    fn flow(topics: Vec<TopicStatus>, groups: Vec<GroupStatus>) -> FlowStatus {
        FlowStatus {
            id: "old->new".into(),
            state: FlowState::Running,
            since_unix_ms: 0,
            last_error: None,
            lag: 0,
            caught_up: true,
            lag_complete: true,
            lag_seconds: Some(0),
            lag_monitor_since_unix_ms: Some(NOW - 600_000),
            lag_measured_unix_ms: Some(NOW),
            alarms: vec![],
            sync_group_offsets: true,
            group_commit_watch: None,
            cutover: None,
            tasks: vec![TaskStatus {
                name: "checkpoints".into(),
                state: TaskState::Running,
                since_unix_ms: 0,
                restarts: 0,
                last_error: None,
            }],
            topics,
            groups,
            membership: None,
        }
    }

    fn failed(verdict: &CutoverVerdict) -> Vec<&str> {
        verdict
            .gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| g.gate.as_str())
            .collect()
    }

    #[test]
    fn every_gate_passes_once_stored_quiet_and_synced() {
        let ready = flow(
            vec![topic("orders", 60_000, 100), topic("heartbeats", 0, 0)],
            vec![group(0, Some("in_sync"))],
        );
        let verdict = judge(&ready, &CutoverOptions::default(), NOW);
        assert!(verdict.ready, "{verdict:?}");
        assert_eq!(verdict.topics.len(), 1, "heartbeats topics are not judged");
        assert_eq!(verdict.groups[0].translation.as_deref(), Some("exact"));
    }

    #[test]
    fn each_gate_names_what_to_wait_for() {
        // Copied but not stored yet; written 5 s ago; a member still on the source, offsets
        // behind on the target.
        let waiting = flow(vec![topic("orders", 5_000, 90)], vec![group(2, None)]);
        let verdict = judge(&waiting, &CutoverOptions::default(), NOW);
        assert!(!verdict.ready);
        assert_eq!(failed(&verdict), vec!["lag", "quiet", "groups"]);
        assert!(verdict.gates[0].detail.contains("10 record(s)"));
        assert_eq!(
            verdict.groups[0].waiting_for,
            vec![
                "2 member(s) still on the source".to_string(),
                "offsets not committed on the target yet".to_string()
            ]
        );
        // A shorter quiet period, and only other topics and groups selected.
        let options = CutoverOptions {
            topics: Some(Regex::new("^(?:payments)$").unwrap()),
            groups: Some(Regex::new("^(?:none)$").unwrap()),
            quiet_seconds: 1,
        };
        assert!(judge(&waiting, &options, NOW).ready);
    }

    #[test]
    fn foreign_writes_block_and_lost_records_warn() {
        let mut flow = flow(vec![topic("orders", 60_000, 100)], vec![]);
        let alarm = |kind| Alarm {
            kind,
            topic: "orders".into(),
            partition: 0,
            since_unix_ms: NOW,
            count: 3,
            detail: "detail".into(),
        };
        flow.alarms = vec![alarm(AlarmKind::RecordsSkipped)];
        let verdict = judge(&flow, &CutoverOptions::default(), NOW);
        assert!(verdict.ready, "lost records are a warning, not a gate");
        assert_eq!(verdict.warnings.len(), 1);
        flow.alarms.push(alarm(AlarmKind::ForeignWrites));
        let verdict = judge(&flow, &CutoverOptions::default(), NOW);
        assert_eq!(failed(&verdict), vec!["no_foreign_writes"]);
        assert!(verdict.topics[0].foreign_writes);
    }

    #[test]
    fn nothing_is_ready_before_the_monitor_watched_long_enough() {
        let mut young = flow(vec![topic("orders", 60_000, 100)], vec![]);
        young.lag_monitor_since_unix_ms = Some(NOW - 3_000);
        young.lag_complete = false;
        let verdict = judge(&young, &CutoverOptions::default(), NOW);
        assert_eq!(failed(&verdict), vec!["lag", "quiet"]);
        // Without the checkpoint task here (another node leads), groups cannot be judged.
        let mut follower = flow(vec![topic("orders", 60_000, 100)], vec![]);
        follower.tasks.clear();
        let verdict = judge(&follower, &CutoverOptions::default(), NOW);
        assert_eq!(failed(&verdict), vec!["groups"]);
        assert!(verdict.gates[2].detail.contains("leader"));
    }
}
