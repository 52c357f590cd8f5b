//! Running flows. A replicating flow `A->B` runs its connector (topics on both clusters), its
//! source tasks (records), its checkpoint task (consumer groups) and its heartbeat task; a
//! heartbeats-only flow runs the heartbeat task alone. Each flow has one supervisor
//! (`supervisor.rs`) that owns its tasks.
//!
//! [`launch`] registers a flow instance in `/status` and spawns its supervisor; the flow stops
//! when its [`Stop`] is requested and the returned handle resolves once every task has ended.

pub mod assignment;
pub mod checkpoint_task;
pub mod checkpoints;
mod connector;
pub mod heartbeat_task;
pub mod offset_sync_store;
pub mod offset_syncs;
pub mod records;
pub mod source;
pub mod stored_offsets;
mod supervisor;
pub mod task;
pub mod topics;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::info;

use crate::lifecycle::Stop;
use crate::metrics::Metrics;
use crate::plan::FlowPlan;
use crate::status::{FlowState, FlowStatusHandle, StatusBoard};

/// Where the daemon reports: Prometheus metrics and the `/status` board. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    pub metrics: Metrics,
    pub status: StatusBoard,
}

/// Where one flow instance reports. Cheap to clone.
#[derive(Clone)]
pub struct FlowTelemetry {
    pub metrics: Metrics,
    pub status: FlowStatusHandle,
}

impl FlowTelemetry {
    /// Records the flow's state on both the status board and the state metric.
    pub fn set_flow_state(&self, state: FlowState, last_error: Option<String>) {
        if state == FlowState::Running && last_error.is_none() {
            self.status.clear_error();
        }
        self.status.set_state(state, last_error);
        self.metrics.set_flow_state(self.status.id(), state);
    }
}

/// A launched flow: resolves when the flow stopped; its status handle (to forget it once removed).
pub struct LaunchedFlow {
    pub stopped: JoinHandle<()>,
    pub status: FlowStatusHandle,
}

/// Starts a flow instance; returns at once, the flow connects and retries in the background.
pub fn launch(plan: Arc<FlowPlan>, telemetry: &Telemetry, stop: Stop) -> LaunchedFlow {
    let status = telemetry.status.register_flow(&plan.id);
    let flow_telemetry = FlowTelemetry {
        metrics: telemetry.metrics.clone(),
        status: status.clone(),
    };
    flow_telemetry.set_flow_state(FlowState::Starting, None);
    let stopped = tokio::spawn(supervisor::run(plan, flow_telemetry, stop));
    LaunchedFlow { stopped, status }
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

/// A single-partition compacted topic: heartbeats, checkpoints, offset syncs.
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
