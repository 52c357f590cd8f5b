//! One supervisor per flow: it owns each of the flow's tasks separately — the connector, every
//! source task slot, checkpoints, heartbeats — restarts a task that failed or panicked with
//! backoff (1 s doubling to 5 min, back to 1 s after a minute of health), counts the restarts, and
//! keeps each task's state and last error in `/status`. A task never takes another one down.
//!
//! Which tasks run here follows the flow's group membership (`membership.rs`): the source slots
//! this process owns, and — on the leader only — checkpoints, heartbeats and the connector's
//! duties (every process runs the connector's topic discovery). When the group takes slots away,
//! their tasks drain and store progress before the supervisor lets the group release them.
//!
//! A source task that ends on a record it cannot copy names the partition and offset: the
//! supervisor holds that partition (`holds.rs`) and restarts the task at once for the others.
//!
//! Stopping: the flow's [`Stop`] reaches every task (they are its children); the supervisor waits
//! until every task has ended — source tasks drain and store progress within the stop's deadline
//! — then leaves the group and reports `stopped`, so a reload starts the replacement of a changed
//! flow strictly after the old one is gone, and another node takes the slots only after that.

mod holds;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinSet};
use tracing::{error, info};

use self::holds::Holds;
use super::assignment::{busy_slots, PartitionSet};
use super::membership::{MemberState, Membership, MembershipView, Revocation};
use super::source::{self, TaskInput};
use super::task::{panic_message, TaskFailure, TaskKind, TaskReporter};
use super::{checkpoint_task, connector, heartbeat_task, lag, FlowTelemetry};
use crate::lifecycle::Stop;
use crate::plan::{FlowMode, FlowPlan};
use crate::status::{FlowState, TaskState};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A task that ran this long before failing starts over with the first backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// What the supervisor knows about one task.
struct TaskRecord {
    state: TaskState,
    restarts: u64,
    backoff: Duration,
    /// When to start it next (set while it is not running and wanted).
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

struct Supervisor {
    plan: Arc<FlowPlan>,
    telemetry: FlowTelemetry,
    stop: Stop,
    /// How long a task given away to another node may drain.
    drain: Duration,
    tasks: BTreeMap<TaskKind, TaskRecord>,
    running: JoinSet<Result<(), TaskFailure>>,
    ids: HashMap<Id, TaskKind>,
    partitions: watch::Sender<Arc<PartitionSet>>,
    holds: Holds,
    view: watch::Receiver<MembershipView>,
    leader: watch::Sender<bool>,
    /// Slots given away by the group, answered once their tasks ended.
    revocations: Vec<(BTreeSet<usize>, std_mpsc::Sender<()>)>,
    started_tx: mpsc::UnboundedSender<TaskKind>,
    /// The connector published the selected partitions at least once (the lag monitor starts
    /// then, so "caught up" never comes from an empty list).
    discovered: bool,
}

/// Runs a flow until its stop is requested and every task has ended. `drain` is the time a task
/// given away to another node may take to drain.
pub async fn run(plan: Arc<FlowPlan>, telemetry: FlowTelemetry, stop: Stop, drain: Duration) {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let (membership, view, mut revocations) = Membership::start(plan.clone(), drain);
    let mut supervisor = Supervisor {
        partitions: watch::Sender::new(Arc::new(PartitionSet::new())),
        holds: Holds::new(plan.id.clone(), telemetry.clone()),
        leader: watch::Sender::new(false),
        plan: plan.clone(),
        telemetry,
        stop,
        drain,
        tasks: BTreeMap::new(),
        running: JoinSet::new(),
        ids: HashMap::new(),
        view,
        revocations: Vec::new(),
        started_tx,
        discovered: false,
    };
    if plan.mode == FlowMode::Replicate {
        // Every process discovers the partitions; only the leader creates and syncs topics.
        supervisor
            .tasks
            .insert(TaskKind::Connector, TaskRecord::new());
    } else {
        info!(flow = %plan.id, "heartbeats-only flow started");
        supervisor.telemetry.status.set_nothing_to_replicate();
    }
    let mut partitions = supervisor.partitions.subscribe();
    let mut view = supervisor.view.clone();
    loop {
        supervisor.reconcile();
        supervisor.report();
        let wake = supervisor.next_wake();
        tokio::select! {
            _ = supervisor.stop.requested() => break,
            Some(joined) = supervisor.running.join_next_with_id() => supervisor.on_exit(joined),
            Some(kind) = started_rx.recv() => supervisor.on_started(kind),
            Some(revocation) = revocations.recv() => supervisor.on_revoked(revocation),
            Ok(()) = partitions.changed() => supervisor.discovered = true,
            Ok(()) = view.changed() => {}
            _ = sleep_until(wake) => {}
        }
    }
    supervisor.finish(membership, revocations).await;
}

/// Runs a blocking task on its own thread; a panic becomes its failure.
async fn blocking(
    task: impl FnOnce() -> Result<(), TaskFailure> + Send + 'static,
) -> Result<(), TaskFailure> {
    match tokio::task::spawn_blocking(task).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => {
            Err(TaskFailure::Panicked(panic_message(join.into_panic())))
        }
        Err(join) => Err(TaskFailure::Panicked(join.to_string())),
    }
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(tokio::time::Instant::from_std(when)).await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    /// The tasks this process should run now: discovery everywhere; the owned source slots that
    /// have partitions; checkpoints and heartbeats on the leader.
    fn wanted(&self) -> BTreeSet<TaskKind> {
        let view = self.view.borrow();
        let mut wanted = BTreeSet::new();
        if self.plan.mode == FlowMode::Replicate {
            wanted.insert(TaskKind::Connector);
            let busy = busy_slots(&self.partitions.borrow(), self.plan.source.tasks_max);
            wanted.extend(
                view.owned
                    .intersection(&busy)
                    .map(|slot| TaskKind::Source(*slot)),
            );
            if view.leader && self.plan.checkpoints.emit_checkpoints.enabled {
                wanted.insert(TaskKind::Checkpoints);
            }
            if self.discovered {
                wanted.insert(TaskKind::Lag);
            }
        }
        if view.leader && self.plan.heartbeats.emit_heartbeats.enabled {
            wanted.insert(TaskKind::Heartbeats);
        }
        wanted
    }

