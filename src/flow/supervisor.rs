//! One supervisor per flow: it owns each of the flow's tasks separately — the connector, every
//! source task slot, checkpoints, heartbeats — restarts a task that failed or panicked with
//! backoff (1 s doubling to 5 min, back to 1 s after a minute of health), counts the restarts, and
//! keeps each task's state and last error in `/status`. A task never takes another one down.
//!
//! A source task that ends on a record the target refuses names the partition and offset: the
//! supervisor *holds* that partition (no task copies it; nothing after the record is skipped),
//! restarts the task at once for its other partitions, and releases the partition for another try
//! after its own backoff. `/status` shows the held partition with the reason and the fix.
//!
//! Stopping: the flow's [`Stop`] reaches every task (they are its children); the supervisor then
//! waits until every task has ended — source tasks drain and store progress within the stop's
//! deadline — and only then reports `stopped`, so a reload starts the replacement of a changed
//! flow strictly after the old one is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinSet};
use tracing::{error, info, warn};

use super::assignment::{busy_slots, PartitionSet, TopicPartition};
use super::source::{self, HeldPartitions, Hold, TaskInput};
use super::task::{panic_message, TaskFailure, TaskKind, TaskReporter};
use super::{checkpoint_task, connector, heartbeat_task, FlowTelemetry};
use crate::lifecycle::Stop;
use crate::plan::{FlowMode, FlowPlan};
use crate::status::{FlowState, Stall, TaskState};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A task that ran this long before failing starts over with the first backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// What the supervisor knows about one task.
struct TaskRecord {
    state: TaskState,
    restarts: u64,
    backoff: Duration,
    /// When to start it next (set while it is not running).
    start_at: Option<Instant>,
    /// The running instance: its own stop and when it started.
    running: Option<(Stop, Instant)>,
    last_error: Option<String>,
}

impl TaskRecord {
    fn new() -> TaskRecord {
        TaskRecord {
            state: TaskState::Starting,
            restarts: 0,
            backoff: FIRST_BACKOFF,
            start_at: Some(Instant::now()),
            running: None,
            last_error: None,
        }
    }
}

/// A partition held at a refused record.
struct Held {
    offset: i64,
    /// The last offset of the refused request: copied one by one up to it on the next try.
    last_offset: i64,
    reason: String,
    fix: String,
    since_unix_ms: u64,
    attempts: u32,
    backoff: Duration,
    /// When it is released for another try; `None` while a try is in progress.
    retry_at: Option<Instant>,
}

struct Supervisor {
    plan: Arc<FlowPlan>,
    telemetry: FlowTelemetry,
    stop: Stop,
    tasks: BTreeMap<TaskKind, TaskRecord>,
    running: JoinSet<Result<(), TaskFailure>>,
    ids: HashMap<Id, TaskKind>,
    partitions: watch::Sender<Arc<PartitionSet>>,
    held: BTreeMap<TopicPartition, Held>,
    held_tx: watch::Sender<Arc<HeldPartitions>>,
    started_tx: mpsc::UnboundedSender<TaskKind>,
}

