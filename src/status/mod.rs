//! The `/status` board: what the flows and the run loop report, and its JSON snapshot
//! ([`StatusReport`], in `report.rs`), which also feeds systemd's one-line `STATUS=`.
//!
//! The board is a map behind one `Mutex`; writers are flows reporting state changes and periodic
//! offsets (never per record), readers are `/status` and the STATUS= line, so contention is
//! negligible. Only strings the caller passes are stored: error texts must already be free of
//! secrets (the flows format client errors, which never carry passwords).
//!
//! A flow writes through a [`FlowStatusHandle`] bound to one *instance* of the flow: when a reload
//! restarts a flow, the new instance registers anew and late writes of the old one (its final
//! "stopped", a last progress report) are ignored instead of overwriting the new one's state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

mod report;
pub use report::{
    summary_line, FlowStatus, GroupStatus, MemberStatus, MembershipStatus, PartitionStatus, Stall,
    StatusReport, Summary, TaskStatus, TopicStatus, UnusualRecords,
};

use crate::plan::diff::PlanDiff;
use crate::plan::FlowId;

/// What a flow is doing. One-hot in `kafka_mirrord_flow_state{flow,state}`.
///
/// `starting` → `running` once every task has its clients and partitions; `retrying` while a
/// cluster is unreachable or a task restarts after an error; `error` when it gave up (e.g. an
/// authorization failure that needs the operator); `stopped` after a clean stop (reload, shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowState {
    Starting,
    Running,
    Retrying,
    Stopped,
    Error,
    /// Another node leads this flow with a different plan: this process stands by.
    Standby,
}

impl FlowState {
    pub const ALL: [FlowState; 6] = [
        FlowState::Starting,
        FlowState::Running,
        FlowState::Retrying,
        FlowState::Stopped,
        FlowState::Error,
        FlowState::Standby,
    ];

    /// The lowercase name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Starting => "starting",
            FlowState::Running => "running",
            FlowState::Retrying => "retrying",
            FlowState::Stopped => "stopped",
            FlowState::Error => "error",
            FlowState::Standby => "standby",
        }
    }

    /// Whether the flow counts as started for readiness (`READY=1`, `/ready`): it runs, or it is
    /// retrying an unreachable cluster (systemd must not wait forever for a cluster that is down).
    pub fn has_started(self) -> bool {
        matches!(
            self,
            FlowState::Running | FlowState::Retrying | FlowState::Standby
        )
    }
}

/// How a reload ended; the `result` label of `kafka_mirrord_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new plan runs (possibly with restart-only settings kept at their old value).
    Success,
    /// The new file is invalid; the old plan keeps running untouched.
    InvalidConfig,
    /// The file was valid but applying it failed (a flow did not stop or start).
    Failed,
}

impl ReloadOutcome {
    pub const ALL: [ReloadOutcome; 3] = [
        ReloadOutcome::Success,
        ReloadOutcome::InvalidConfig,
        ReloadOutcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Success => "success",
            ReloadOutcome::InvalidConfig => "invalid_config",
            ReloadOutcome::Failed => "failed",
        }
    }
}

/// The last reload, as shown in `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub result: ReloadOutcome,
    /// When it finished, Unix milliseconds.
    pub at_unix_ms: u64,
    /// Flow ids started, stopped and restarted by it.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Settings that changed in the file but keep their old value until a restart.
    pub restart_required: Vec<String>,
    /// Every problem (one line each, as logged) for `invalid_config` and `failed`.
    pub errors: Vec<String>,
}

impl ReloadReport {
    /// A successful reload that applied `diff`.
    pub fn success(diff: &PlanDiff, restart_required: &[&str]) -> ReloadReport {
        let ids = |list: &[FlowId]| list.iter().map(ToString::to_string).collect();
        ReloadReport {
            result: ReloadOutcome::Success,
            at_unix_ms: unix_ms_now(),
            added: ids(&diff.added),
            removed: ids(&diff.removed),
            changed: ids(&diff.changed),
            restart_required: restart_required.iter().map(|s| s.to_string()).collect(),
            errors: Vec::new(),
        }
    }

    /// A rejected file: the old plan keeps running.
    pub fn invalid_config(errors: Vec<String>) -> ReloadReport {
        ReloadReport {
            result: ReloadOutcome::InvalidConfig,
            at_unix_ms: unix_ms_now(),
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            restart_required: Vec::new(),
            errors,
        }
    }

