//! How one flow instance writes to the board ([`FlowStatusHandle`]): its state, its tasks, its
//! partitions (positions from the source tasks, ends and stored progress from the lag monitor),
//! its groups and its alarms.

use std::collections::HashMap;
use std::time::Duration;

use super::entries::{FlowEntry, PartitionEntry, TaskEntry, TREND_SAMPLES};
use super::report::{Alarm, AlarmKind, GroupTranslation, MembershipStatus, Stall, UnusualRecords};
use super::{unix_ms_now, FlowState, StatusBoard, TaskState};
use crate::plan::FlowId;

/// What the end of a lag monitor round tells the board.
#[derive(Debug, Clone, Copy)]
pub struct LagRound {
    /// Every selected partition was measured.
    pub complete: bool,
    /// Every measured partition had no lag.
    pub caught_up: bool,
    /// The age of the oldest record not replicated yet.
    pub lag_seconds: Option<u64>,
    pub since_unix_ms: u64,
    /// The next round may be seconds away unless asked for ([`super::StatusBoard::fresh_lag`]).
    pub idle: bool,
}

/// What the lag monitor measured of one source partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub end: i64,
    pub earliest: i64,
    /// The next offset to copy by the stored progress (the log start when nothing is stored).
    pub stored_next: Option<i64>,
    pub last_write_unix_ms: Option<u64>,
}

/// How one instance of a flow reports to the board. Cheap to clone; writes of an instance that a
/// newer one replaced, or of a removed flow, are ignored.
#[derive(Debug, Clone)]
pub struct FlowStatusHandle {
    pub(super) board: StatusBoard,
    pub(super) id: FlowId,
    pub(super) instance: u64,
}

impl FlowStatusHandle {
    pub fn id(&self) -> &FlowId {
        &self.id
    }

    fn with(&self, update: impl FnOnce(&mut FlowEntry)) {
        let mut board = self.board.lock();
        if let Some(entry) = board.flows.get_mut(&self.id) {
            if entry.instance == self.instance {
                update(entry);
            }
        }
    }

    /// Sets the flow's state. `last_error` replaces the stored error when `Some`; it is kept when
    /// `None`, so that `running` after a retry still shows why it retried (cleared by
    /// [`FlowStatusHandle::clear_error`]).
    pub fn set_state(&self, state: FlowState, last_error: Option<String>) {
        self.with(|entry| {
            if entry.state != state {
                entry.state = state;
                entry.since_unix_ms = unix_ms_now();
            }
            if last_error.is_some() {
                entry.last_error = last_error;
            }
        });
    }

    pub fn clear_error(&self) {
        self.with(|entry| entry.last_error = None);
    }

    /// Records one task's state, restart count and last error (kept when `None`).
    pub fn set_task(
        &self,
        task: &str,
        state: TaskState,
        restarts: u64,
        last_error: Option<String>,
    ) {
        self.with(|entry| {
            let now = unix_ms_now();
            let slot = entry
                .tasks
                .entry(task.to_string())
                .or_insert_with(|| TaskEntry {
                    state,
                    since_unix_ms: now,
                    restarts,
                    last_error: None,
                });
            if slot.state != state {
                slot.state = state;
                slot.since_unix_ms = now;
            }
            slot.restarts = restarts;
            if last_error.is_some() {
                slot.last_error = last_error;
            }
        });
    }

    /// The flow's group membership as this process sees it.
    pub fn set_membership(&self, membership: MembershipStatus) {
        self.with(|entry| entry.membership = Some(membership));
    }

    pub fn remove_task(&self, task: &str) {
        self.with(|entry| {
            entry.tasks.remove(task);
        });
    }

    fn partition(&self, topic: &str, partition: i32, update: impl FnOnce(&mut PartitionEntry)) {
        self.with(|entry| {
            update(
                entry
                    .topics
                    .entry(topic.to_string())
                    .or_default()
                    .entry(partition)
                    .or_default(),
            )
        });
    }