/// Runs a flow until its stop is requested and every task has ended.
pub async fn run(plan: Arc<FlowPlan>, telemetry: FlowTelemetry, stop: Stop) {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let mut supervisor = Supervisor {
        partitions: watch::Sender::new(Arc::new(PartitionSet::new())),
        held_tx: watch::Sender::new(Arc::new(HeldPartitions::new())),
        plan: plan.clone(),
        telemetry,
        stop,
        tasks: BTreeMap::new(),
        running: JoinSet::new(),
        ids: HashMap::new(),
        held: BTreeMap::new(),
        started_tx,
    };
    if plan.mode == FlowMode::Replicate {
        supervisor
            .tasks
            .insert(TaskKind::Connector, TaskRecord::new());
        if plan.checkpoints.emit_checkpoints.enabled {
            supervisor
                .tasks
                .insert(TaskKind::Checkpoints, TaskRecord::new());
        }
    } else {
        info!(flow = %plan.id, "heartbeats-only flow started");
    }
    if plan.heartbeats.emit_heartbeats.enabled {
        supervisor
            .tasks
            .insert(TaskKind::Heartbeats, TaskRecord::new());
    }
    let mut partitions = supervisor.partitions.subscribe();
    loop {
        supervisor.reconcile();
        supervisor.report_flow_state();
        let wake = supervisor.next_wake();
        tokio::select! {
            _ = supervisor.stop.requested() => break,
            Some(joined) = supervisor.running.join_next_with_id() => supervisor.on_exit(joined),
            Some(kind) = started_rx.recv() => supervisor.on_started(kind),
            Ok(()) = partitions.changed() => {}
            _ = sleep_until(wake) => {}
        }
    }
    supervisor.finish().await;
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(tokio::time::Instant::from_std(when)).await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    /// Adds source slots that got partitions, asks idle ones to stop, releases held partitions
    /// whose retry is due, and starts every task whose start time has come.
    fn reconcile(&mut self) {
        let now = Instant::now();
        let mut released = false;
        for held in self.held.values_mut() {
            if held.retry_at.is_some_and(|at| at <= now) {
                held.retry_at = None;
                released = true;
            }
        }
        if released {
            self.publish_held();
        }
        if self.plan.mode == FlowMode::Replicate {
            let busy = busy_slots(&self.partitions.borrow(), self.plan.source.tasks_max);
            for slot in &busy {
                self.tasks
                    .entry(TaskKind::Source(*slot))
                    .or_insert_with(TaskRecord::new);
            }
            let idle: Vec<TaskKind> = self
                .tasks
                .keys()
                .filter(|kind| matches!(kind, TaskKind::Source(slot) if !busy.contains(slot)))
                .copied()
                .collect();
            for kind in idle {
                self.retire(kind);
            }
        }
        let due: Vec<TaskKind> = self
            .tasks
            .iter()
            .filter(|(_, task)| task.running.is_none() && task.start_at.is_some_and(|at| at <= now))
            .map(|(kind, _)| *kind)
            .collect();
        for kind in due {
            self.start(kind);
        }
    }

    /// A source slot without partitions: stop it (drained) and forget it once it ended.
    fn retire(&mut self, kind: TaskKind) {
        let Some(task) = self.tasks.get_mut(&kind) else {
            return;
        };
        match &task.running {
            Some((stop, _)) => {
                if !stop.is_requested() {
                    stop.request(
                        self.stop
                            .time_left(Duration::from_secs(30))
                            .min(Duration::from_secs(30)),
                    );
                }
                task.start_at = None;
            }
            None => {
                self.tasks.remove(&kind);
                self.telemetry.status.remove_task(&kind.to_string());
            }
        }
    }

    fn start(&mut self, kind: TaskKind) {
        let stop = self.stop.child();
        let task = self.tasks.get_mut(&kind).expect("started tasks are known");
        task.start_at = None;
        task.running = Some((stop.clone(), Instant::now()));
        task.state = if task.restarts == 0 {
            TaskState::Starting
        } else {
            task.state
        };
        self.telemetry
            .status
            .set_task(&kind.to_string(), task.state, task.restarts, None);
        let reporter = TaskReporter {
            kind,
            status: self.telemetry.status.clone(),
            restarts: task.restarts,
            started: self.started_tx.clone(),
        };
        let (plan, telemetry) = (self.plan.clone(), self.telemetry.clone());
        let handle = match kind {
            TaskKind::Connector => self.running.spawn(connector::run(
                plan,
                self.partitions.clone(),
                stop,
                telemetry,
                reporter,
            )),
            TaskKind::Checkpoints => self
                .running
                .spawn(checkpoint_task::run(plan, stop, telemetry, reporter)),
            TaskKind::Heartbeats => self
                .running
                .spawn(heartbeat_task::run(plan, stop, reporter)),
            TaskKind::Source(slot) => {
                let input = TaskInput {
                    flow: plan,
                    slot,
                    partitions: self.partitions.subscribe(),
                    held: self.held_tx.subscribe(),
                    stop,
                    telemetry,
                    reporter,
                };
                self.running.spawn(async move {
                    match tokio::task::spawn_blocking(move || source::run(input)).await {
                        Ok(result) => result,
                        Err(join) if join.is_panic() => {
                            Err(TaskFailure::Panicked(panic_message(join.into_panic())))
                        }
                        Err(join) => Err(TaskFailure::Panicked(join.to_string())),
                    }
                })
            }
        };
        self.ids.insert(handle.id(), kind);
    }

    fn on_started(&mut self, kind: TaskKind) {
        if let Some(task) = self.tasks.get_mut(&kind) {
            if task.running.is_some() {
                task.state = TaskState::Running;
            }
        }
    }

    fn on_exit(&mut self, joined: Result<(Id, Result<(), TaskFailure>), tokio::task::JoinError>) {
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, outcome),
            Err(join) => {
                let id = join.id();
                let message = if join.is_panic() {
                    panic_message(join.into_panic())
                } else {
                    join.to_string()
                };
                (id, Err(TaskFailure::Panicked(message)))
            }
        };
        let Some(kind) = self.ids.remove(&id) else {
            return;
        };
        let Some(task) = self.tasks.get_mut(&kind) else {
            return;
        };
        let (own_stop, started) = task.running.take().expect("an exiting task was running");
        let name = kind.to_string();
        if own_stop.is_requested() && !self.stop.is_requested() && task.start_at.is_none() {
            // A source slot that lost its partitions: it drained and is done.
            self.tasks.remove(&kind);
            self.telemetry.status.remove_task(&name);
            return;
        }
        match outcome {
            Ok(()) => {
                // Ended without being asked (a task that has nothing to do): start it again later.
                task.state = TaskState::Retrying;
                task.start_at = Some(Instant::now() + task.backoff);
                self.telemetry
                    .status
                    .set_task(&name, task.state, task.restarts, None);
            }
            Err(failure) => {
                let restart_now = self.hold_if_refused(&kind, &failure);
                let task = self.tasks.get_mut(&kind).expect("still known");
                if started.elapsed() > HEALTHY_AFTER {
                    task.backoff = FIRST_BACKOFF;
                }
                let message = failure.to_string();
                let wait = if restart_now {
                    Duration::ZERO
                } else {
                    task.backoff
                };
                error!(flow = %self.plan.id, task = %name, retry_in_ms = wait.as_millis() as u64, "task failed: {message}");
                self.telemetry.metrics.error(&self.plan.id, failure.kind());
                self.telemetry.metrics.task_restarted(&self.plan.id, &name);
                task.restarts += 1;
                task.state = if failure.needs_operator() {
                    TaskState::Error
                } else {
                    TaskState::Retrying
                };
                task.last_error = Some(message.clone());
                task.start_at = Some(Instant::now() + wait);
                if !restart_now {
                    task.backoff = (task.backoff * 2).min(MAX_BACKOFF);
                }
                self.telemetry
                    .status
                    .set_task(&name, task.state, task.restarts, Some(message));
            }
        }
    }

    /// A refused record or a deleted one that may not be skipped: hold its partition (returns true:
    /// the task restarts at once for its other partitions).
    fn hold_if_refused(&mut self, kind: &TaskKind, failure: &TaskFailure) -> bool {
        let (topic, partition, offset, last_offset, reason, fix) = match failure {
            TaskFailure::Rejected {
                topic,
                partition,
                offset,
                last_offset,
                reason,
                fix,
            } => (topic, *partition, *offset, *last_offset, reason.clone(), fix.clone()),
            TaskFailure::SourceRecordsDeleted {
                topic,
                partition,
                next,
                ..
            } => (
                topic,
                *partition,
                *next,
                *next,
                failure.to_string(),
                "set the source consumer's `auto.offset.reset` to `earliest` (skips the deleted records) and reload".to_string(),
            ),
            _ => return false,
        };
        if !matches!(kind, TaskKind::Source(_)) {
            return false;
        }
        let key = (topic.clone(), partition);
        let now = Instant::now();
        let held = self.held.entry(key).or_insert_with(|| Held {
            offset,
            last_offset,
            reason: reason.clone(),
            fix: fix.clone(),
            since_unix_ms: crate::clock::unix_ms().max(0) as u64,
            attempts: 0,
            backoff: FIRST_BACKOFF,
            retry_at: None,
        });
        if held.offset != offset {
            // It moved on since the last refusal: a new episode.
            held.offset = offset;
            held.attempts = 0;
            held.backoff = FIRST_BACKOFF;
            held.since_unix_ms = crate::clock::unix_ms().max(0) as u64;
        }
        held.last_offset = last_offset.max(offset);
        held.reason = reason;
        held.fix = fix;
        held.attempts += 1;
        held.retry_at = Some(now + held.backoff);
        held.backoff = (held.backoff * 2).min(MAX_BACKOFF);
        warn!(flow = %self.plan.id, topic = %topic, partition, offset, attempts = held.attempts,
            "partition held at a record it cannot copy; the others continue, it is retried with backoff");
        self.publish_held();
        true
    }

    /// Publishes the held partitions to the source tasks and `/status`. A partition released for
    /// a retry stays in `/status` until it gets past the record (the task clears it then).
    fn publish_held(&mut self) {
        let held: HeldPartitions = self
            .held
            .iter()
            .map(|(key, held)| {
                let hold = if held.retry_at.is_some() {
                    Hold::Held
                } else {
                    Hold::OneByOneUntil(held.last_offset)
                };
                (key.clone(), hold)
            })
            .collect();
        for ((topic, partition), held) in &self.held {
            let next_retry = held.retry_at.map_or(0, |at| {
                crate::clock::unix_ms().max(0) as u64
                    + at.saturating_duration_since(Instant::now()).as_millis() as u64
            });
            self.telemetry.status.set_stall(
                topic,
                *partition,
                Some(Stall {
                    offset: held.offset,
                    reason: held.reason.clone(),
                    fix: held.fix.clone(),
                    since_unix_ms: held.since_unix_ms,
                    attempts: held.attempts,
                    next_retry_unix_ms: next_retry,
                }),
            );
        }
        self.telemetry
            .metrics
            .set_stalled_partitions(&self.plan.id, self.held.len());
        self.held_tx.send_replace(Arc::new(held));
    }

    /// Forgets held partitions that got past their record (or are no longer replicated).
    fn release_recovered(&mut self) {
        let positions = self.telemetry.status.replicated_positions();
        let all = self.partitions.borrow().clone();
        let recovered: Vec<TopicPartition> = self
            .held
            .iter()
            .filter(|(key, held)| {
                held.retry_at.is_none()
                    && (!all.contains(*key)
                        || positions.get(*key).is_some_and(|next| *next > held.offset))
            })
            .map(|(key, _)| key.clone())
            .collect();
        if recovered.is_empty() {
            return;
        }
        for key in recovered {
            info!(flow = %self.plan.id, topic = %key.0, partition = key.1, "held partition flows again");
            self.held.remove(&key);
            self.telemetry.status.set_stall(&key.0, key.1, None);
        }
        self.publish_held();
    }

    fn next_wake(&self) -> Option<Instant> {
        let starts = self.tasks.values().filter_map(|task| task.start_at);
        let retries = self.held.values().filter_map(|held| held.retry_at);
        // Held partitions on trial are checked for recovery every second.
        let trial = self
            .held
            .values()
            .any(|held| held.retry_at.is_none())
            .then(|| Instant::now() + Duration::from_secs(1));
        starts.chain(retries).chain(trial).min()
    }

    /// The flow's state from its tasks': any needing the operator → `error`; any failed and
    /// waiting → `retrying`; all running → `running`; else `starting`.
    fn report_flow_state(&mut self) {
        self.release_recovered();
        let states: BTreeSet<TaskState> = self.tasks.values().map(|task| task.state).collect();
        let error = |state: TaskState| {
            self.tasks
                .iter()
                .find(|(_, task)| task.state == state)
                .and_then(|(kind, task)| {
                    task.last_error
                        .as_ref()
                        .map(|error| format!("{kind}: {error}"))
                })
        };
        // A held partition waits for the operator (a record the target refuses, or deleted
        // records that may not be skipped), even while its task copies the others.
        let held = self.held.iter().next().map(|((topic, partition), held)| {
            format!(
                "`{topic}` partition {partition} waits at source offset {}: {}; fix: {}",
                held.offset, held.reason, held.fix
            )
        });
        let (state, last_error) = if states.contains(&TaskState::Error) {
            (FlowState::Error, error(TaskState::Error))
        } else if held.is_some() {
            (FlowState::Error, held)
        } else if states.contains(&TaskState::Retrying) {
            (FlowState::Retrying, error(TaskState::Retrying))
        } else if states.iter().all(|state| *state == TaskState::Running) {
            (FlowState::Running, None)
        } else {
            (FlowState::Starting, None)
        };
        self.telemetry.set_flow_state(state, last_error);
    }

    /// Every task was asked to stop (they are children of the flow's stop): wait for all of them.
    async fn finish(mut self) {
        for (kind, task) in &mut self.tasks {
            if task.running.is_some() {
                task.state = TaskState::Stopping;
                self.telemetry.status.set_task(
                    &kind.to_string(),
                    TaskState::Stopping,
                    task.restarts,
                    None,
                );
            }
        }
        while let Some(joined) = self.running.join_next_with_id().await {
            let id = match &joined {
                Ok((id, _)) => *id,
                Err(join) => join.id(),
            };
            if let Some(kind) = self.ids.remove(&id) {
                if let Err(join) = joined {
                    if join.is_panic() {
                        error!(flow = %self.plan.id, task = %kind, "task panicked while stopping");
                    }
                }
                let restarts = self.tasks.get(&kind).map_or(0, |task| task.restarts);
                self.telemetry.status.set_task(
                    &kind.to_string(),
                    TaskState::Stopped,
                    restarts,
                    None,
                );
            }
        }
        self.telemetry.set_flow_state(FlowState::Stopped, None);
        info!(flow = %self.plan.id, "flow stopped");
    }
}
