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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod cutover;
mod entries;
mod handle;
mod report;
use entries::FlowEntry;
pub use handle::{FlowStatusHandle, LagRound, Measured};
pub use report::{
    summary_line, Alarm, AlarmKind, FlowStatus, GroupStatus, GroupTranslation, MemberStatus,
    MembershipStatus, PartitionStatus, Stall, StatusReport, Summary, TaskStatus, TopicStatus,
    UnusualRecords,
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
    /// Fresh lag measurements asked for (by `/status`).
    fresh_lag: Arc<FreshRequests>,
}

/// Fresh lag measurements asked for, counted, and a wake-up for the monitors waiting for one.
#[derive(Debug, Default)]
struct FreshRequests {
    count: AtomicU64,
    lock: Mutex<()>,
    asked: Condvar,
}

impl FreshRequests {
    fn ask(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
        // Taken so a monitor between its check and its wait cannot miss the wake-up.
        let _guard = crate::locks::lock(&self.lock);
        self.asked.notify_all();
    }

    /// Waits until the count is past `seen` or `timeout` passed.
    fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = crate::locks::lock(&self.lock);
        if self.count.load(Ordering::Acquire) != seen {
            return;
        }
        let _ = self.asked.wait_timeout(guard, timeout);
    }
}

#[derive(Debug)]
struct Board {
    started_at_unix_ms: u64,
    flows: BTreeMap<FlowId, FlowEntry>,
    last_reload: Option<ReloadReport>,
    next_instance: u64,
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
            fresh_lag: Arc::default(),
        }
    }

    /// How many fresh lag measurements were asked for, ever.
    pub fn fresh_lag_requests(&self) -> u64 {
        self.fresh_lag.count.load(Ordering::Acquire)
    }

    /// Blocks until a fresh lag measurement is asked for after the `seen`-th one, or `timeout`
    /// passed (an idle lag monitor's wait: it wakes at once for `/status`).
    pub fn wait_for_fresh_lag_request(&self, seen: u64, timeout: Duration) {
        self.fresh_lag.wait_past(seen, timeout)
    }

    /// Asks every idle lag monitor for a fresh round and waits (up to `timeout`) until each
    /// running flow's lag was measured at most a second before the call: what `/status` shows
    /// (and the cutover verdict judges) is never an idle monitor's old round.
    pub async fn fresh_lag(&self, timeout: Duration) {
        let asked_at = unix_ms_now();
        self.fresh_lag.ask();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stale = self.lock().flows.values().any(|entry| {
                entry.lag_idle
                    && entry.state == FlowState::Running
                    && entry
                        .lag_measured_unix_ms
                        .is_some_and(|at| at + 1_000 < asked_at)
            });
            if !stale || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
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
        board
            .flows
            .insert(flow.clone(), FlowEntry::new(instance, unix_ms_now()));
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
        let now = unix_ms_now();
        let mut summary = Summary::default();
        let mut flows = Vec::with_capacity(board.flows.len());
        for (id, entry) in &board.flows {
            let mut flow = entry.report(id.to_string(), &mut summary);
            if flow.lag_monitor_since_unix_ms.is_some() {
                flow.cutover = Some(cutover::judge(
                    &flow,
                    &cutover::CutoverOptions::default(),
                    now,
                ));
            }
            flows.push(flow);
        }
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at_unix_ms: board.started_at_unix_ms,
            summary,
            flows,
            last_reload: board.last_reload.clone(),
        }
    }

    /// Asks the checkpoint task of every flow matching `flow` (all when `None`) for one
    /// immediate round; per flow, the request number and where its completion shows, or why it
    /// cannot run here (another node leads the flow).
    pub fn request_final_sync(&self, flow: Option<&str>) -> Vec<(String, FinalSyncTicket)> {
        let board = self.lock();
        board
            .flows
            .iter()
            .filter(|(id, _)| flow.map_or(true, |wanted| wanted == id.to_string()))
            .map(|(id, entry)| {
                let runs_checkpoints = entry
                    .tasks
                    .get("checkpoints")
                    .is_some_and(|task| matches!(task.state, TaskState::Running));
                let ticket = if runs_checkpoints {
                    let mut number = 0;
                    entry.final_sync_requested.send_modify(|requested| {
                        *requested += 1;
                        number = *requested;
                    });
                    Ok((number, entry.final_sync_done.subscribe()))
                } else {
                    Err(leader_hint(entry))
                };
                (id.to_string(), ticket)
            })
            .collect()
    }

    /// One line for systemd's `STATUS=` (see [`summary_line`]).
    pub fn summary_line(&self) -> String {
        // Asked every second: counts, without building the whole report.
        let board = self.lock();
        let mut summary = Summary::default();
        for entry in board.flows.values() {
            entry.count_into(&mut summary);
        }
        summary_line(&summary)
    }
}

/// A final-sync request: its number and the done-counter to wait on, or why it cannot run here.
pub type FinalSyncTicket = Result<(u64, tokio::sync::watch::Receiver<u64>), String>;