    /// This flow's part of `/status`, with the cutover verdict (default options).
    pub fn report(&self) -> Option<super::FlowStatus> {
        let mut out = None;
        self.with(|entry| {
            let mut summary = super::Summary::default();
            let mut flow = entry.report(self.id.to_string(), &mut summary);
            flow.cutover = Some(super::cutover::judge(
                &flow,
                &super::cutover::CutoverOptions::default(),
                unix_ms_now(),
            ));
            out = Some(flow);
        });
        out
    }

    /// Records the next offset this process's source task will copy of a partition (the last
    /// one the target acknowledged + 1).
    pub fn set_replicated(&self, topic: &str, partition: i32, next: i64) {
        self.with(|entry| {
            let known = entry
                .topics
                .entry(topic.to_string())
                .or_default()
                .entry(partition)
                .or_default();
            if known.replicated_offset.map_or(true, |o| next > o) {
                known.replicated_offset = Some(next);
                entry.replicated_moves += 1;
            }
        });
    }

    /// How many times [`FlowStatusHandle::set_replicated`] moved a position, ever (0 for an
    /// instance that was replaced).
    pub fn replicated_moves(&self) -> u64 {
        let mut moves = 0;
        self.with(|entry| moves = entry.replicated_moves);
        moves
    }

    /// Records what the lag monitor measured of a partition.
    pub fn set_measured(&self, topic: &str, partition: i32, measured: Measured) {
        self.set_all_measured(&[((topic.to_string(), partition), measured)]);
    }

    /// [`FlowStatusHandle::set_measured`] for a whole round, under one lock.
    pub fn set_all_measured(&self, round: &[((String, i32), Measured)]) {
        self.with(|entry| {
            for ((topic, partition), measured) in round {
                let known = match entry.topics.get_mut(topic) {
                    Some(partitions) => partitions.entry(*partition).or_default(),
                    None => entry
                        .topics
                        .entry(topic.clone())
                        .or_default()
                        .entry(*partition)
                        .or_default(),
                };
                known.source_end_offset = Some(measured.end);
                known.earliest_offset = Some(measured.earliest);
                known.stored_next = measured.stored_next;
                known.last_write_unix_ms = measured.last_write_unix_ms;
            }
        });
    }

    /// Keeps only the partitions in `selected` (the flow's current topic selection).
    pub fn retain_partitions(&self, selected: &std::collections::BTreeSet<(String, i32)>) {
        self.with(|entry| {
            for (topic, partitions) in entry.topics.iter_mut() {
                partitions.retain(|partition, _| selected.contains(&(topic.clone(), *partition)));
            }
            entry.topics.retain(|_, partitions| !partitions.is_empty());
            let topics = &entry.topics;
            entry.trends.retain(|topic, _| topics.contains_key(topic));
            entry
                .alarms
                .retain(|(_, topic, partition), _| selected.contains(&(topic.clone(), *partition)));
        });
    }

    /// Which selected topics are heartbeats topics (not judged by the cutover gates).
    pub fn set_heartbeats_topics(&self, topics: std::collections::BTreeSet<String>) {
        self.with(|entry| entry.heartbeats_topics = topics);
    }

    /// A lag monitor round ended now.
    pub fn set_lag_round(&self, round: LagRound) {
        let now = unix_ms_now();
        self.with(|entry| {
            entry.lag_complete = round.complete;
            entry.lag_caught_up = round.complete && round.caught_up;
            entry.lag_seconds = round.lag_seconds;
            entry.lag_monitor_since_unix_ms = Some(round.since_unix_ms);
            entry.lag_measured_unix_ms = Some(now);
            entry.lag_idle = round.idle;
        });
    }