    /// A valid file whose application failed.
    pub fn failed(errors: Vec<String>) -> ReloadReport {
        ReloadReport {
            result: ReloadOutcome::Failed,
            ..ReloadReport::invalid_config(errors)
        }
    }
}

/// What one task of a flow is doing (`tasks[].state` in `/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Creating its clients, reading stored progress.
    Starting,
    Running,
    /// Failed (or panicked) and waits for its restart (backoff 1 s doubling to 5 min).
    Retrying,
    /// Failed with something only the operator can fix (authorization, a deleted record with
    /// `auto.offset.reset = none`, ...); still retried with backoff, so it heals once fixed.
    Error,
    /// Draining in-flight records and storing progress.
    Stopping,
    Stopped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Retrying => "retrying",
            TaskState::Error => "error",
            TaskState::Stopping => "stopping",
            TaskState::Stopped => "stopped",
        }
    }
}

// === impl StatusBoard ===

/// Shared, cheap to clone; every clone sees the same board.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<Board>>,
}

#[derive(Debug)]
struct Board {
    started_at_unix_ms: u64,
    flows: BTreeMap<FlowId, FlowEntry>,
    last_reload: Option<ReloadReport>,
    next_instance: u64,
}

#[derive(Debug)]
struct FlowEntry {
    instance: u64,
    state: FlowState,
    since_unix_ms: u64,
    last_error: Option<String>,
    tasks: BTreeMap<String, TaskEntry>,
    membership: Option<MembershipStatus>,
    /// source topic → partition → what is known about it.
    topics: BTreeMap<String, BTreeMap<i32, PartitionEntry>>,
    groups: BTreeMap<String, GroupEntry>,
}

#[derive(Debug, Clone)]
struct TaskEntry {
    state: TaskState,
    since_unix_ms: u64,
    restarts: u64,
    last_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct PartitionEntry {
    source_end_offset: Option<i64>,
    replicated_offset: Option<i64>,
    stalled: Option<Stall>,
    records_skipped: u64,
    unusual: Option<UnusualRecords>,
}

impl PartitionEntry {
    fn lag(&self) -> Option<i64> {
        Some((self.source_end_offset? - self.replicated_offset?).max(0))
    }
}

#[derive(Debug, Clone)]
struct GroupEntry {
    checkpointed: bool,
    skipped_reason: Option<String>,
    last_checkpoint_unix_ms: Option<u64>,
}

impl FlowEntry {
    fn new(instance: u64) -> FlowEntry {
        FlowEntry {
            instance,
            state: FlowState::Starting,
            since_unix_ms: unix_ms_now(),
            last_error: None,
            tasks: BTreeMap::new(),
            membership: None,
            topics: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard::new()
    }
}

impl StatusBoard {
    pub fn new() -> StatusBoard {
        StatusBoard {
            inner: Arc::new(Mutex::new(Board {
                started_at_unix_ms: unix_ms_now(),
                flows: BTreeMap::new(),
                last_reload: None,
                next_instance: 1,
            })),
        }
    }

    /// A poisoned lock only means a writer panicked mid-update; the map is still consistent
    /// enough to report, and `/status` must keep answering.
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a new instance of a flow (state `starting`, nothing known yet) and returns the
    /// handle it reports through. Earlier instances' handles stop having any effect.
    pub fn register_flow(&self, flow: &FlowId) -> FlowStatusHandle {
        let mut board = self.lock();
        let instance = board.next_instance;
        board.next_instance += 1;
        board.flows.insert(flow.clone(), FlowEntry::new(instance));
        FlowStatusHandle {
            board: self.clone(),
            id: flow.clone(),
            instance,
        }
    }

    /// Forgets a flow removed by a reload, unless a newer instance registered meanwhile.
    pub fn remove_flow(&self, handle: &FlowStatusHandle) {
        let mut board = self.lock();
        if board
            .flows
            .get(&handle.id)
            .is_some_and(|entry| entry.instance == handle.instance)
        {
            board.flows.remove(&handle.id);
        }
    }

    /// Current state of a flow, if registered.
    pub fn flow_state(&self, flow: &FlowId) -> Option<FlowState> {
        self.lock().flows.get(flow).map(|entry| entry.state)
    }

