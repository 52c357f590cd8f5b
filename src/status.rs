//! The `/status` report: a [`StatusBoard`] the flows and the run loop update, and its JSON
//! snapshot ([`StatusReport`]), which also feeds systemd's one-line `STATUS=`
//! ([`StatusBoard::summary_line`]).
//!
//! The board is a map behind one `Mutex`; writers are flows reporting state changes and periodic
//! offsets (never per record), readers are `/status` and the STATUS= line, so contention is
//! negligible. Only strings the caller passes are stored: error texts must already be free of
//! secrets (the flows format client errors, which never carry passwords).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

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
}

impl FlowState {
    pub const ALL: [FlowState; 5] = [
        FlowState::Starting,
        FlowState::Running,
        FlowState::Retrying,
        FlowState::Stopped,
        FlowState::Error,
    ];

    /// The lowercase name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::Starting => "starting",
            FlowState::Running => "running",
            FlowState::Retrying => "retrying",
            FlowState::Stopped => "stopped",
            FlowState::Error => "error",
        }
    }

    /// Whether the flow counts as started for readiness (`READY=1`, `/ready`): it runs, or it is
    /// retrying an unreachable cluster (systemd must not wait forever for a cluster that is down).
    pub fn has_started(self) -> bool {
        matches!(self, FlowState::Running | FlowState::Retrying)
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

// === the JSON model ===

/// `GET /status`. Also `Deserialize`, for `kafka-mirrord status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub started_at_unix_ms: u64,
    pub summary: Summary,
    pub flows: Vec<FlowStatus>,
    pub last_reload: Option<ReloadReport>,
}