    /// Whether the lag monitor's last round measured every selected partition with no lag: no
    /// transaction marker or aborted record waits past any replicated position (false while no
    /// monitor runs).
    pub fn lag_caught_up(&self) -> bool {
        let mut caught_up = false;
        self.with(|entry| caught_up = entry.lag_caught_up);
        caught_up
    }

    /// No lag monitor measures any more: nothing it measured is current.
    pub fn set_lag_monitor_ended(&self) {
        self.with(|entry| {
            entry.lag_idle = false;
            entry.lag_caught_up = false;
        });
    }

    /// How many times a fresh lag measurement was asked for, ever (a lag monitor measures again
    /// when it changes).
    pub fn fresh_lag_requests(&self) -> u64 {
        self.board.fresh_lag_requests()
    }

    /// See [`super::StatusBoard::wait_for_fresh_lag_request`].
    pub fn wait_for_fresh_lag_request(&self, seen: u64, timeout: Duration) {
        self.board.wait_for_fresh_lag_request(seen, timeout)
    }

    /// A flow without source partitions (heartbeats only) is caught up by definition.
    pub fn set_nothing_to_replicate(&self) {
        self.with(|entry| entry.lag_complete = true);
    }

    /// Appends each topic's current lag to its trend (called every 10 s by the lag monitor).
    pub fn sample_trend(&self) {
        self.with(|entry| {
            for (topic, lag) in entry.topic_lags() {
                let samples = entry.trends.entry(topic).or_default();
                if samples.len() >= TREND_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(lag);
            }
        });
    }

    /// Raises (or updates) an alarm; true when it is new (the caller logs one WARN then).
    pub fn raise_alarm(
        &self,
        kind: AlarmKind,
        topic: &str,
        partition: i32,
        count: u64,
        detail: String,
    ) -> bool {
        let mut new = false;
        self.with(|entry| {
            let key = (kind, topic.to_string(), partition);
            match entry.alarms.get_mut(&key) {
                Some(alarm) => {
                    alarm.count = count;
                    alarm.detail = detail;
                }
                None => {
                    new = true;
                    entry.alarms.insert(
                        key,
                        Alarm {
                            kind,
                            topic: topic.to_string(),
                            partition,
                            since_unix_ms: unix_ms_now(),
                            count,
                            detail,
                        },
                    );
                }
            }
        });
        new
    }

    /// Ends an alarm's episode; true when there was one.
    pub fn clear_alarm(&self, kind: AlarmKind, topic: &str, partition: i32) -> bool {
        let mut cleared = false;
        self.with(|entry| {
            cleared = entry
                .alarms
                .remove(&(kind, topic.to_string(), partition))
                .is_some();
        });
        cleared
    }

    /// Active alarms per kind (for the metrics).
    pub fn alarm_counts(&self) -> HashMap<AlarmKind, usize> {
        let mut counts = HashMap::new();
        self.with(|entry| {
            for (kind, _, _) in entry.alarms.keys() {
                *counts.entry(*kind).or_insert(0) += 1;
            }
        });
        counts
    }

    /// Records skipped at a partition so far (what the source task counted).
    pub fn records_skipped(&self, topic: &str, partition: i32) -> u64 {
        let mut skipped = 0;
        self.with(|entry| {
            skipped = entry
                .topics
                .get(topic)
                .and_then(|partitions| partitions.get(&partition))
                .map_or(0, |known| known.records_skipped);
        });
        skipped
    }

