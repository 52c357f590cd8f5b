//! The run command, `kafka-mirrord [--clusters ...] FILE`: load and validate, log the plan, start
//! every flow, and on SIGINT/SIGTERM drain in-flight records and store progress within
//! `mirrord.shutdown.timeout.ms` (a second signal exits at once).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::exit;
use crate::flow::Flow;
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
    let mut interrupt = match signal(SignalKind::interrupt()) {
        Ok(stream) => stream,
        Err(error) => {
            error!("cannot listen for SIGINT: {error}");
            return exit::FAILURE;
        }
    };
    let clusters: Vec<ClusterPlan> = loaded.plan.clusters.values().cloned().collect();
    let connecting = tokio::spawn(connect_all(clusters));
    let flows: Vec<Flow> = loaded
        .plan
        .flows
        .values()
        .map(|plan| Flow::start(Arc::new(plan.clone())))
        .collect();

    let received = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    connecting.abort();
    let deadline = Duration::from_millis(loaded.config.mirrord.shutdown_timeout_ms);
    info!(
        signal = received,
        deadline_ms = deadline.as_millis() as u64,
        "shutting down: draining in-flight records and storing progress"
    );
    for flow in &flows {
        flow.request_stop();
    }
    let drain = async {
        let mut reporter = tokio::time::interval(Duration::from_secs(5));
        reporter.tick().await;
        let mut pending: Vec<Flow> = flows;
        loop {
            pending.retain(|flow| !flow.is_finished());
            if pending.is_empty() {
                return;
            }
            tokio::select! {
                _ = reporter.tick() => {
                    let ids: Vec<String> = pending.iter().map(|f| f.id.to_string()).collect();
                    info!(flows = ?ids, "still draining");
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    };
    tokio::select! {
        _ = drain => {
            info!("stopped cleanly");
            exit::OK
        }
        _ = tokio::time::sleep(deadline) => {
            warn!("shutdown deadline reached; exiting with records still in flight (they will be re-sent)");
            exit::FAILURE
        }
        _ = terminate.recv() => {
            warn!("second SIGTERM: exiting at once");
            exit::FAILURE
        }
        _ = interrupt.recv() => {
            warn!("second SIGINT: exiting at once");
            exit::FAILURE
        }
    }
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
