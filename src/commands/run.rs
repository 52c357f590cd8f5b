//! The run command, `kafka-mirrord [--clusters ...] FILE`: the daemon.
//!
//! Start-up: signals first (a SIGTERM during start-up is honoured), load and validate (exit 64),
//! metrics, `/status` and the HTTP endpoint, the file watcher, then the event loop
//! ([`crate::runtime::daemon`]), which starts every flow through [`LiveFlows`].

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::exit;
use crate::flow::{self, Telemetry};
use crate::http::{self, HttpState};
use crate::kafka::connectivity;
use crate::lifecycle::Stop;
use crate::metrics::Metrics;
use crate::plan::{self, ClusterPlan, FlowId, FlowMode, FlowPlan, Loaded, PlanOptions};
use crate::runtime::controller::{Controller, FlowLauncher, Stopped};
use crate::runtime::daemon::{watched_paths, Daemon};
use crate::runtime::signals::Signals;
use crate::runtime::watcher::{ConfigWatcher, DEFAULT_DEBOUNCE};
use crate::status::{FlowStatusHandle, StatusBoard};

/// Starts real flows (against the clusters).
pub struct LiveFlows {
    pub telemetry: Telemetry,
    /// `mirrord.shutdown.timeout.ms` at start: how long a task handed to another node may drain.
    pub drain: Duration,
}

impl FlowLauncher for LiveFlows {
    type Handle = FlowStatusHandle;

    fn launch(&mut self, plan: Arc<FlowPlan>, stop: Stop) -> (Stopped, FlowStatusHandle) {
        let launched = flow::launch(plan, &self.telemetry, stop, self.drain);
        let stopped = Box::pin(async move {
            let _ = launched.stopped.await;
        });
        (stopped, launched.status)
    }

    fn forget(&mut self, id: &FlowId, handle: FlowStatusHandle) {
        self.telemetry.status.remove_flow(&handle);
        self.telemetry.metrics.remove_flow(id);
    }
}

/// Runs the daemon; returns the process exit code.
pub async fn run(file: &Path, options: &PlanOptions) -> u8 {
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(error) => {
            crate::logging::init(None);
            error!("cannot install signal handlers: {error}");
            return exit::FAILURE;
        }
    };
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
    log_plan(&loaded);

    let registry = prometheus::Registry::new();
    let metrics = match Metrics::register(&registry) {
        Ok(metrics) => metrics,
        Err(error) => {
            error!("cannot register metrics: {error}");
            return exit::FAILURE;
        }
    };
    let _ticker = metrics.spawn_ticker(Duration::from_secs(15));
    let status = StatusBoard::new();
    let ready = Arc::new(AtomicBool::new(false));
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let _http = match loaded.config.mirrord.http_listen {
        None => None,
        Some(address) => {
            let state = HttpState {
                metrics: metrics.clone(),
                status: status.clone(),
                ready: ready.clone(),
            };
            match http::serve(address, state, async move {
                let _ = http_stopped.await;
            }) {
                Ok(server) => {
                    info!(address = %server.local_addr(), "serving /metrics /status /ready /live");
                    Some(server)
                }
                Err(error) => {
                    error!("{error}; set `mirrord.http.listen` to a free address or `off`");
                    return exit::FAILURE;
                }
            }
        }
    };
    let (watcher, file_changes) =
        match ConfigWatcher::start(watched_paths(file, &loaded), DEFAULT_DEBOUNCE) {
            Ok((watcher, changes)) => (Some(watcher), Some(changes)),
            Err(error) => {
                warn!("cannot watch the configuration file ({error}); reload with SIGHUP");
                (None, None)
            }
        };

    let connecting = tokio::spawn(connect_all(
        loaded.plan.clusters.values().cloned().collect(),
    ));
    let launcher = LiveFlows {
        telemetry: Telemetry {
            metrics: metrics.clone(),
            status: status.clone(),
        },
        drain: Duration::from_millis(loaded.config.mirrord.shutdown_timeout_ms),
    };
    let daemon = Daemon {
        file: file.to_path_buf(),
        options: options.clone(),
        current: loaded,
        controller: Controller::new(launcher, Stop::new()),
        metrics,
        status,
        ready,
        watcher,
    };
    let code = daemon.run(&mut signals, file_changes).await;
    connecting.abort();
    let _ = http_stop.send(());
    code
}

fn log_plan(loaded: &Loaded) {
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
}

/// Connects to every cluster, retrying unreachable ones with backoff (1 s doubling to 60 s).
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
