//! The JSON model of `GET /status` ([`StatusReport`]) and the one-line summary systemd shows.
//! Also `Deserialize`, for `kafka-mirrord status`. Every field added later is optional or has a
//! default, so a newer `status` command still reads an older daemon's answer.

use serde::{Deserialize, Serialize};

use super::{FlowState, ReloadReport, TaskState};

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
    /// Flows this process does not run because another node leads them with a different plan.
    #[serde(default)]
    pub standby: usize,
    /// Sum of the known per-partition lags, in records.
    pub lag: i64,
    /// Partitions whose lag is not known yet (no end offset or no position reported).
    pub lag_unknown_partitions: usize,
    /// Partitions held at a record the target does not accept.
    #[serde(default)]
    pub stalled_partitions: usize,
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
    /// The flow's tasks, each supervised (restarted with backoff) on its own.
    #[serde(default)]
    pub tasks: Vec<TaskStatus>,
    pub topics: Vec<TopicStatus>,
    pub groups: Vec<GroupStatus>,
    /// How the processes running this flow share it (absent until it joined the group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<MembershipStatus>,
}

/// The flow's group on the target cluster, as this process sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipStatus {
    pub group: String,
    /// `joining`, `member`, `standby` (another plan leads), `unavailable` (cannot join).
    pub state: String,
    /// This process is the flow's leader (connector duties, checkpoints, heartbeats).
    pub leader: bool,
    pub generation: Option<i32>,
    /// This process's plan fingerprint.
    pub plan: String,
    pub owned_tasks: Vec<usize>,
    pub owned_partitions: usize,
    pub members: Vec<MemberStatus>,
    pub conflict: Option<String>,
    pub problem: Option<String>,
    pub rebalances: u64,
    pub last_rebalance_unix_ms: Option<u64>,
    pub last_rebalance_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub member_id: String,
    pub host: String,
    pub node: Option<String>,
    pub pid: Option<u32>,
    pub version: Option<String>,
    pub plan: Option<String>,
    pub tasks: Vec<usize>,
    /// Source partitions of those tasks (by the slot rule, from this process's topic list).
    pub partitions: usize,
    pub leader: bool,
    pub this_process: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// `connector`, `source-<n>`, `checkpoints`, `heartbeats`.
    pub name: String,
    pub state: TaskState,
    pub since_unix_ms: u64,
    /// How often the supervisor restarted it after a failure or panic.
    pub restarts: u64,
    pub last_error: Option<String>,
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
    /// The source partition's end: the last stable offset for `read_committed` (what can be
    /// read), the high watermark otherwise.
    pub source_end_offset: Option<i64>,
    /// The next source offset to replicate: last replicated offset + 1.
    pub replicated_offset: Option<i64>,
    /// `source_end_offset − replicated_offset` (never negative); `None` until both are known.
    pub lag: Option<i64>,
    /// Set while the partition is held at a record the target does not accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled: Option<Stall>,
    /// Records deleted at the source (retention, DeleteRecords) before they were replicated,
    /// counted since the daemon started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub records_skipped: u64,
    /// Records copied byte for byte that Java clients would read differently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusual_records: Option<UnusualRecords>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A partition held at a poison record: replication of that partition waits, is retried with
/// backoff, and never skips the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// The source offset of the record the target refused.
    pub offset: i64,
    pub reason: String,
    pub fix: String,
    pub since_unix_ms: u64,
    pub attempts: u32,
    pub next_retry_unix_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnusualRecords {
    pub count: u64,
    pub last_offset: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub group: String,
    pub checkpointed: bool,
    /// Why the group is not checkpointed or synced (e.g. active on the target).
    pub skipped_reason: Option<String>,
    pub last_checkpoint_unix_ms: Option<u64>,
}

/// One line for systemd's `STATUS=`: "3 flows running, lag 0", or when not all run
/// "1/3 flows running (1 retrying, 1 error), lag 120".
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
            (summary.standby, "standby"),
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
    if summary.stalled_partitions > 0 {
        line.push_str(&format!(
            ", {} partitions stalled",
            summary.stalled_partitions
        ));
    }
    line
}