/// Why a flow's checkpoints do not run in this process, naming the node that runs them.
fn leader_hint(entry: &FlowEntry) -> String {
    let leader = entry
        .membership
        .as_ref()
        .and_then(|m| m.members.iter().find(|member| member.leader).cloned());
    match leader {
        Some(leader) if !leader.this_process => format!(
            "this process does not run the flow's checkpoints; its leader does: host {}{}",
            leader.host,
            leader
                .pid
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default()
        ),
        _ => "the flow's checkpoint task is not running here (checkpoints disabled, or starting)"
            .to_string(),
    }
}

pub(crate) fn unix_ms_now() -> u64 {
    crate::clock::unix_ms().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the lag monitor (`end`) and a source task (`next`) would report.
    fn measure(
        flow: &FlowStatusHandle,
        topic: &str,
        partition: i32,
        end: Option<i64>,
        next: Option<i64>,
    ) {
        if let Some(end) = end {
            flow.set_measured(
                topic,
                partition,
                Measured {
                    end,
                    earliest: 0,
                    stored_next: None,
                    last_write_unix_ms: None,
                },
            );
        }
        if let Some(next) = next {
            flow.set_replicated(topic, partition, next);
        }
        flow.set_lag_round(LagRound {
            complete: true,
            caught_up: false,
            lag_seconds: None,
            since_unix_ms: 1,
            idle: false,
        });
    }

    fn id(source: &str, target: &str) -> FlowId {
        FlowId {
            source: source.into(),
            target: target.into(),
        }
    }

    #[tokio::test]
    async fn status_waits_for_an_idle_lag_monitor_to_measure_again() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        ab.set_state(FlowState::Running, None);
        let idle_since = |board: &StatusBoard, ago_ms: u64| {
            let mut locked = board.lock();
            let entry = locked.flows.values_mut().next().unwrap();
            entry.lag_idle = true;
            entry.lag_measured_unix_ms = Some(unix_ms_now() - ago_ms);
        };
        // Measured half a second ago: fresh enough, no wait.
        idle_since(&board, 500);
        let started = std::time::Instant::now();
        board.fresh_lag(Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(ab.fresh_lag_requests(), 1);

        // Measured 5 s ago: the answer waits for the round the request brings.
        idle_since(&board, 5_000);
        let monitor = ab.clone();
        let round = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            monitor.set_lag_round(LagRound {
                complete: true,
                caught_up: true,
                lag_seconds: Some(0),
                since_unix_ms: 1,
                idle: true,
            });
        });
        let started = std::time::Instant::now();
        board.fresh_lag(Duration::from_secs(5)).await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(4),
            "{waited:?}"
        );
        round.await.unwrap();

        // A monitor that does not answer holds the answer back no longer than the timeout.
        idle_since(&board, 5_000);
        let started = std::time::Instant::now();
        board.fresh_lag(Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn lag_is_end_minus_position_per_partition_topic_flow_and_total() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        ab.set_state(FlowState::Running, None);
        measure(&ab, "orders", 0, Some(100), Some(90));
        measure(&ab, "orders", 1, Some(50), Some(50));
        measure(&ab, "payments", 0, Some(7), Some(2));
        // A position past the end (end offset reported earlier than the position) is lag 0.
        measure(&ab, "payments", 1, Some(3), Some(5));

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
        measure(&ab, "orders", 0, None, Some(100));
        measure(&ab, "payments", 0, None, Some(7));
        let report = board.snapshot();
        assert_eq!(report.summary.lag, 0);
        assert!(report.flows[0].caught_up);
        assert_eq!(board.summary_line(), "1 flow running, lag 0");
    }

    #[test]
    fn unknown_offsets_give_unknown_lag_and_keep_earlier_values() {
        let board = StatusBoard::new();
        let ab = board.register_flow(&id("A", "B"));
        measure(&ab, "t", 0, Some(10), None);
        let report = board.snapshot();
        assert_eq!(report.flows[0].topics[0].partitions[0].lag, None);
        assert_eq!(report.summary.lag_unknown_partitions, 1);
        assert!(!report.flows[0].caught_up);
        measure(&ab, "t", 0, None, Some(4));
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
        measure(&old, "t", 0, Some(10), Some(10));
        let new = board.register_flow(&id("A", "B"));
        // The old instance's final report arrives after the new one started.
        old.set_state(FlowState::Stopped, Some("late".into()));
        measure(&old, "t", 0, Some(99), Some(1));
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
        measure(&ab, "t", 0, Some(120), Some(0));
        measure(&ab, "t", 1, Some(1), None);
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
        measure(&ab, "t", 1, None, Some(1));
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
        // The line counts without building the report: the same figures as the snapshot's.
        measure(&ab, "t", 2, None, Some(3));
        assert_eq!(
            board.summary_line(),
            summary_line(&board.snapshot().summary)
        );
        assert!(board.summary_line().contains(" partitions unknown)"));
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
        measure(&ab, "t", 0, Some(3), Some(1));
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