/// Counts over every flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub flows: usize,
    pub starting: usize,
    pub running: usize,
    pub retrying: usize,
    pub stopped: usize,
    pub error: usize,
    /// Sum of the known per-partition lags, in records.
    pub lag: i64,
    /// Partitions whose lag is not known yet (no end offset or no position reported).
    pub lag_unknown_partitions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowStatus {
    pub id: String,
    pub state: FlowState,
    /// When `state` was entered, Unix milliseconds.
    pub since_unix_ms: u64,
    pub last_error: Option<String>,
    /// Sum of the known partition lags of this flow.
    pub lag: i64,
    /// Every partition has a known lag of 0 (vacuously true without partitions, e.g. for a
    /// heartbeats-only flow).
    pub caught_up: bool,
    pub topics: Vec<TopicStatus>,
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicStatus {
    /// The source topic.
    pub name: String,
    pub lag: i64,
    pub partitions: Vec<PartitionStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub partition: i32,
    /// The source partition's high watermark (next offset to be written there).
    pub source_end_offset: Option<i64>,
    /// The next source offset to replicate: last replicated offset + 1.
    pub replicated_offset: Option<i64>,
    /// `source_end_offset − replicated_offset` (never negative); `None` until both are known.
    pub lag: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub group: String,
    pub checkpointed: bool,
    /// Why the group is not checkpointed or synced (e.g. active on the target).
    pub skipped_reason: Option<String>,
    pub last_checkpoint_unix_ms: Option<u64>,
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
}

#[derive(Debug)]
struct FlowEntry {
    state: FlowState,
    since_unix_ms: u64,
    last_error: Option<String>,
    /// source topic → partition → offsets.
    topics: BTreeMap<String, BTreeMap<i32, Offsets>>,
    groups: BTreeMap<String, GroupEntry>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Offsets {
    source_end_offset: Option<i64>,
    replicated_offset: Option<i64>,
}

impl Offsets {
    fn lag(self) -> Option<i64> {
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
    fn new() -> FlowEntry {
        FlowEntry {
            state: FlowState::Starting,
            since_unix_ms: unix_ms_now(),
            last_error: None,
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

    /// Registers the flow if needed and sets its state. The run loop registers a flow (as
    /// `starting`) before starting it and removes it only after it stopped.
    ///
    /// `last_error` replaces the stored error when `Some`; it is kept when `None`, so that
    /// `running` after a retry still shows why it retried (cleared by
    /// [`StatusBoard::clear_error`]).
    pub fn set_flow_state(&self, flow: &FlowId, state: FlowState, last_error: Option<String>) {
        let mut board = self.lock();
        let entry = board
            .flows
            .entry(flow.clone())
            .or_insert_with(FlowEntry::new);
        if entry.state != state {
            entry.state = state;
            entry.since_unix_ms = unix_ms_now();
        }
        if last_error.is_some() {
            entry.last_error = last_error;
        }
    }

    pub fn clear_error(&self, flow: &FlowId) {
        if let Some(entry) = self.lock().flows.get_mut(flow) {
            entry.last_error = None;
        }
    }

    /// Current state of a flow, if registered.
    pub fn flow_state(&self, flow: &FlowId) -> Option<FlowState> {
        self.lock().flows.get(flow).map(|entry| entry.state)
    }

    /// Records a source partition's offsets; `None` keeps the value stored before, so the end
    /// offset and the replicated position can be reported by different code paths.
    /// `replicated_offset` is the next offset to replicate (last replicated + 1).
    ///
    /// Ignored for a flow that is not registered (see [`StatusBoard::set_flow_state`]), so a late
    /// update from a flow being removed cannot bring it back.
    pub fn set_partition(
        &self,
        flow: &FlowId,
        topic: &str,
        partition: i32,
        source_end_offset: Option<i64>,
        replicated_offset: Option<i64>,
    ) {
        let mut board = self.lock();
        let Some(entry) = board.flows.get_mut(flow) else {
            return;
        };
        let offsets = entry
            .topics
            .entry(topic.to_string())
            .or_default()
            .entry(partition)
            .or_default();
        if source_end_offset.is_some() {
            offsets.source_end_offset = source_end_offset;
        }
        if replicated_offset.is_some() {
            offsets.replicated_offset = replicated_offset;
        }
    }

    /// A partition the flow no longer replicates (topic deleted or excluded).
    pub fn remove_partition(&self, flow: &FlowId, topic: &str, partition: i32) {
        let mut board = self.lock();
        if let Some(entry) = board.flows.get_mut(flow) {
            if let Some(partitions) = entry.topics.get_mut(topic) {
                partitions.remove(&partition);
                if partitions.is_empty() {
                    entry.topics.remove(topic);
                }
            }
        }
    }

    /// Records a consumer group's checkpoint state. `checkpointed = true` also stamps the time of
    /// the last checkpoint. Ignored for a flow that is not registered.
    pub fn set_group(
        &self,
        flow: &FlowId,
        group: &str,
        checkpointed: bool,
        skipped_reason: Option<String>,
    ) {
        let mut board = self.lock();
        let Some(entry) = board.flows.get_mut(flow) else {
            return;
        };
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
    }

    pub fn remove_group(&self, flow: &FlowId, group: &str) {
        if let Some(entry) = self.lock().flows.get_mut(flow) {
            entry.groups.remove(group);
        }
    }

    /// Forgets a flow (removed by a reload). A changed flow is better reset with
    /// `set_flow_state(.., Starting, ..)` so it never disappears from `/status`.
    pub fn remove_flow(&self, flow: &FlowId) {
        self.lock().flows.remove(flow);
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
            }
            let mut flow_lag = 0i64;
            let mut caught_up = true;
            let mut topics = Vec::with_capacity(entry.topics.len());
            for (name, partitions) in &entry.topics {
                let mut topic_lag = 0i64;
                let mut rows = Vec::with_capacity(partitions.len());
                for (&partition, &offsets) in partitions {
                    let lag = offsets.lag();
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
                    rows.push(PartitionStatus {
                        partition,
                        source_end_offset: offsets.source_end_offset,
                        replicated_offset: offsets.replicated_offset,
                        lag,
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

    /// One line for systemd's `STATUS=`: "3 flows running, lag 0", or when not all run
    /// "1/3 flows running (1 retrying, 1 error), lag 120".
    pub fn summary_line(&self) -> String {
        summary_line(&self.snapshot().summary)
    }
}

/// See [`StatusBoard::summary_line`].
pub fn summary_line(summary: &Summary) -> String {
    if summary.flows == 0 {
        return "no flows".to_string();
    }
    let plural = if summary.flows == 1 { "flow" } else { "flows" };
    let mut line = if summary.running == summary.flows {
        format!("{} {plural} running", summary.flows)
    } else {
        let others: Vec<String> = [
            (summary.starting, "starting"),
            (summary.retrying, "retrying"),
            (summary.error, "error"),
            (summary.stopped, "stopped"),
        ]
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, name)| format!("{count} {name}"))
        .collect();
        format!(
            "{}/{} {plural} running ({})",
            summary.running,
            summary.flows,
            others.join(", ")
        )
    };
    line.push_str(&format!(", lag {}", summary.lag));
    if summary.lag_unknown_partitions > 0 {
        line.push_str(&format!(
            " ({} partitions unknown)",
            summary.lag_unknown_partitions
        ));
    }
    line
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
        let ab = id("A", "B");
        board.set_flow_state(&ab, FlowState::Running, None);
        board.set_partition(&ab, "orders", 0, Some(100), Some(90));
        board.set_partition(&ab, "orders", 1, Some(50), Some(50));
        board.set_partition(&ab, "payments", 0, Some(7), Some(2));
        // A position past the end (end offset reported earlier than the position) is lag 0.
        board.set_partition(&ab, "payments", 1, Some(3), Some(5));

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
        board.set_partition(&ab, "orders", 0, None, Some(100));
        board.set_partition(&ab, "payments", 0, None, Some(7));
        let report = board.snapshot();
        assert_eq!(report.summary.lag, 0);
        assert!(report.flows[0].caught_up);
        assert_eq!(board.summary_line(), "1 flow running, lag 0");
    }

    #[test]
    fn unknown_offsets_give_unknown_lag_and_keep_earlier_values() {
        let board = StatusBoard::new();
        let ab = id("A", "B");
        board.set_partition(&ab, "t", 0, Some(10), None);
        assert!(
            board.snapshot().flows.is_empty(),
            "unregistered flows are ignored"
        );
        board.set_flow_state(&ab, FlowState::Starting, None);
        board.set_partition(&ab, "t", 0, Some(10), None);
        let report = board.snapshot();
        assert_eq!(report.flows[0].topics[0].partitions[0].lag, None);
        assert_eq!(report.summary.lag_unknown_partitions, 1);
        assert!(!report.flows[0].caught_up);
        board.set_partition(&ab, "t", 0, None, Some(4));
        let partition = board.snapshot().flows[0].topics[0].partitions[0].clone();
        assert_eq!(partition.source_end_offset, Some(10));
        assert_eq!(partition.replicated_offset, Some(4));
        assert_eq!(partition.lag, Some(6));

        board.remove_partition(&ab, "t", 0);
        assert!(board.snapshot().flows[0].topics.is_empty());
    }

    #[test]
    fn summary_line_names_flows_not_running() {
        let board = StatusBoard::new();
        assert_eq!(board.summary_line(), "no flows");
        board.set_flow_state(&id("A", "B"), FlowState::Running, None);
        board.set_flow_state(
            &id("B", "A"),
            FlowState::Retrying,
            Some("`B` unreachable".into()),
        );
        board.set_flow_state(&id("C", "B"), FlowState::Error, Some("denied".into()));
        board.set_partition(&id("A", "B"), "t", 0, Some(120), Some(0));
        board.set_partition(&id("A", "B"), "t", 1, Some(1), None);
        assert_eq!(
            board.summary_line(),
            "1/3 flows running (1 retrying, 1 error), lag 120 (1 partitions unknown)"
        );
        assert!(!board.all_started());
        board.set_flow_state(&id("C", "B"), FlowState::Running, None);
        assert!(board.all_started(), "running and retrying count as started");
        // The error stays visible after recovering, until cleared.
        let report = board.snapshot();
        let cb = report.flows.iter().find(|f| f.id == "C->B").unwrap();
        assert_eq!(cb.last_error.as_deref(), Some("denied"));
        board.clear_error(&id("C", "B"));
        board.remove_flow(&id("B", "A"));
        let report = board.snapshot();
        assert_eq!(report.summary.flows, 2);
        assert!(report.flows.iter().all(|f| f.last_error.is_none()));
    }

    #[test]
    fn groups_keep_the_last_checkpoint_time_when_skipped_later() {
        let board = StatusBoard::new();
        let ab = id("A", "B");
        board.set_flow_state(&ab, FlowState::Running, None);
        board.set_group(&ab, "billing", true, None);
        board.set_group(&ab, "billing", false, Some("active on target".into()));
        board.set_group(&ab, "fresh", false, Some("no offsets".into()));
        let groups = board.snapshot().flows[0].groups.clone();
        assert_eq!(groups[0].group, "billing");
        assert!(!groups[0].checkpointed);
        assert_eq!(
            groups[0].skipped_reason.as_deref(),
            Some("active on target")
        );
        assert!(groups[0].last_checkpoint_unix_ms.is_some());
        assert_eq!(groups[1].last_checkpoint_unix_ms, None);
        board.remove_group(&ab, "fresh");
        assert_eq!(board.snapshot().flows[0].groups.len(), 1);
    }

    #[test]
    fn json_shape_is_lowercase_and_round_trips() {
        let board = StatusBoard::new();
        let ab = id("A", "B");
        board.set_flow_state(&ab, FlowState::Retrying, Some("boom".into()));
        board.set_partition(&ab, "t", 0, Some(3), Some(1));
        board.set_reload_result(ReloadReport::invalid_config(vec!["f:3: error".into()]));
        let report = board.snapshot();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["flows"][0]["state"], "retrying");
        assert_eq!(json["flows"][0]["id"], "A->B");
        assert_eq!(json["flows"][0]["topics"][0]["partitions"][0]["lag"], 2);
        assert_eq!(json["last_reload"]["result"], "invalid_config");
        assert_eq!(json["summary"]["retrying"], 1);
        let back: StatusReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
