//! What the board keeps per flow instance — tasks, partitions, groups, alarms, the lag monitor's
//! rounds — and how that becomes the flow's part of the `/status` snapshot.

use std::collections::{BTreeMap, VecDeque};

use super::report::{
    Alarm, AlarmKind, FlowStatus, GroupStatus, GroupTranslation, MembershipStatus, PartitionStatus,
    Stall, TaskStatus, TopicStatus, UnusualRecords,
};
use super::{FlowState, Summary, TaskState};

/// Samples of a topic's lag kept for the status page's trend (one every 10 s: 5 minutes).
pub(super) const TREND_SAMPLES: usize = 30;

#[derive(Debug)]
pub(super) struct FlowEntry {
    pub instance: u64,
    pub state: FlowState,
    pub since_unix_ms: u64,
    pub last_error: Option<String>,
    pub tasks: BTreeMap<String, TaskEntry>,
    pub membership: Option<MembershipStatus>,
    /// source topic → partition → what is known about it.
    pub topics: BTreeMap<String, BTreeMap<i32, PartitionEntry>>,
    /// source topic → lag samples, oldest first.
    pub trends: BTreeMap<String, VecDeque<i64>>,
    pub groups: BTreeMap<String, GroupEntry>,
    pub alarms: BTreeMap<(AlarmKind, String, i32), Alarm>,
    /// The lag monitor measured every selected partition in its last round.
    pub lag_complete: bool,
    /// ... and found no lag anywhere.
    pub lag_caught_up: bool,
    pub lag_seconds: Option<u64>,
    pub lag_monitor_since_unix_ms: Option<u64>,
    /// When the lag monitor's last round ended.
    pub lag_measured_unix_ms: Option<u64>,
    /// The lag monitor measures less often (idle) until a fresh measurement is asked for.
    pub lag_idle: bool,
    /// How many times this process's source tasks moved a replicated position (an idle lag
    /// monitor measures again when it changes).
    pub replicated_moves: u64,
    pub sync_group_offsets: bool,
    pub group_commit_watch: Option<bool>,
    /// Selected topics that are heartbeats topics.
    pub heartbeats_topics: std::collections::BTreeSet<String>,
    /// Final-sync rounds asked for (`POST /final-sync`) and done, counted.
    pub final_sync_requested: tokio::sync::watch::Sender<u64>,
    pub final_sync_done: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Clone)]
pub(super) struct TaskEntry {
    pub state: TaskState,
    pub since_unix_ms: u64,
    pub restarts: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct PartitionEntry {
    /// From the lag monitor: the source's end (last stable offset) and log start.
    pub source_end_offset: Option<i64>,
    pub earliest_offset: Option<i64>,
    /// From the lag monitor: the next offset to copy by the stored progress (the log start when
    /// nothing is stored).
    pub stored_next: Option<i64>,
    pub last_write_unix_ms: Option<u64>,
    /// From this process's source task: the next offset to copy, acknowledged by the target.
    pub replicated_offset: Option<i64>,
    pub stalled: Option<Stall>,
    pub records_skipped: u64,
    pub unusual: Option<UnusualRecords>,
}

impl PartitionEntry {
    /// The next offset to copy as far as anyone knows.
    fn next_to_copy(&self) -> Option<i64> {
        match (self.replicated_offset, self.stored_next) {
            (Some(live), Some(stored)) => Some(live.max(stored)),
            (live, stored) => live.or(stored),
        }
    }

