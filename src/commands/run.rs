//! The run command, `kafka-mirrord [--clusters ...] FILE`: load and validate, log the plan, connect
//! to every cluster the plan uses, then run until SIGINT/SIGTERM. (Flows arrive in later
//! milestones; this is the daemon's skeleton and start-up contract.)

use std::path::Path;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::exit;
use crate::kafka::connectivity;
use crate::plan::{self, ClusterPlan, FlowMode, PlanOptions};

/// Runs the daemon; returns the process exit code.
pub async fn run(file: &Path, options: &PlanOptions) -> u8 {
    let loaded = match plan::load(file, options) {
        Ok(loaded) => loaded,
        Err(errors) => {
            crate::logging::init(None);
            for diagnostic in &errors.diagnostics {
                error!("{diagnostic}");
            }
            error!("{errors}; not starting");
            return exit::CONFIG_ERROR;
        }
    };
    crate::logging::init(Some(&loaded.config.mirrord));
    for warning in &loaded.warnings {
        warn!("{warning}");
    }
    for flow in loaded.plan.flows.values() {
        match flow.mode {
            FlowMode::Replicate => info!(
                flow = %flow.id,
                topics = ?flow.source.topics.include,
                topics_exclude = ?flow.source.topics.exclude,
                groups = ?flow.checkpoints.groups.include,
                exactly_once = flow.exactly_once.enabled,
                tasks_max = flow.source.tasks_max,
                "planned replicating flow"
            ),
            FlowMode::HeartbeatsOnly => info!(
                flow = %flow.id,
                interval_s = flow.heartbeats.emit_heartbeats.interval_seconds,
                "planned heartbeats-only flow"
            ),
        }
        for (role, client) in &flow.clients {
            for note in &client.notes {
                info!(flow = %flow.id, client = role.name(), "{note}");
            }
        }
    }
    info!(file = %file.display(), flows = loaded.plan.flows.len(), "kafka-mirrord started");

    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(error) => {
            error!("cannot listen for SIGTERM: {error}");
            return exit::FAILURE;
        }
    };
    let shutdown = async {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    };
    let clusters: Vec<ClusterPlan> = loaded.plan.clusters.values().cloned().collect();
    let connecting = tokio::spawn(connect_all(clusters));
    let received = shutdown.await;
    connecting.abort();
    info!(signal = received, "shutting down");
    exit::OK
}

/// Connects to every cluster, retrying unreachable ones with backoff (1 s doubling to 60 s) and
/// logging each failure once per attempt at most every backoff period.
async fn connect_all(mut pending: Vec<ClusterPlan>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let reports = connectivity::probe_all(&pending, Duration::from_secs(10)).await;
        let mut still_pending = Vec::new();
        for (report, cluster) in reports.into_iter().zip(pending) {
            if report.reachable {
                info!(cluster = %report.alias, brokers = report.brokers, elapsed_ms = report.elapsed_ms, "connected to cluster");
            } else {
                warn!(
                    cluster = %report.alias,
                    bootstrap_servers = %report.bootstrap_servers,
                    retry_in_s = backoff.as_secs(),
                    "cluster unreachable: {}",
                    report.error.as_deref().unwrap_or("no brokers")
                );
                still_pending.push(cluster);
            }
        }
        if still_pending.is_empty() {
            return;
        }
        pending = still_pending;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}
