//! What the supervisor knows about a flow's tasks: their names ([`TaskKind`]), why one ended
//! before it was asked to ([`TaskFailure`], typed so the supervisor can decide without matching
//! message text), and how a running task reports that it started ([`TaskReporter`]).

use std::fmt;

use tokio::sync::mpsc;

use crate::status::{FlowStatusHandle, TaskState};

/// One supervised task of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskKind {
    /// Topic discovery; as leader also topic creation, growth, config and ACL sync (MM2's
    /// MirrorSourceConnector).
    Connector,
    /// One slot of `tasks.max`: copies the source partitions of that slot (MirrorSourceTask).
    Source(usize),
    /// Checkpoints and group offset sync (MirrorCheckpointTask).
    Checkpoints,
    /// Heartbeats (MirrorHeartbeatTask).
    Heartbeats,
    /// The lag monitor and alarms (`lag.rs`), on every member.
    Lag,
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskKind::Connector => f.write_str("connector"),
            TaskKind::Source(slot) => write!(f, "source-{slot}"),
            TaskKind::Checkpoints => f.write_str("checkpoints"),
            TaskKind::Heartbeats => f.write_str("heartbeats"),
            TaskKind::Lag => f.write_str("lag-monitor"),
        }
    }
}

/// Why a task ended before it was asked to. Messages never carry secrets: they are built from
/// client errors and names, never from settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskFailure {
    #[error("cannot create a Kafka client: {0}")]
    Client(String),
    /// A cluster does not answer, or answered with an error a retry may resolve.
    #[error("{0}")]
    Unavailable(String),
    /// The broker refused us something only the operator can grant.
    #[error("{message}; fix: {fix}")]
    NotAuthorized { message: String, fix: String },
    /// Stored progress could not be read: replication does not start rather than replay or skip.
    #[error("cannot read stored progress from `{topic}`: {reason}")]
    Progress { topic: String, reason: String },
    /// The target refused a record: its partition waits at that record (never skipped).
    #[error("the target refused `{topic}` partition {partition} at source offset {offset}: {reason}; fix: {fix}")]
    Rejected {
        topic: String,
        partition: i32,
        offset: i64,
        /// The last offset of the refused request: a batch is refused as a whole.
        last_offset: i64,
        reason: String,
        fix: String,
    },
    /// Records were deleted at the source before replication and `auto.offset.reset = none`
    /// forbids skipping them.
    #[error("`{topic}` partition {partition}: the next record to copy ({next}) was deleted at the source (log start {log_start}) and `auto.offset.reset` is `none`; fix: set it to `earliest` to skip the {skipped} deleted records, or raise the source's retention and reseed")]
    SourceRecordsDeleted {
        topic: String,
        partition: i32,
        next: i64,
        log_start: i64,
        skipped: i64,
    },
    #[error("transaction failed: {0}")]
    Transaction(String),
    #[error("source offset {0} does not fit the delivery bookkeeping (2^46)")]
    OffsetTooLarge(i64),
    #[error("task panicked: {0}")]
    Panicked(String),
}

impl TaskFailure {
    /// A bounded label for `kafka_mirrord_errors_total{kind}`.
    pub fn kind(&self) -> &'static str {
        match self {
            TaskFailure::Client(_) => "client",
            TaskFailure::Unavailable(_) => "unavailable",
            TaskFailure::NotAuthorized { .. } => "authorization",
            TaskFailure::Progress { .. } => "progress",
            TaskFailure::Rejected { .. } => "delivery",
            TaskFailure::SourceRecordsDeleted { .. } => "offset_reset",
            TaskFailure::Transaction(_) => "transaction",
            TaskFailure::OffsetTooLarge(_) => "offset",
            TaskFailure::Panicked(_) => "panic",
        }
    }

    /// Whether the operator must act (shown as state `error`); the task is retried either way.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            TaskFailure::NotAuthorized { .. }
                | TaskFailure::Progress { .. }
                | TaskFailure::SourceRecordsDeleted { .. }
                | TaskFailure::OffsetTooLarge(_)
        )
    }
}

/// Given to a running task: reports `running` once its clients are up and its partitions
/// assigned (the supervisor derives the flow's state from it).
#[derive(Debug, Clone)]
pub struct TaskReporter {
    pub(super) kind: TaskKind,
    pub(super) status: FlowStatusHandle,
    pub(super) restarts: u64,
    pub(super) started: mpsc::UnboundedSender<TaskKind>,
}

impl TaskReporter {
    pub fn running(&self) {
        self.status.set_task(
            &self.kind.to_string(),
            TaskState::Running,
            self.restarts,
            None,
        );
        let _ = self.started.send(self.kind);
    }

    pub fn kind(&self) -> TaskKind {
        self.kind
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}