    /// Records a `read_committed` reader of the source could still get that are not on the
    /// target; known once the monitor measured the partition.
    pub fn lag(&self) -> Option<i64> {
        let end = self.source_end_offset?;
        let next = self.next_to_copy()?.max(self.earliest_offset.unwrap_or(0));
        Some((end - next).max(0))
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct GroupEntry {
    pub checkpointed: bool,
    pub skipped_reason: Option<String>,
    pub last_checkpoint_unix_ms: Option<u64>,
    pub translation: Option<GroupTranslation>,
    pub target_offsets: Option<String>,
    pub source_members: Option<usize>,
    pub target_members: Option<usize>,
}

impl FlowEntry {
    pub fn new(instance: u64, now: u64) -> FlowEntry {
        FlowEntry {
            instance,
            state: FlowState::Starting,
            since_unix_ms: now,
            last_error: None,
            tasks: BTreeMap::new(),
            membership: None,
            topics: BTreeMap::new(),
            trends: BTreeMap::new(),
            groups: BTreeMap::new(),
            alarms: BTreeMap::new(),
            lag_complete: false,
            lag_caught_up: false,
            lag_seconds: None,
            lag_monitor_since_unix_ms: None,
            lag_measured_unix_ms: None,
            lag_idle: false,
            replicated_moves: 0,
            sync_group_offsets: false,
            group_commit_watch: None,
            heartbeats_topics: Default::default(),
            final_sync_requested: tokio::sync::watch::Sender::new(0),
            final_sync_done: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Each topic's current lag (known partitions only).
    pub fn topic_lags(&self) -> BTreeMap<String, i64> {
        self.topics
            .iter()
            .map(|(topic, partitions)| {
                let lag = partitions
                    .values()
                    .filter_map(PartitionEntry::lag)
                    .fold(0i64, i64::saturating_add);
                (topic.clone(), lag)
            })
            .collect()
    }

    /// Adds this flow's state, lag, unknown and stalled partitions to `summary` (what
    /// [`FlowEntry::report`] adds, without building the report).
    pub fn count_into(&self, summary: &mut Summary) {
        summary.flows += 1;
        match self.state {
            FlowState::Starting => summary.starting += 1,
            FlowState::Running => summary.running += 1,
            FlowState::Retrying => summary.retrying += 1,
            FlowState::Stopped => summary.stopped += 1,
            FlowState::Error => summary.error += 1,
            FlowState::Standby => summary.standby += 1,
        }
        for known in self.topics.values().flat_map(BTreeMap::values) {
            match known.lag() {
                Some(lag) => summary.lag = summary.lag.saturating_add(lag),
                None => summary.lag_unknown_partitions += 1,
            }
            if known.stalled.is_some() {
                summary.stalled_partitions += 1;
            }
        }
    }

    /// The flow's part of the snapshot; adds its counts to `summary` ([`FlowEntry::count_into`]).
    pub fn report(&self, id: String, summary: &mut Summary) -> FlowStatus {
        self.count_into(summary);
        let mut flow_lag = 0i64;
        let mut caught_up = self.lag_complete;
        let mut topics = Vec::with_capacity(self.topics.len());
        for (name, partitions) in &self.topics {
            let mut topic_lag = 0i64;
            let mut last_write: Option<u64> = None;
            let mut rows = Vec::with_capacity(partitions.len());
            for (&partition, known) in partitions {
                let lag = known.lag();
                match lag {
                    Some(lag) => {
                        topic_lag = topic_lag.saturating_add(lag);
                        caught_up &= lag == 0;
                    }
                    None => caught_up = false,
                }
                if known.stalled.is_some() {
                    caught_up = false;
                }
                last_write = last_write.max(known.last_write_unix_ms);
                rows.push(PartitionStatus {
                    partition,
                    source_end_offset: known.source_end_offset,
                    replicated_offset: known.next_to_copy(),
                    lag,
                    stored_offset: known.stored_next,
                    earliest_offset: known.earliest_offset,
                    last_write_unix_ms: known.last_write_unix_ms,
                    stalled: known.stalled.clone(),
                    records_skipped: known.records_skipped,
                    unusual_records: known.unusual.clone(),
                });
            }
            flow_lag = flow_lag.saturating_add(topic_lag);
            topics.push(TopicStatus {
                name: name.clone(),
                lag: topic_lag,
                heartbeats: self.heartbeats_topics.contains(name),
                last_write_unix_ms: last_write,
                lag_trend: self
                    .trends
                    .get(name)
                    .map(|samples| samples.iter().copied().collect())
                    .unwrap_or_default(),
                partitions: rows,
            });
        }
        FlowStatus {
            id,
            state: self.state,
            since_unix_ms: self.since_unix_ms,
            last_error: self.last_error.clone(),
            lag: flow_lag,
            caught_up,
            lag_complete: self.lag_complete,
            lag_seconds: self.lag_seconds,
            lag_monitor_since_unix_ms: self.lag_monitor_since_unix_ms,
            lag_measured_unix_ms: self.lag_measured_unix_ms,
            alarms: self.alarms.values().cloned().collect(),
            sync_group_offsets: self.sync_group_offsets,
            group_commit_watch: self.group_commit_watch,
            cutover: None,
            tasks: self
                .tasks
                .iter()
                .map(|(name, task)| TaskStatus {
                    name: name.clone(),
                    state: task.state,
                    since_unix_ms: task.since_unix_ms,
                    restarts: task.restarts,
                    last_error: task.last_error.clone(),
                })
                .collect(),
            topics,
            groups: self
                .groups
                .iter()
                .map(|(group, g)| GroupStatus {
                    group: group.clone(),
                    checkpointed: g.checkpointed,
                    skipped_reason: g.skipped_reason.clone(),
                    last_checkpoint_unix_ms: g.last_checkpoint_unix_ms,
                    translation: g.translation,
                    target_offsets: g.target_offsets.clone(),
                    source_members: g.source_members,
                    target_members: g.target_members,
                })
                .collect(),
            membership: self.membership.clone(),
        }
    }
}