    pub fn set_reload_result(&self, report: ReloadReport) {
        self.lock().last_reload = Some(report);
    }

    /// Whether every registered flow has started (`running` or `retrying`), and at least one is
    /// registered. Drives `READY=1`; `/ready` is a latch set from it by the run loop.
    pub fn all_started(&self) -> bool {
        let board = self.lock();
        !board.flows.is_empty() && board.flows.values().all(|f| f.state.has_started())
    }

    pub fn snapshot(&self) -> StatusReport {
        let board = self.lock();
        let mut summary = Summary::default();
        let mut flows = Vec::with_capacity(board.flows.len());
        for (id, entry) in &board.flows {
            summary.flows += 1;
            match entry.state {
                FlowState::Starting => summary.starting += 1,
                FlowState::Running => summary.running += 1,
                FlowState::Retrying => summary.retrying += 1,
                FlowState::Stopped => summary.stopped += 1,
                FlowState::Error => summary.error += 1,
                FlowState::Standby => summary.standby += 1,
            }
            let mut flow_lag = 0i64;
            let mut caught_up = true;
            let mut topics = Vec::with_capacity(entry.topics.len());
            for (name, partitions) in &entry.topics {
                let mut topic_lag = 0i64;
                let mut rows = Vec::with_capacity(partitions.len());
                for (&partition, known) in partitions {
                    let lag = known.lag();
                    match lag {
                        Some(lag) => {
                            topic_lag = topic_lag.saturating_add(lag);
                            caught_up &= lag == 0;
                        }
                        None => {
                            summary.lag_unknown_partitions += 1;
                            caught_up = false;
                        }
                    }
                    if known.stalled.is_some() {
                        summary.stalled_partitions += 1;
                        caught_up = false;
                    }
                    rows.push(PartitionStatus {
                        partition,
                        source_end_offset: known.source_end_offset,
                        replicated_offset: known.replicated_offset,
                        lag,
                        stalled: known.stalled.clone(),
                        records_skipped: known.records_skipped,
                        unusual_records: known.unusual.clone(),
                    });
                }
                flow_lag = flow_lag.saturating_add(topic_lag);
                topics.push(TopicStatus {
                    name: name.clone(),
                    lag: topic_lag,
                    partitions: rows,
                });
            }
            summary.lag = summary.lag.saturating_add(flow_lag);
            flows.push(FlowStatus {
                id: id.to_string(),
                state: entry.state,
                since_unix_ms: entry.since_unix_ms,
                last_error: entry.last_error.clone(),
                lag: flow_lag,
                caught_up,
                tasks: entry
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
                groups: entry
                    .groups
                    .iter()
                    .map(|(group, g)| GroupStatus {
                        group: group.clone(),
                        checkpointed: g.checkpointed,
                        skipped_reason: g.skipped_reason.clone(),
                        last_checkpoint_unix_ms: g.last_checkpoint_unix_ms,
                    })
                    .collect(),
                membership: entry.membership.clone(),
            });
        }
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at_unix_ms: board.started_at_unix_ms,
            summary,
            flows,
            last_reload: board.last_reload.clone(),
        }
    }

    /// One line for systemd's `STATUS=` (see [`summary_line`]).
    pub fn summary_line(&self) -> String {
        summary_line(&self.snapshot().summary)
    }
}

/// How one instance of a flow reports to the board. Cheap to clone; writes of an instance that a
/// newer one replaced, or of a removed flow, are ignored.
#[derive(Debug, Clone)]
pub struct FlowStatusHandle {
    board: StatusBoard,
    id: FlowId,
    instance: u64,
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

    /// Records a source partition's offsets; `None` keeps the value stored before, so the end
    /// offset and the replicated position can be reported by different code paths.
    /// `replicated_offset` is the next offset to replicate (last replicated + 1).
    pub fn set_partition(
        &self,
        topic: &str,
        partition: i32,
        source_end_offset: Option<i64>,
        replicated_offset: Option<i64>,
    ) {
        self.partition(topic, partition, |known| {
            if source_end_offset.is_some() {
                known.source_end_offset = source_end_offset;
            }
            if replicated_offset.is_some() {
                known.replicated_offset = replicated_offset;
            }
        });
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
            let previous = entry
                .groups
                .get(group)
                .and_then(|g| g.last_checkpoint_unix_ms);
            entry.groups.insert(
                group.to_string(),
                GroupEntry {
                    checkpointed,
                    skipped_reason,
                    last_checkpoint_unix_ms: if checkpointed {
                        Some(unix_ms_now())
                    } else {
                        previous
                    },
                },
            );
        });
    }

    pub fn remove_group(&self, group: &str) {
        self.with(|entry| {
            entry.groups.remove(group);
        });
    }
}

