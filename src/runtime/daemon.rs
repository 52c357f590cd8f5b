//! The daemon's event loop: reloads on SIGHUP and file changes (an invalid file keeps every flow as
//! it is; otherwise only added, removed and changed flows are touched, through the
//! [`Controller`]), tells systemd how things are (`READY=1`, `RELOADING=1`, `STATUS=`,
//! `WATCHDOG=1`, `EXTEND_TIMEOUT_USEC=`), and stops within `mirrord.shutdown.timeout.ms` of
//! SIGTERM — at once on a second one.
//!
//! Flows are started through a [`FlowLauncher`], so the loop runs in unit tests without brokers.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::controller::{Controller, Ended, FlowLauncher};
use super::notify;
use super::signals::{Event, Signals};
use super::watcher::ConfigWatcher;
use crate::exit;
use crate::metrics::Metrics;
use crate::plan::diff::{restart_only_settings, PlanDiff};
use crate::plan::{self, FlowId, Loaded, PlanOptions};
use crate::status::{ReloadOutcome, ReloadReport, StatusBoard};

/// How long readiness waits for every flow to start before reporting ready anyway (flows keep
/// retrying an unreachable cluster; systemd must not kill the daemon for that).
const READY_AT_THE_LATEST: Duration = Duration::from_secs(30);

/// Everything the loop needs besides its inputs.
pub struct Daemon<L: FlowLauncher> {
    pub file: PathBuf,
    pub options: PlanOptions,
    pub current: Loaded,
    pub controller: Controller<L>,
    pub metrics: Metrics,
    pub status: StatusBoard,
    pub ready: Arc<AtomicBool>,
    pub watcher: Option<ConfigWatcher>,
}

/// A reload whose outcome waits for old flow instances to stop.
struct PendingReload {
    report: ReloadReport,
    started: Instant,
    failed: bool,
}

impl<L: FlowLauncher> Daemon<L> {
    /// Runs until a shutdown; returns the exit code.
    pub async fn run(
        mut self,
        signals: &mut Signals,
        mut file_changes: Option<mpsc::Receiver<()>>,
    ) -> u8 {
        self.controller.start_all(&self.current.plan.clone());
        info!(file = %self.file.display(), flows = self.current.plan.flows.len(), "kafka-mirrord started");
        let mut cert_fingerprints = flow_file_fingerprints(&self.current);
        let started = Instant::now();
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        let watchdog = notify::watchdog_interval();
        let mut status_sent = String::new();
        let mut pending: Option<PendingReload> = None;
        let immediate = loop {
            tokio::select! {
                event = signals.recv() => match event {
                    Event::Shutdown { immediate } => break immediate,
                    Event::Reload => {
                        info!("SIGHUP: reloading the configuration");
                        self.reload(&mut pending, &mut cert_fingerprints);
                    }
                },
                Some(()) = next_change(&mut file_changes) => {
                    info!("configuration file changed: reloading");
                    self.reload(&mut pending, &mut cert_fingerprints);
                }
                ended = self.controller.next_ended() => {
                    if let Ended::Restarted { id } = &ended {
                        self.metrics.error(id, "flow_restarted");
                    }
                    self.settle(&mut pending);
                }
                _ = housekeeping.tick() => {
                    let waited_enough = started.elapsed() >= READY_AT_THE_LATEST;
                    if !self.ready.load(Ordering::Acquire) && (self.status.all_started() || waited_enough) {
                        self.ready.store(true, Ordering::Release);
                        notify::ready();
                        if self.status.all_started() {
                            info!("every flow has started");
                        } else {
                            warn!("not every flow has started after 30 s; reporting ready while they retry");
                        }
                    }
                    self.settle(&mut pending);
                    let line = self.status.summary_line();
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
        notify::stopping();
        if immediate {
            warn!("exiting at once");
            return exit::FAILURE;
        }
        self.shutdown(signals).await
    }

    /// Stops every flow within the deadline; a second signal exits at once.
    async fn shutdown(mut self, signals: &mut Signals) -> u8 {
        let drain = Duration::from_millis(self.current.config.mirrord.shutdown_timeout_ms);
        let deadline = tokio::time::Instant::now() + drain;
        info!(
            deadline_ms = drain.as_millis() as u64,
            "shutting down: draining in-flight records and storing progress"
        );
        notify::extend_timeout(drain + Duration::from_secs(5));
        let mut extend = tokio::time::interval(Duration::from_secs(5));
        extend.tick().await;
        let mut immediate = signals.shutdown_watch();
        let stopping = self.controller.shutdown(drain);
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                _ = &mut stopping => {
                    info!("stopped cleanly");
                    return exit::OK;
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // Nothing is lost: progress of unacknowledged records was never stored, so
                    // they are sent again after the restart. A clean stop for systemd.
                    warn!("shutdown deadline reached; records still in flight are sent again after the restart");
                    return exit::OK;
                }
                _ = immediate.immediate() => {
                    warn!("second signal: exiting at once");
                    return exit::FAILURE;
                }
                _ = extend.tick() => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    notify::extend_timeout(left + Duration::from_secs(5));
                }
            }
        }
    }

