//! The run command, `kafka-mirrord [--clusters ...] FILE`: the daemon.
//!
//! Start-up: signals first (a SIGTERM during start-up is honoured), load and validate (exit 64),
//! metrics, `/status` and the HTTP endpoint, then every flow. The main loop reacts to SIGHUP and
//! file changes by reloading (an invalid file keeps every flow as it is; otherwise only added,
//! removed and changed flows are touched), tells systemd how things are (`READY=1`,
//! `RELOADING=1`, `STATUS=`, `WATCHDOG=1`), and on SIGTERM/SIGINT drains in-flight records and
//! stores progress within `mirrord.shutdown.timeout.ms` (a second signal exits at once).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::exit;
use crate::flow::{Flow, Telemetry};
use crate::http::{self, HttpState};
use crate::kafka::connectivity;
use crate::metrics::Metrics;
use crate::plan::diff::{restart_only_settings, PlanDiff};
use crate::plan::{self, ClusterPlan, FlowId, FlowMode, Loaded, PlanOptions};
use crate::runtime::notify;
use crate::runtime::signals::{Event, ShutdownWatch, Signals};
use crate::runtime::watcher::{ConfigWatcher, DEFAULT_DEBOUNCE};
use crate::status::{ReloadOutcome, ReloadReport, StatusBoard};

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
    let telemetry = Telemetry {
        metrics: metrics.clone(),
        status: StatusBoard::new(),
    };
    let ready = Arc::new(AtomicBool::new(false));
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let _http = match loaded.config.mirrord.http_listen {
        None => None,
        Some(address) => {
            let state = HttpState {
                metrics: metrics.clone(),
                status: telemetry.status.clone(),
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
    let (watcher, mut file_changes) =
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
    let mut flows: BTreeMap<FlowId, Flow> = BTreeMap::new();
    for plan in loaded.plan.flows.values() {
        flows.insert(
            plan.id.clone(),
            Flow::start(Arc::new(plan.clone()), telemetry.clone()),
        );
    }
    info!(file = %file.display(), flows = flows.len(), "kafka-mirrord started");

    let mut current = loaded;
    let started = tokio::time::Instant::now();
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    let watchdog = notify::watchdog_interval();
    let mut status_sent = String::new();
    let immediate = loop {
        tokio::select! {
            event = signals.recv() => match event {
                Event::Shutdown { immediate } => break immediate,
                Event::Reload => {
                    info!("SIGHUP: reloading the configuration");
                    reload(file, options, &mut current, &mut flows, &telemetry, watcher.as_ref(), signals.shutdown_watch()).await;
                }
            },
            Some(()) = next_change(&mut file_changes) => {
                info!("configuration file changed: reloading");
                reload(file, options, &mut current, &mut flows, &telemetry, watcher.as_ref(), signals.shutdown_watch()).await;
            }
            _ = housekeeping.tick() => {
                // Ready once every flow runs or retries; at the latest after 30 s, so systemd never
                // kills a daemon that waits for a slow or unreachable cluster (it retries).
                let waited_enough = started.elapsed() >= Duration::from_secs(30);
                if !ready.load(Ordering::Acquire) && (telemetry.status.all_started() || waited_enough) {
                    ready.store(true, Ordering::Release);
                    notify::ready();
                    if telemetry.status.all_started() {
                        info!("every flow has started");
                    } else {
                        warn!("not every flow has started after 30 s; reporting ready while they retry");
                    }
                }
                let line = telemetry.status.summary_line();
                if line != status_sent {
                    notify::status(&line);
                    status_sent = line;
                }
                // Pinged from the main loop, so a wedged loop stops the pings and systemd notices.
                if watchdog.is_some() {
                    notify::watchdog_ping();
                }
            }
        }
    };
    connecting.abort();
    notify::stopping();
    let code = if immediate {
        warn!("exiting at once");
        exit::FAILURE
    } else {
        shutdown(
            flows,
            current.config.mirrord.shutdown_timeout_ms,
            signals.shutdown_watch(),
        )
        .await
    };
    let _ = http_stop.send(());
    code
}

async fn next_change(changes: &mut Option<tokio::sync::mpsc::Receiver<()>>) -> Option<()> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

fn watched_paths(file: &Path, loaded: &Loaded) -> Vec<PathBuf> {
    std::iter::once(file.to_path_buf())
        .chain(loaded.config.referenced_files.iter().cloned())
        .collect()
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

/// Applies the file as it is now: an invalid file changes nothing; a valid one stops removed and
/// changed flows (they store their progress), starts added and changed ones, and leaves every
/// other flow untouched. A shutdown request cuts the wait for stopping flows short.
#[allow(clippy::too_many_arguments)]
async fn reload(
    file: &Path,
    options: &PlanOptions,
    current: &mut Loaded,
    flows: &mut BTreeMap<FlowId, Flow>,
    telemetry: &Telemetry,
    watcher: Option<&ConfigWatcher>,
    mut shutdown: ShutdownWatch,
) {
    notify::reloading();
    let new = match plan::load(file, options) {
        Ok(new) => new,
        Err(errors) => {
            for diagnostic in &errors.diagnostics {
                error!("{diagnostic}");
            }
            error!("{errors}; keeping the running configuration");
            telemetry.metrics.reload(ReloadOutcome::InvalidConfig);
            telemetry
                .status
                .set_reload_result(ReloadReport::invalid_config(
                    errors.errors().map(|d| d.to_string()).collect(),
                ));
            notify::ready();
            return;
        }
    };
    for warning in &new.warnings {
        warn!("{warning}");
    }
    let diff = PlanDiff::between(&current.plan, &new.plan);
    let restart_required = restart_only_settings(&current.config.mirrord, &new.config.mirrord);
    for setting in &restart_required {
        warn!(
            setting,
            "this setting cannot change while running; it keeps its old value until a restart"
        );
    }
    let mut stopping = Vec::new();
    for id in diff.removed.iter().chain(&diff.changed) {
        if let Some(flow) = flows.remove(id) {
            flow.request_stop();
            stopping.push(flow);
        }
    }
    let deadline = Duration::from_millis(current.config.mirrord.shutdown_timeout_ms);
    let all_stopped = async {
        for flow in stopping {
            flow.stopped().await;
        }
    };
    tokio::select! {
        _ = all_stopped => {}
        _ = tokio::time::sleep(deadline) => warn!("flows did not stop within the deadline; starting their replacements anyway"),
        _ = shutdown.requested() => {
            info!("shutdown requested during a reload");
            return;
        }
    }
    for id in &diff.removed {
        telemetry.status.remove_flow(id);
        telemetry.metrics.remove_flow(id);
    }
    for id in diff.added.iter().chain(&diff.changed) {
        let plan = Arc::new(new.plan.flows[id].clone());
        flows.insert(id.clone(), Flow::start(plan, telemetry.clone()));
    }
    info!(added = ?diff.added, removed = ?diff.removed, changed = ?diff.changed, unchanged = diff.unchanged.len(), "configuration reloaded");
    telemetry.metrics.reload(ReloadOutcome::Success);
    telemetry
        .status
        .set_reload_result(ReloadReport::success(&diff, &restart_required));
    if let Some(watcher) = watcher {
        watcher.set_paths(watched_paths(file, &new));
    }
    // Restart-only settings keep their running value.
    let mut applied = new;
    applied.config.mirrord.http_listen = current.config.mirrord.http_listen;
    applied.config.mirrord.log_format = current.config.mirrord.log_format;
    *current = applied;
    notify::ready();
}

/// Stops every flow: they drain in-flight records and store progress. Logs what is still pending
/// every 5 s; exits at the deadline or on a second signal.
async fn shutdown(
    flows: BTreeMap<FlowId, Flow>,
    deadline_ms: u64,
    mut signals: ShutdownWatch,
) -> u8 {
    let deadline = Duration::from_millis(deadline_ms);
    info!(
        deadline_ms,
        "shutting down: draining in-flight records and storing progress"
    );
    for flow in flows.values() {
        flow.request_stop();
    }
    let drain = async {
        let mut reporter = tokio::time::interval(Duration::from_secs(5));
        reporter.tick().await;
        let mut pending: Vec<Flow> = flows.into_values().collect();
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
            // Nothing is lost: progress of unacknowledged records was never stored, so they are
            // re-sent after the restart. A clean stop for systemd (e.g. a cluster is down).
            warn!("shutdown deadline reached; records still in flight will be re-sent after the restart");
            exit::OK
        }
        _ = signals.immediate() => {
            warn!("second signal: exiting at once");
            exit::FAILURE
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