    /// A partition the flow no longer replicates (topic deleted or excluded).
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        self.with(|entry| {
            if let Some(partitions) = entry.topics.get_mut(topic) {
                partitions.remove(&partition);
                if partitions.is_empty() {
                    entry.topics.remove(topic);
                }
            }
        });
    }

    /// The replicated position (next offset to copy) of every partition that has one.
    pub fn replicated_positions(&self) -> std::collections::HashMap<(String, i32), i64> {
        let mut positions = std::collections::HashMap::new();
        self.with(|entry| {
            for (topic, partitions) in &entry.topics {
                for (partition, known) in partitions {
                    if let Some(next) = known.replicated_offset {
                        positions.insert((topic.clone(), *partition), next);
                    }
                }
            }
        });
        positions
    }

    /// Marks a partition as held at a poison record (`Some`) or flowing again (`None`).
    pub fn set_stall(&self, topic: &str, partition: i32, stall: Option<Stall>) {
        self.partition(topic, partition, |known| known.stalled = stall);
    }

    /// Counts records deleted at the source before they were replicated.
    pub fn add_skipped(&self, topic: &str, partition: i32, records: u64) {
        self.partition(topic, partition, |known| {
            known.records_skipped = known.records_skipped.saturating_add(records)
        });
    }

    /// Counts records copied byte for byte that Java clients would read differently.
    pub fn note_unusual(&self, topic: &str, partition: i32, offset: i64, reason: &str) {
        self.partition(topic, partition, |known| {
            let count = known.unusual.as_ref().map_or(0, |u| u.count) + 1;
            known.unusual = Some(UnusualRecords {
                count,
                last_offset: offset,
                reason: reason.to_string(),
            });
        });
    }

    /// Records a consumer group's checkpoint state. `checkpointed = true` also stamps the time of
    /// the last checkpoint.
    pub fn set_group(&self, group: &str, checkpointed: bool, skipped_reason: Option<String>) {
        self.with(|entry| {
            let known = entry.groups.entry(group.to_string()).or_default();
            known.checkpointed = checkpointed;
            known.skipped_reason = skipped_reason;
            if checkpointed {
                known.last_checkpoint_unix_ms = Some(unix_ms_now());
            }
        });
    }

    /// Final-sync requests for this flow's checkpoint task (a counter that moves per request).
    pub fn final_sync_requests(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut receiver = None;
        self.with(|entry| receiver = Some(entry.final_sync_requested.subscribe()));
        // A replaced instance never gets requests.
        receiver.unwrap_or_else(|| tokio::sync::watch::Sender::new(0).subscribe())
    }

    /// The checkpoint task finished the round asked for by request `number`.
    pub fn final_sync_done(&self, number: u64) {
        self.with(|entry| {
            entry.final_sync_done.send_if_modified(|done| {
                let moved = number > *done;
                *done = (*done).max(number);
                moved
            });
        });
    }

    /// Whether the flow commits groups' offsets on the target (`sync.group.offsets.enabled`).
    pub fn set_sync_group_offsets(&self, enabled: bool) {
        self.with(|entry| entry.sync_group_offsets = enabled);
    }

    /// Whether the last emit round knew which groups committed (docs/operations.md, *Idle cost*).
    pub fn set_group_commit_watch(&self, watching: bool) {
        self.with(|entry| entry.group_commit_watch = Some(watching));
    }

    /// How the group's committed offsets translate (`None`: nothing translated yet).
    pub fn set_group_translation(&self, group: &str, translation: Option<GroupTranslation>) {
        self.with(|entry| {
            entry
                .groups
                .entry(group.to_string())
                .or_default()
                .translation = translation
        });
    }

    /// The state of the group's offsets on the target (`in_sync`, a skip reason, ...).
    pub fn set_group_target(&self, group: &str, state: Option<String>) {
        self.with(|entry| {
            entry
                .groups
                .entry(group.to_string())
                .or_default()
                .target_offsets = state
        });
    }

    /// Members of the group seen on the source and the target (`None` keeps the last value).
    pub fn set_group_members(&self, group: &str, source: Option<usize>, target: Option<usize>) {
        self.with(|entry| {
            let known = entry.groups.entry(group.to_string()).or_default();
            if source.is_some() {
                known.source_members = source;
            }
            if target.is_some() {
                known.target_members = target;
            }
        });
    }

    pub fn remove_group(&self, group: &str) {
        self.with(|entry| {
            entry.groups.remove(group);
        });
    }
}