    /// Applies the file as it is now.
    fn reload(
        &mut self,
        pending: &mut Option<PendingReload>,
        cert_fingerprints: &mut BTreeMap<FlowId, u64>,
    ) {
        notify::reloading();
        let new = match plan::load(&self.file, &self.options) {
            Ok(new) => new,
            Err(errors) => {
                for diagnostic in &errors.diagnostics {
                    error!("{diagnostic}");
                }
                error!("{errors}; keeping the running configuration");
                self.metrics.reload(ReloadOutcome::InvalidConfig);
                self.status.set_reload_result(ReloadReport::invalid_config(
                    errors.errors().map(|d| d.to_string()).collect(),
                ));
                notify::ready();
                return;
            }
        };
        for warning in &new.warnings {
            warn!("{warning}");
        }
        let mut diff = PlanDiff::between(&self.current.plan, &new.plan);
        // Certificates and keytabs named by path: the plan is equal, the files are not.
        let new_fingerprints = flow_file_fingerprints(&new);
        let rotated: Vec<FlowId> = new_fingerprints
            .iter()
            .filter(|(id, print)| cert_fingerprints.get(*id).is_some_and(|old| old != *print))
            .map(|(id, _)| id.clone())
            .collect();
        if !rotated.is_empty() {
            info!(flows = ?rotated.iter().map(ToString::to_string).collect::<Vec<_>>(), "files named by the client settings changed: restarting those flows");
            diff.force_restart(&rotated);
        }
        *cert_fingerprints = new_fingerprints;
        let restart_required =
            restart_only_settings(&self.current.config.mirrord, &new.config.mirrord);
        for setting in &restart_required {
            warn!(
                setting,
                "this setting cannot change while running; it keeps its old value until a restart"
            );
        }
        if crate::logging::reload_level(&new.config.mirrord) {
            info!("log level re-applied");
        }
        let drain = Duration::from_millis(self.current.config.mirrord.shutdown_timeout_ms);
        self.controller.apply(&diff, &new.plan, drain);
        info!(added = ?diff.added, removed = ?diff.removed, changed = ?diff.changed, unchanged = diff.unchanged.len(), "configuration reloaded");
        if let Some(watcher) = &self.watcher {
            watcher.set_paths(watched_paths(&self.file, &new));
        }
        // Restart-only settings keep their running value.
        let mut applied = new;
        applied.config.mirrord.http_listen = self.current.config.mirrord.http_listen;
        applied.config.mirrord.log_format = self.current.config.mirrord.log_format;
        self.current = applied;
        let report = ReloadReport::success(&diff, &restart_required);
        if let Some(earlier) = pending.take() {
            if !earlier.failed {
                // Superseded before its old flows stopped: count it as applied.
                self.metrics.reload(ReloadOutcome::Success);
            }
        }
        *pending = Some(PendingReload {
            report,
            started: Instant::now(),
            failed: false,
        });
        self.settle(pending);
        notify::ready();
    }

    /// Decides a pending reload: a success once no old flow instance is stopping; a failure once
    /// one is still stopping after the drain time (its replacement still waits for it).
    fn settle(&mut self, pending: &mut Option<PendingReload>) {
        let Some(reload) = pending else {
            return;
        };
        let (stopping, waiting) = self.controller.pending();
        if stopping.is_empty() {
            if !reload.failed {
                self.metrics.reload(ReloadOutcome::Success);
                self.status.set_reload_result(reload.report.clone());
            }
            *pending = None;
            return;
        }
        let drain = Duration::from_millis(self.current.config.mirrord.shutdown_timeout_ms);
        if !reload.failed && reload.started.elapsed() >= drain {
            reload.failed = true;
            let errors: Vec<String> = stopping
                .iter()
                .map(|id| {
                    let waits = if waiting.contains(id) {
                        "; its new settings apply once it has stopped"
                    } else {
                        ""
                    };
                    format!(
                        "flow {id} did not stop within {} ms (a cluster does not answer){waits}",
                        drain.as_millis()
                    )
                })
                .collect();
            for line in &errors {
                error!("{line}");
            }
            self.metrics.reload(ReloadOutcome::Failed);
            let mut report = ReloadReport::failed(errors);
            report.added = reload.report.added.clone();
            report.removed = reload.report.removed.clone();
            report.changed = reload.report.changed.clone();
            report.restart_required = reload.report.restart_required.clone();
            self.status.set_reload_result(report);
        }
    }
}

async fn next_change(changes: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

/// The properties file, the files its placeholders read, and the files the client settings name
/// (certificates, keys, keytabs): a change to any of them is a reload.
pub fn watched_paths(file: &Path, loaded: &Loaded) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::iter::once(file.to_path_buf())
        .chain(loaded.config.referenced_files.iter().cloned())
        .chain(client_files(loaded).into_values().flatten())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Per flow, the files its librdkafka settings name.
fn client_files(loaded: &Loaded) -> BTreeMap<FlowId, Vec<PathBuf>> {
    loaded
        .plan
        .flows
        .iter()
        .map(|(id, flow)| {
            let mut files: Vec<PathBuf> = flow
                .clients
                .values()
                .flat_map(|client| client.settings.iter())
                .filter(|(key, _)| key.ends_with(".location") || key.ends_with(".keytab"))
                .map(|(_, value)| PathBuf::from(value))
                .collect();
            files.sort();
            files.dedup();
            (id.clone(), files)
        })
        .collect()
}

/// Certificates, keys and keytabs are small; a bigger file is hashed by its first bytes.
const FINGERPRINT_LIMIT: u64 = 4 * 1024 * 1024;

/// Per flow, a hash of the content of the files its client settings name.
fn flow_file_fingerprints(loaded: &Loaded) -> BTreeMap<FlowId, u64> {
    client_files(loaded)
        .into_iter()
        .map(|(id, files)| {
            let mut hasher = DefaultHasher::new();
            for file in files {
                file.hash(&mut hasher);
                crate::config::files::read_regular(&file, FINGERPRINT_LIMIT)
                    .ok()
                    .hash(&mut hasher);
            }
            (id, hasher.finish())
        })
        .collect()
}