    /// Starts wanted tasks that are due, stops unwanted ones (drained), releases held partitions
    /// whose retry is due.
    fn reconcile(&mut self) {
        self.holds.release_due();
        self.leader.send_if_modified(|leader| {
            let now = self.view.borrow().leader;
            std::mem::replace(leader, now) != now
        });
        let wanted = self.wanted();
        for kind in &wanted {
            self.tasks.entry(*kind).or_insert_with(TaskRecord::new);
        }
        let unwanted: Vec<TaskKind> = self
            .tasks
            .keys()
            .filter(|kind| !wanted.contains(kind))
            .copied()
            .collect();
        for kind in unwanted {
            self.retire(kind, self.drain);
        }
        let now = Instant::now();
        let due: Vec<TaskKind> = self
            .tasks
            .iter()
            .filter(|(_, task)| task.running.is_none() && task.start_at.is_some_and(|at| at <= now))
            .map(|(kind, _)| *kind)
            .collect();
        for kind in due {
            self.start(kind);
        }
        self.answer_revocations();
    }

    /// A task no longer wanted here: stop it (drained within `drain`) and forget it once it ended.
    fn retire(&mut self, kind: TaskKind, drain: Duration) {
        let Some(task) = self.tasks.get_mut(&kind) else {
            return;
        };
        task.start_at = None;
        match &task.running {
            Some((stop, _)) => {
                if !stop.is_requested() {
                    stop.request(drain);
                }
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
        if task.restarts == 0 {
            task.state = TaskState::Starting;
        }
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
                self.leader.subscribe(),
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
            TaskKind::Lag => {
                let input = lag::LagInput {
                    flow: plan,
                    partitions: self.partitions.subscribe(),
                    view: self.view.clone(),
                    stop,
                    telemetry,
                    reporter,
                };
                self.running.spawn(blocking(move || lag::run(input)))
            }
            TaskKind::Source(slot) => {
                let input = TaskInput {
                    flow: plan,
                    slot,
                    partitions: self.partitions.subscribe(),
                    held: self.holds.subscribe(),
                    stop,
                    telemetry,
                    reporter,
                };
                self.running.spawn(blocking(move || source::run(input)))
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

    /// The group takes slots away: their tasks stop (drained, unless the assignment was lost) and
    /// the group gets them once they ended.
    fn on_revoked(&mut self, revocation: Revocation) {
        let Revocation { slots, lost, done } = revocation;
        let drain = if lost { Duration::ZERO } else { self.drain };
        info!(flow = %self.plan.id, slots = ?slots, lost, "task slots given back to the group");
        for slot in &slots {
            self.retire(TaskKind::Source(*slot), drain);
        }
        if slots.contains(&0) {
            self.retire(TaskKind::Checkpoints, drain);
            self.retire(TaskKind::Heartbeats, drain);
        }
        self.revocations.push((slots, done));
        self.answer_revocations();
    }

    /// Answers revocations whose slots no longer run.
    fn answer_revocations(&mut self) {
        let tasks = &self.tasks;
        self.revocations.retain(|(slots, done)| {
            let still_running = slots.iter().any(|slot| {
                tasks
                    .get(&TaskKind::Source(*slot))
                    .is_some_and(|task| task.running.is_some())
            });
            if !still_running {
                let _ = done.send(());
            }
            still_running
        });
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
            // Retired (no partitions, given to another node, leadership moved): done.
            self.tasks.remove(&kind);
            self.telemetry.status.remove_task(&name);
            self.answer_revocations();
            return;
        }
        match outcome {
            Ok(()) => {
                // Ended without being asked (nothing to do): start it again later.
                task.state = TaskState::Retrying;
                task.start_at = Some(Instant::now() + task.backoff);
                self.telemetry
                    .status
                    .set_task(&name, task.state, task.restarts, None);
            }
            Err(failure) => {
                let restart_now = matches!(kind, TaskKind::Source(_)) && self.holds.hold(&failure);
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

    fn next_wake(&self) -> Option<Instant> {
        let starts = self.tasks.values().filter_map(|task| task.start_at);
        // Held partitions on trial are checked for recovery every second.
        let trial = self
            .holds
            .any_on_trial()
            .then(|| Instant::now() + Duration::from_secs(1));
        starts.chain(self.holds.next_retry()).chain(trial).min()
    }

    /// The flow's state (from its tasks', its held partitions and its membership) and the
    /// membership, for `/status` and the metrics.
    fn report(&mut self) {
        let positions = self.telemetry.status.replicated_positions();
        let all = self.partitions.borrow().clone();
        self.holds.forget_recovered(&positions, &all);
        let view = self.view.borrow().clone();
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
        let (state, last_error) = if view.state == MemberState::Unavailable {
            (FlowState::Error, view.problem.clone())
        } else if view.state == MemberState::Standby {
            (FlowState::Standby, view.conflict.clone())
        } else if states.contains(&TaskState::Error) {
            (FlowState::Error, error(TaskState::Error))
        } else if !self.holds.is_empty() {
            // A held partition waits for the operator, even while its task copies the others.
            (FlowState::Error, self.holds.describe_first())
        } else if states.contains(&TaskState::Retrying) {
            (FlowState::Retrying, error(TaskState::Retrying))
        } else if view.state == MemberState::Joining {
            (FlowState::Starting, view.conflict.clone())
        } else if states.iter().all(|state| *state == TaskState::Running) {
            (FlowState::Running, None)
        } else {
            (FlowState::Starting, None)
        };
        self.telemetry.set_flow_state(state, last_error);
        let partitions: usize = view
            .owned
            .iter()
            .map(|slot| {
                super::assignment::partitions_of_slot(&all, *slot, self.plan.source.tasks_max).len()
            })
            .sum();
        self.telemetry
            .set_membership(&view, &all, self.plan.source.tasks_max, partitions);
        self.telemetry
            .metrics
            .set_worker(self.telemetry.status.id(), self.worker_figures(&view));
    }

    /// Connect's view of this flow here: the connectors run by its leader, the tasks running.
    fn worker_figures(&self, view: &MembershipView) -> crate::metrics::WorkerFigures {
        let running = |wanted: fn(&TaskKind) -> bool| {
            self.tasks
                .iter()
                .filter(|(kind, task)| wanted(kind) && task.state == TaskState::Running)
                .count()
        };
        let checkpoints = running(|kind| *kind == TaskKind::Checkpoints);
        let heartbeats = running(|kind| *kind == TaskKind::Heartbeats);
        // Every member discovers topics; the MirrorSourceConnector itself is the leader's.
        let source_connector = if view.leader {
            running(|kind| *kind == TaskKind::Connector).min(1)
        } else {
            0
        };
        crate::metrics::WorkerFigures {
            connectors: source_connector + checkpoints + heartbeats,
            tasks: running(|kind| matches!(kind, TaskKind::Source(_))) + checkpoints + heartbeats,
            rebalancing: view.state == MemberState::Joining,
        }
    }

    /// Every task was asked to stop (they are children of the flow's stop): wait for all of them,
    /// then leave the group, so another node takes the slots only after their progress is stored.
    async fn finish(
        mut self,
        membership: Membership,
        mut revocations: mpsc::UnboundedReceiver<Revocation>,
    ) {
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
        loop {
            tokio::select! {
                joined = self.running.join_next_with_id() => {
                    let Some(joined) = joined else { break };
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
                        self.telemetry
                            .status
                            .set_task(&kind.to_string(), TaskState::Stopped, restarts, None);
                    }
                }
                // A rebalance while stopping: the tasks are stopping anyway.
                Some(revocation) = revocations.recv() => {
                    let _ = revocation.done.send(());
                }
            }
        }
        for (_, done) in self.revocations.drain(..) {
            let _ = done.send(());
        }
        // Answer revocations the leaving triggers while it runs.
        let answering = tokio::spawn(async move {
            while let Some(revocation) = revocations.recv().await {
                let _ = revocation.done.send(());
            }
        });
        membership
            .leave(
                self.stop
                    .time_left(Duration::from_secs(5))
                    .min(Duration::from_secs(5)),
            )
            .await;
        answering.abort();
        self.telemetry.set_flow_state(FlowState::Stopped, None);
        info!(flow = %self.plan.id, "flow stopped");
    }
}
