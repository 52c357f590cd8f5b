//! Running flows. A replicating flow `A->B` runs its connector (topics on both clusters, task
//! assignment), its source tasks (records), its checkpoint task (consumer groups) and its heartbeat
//! task; a heartbeats-only flow runs the heartbeat task alone.
//!
//! [`Flow::start`] spawns everything on the tokio runtime; [`Flow::stop`] asks the tasks to drain
//! in-flight records and store their progress, and resolves when they did.

pub mod assignment;
pub mod checkpoint_task;
pub mod checkpoints;
mod connector;
pub mod heartbeat_task;
pub mod offset_sync_store;
pub mod offset_syncs;
pub mod records;
pub mod source_task;
pub mod stored_offsets;
pub mod topics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::metrics::Metrics;
use crate::plan::{FlowId, FlowMode, FlowPlan};
use crate::status::{FlowState, StatusBoard};

/// Where flows report what they do: Prometheus metrics and the `/status` board. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    pub metrics: Metrics,
    pub status: StatusBoard,
}

impl Telemetry {
    /// Records a flow's state on both the status board and the state metric.
    pub fn flow_state(&self, flow: &FlowId, state: FlowState, last_error: Option<String>) {
        self.status.set_flow_state(flow, state, last_error);
        self.metrics.set_flow_state(flow, state);
    }
}

/// A running flow.
pub struct Flow {
    pub id: FlowId,
    /// Tells the connector loop to stop (it then stops the tasks).
    shutdown: watch::Sender<bool>,
    /// Tells the source tasks to drain and return (shared by all tasks of the flow).
    stop_tasks: Arc<AtomicBool>,
    supervisor: JoinHandle<()>,
}

impl Flow {
    /// Starts a flow; returns at once, the flow connects and retries in the background.
    pub fn start(plan: Arc<FlowPlan>, telemetry: Telemetry) -> Self {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let stop_tasks = Arc::new(AtomicBool::new(false));
        let id = plan.id.clone();
        telemetry.flow_state(&plan.id, FlowState::Starting, None);
        let heartbeats = heartbeat_task::run(plan.clone(), shutdown_rx.clone());
        let supervisor = match plan.mode {
            FlowMode::Replicate => {
                let source = connector::run(
                    plan.clone(),
                    shutdown_rx.clone(),
                    stop_tasks.clone(),
                    telemetry.clone(),
                );
                let checkpoints = checkpoint_task::run(plan.clone(), shutdown_rx, telemetry);
                tokio::spawn(async move {
                    tokio::join!(source, checkpoints, heartbeats);
                })
            }
            FlowMode::HeartbeatsOnly => tokio::spawn(async move {
                info!(flow = %plan.id, "heartbeats-only flow started");
                telemetry.flow_state(&plan.id, FlowState::Running, None);
                heartbeats.await;
                telemetry.flow_state(&plan.id, FlowState::Stopped, None);
            }),
        };
        Self {
            id,
            shutdown,
            stop_tasks,
            supervisor,
        }
    }

    /// Asks the flow to stop: tasks drain in-flight records and store progress.
    pub fn request_stop(&self) {
        self.stop_tasks.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
    }

    /// Waits until the flow stopped.
    pub async fn stopped(self) {
        let _ = self.supervisor.await;
    }

    pub fn is_finished(&self) -> bool {
        self.supervisor.is_finished()
    }
}

/// Resolves once shutdown was requested (or its sender is gone). Holds no lock guard across an
/// await, so futures using it stay `Send`.
pub(crate) async fn until_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Creates one of MM2's internal topics (compacted, `partitions`, `replication_factor`) on the
/// cluster `admin` talks to. When it cannot, MM2 assumes the topic exists (KAFKA-15465); so do we,
/// after saying so.
pub(crate) async fn create_internal_topic(
    flow: &FlowPlan,
    admin: &crate::kafka::admin::Admin,
    topic: crate::kafka::admin::TopicSpec,
    cluster: &str,
) {
    use crate::kafka::admin::Created;
    let name = topic.name.clone();
    match admin.create_topics(&[topic]).await {
        Ok(results) => match results.get(&name) {
            Some(Created::Created) => {
                info!(flow = %flow.id, topic = %name, cluster, "created internal topic")
            }
            Some(Created::Failed(reason)) => {
                tracing::warn!(flow = %flow.id, topic = %name, cluster, "cannot create internal topic (assuming it exists): {reason}")
            }
            _ => {}
        },
        Err(error) => {
            tracing::warn!(flow = %flow.id, topic = %name, cluster, "cannot create internal topic: {error}")
        }
    }
}

/// A single-partition compacted topic: heartbeats, checkpoints, offset syncs (§4).
pub(crate) fn compacted_topic(
    name: &str,
    replication_factor: i16,
) -> crate::kafka::admin::TopicSpec {
    crate::kafka::admin::TopicSpec {
        name: name.to_string(),
        partitions: 1,
        replication_factor: replication_factor as i32,
        configs: vec![("cleanup.policy".into(), "compact".into())],
    }
}
