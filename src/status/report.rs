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
    /// Every selected partition has a known lag of 0, measured by the lag monitor (a
    /// heartbeats-only flow has none and is caught up).
    pub caught_up: bool,
    /// The lag monitor measured every selected partition in its last round (lag 0 before that
    /// means nothing).
    #[serde(default)]
    pub lag_complete: bool,
    /// Age of the oldest record not replicated yet, in seconds (0 when caught up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<u64>,
    /// Since when the lag monitor watches the source (the quiet gate needs that long).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_monitor_since_unix_ms: Option<u64>,
    /// When the lag shown was measured (`/status` asks for a fresh measurement first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_measured_unix_ms: Option<u64>,
    /// Conditions the operator must know about (records lost at the source, a re-created topic,
    /// someone else writing to a remote topic).
    #[serde(default)]
    pub alarms: Vec<Alarm>,
    /// `sync.group.offsets.enabled`: groups' offsets are committed on the target.
    #[serde(default)]
    pub sync_group_offsets: bool,
    /// Whether the last checkpoint round knew from the source's `__consumer_offsets` which
    /// groups committed since the round before (`false`: it asked every group; absent: no round
    /// yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_commit_watch: Option<bool>,
    /// Whether consumers and producers may move to the target now, gate by gate, with the
    /// default options of `kafka-mirrord cutover` (all topics and groups, 30 s quiet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<super::cutover::CutoverVerdict>,
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
    /// A heartbeats topic: replicated like MM2 does, but no consumer's business, so not judged by
    /// the cutover gates (heartbeats keep coming while the flow runs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub heartbeats: bool,
    /// When the source's end last moved (a record written), as seen by the lag monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write_unix_ms: Option<u64>,
    /// The topic's lag over the last minutes, oldest first, one sample every 10 s.
    #[serde(default)]
    pub lag_trend: Vec<i64>,
    pub partitions: Vec<PartitionStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub partition: i32,
    /// The source partition's end: the last stable offset for `read_committed` (what can be
    /// read), the high watermark otherwise.
    pub source_end_offset: Option<i64>,
    /// The next source offset to replicate: last replicated offset + 1 (markers and aborted
    /// records past the last copied record count as replicated).
    pub replicated_offset: Option<i64>,
    /// `source_end_offset − replicated_offset` (never negative); `None` until both are known.
    pub lag: Option<i64>,
    /// The next source offset to replicate by the *stored* progress (what a restart, another
    /// node and the offset translation rely on); the cutover's lag gate waits for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_offset: Option<i64>,
    /// The source partition's log start (records below were deleted by retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_offset: Option<i64>,
    /// When the source's end last moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write_unix_ms: Option<u64>,
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
    /// How its committed offsets translate: exactly, or with at most some re-reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<GroupTranslation>,
    /// Its offsets on the target (`sync.group.offsets.enabled`): `in_sync`, `active_on_target`,
    /// `target_ahead`, `no_translation`; absent while not synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_offsets: Option<String>,
    /// Members seen on the source and on the target at the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_members: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_members: Option<usize>,
}

/// How well a group's committed offsets translate to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GroupTranslation {
    /// Moved consumers resume at exactly the record after their last committed one.
    Exact,
    /// They may read up to `max_rereads` records again (never skip one).
    Approximate { max_rereads: i64 },
}

impl GroupTranslation {
    pub fn describe(self) -> String {
        match self {
            GroupTranslation::Exact => "exact".to_string(),
            GroupTranslation::Approximate { max_rereads } => {
                format!("approximate (at most {max_rereads} re-reads)")
            }
        }
    }
}

/// Something the operator must know before a cutover; one WARN per episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub kind: AlarmKind,
    /// The source topic.
    pub topic: String,
    pub partition: i32,
    pub since_unix_ms: u64,
    /// Records concerned (skipped, or written by someone else), when known.
    pub count: u64,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Source retention (or DeleteRecords) deleted records before they were replicated.
    RecordsSkipped,
    /// The source topic was deleted and created again (new topic id; its offsets started over).
    TopicRecreated,
    /// The remote topic's end moved beyond what kafka-mirrord wrote: someone else writes to it.
    ForeignWrites,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 3] = [
        AlarmKind::RecordsSkipped,
        AlarmKind::TopicRecreated,
        AlarmKind::ForeignWrites,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::RecordsSkipped => "records_skipped",
            AlarmKind::TopicRecreated => "topic_recreated",
            AlarmKind::ForeignWrites => "foreign_writes",
        }
    }
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