fn unix_ms_now() -> u64 {
    crate::clock::unix_ms().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(source: &str, target: &str) -> FlowId {
        FlowId {
            source: source.into(),
            target: target.into(),
        }
    }

    #[test]
    fn lag_is_end_minus_position_per_partition_topic_flow_and_total() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        ab.set_state(FlowState::Running, None);
        ab.set_partition("orders", 0, Some(100), Some(90));
        ab.set_partition("orders", 1, Some(50), Some(50));
        ab.set_partition("payments", 0, Some(7), Some(2));
        // A position past the end (end offset reported earlier than the position) is lag 0.
        ab.set_partition("payments", 1, Some(3), Some(5));

        let report = board.snapshot();
        let flow = &report.flows[0];
        assert_eq!(flow.id, "A->B");
        assert_eq!(flow.lag, 15);
        assert!(!flow.caught_up);
        assert_eq!(flow.topics[0].name, "orders");
        assert_eq!(flow.topics[0].lag, 10);
        assert_eq!(flow.topics[0].partitions[0].lag, Some(10));
        assert_eq!(flow.topics[1].partitions[1].lag, Some(0));
        assert_eq!(report.summary.lag, 15);
        assert_eq!(report.summary.running, 1);

        // Catching up.
        ab.set_partition("orders", 0, None, Some(100));
        ab.set_partition("payments", 0, None, Some(7));
        let report = board.snapshot();
        assert_eq!(report.summary.lag, 0);
        assert!(report.flows[0].caught_up);
        assert_eq!(board.summary_line(), "1 flow running, lag 0");
    }

    #[test]
    fn unknown_offsets_give_unknown_lag_and_keep_earlier_values() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        ab.set_partition("t", 0, Some(10), None);
        let report = board.snapshot();
        assert_eq!(report.flows[0].topics[0].partitions[0].lag, None);
        assert_eq!(report.summary.lag_unknown_partitions, 1);
        assert!(!report.flows[0].caught_up);
        ab.set_partition("t", 0, None, Some(4));
        let partition = board.snapshot().flows[0].topics[0].partitions[0].clone();
        assert_eq!(partition.source_end_offset, Some(10));
        assert_eq!(partition.replicated_offset, Some(4));
        assert_eq!(partition.lag, Some(6));

        ab.remove_partition("t", 0);
        assert!(board.snapshot().flows[0].topics.is_empty());
    }

    #[test]
    fn a_replaced_instance_can_no_longer_write() {
        let board = StatusBoard::new();
        let old = board.register_flow(&id("A", "B"));
        old.set_state(FlowState::Running, None);
        old.set_partition("t", 0, Some(10), Some(10));
        let new = board.register_flow(&id("A", "B"));
        // The old instance's final report arrives after the new one started.
        old.set_state(FlowState::Stopped, Some("late".into()));
        old.set_partition("t", 0, Some(99), Some(1));
        let report = board.snapshot();
        assert_eq!(report.flows[0].state, FlowState::Starting);
        assert_eq!(report.flows[0].last_error, None);
        assert!(report.flows[0].topics.is_empty());
        // Removing the old instance does not remove the new one.
        board.remove_flow(&old);
        assert_eq!(board.snapshot().flows.len(), 1);
        board.remove_flow(&new);
        assert!(board.snapshot().flows.is_empty());
    }

    #[test]
    fn summary_line_names_flows_not_running_and_stalls() {
        let board = StatusBoard::new();
        assert_eq!(board.summary_line(), "no flows");
        let ab = board.register_flow(&id("A", "B"));
        ab.set_state(FlowState::Running, None);
        let ba = board.register_flow(&id("B", "A"));
        ba.set_state(FlowState::Retrying, Some("`B` unreachable".into()));
        let cb = board.register_flow(&id("C", "B"));
        cb.set_state(FlowState::Error, Some("denied".into()));
        ab.set_partition("t", 0, Some(120), Some(0));
        ab.set_partition("t", 1, Some(1), None);
        assert_eq!(
            board.summary_line(),
            "1/3 flows running (1 retrying, 1 error), lag 120 (1 partitions unknown)"
        );
        assert!(!board.all_started());
        cb.set_state(FlowState::Running, None);
        assert!(board.all_started(), "running and retrying count as started");
        // The error stays visible after recovering, until cleared.
        let report = board.snapshot();
        let c = report.flows.iter().find(|f| f.id == "C->B").unwrap();
        assert_eq!(c.last_error.as_deref(), Some("denied"));
        cb.clear_error();
        board.remove_flow(&ba);
        let report = board.snapshot();
        assert_eq!(report.summary.flows, 2);
        assert!(report.flows.iter().all(|f| f.last_error.is_none()));

        let stall = Stall {
            offset: 7,
            reason: "record too large".into(),
            fix: "raise max.message.bytes".into(),
            since_unix_ms: 1,
            attempts: 1,
            next_retry_unix_ms: 2,
        };
        ab.set_partition("t", 1, None, Some(1));
        ab.set_stall("t", 1, Some(stall.clone()));
        let report = board.snapshot();
        assert_eq!(report.summary.stalled_partitions, 1);
        assert!(
            !report.flows[0].caught_up,
            "a stalled partition is never caught up"
        );
        assert_eq!(
            report.flows[0].topics[0].partitions[1].stalled.as_ref(),
            Some(&stall)
        );
        assert!(board.summary_line().ends_with(", 1 partitions stalled"));
    }

    #[test]
    fn tasks_keep_their_last_error_and_count_restarts() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        ab.set_task("source-0", TaskState::Starting, 0, None);
        ab.set_task(
            "source-0",
            TaskState::Retrying,
            1,
            Some("broker down".into()),
        );
        ab.set_task("source-0", TaskState::Running, 1, None);
        ab.set_task("checkpoints", TaskState::Running, 0, None);
        let tasks = board.snapshot().flows[0].tasks.clone();
        assert_eq!(tasks[0].name, "checkpoints");
        assert_eq!(tasks[1].name, "source-0");
        assert_eq!(tasks[1].state, TaskState::Running);
        assert_eq!(tasks[1].restarts, 1);
        assert_eq!(tasks[1].last_error.as_deref(), Some("broker down"));
        ab.remove_task("checkpoints");
        assert_eq!(board.snapshot().flows[0].tasks.len(), 1);
    }

    #[test]
    fn groups_keep_the_last_checkpoint_time_when_skipped_later() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        ab.set_group("billing", true, None);
        ab.set_group("billing", false, Some("active on target".into()));
        ab.set_group("fresh", false, Some("no offsets".into()));
        let groups = board.snapshot().flows[0].groups.clone();
        assert_eq!(groups[0].group, "billing");
        assert!(!groups[0].checkpointed);
        assert_eq!(
            groups[0].skipped_reason.as_deref(),
            Some("active on target")
        );
        assert!(groups[0].last_checkpoint_unix_ms.is_some());
        assert_eq!(groups[1].last_checkpoint_unix_ms, None);
        ab.remove_group("fresh");
        assert_eq!(board.snapshot().flows[0].groups.len(), 1);
    }

    #[test]
    fn json_shape_is_lowercase_and_round_trips() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        ab.set_state(FlowState::Retrying, Some("boom".into()));
        ab.set_partition("t", 0, Some(3), Some(1));
        ab.add_skipped("t", 0, 5);
        ab.note_unusual("t", 0, 2, "header key is not UTF-8");
        ab.set_task("source-0", TaskState::Error, 2, Some("denied".into()));
        board.set_reload_result(ReloadReport::invalid_config(vec!["f:3: error".into()]));
        let report = board.snapshot();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["flows"][0]["state"], "retrying");
        assert_eq!(json["flows"][0]["id"], "A->B");
        assert_eq!(json["flows"][0]["tasks"][0]["state"], "error");
        let partition = &json["flows"][0]["topics"][0]["partitions"][0];
        assert_eq!(partition["lag"], 2);
        assert_eq!(partition["records_skipped"], 5);
        assert_eq!(partition["unusual_records"]["count"], 1);
        assert!(partition.get("stalled").is_none(), "absent while flowing");
        assert_eq!(json["last_reload"]["result"], "invalid_config");
        assert_eq!(json["summary"]["retrying"], 1);
        let back: StatusReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
