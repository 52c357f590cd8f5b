//! Running flows. A flow `A->B` of the plan runs its connector (topics on both clusters, task
//! assignment) and its source tasks (records); heartbeats and checkpoints arrive next.
//!
//! [`Flow::start`] spawns everything on the tokio runtime; [`Flow::stop`] asks the tasks to drain
//! in-flight records and store their progress, and resolves when they did.

pub mod assignment;
mod connector;
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

use crate::plan::{FlowId, FlowMode, FlowPlan};

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
    pub fn start(plan: Arc<FlowPlan>) -> Self {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let stop_tasks = Arc::new(AtomicBool::new(false));
        let id = plan.id.clone();
        let supervisor = match plan.mode {
            FlowMode::Replicate => {
                tokio::spawn(connector::run(plan, shutdown_rx, stop_tasks.clone()))
            }
            FlowMode::HeartbeatsOnly => tokio::spawn(async move {
                info!(flow = %plan.id, "heartbeats-only flow: heartbeat emission is not implemented yet");
                let mut shutdown_rx = shutdown_rx;
                let _ = shutdown_rx.wait_for(|stop| *stop).await;
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
