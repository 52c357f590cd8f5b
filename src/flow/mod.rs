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
pub mod group_commits;
pub mod group_offsets;
pub mod heartbeat_task;
pub mod lag;
pub mod membership;
mod mm2_topics;
pub mod offset_history;
pub mod offset_sync_store;
pub mod offset_syncs;
pub mod records;
pub mod source;
pub mod stored_offsets;
mod supervisor;
pub mod tail;
pub mod task;
pub mod topics;
pub mod translation;

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
    /// Records the flow's group membership in `/status` and the metrics. `all` is every selected
    /// source partition (members' partition counts follow from the slot rule).
    pub fn set_membership(
        &self,
        view: &membership::MembershipView,
        all: &assignment::PartitionSet,
        tasks_max: u32,
        owned_partitions: usize,
    ) {
        let members: Vec<crate::status::MemberStatus> = view
            .members
            .iter()
            .map(|member| crate::status::MemberStatus {
                member_id: member.member_id.clone(),
                host: member.host.clone(),
                node: member.node.clone(),
                pid: member.pid,
                version: member.version.clone(),
                plan: member.plan.clone(),
                tasks: member.tasks.clone(),
                partitions: member
                    .tasks
                    .iter()
                    .map(|slot| assignment::partitions_of_slot(all, *slot, tasks_max).len())
                    .sum(),
                leader: member.leader,
                this_process: member.this_process,
            })
            .collect();
        let state = match view.state {
            membership::MemberState::Joining => "joining",
            membership::MemberState::Member => "member",
            membership::MemberState::Standby => "standby",
            membership::MemberState::Unavailable => "unavailable",
        };
        self.metrics.set_membership(
            self.status.id(),
            &crate::metrics::MembershipFigures {
                members: members.len(),
                owned_tasks: view.owned.len(),
                owned_partitions,
                leader: view.leader,
                conflict: view.conflict.is_some(),
                rebalances: view.rebalances,
                last_rebalance_ms: view.last_rebalance_ms,
            },
        );
        self.status.set_membership(crate::status::MembershipStatus {
            group: view.group.clone(),
            state: state.to_string(),
            leader: view.leader,
            generation: view.generation,
            plan: view.plan.clone(),
            owned_tasks: view.owned.iter().copied().collect(),
            owned_partitions,
            members,
            conflict: view.conflict.clone(),
            problem: view.problem.clone(),
            rebalances: view.rebalances,
            last_rebalance_unix_ms: view.last_rebalance_unix_ms,
            last_rebalance_ms: view.last_rebalance_ms,
        });
    }

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
/// `drain` is how long a task given away to another node may take to drain.
pub fn launch(
    plan: Arc<FlowPlan>,
    telemetry: &Telemetry,
    stop: Stop,
    drain: std::time::Duration,
) -> LaunchedFlow {
    let status = telemetry.status.register_flow(&plan.id);
    let flow_telemetry = FlowTelemetry {
        metrics: telemetry.metrics.clone(),
        status: status.clone(),
    };
    flow_telemetry.set_flow_state(FlowState::Starting, None);
    let stopped = tokio::spawn(supervisor::run(plan, flow_telemetry, stop, drain));
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
    create_internal_topics(flow, admin, vec![topic], cluster).await
}

/// [`create_internal_topic`] for several topics of one cluster in one request: the controller
/// commits them together instead of one after the other (start-up time).
pub(crate) async fn create_internal_topics(
    flow: &FlowPlan,
    admin: &crate::kafka::admin::Admin,
    topics: Vec<crate::kafka::admin::TopicSpec>,
    cluster: &str,
) {
    use crate::kafka::admin::Created;
    match admin.create_topics(&topics).await {
        Ok(results) => {
            for (name, outcome) in results {
                match outcome {
                    Created::Created => {
                        info!(flow = %flow.id, topic = %name, cluster, "created internal topic")
                    }
                    Created::Failed(reason) => {
                        tracing::warn!(flow = %flow.id, topic = %name, cluster, "cannot create internal topic (assuming it exists): {reason}")
                    }
                    Created::AlreadyExists => {}
                }
            }
        }
        Err(error) => {
            for topic in &topics {
                tracing::warn!(flow = %flow.id, topic = %topic.name, cluster, "cannot create internal topic: {error}")
            }
        }
    }
}

/// A producer of the target cluster for heartbeats and checkpoints: the target producer's
/// settings, without the gapless guarantee (a refused heartbeat must not stop the next ones).
pub(crate) fn record_producer(
    flow: &FlowPlan,
    role: &'static str,
) -> rdkafka::error::KafkaResult<crate::kafka::producer::RecordProducer> {
    let mut config =
        flow.clients[&crate::plan::clients::ClientRole::TargetProducer].client_config();
    config.set("enable.gapless.guarantee", "false");
    crate::kafka::producer::RecordProducer::create(
        &config,
        crate::kafka::context::LoggingContext::new(role),
    )
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
