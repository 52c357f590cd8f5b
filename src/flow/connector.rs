//! A replicating flow's control loop (MM2's MirrorSourceConnector): creates the internal topics,
//! discovers source topics, creates and grows remote topics, syncs topic configs and ACLs, assigns
//! partitions to tasks and supervises them (restart with backoff on failure).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::assignment::{owned_partitions, Assignment, TaskChanges, TopicPartition};
use super::source_task::{self, TaskCounters, TaskInput};
use super::topics;
use super::Telemetry;
use crate::kafka::acls::{AclError, TopicAcl};
use crate::kafka::admin::{Admin, Created, TopicSpec};
use crate::plan::clients::ClientRole;
use crate::plan::{FlowPlan, OffsetSyncsLocation};
use crate::status::FlowState;

const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One task slot: the channel to its running task (if any) and its counters.
struct TaskSlot {
    changes: Mutex<Option<mpsc::Sender<TaskChanges>>>,
    counters: Arc<TaskCounters>,
}

/// State shared by the control loop and the task supervisors.
struct Shared {
    flow: Arc<FlowPlan>,
    telemetry: Telemetry,
    assignment: Mutex<Assignment>,
    slots: Vec<TaskSlot>,
    stop_tasks: Arc<AtomicBool>,
}

/// Runs until `shutdown` turns true, then stops the tasks and waits for them.
pub async fn run(
    flow: Arc<FlowPlan>,
    mut shutdown: watch::Receiver<bool>,
    stop_tasks: Arc<AtomicBool>,
    telemetry: Telemetry,
) {
    let Some((source_admin, target_admin)) = connect_admins(&flow, &mut shutdown).await else {
        return;
    };
    ensure_internal_topics(&flow, &source_admin, &target_admin).await;
    let mut problems = Problems::default();
    let partitions = loop {
        match sync_topics(&flow, &source_admin, &target_admin, &mut problems).await {
            Ok(partitions) => break partitions,
            Err(message) => {
                error!(flow = %flow.id, "cannot list topics: {message}; retrying");
                telemetry.metrics.error(&flow.id, "topics");
                telemetry.flow_state(
                    &flow.id,
                    FlowState::Retrying,
                    Some(format!("cannot list topics: {message}")),
                );
                if wait_or_shutdown(&mut shutdown, Duration::from_secs(5)).await {
                    return;
                }
            }
        }
    };
    sync_configs(
        &flow,
        &source_admin,
        &target_admin,
        &partitions,
        &mut problems,
    )
    .await;

    sync_acls(&flow, &source_admin, &target_admin, &mut problems).await;

    let assignment = Assignment::new(flow.source.tasks_max, &owned_partitions(&partitions));
    let shared = Arc::new(Shared {
        flow: flow.clone(),
        slots: (0..assignment.task_count())
            .map(|_| TaskSlot {
                changes: Mutex::new(None),
                counters: Arc::new(TaskCounters::default()),
            })
            .collect(),
        assignment: Mutex::new(assignment),
        stop_tasks,
        telemetry: telemetry.clone(),
    });
    let mut supervisors = JoinSet::new();
    let mut running: HashSet<usize> = HashSet::new();
    start_idle_tasks(&shared, &mut supervisors, &mut running);
    if running.is_empty() {
        telemetry.flow_state(&flow.id, FlowState::Running, None);
    }
    info!(flow = %flow.id, topics = partitions.iter().map(|(t, _)| t).collect::<BTreeSet<_>>().len(), partitions = partitions.len(), "flow running");

    let refresh = every(
        flow.source.refresh_topics.enabled,
        flow.source.refresh_topics.interval_seconds,
    );
    let config_sync = every(
        flow.source.sync_topic_configs.enabled,
        flow.source.sync_topic_configs.interval_seconds,
    );
    let acl_sync = every(
        flow.source.sync_topic_acls.enabled,
        flow.source.sync_topic_acls.interval_seconds,
    );
    let (mut refresh, mut config_sync, mut acl_sync) = (refresh, config_sync, acl_sync);
    let mut known = partitions;
    loop {
        tokio::select! {
            _ = super::until_shutdown(&mut shutdown) => break,
            _ = tick(&mut refresh) => {
                match sync_topics(&flow, &source_admin, &target_admin, &mut problems).await {
                    Ok(partitions) if partitions != known => {
                        let added = partitions.difference(&known).count();
                        let removed = known.difference(&partitions).count();
                        info!(flow = %flow.id, added, removed, "source partitions changed");
                        let changes = shared.assignment.lock().expect("assignment lock").update(&owned_partitions(&partitions));
                        for (index, change) in changes.into_iter().enumerate() {
                            if change.added.is_empty() && change.removed.is_empty() {
                                continue;
                            }
                            if let Some(sender) = shared.slots[index].changes.lock().expect("slot lock").as_ref() {
                                let _ = sender.send(change);
                            }
                        }
                        start_idle_tasks(&shared, &mut supervisors, &mut running);
                        known = partitions;
                    }
                    Ok(_) => {}
                    Err(message) => warn!(flow = %flow.id, "topic refresh failed: {message}"),
                }
            }
            _ = tick(&mut config_sync) => {
                sync_configs(&flow, &source_admin, &target_admin, &known, &mut problems).await;
            }
            _ = tick(&mut acl_sync) => {
                sync_acls(&flow, &source_admin, &target_admin, &mut problems).await;
            }
        }
    }
    shared.stop_tasks.store(true, Ordering::Release);
    while supervisors.join_next().await.is_some() {}
    telemetry.flow_state(&flow.id, FlowState::Stopped, None);
    info!(flow = %flow.id, "flow stopped");
}

/// A periodic timer, or none when the job is disabled.
fn every(enabled: bool, seconds: u64) -> Option<tokio::time::Interval> {
    enabled.then(|| {
        let period = Duration::from_secs(seconds.max(1));
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    })
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Sleeps, returning true early if shutdown was requested.
async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = super::until_shutdown(shutdown) => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

async fn connect_admins(
    flow: &FlowPlan,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Arc<Admin>, Arc<Admin>)> {
    let timeout = Duration::from_millis(flow.admin_timeout_ms as u64);
    let mut backoff = Duration::from_secs(1);
    loop {
        let source = Admin::new(
            &flow.clients[&ClientRole::SourceAdmin].client_config(),
            timeout,
        );
        let target = Admin::new(
            &flow.clients[&ClientRole::TargetAdmin].client_config(),
            timeout,
        );
        match (source, target) {
            (Ok(source), Ok(target)) => return Some((Arc::new(source), Arc::new(target))),
            (Err(error), _) | (_, Err(error)) => {
                error!(flow = %flow.id, "cannot create admin clients: {error}; retrying in {} s", backoff.as_secs());
            }
        }
        if wait_or_shutdown(shutdown, backoff).await {
            return None;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Problems already logged, so each is logged once (until it goes away).
#[derive(Default)]
struct Problems {
    logged: HashSet<String>,
}

impl Problems {
    fn report(&mut self, flow: &FlowPlan, key: String, message: &str) {
        if self.first(key) {
            warn!(flow = %flow.id, "{message}");
        }
    }

    /// True the first time `key` is seen: the caller logs it then.
    fn first(&mut self, key: String) -> bool {
        self.logged.insert(key)
    }
}

/// Creates the offsets-storage topic on the target and the offset-syncs topic (§4), compacted.
async fn ensure_internal_topics(flow: &FlowPlan, source: &Admin, target: &Admin) {
    let compact = vec![("cleanup.policy".to_string(), "compact".to_string())];
    let storage = &flow.offset_storage;
    let offsets = TopicSpec {
        name: storage.topic.clone(),
        partitions: storage.partitions,
        replication_factor: storage.replication_factor as i32,
        configs: compact.clone(),
    };
    super::create_internal_topic(flow, target, offsets, &flow.id.target).await;
    if flow.offset_syncs.enabled {
        let (admin, cluster) = match flow.offset_syncs.location {
            OffsetSyncsLocation::Source => (source, &flow.id.source),
            OffsetSyncsLocation::Target => (target, &flow.id.target),
        };
        let syncs = super::compacted_topic(
            &flow.offset_syncs.topic,
            flow.offset_syncs.replication_factor,
        );
        super::create_internal_topic(flow, admin, syncs, cluster).await;
    }
}

/// Lists source topics, creates missing remote topics and partitions; returns the selected
/// source partitions.
async fn sync_topics(
    flow: &Arc<FlowPlan>,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
    problems: &mut Problems,
) -> Result<BTreeSet<TopicPartition>, String> {
    let (source_list, target_list) = {
        let (source, target) = (source.clone(), target.clone());
        let lists =
            tokio::task::spawn_blocking(move || (source.list_topics(), target.list_topics()))
                .await
                .map_err(|e| e.to_string())?;
        (
            lists.0.map_err(|e| format!("source: {e}"))?,
            lists.1.map_err(|e| format!("target: {e}"))?,
        )
    };
    let selected = topics::selected(flow, &source_list);
    let changes = topics::target_changes(flow, &selected, &target_list);
    if !changes.create.is_empty() {
        let names: Vec<String> = changes
            .create
            .iter()
            .map(|(source_topic, _, _)| source_topic.clone())
            .collect();
        let configs = source
            .describe_topic_configs(&names)
            .await
            .unwrap_or_default();
        let exclusions = topics::config_exclusions(flow);
        let copy_defaults = flow.source.use_defaults_from == "source";
        let requests: Vec<TopicSpec> = changes
            .create
            .iter()
            .map(|(source_topic, remote, partitions)| TopicSpec {
                name: remote.clone(),
                partitions: *partitions,
                replication_factor: flow.source.replication_factor,
                configs: configs
                    .get(source_topic)
                    .map(|entries| topics::target_config(entries, &exclusions, copy_defaults))
                    .unwrap_or_default(),
            })
            .collect();
        match target.create_topics(&requests).await {
            Ok(results) => {
                for (topic, outcome) in results {
                    match outcome {
                        Created::Created => {
                            info!(flow = %flow.id, topic = %topic, "created remote topic")
                        }
                        Created::AlreadyExists => {}
                        Created::Failed(reason) => problems.report(
                            flow,
                            format!("create {topic}"),
                            &format!("cannot create remote topic `{topic}`: {reason}"),
                        ),
                    }
                }
            }
            Err(error) => problems.report(
                flow,
                "create".into(),
                &format!("cannot create remote topics: {error}"),
            ),
        }
    }
    if !changes.grow.is_empty() {
        match target.create_partitions(&changes.grow).await {
            Ok(results) => {
                for (topic, outcome) in results {
                    match outcome {
                        Ok(()) => {
                            info!(flow = %flow.id, topic = %topic, "added partitions to remote topic")
                        }
                        Err(reason) => problems.report(
                            flow,
                            format!("grow {topic}"),
                            &format!("cannot add partitions to `{topic}`: {reason}"),
                        ),
                    }
                }
            }
            Err(error) => problems.report(
                flow,
                "grow".into(),
                &format!("cannot add partitions: {error}"),
            ),
        }
    }
    Ok(selected
        .iter()
        .flat_map(|(topic, count)| (0..*count).map(move |partition| (topic.clone(), partition)))
        .collect())
}

/// Topic config sync (§6.4): the source's copied configs replace the remote topic's dynamic config,
/// keeping the target's own values of excluded properties. Only writes when something differs.
async fn sync_configs(
    flow: &FlowPlan,
    source: &Admin,
    target: &Admin,
    partitions: &BTreeSet<TopicPartition>,
    problems: &mut Problems,
) {
    if !flow.source.sync_topic_configs.enabled {
        return;
    }
    let source_topics: Vec<String> = partitions
        .iter()
        .map(|(t, _)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if source_topics.is_empty() {
        return;
    }
    let remote: BTreeMap<String, String> = source_topics
        .iter()
        .map(|t| {
            (
                t.clone(),
                flow.replication_policy
                    .format_remote_topic(&flow.id.source, t),
            )
        })
        .collect();
    let remote_names: Vec<String> = remote.values().cloned().collect();
    let (Ok(source_configs), Ok(target_configs)) = (
        source.describe_topic_configs(&source_topics).await,
        target.describe_topic_configs(&remote_names).await,
    ) else {
        problems.report(
            flow,
            "describe configs".into(),
            "cannot describe topic configs; config sync skipped",
        );
        return;
    };
    let exclusions = topics::config_exclusions(flow);
    let copy_defaults = flow.source.use_defaults_from == "source";
    let mut updates = BTreeMap::new();
    for (source_topic, remote_topic) in &remote {
        let (Some(source_entries), Some(target_entries)) = (
            source_configs.get(source_topic),
            target_configs.get(remote_topic),
        ) else {
            continue;
        };
        let mut wanted: BTreeMap<String, String> =
            topics::target_config(source_entries, &exclusions, copy_defaults)
                .into_iter()
                .collect();
        let current: BTreeMap<String, String> = target_entries
            .iter()
            .filter(|e| !e.is_default && !e.is_read_only && !e.is_sensitive && !e.is_static_broker)
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect();
        // AlterConfigs replaces the whole set: carry over what the target owns (excluded keys).
        for (name, value) in &current {
            if exclusions.matches(name) {
                wanted.insert(name.clone(), value.clone());
            }
        }
        // Dynamic-broker values show up as non-default on both sides; only topic-level differences matter.
        if wanted != current {
            updates.insert(remote_topic.clone(), wanted.into_iter().collect::<Vec<_>>());
        }
    }
    if updates.is_empty() {
        return;
    }
    match target.alter_topic_configs(&updates).await {
        Ok(results) => {
            for (topic, outcome) in results {
                match outcome {
                    Ok(()) => info!(flow = %flow.id, topic = %topic, "synced topic config"),
                    Err(reason) => problems.report(
                        flow,
                        format!("config {topic}"),
                        &format!("could not alter configuration of topic `{topic}`: {reason}"),
                    ),
                }
            }
        }
        Err(error) => problems.report(
            flow,
            "alter configs".into(),
            &format!("cannot alter topic configs: {error}"),
        ),
    }
}

/// Topic ACL sync (§6.5): creates on the target the remote-topic ACLs derived from the source's
/// topic ACLs that it lacks. ACLs are never removed from the target.
async fn sync_acls(
    flow: &Arc<FlowPlan>,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
    problems: &mut Problems,
) {
    if !flow.source.sync_topic_acls.enabled {
        return;
    }
    let source = source.clone();
    let Ok(source_acls) = tokio::task::spawn_blocking(move || source.topic_acls()).await else {
        return;
    };
    let source_acls = match source_acls {
        Ok(acls) => acls,
        // MM2 logs this once at INFO and then stays quiet: a cluster without an authorizer is common.
        Err(AclError::SecurityDisabled) => {
            if problems.first(format!("acls disabled {}", flow.id.source)) {
                info!(flow = %flow.id, cluster = %flow.id.source, "no topic ACLs to sync: the source cluster has no authorizer (set sync.topic.acls.enabled = false to skip this check)");
            }
            return;
        }
        Err(error) => {
            problems.report(
                flow,
                "describe acls".into(),
                &format!("cannot list topic ACLs on `{}`: {error}", flow.id.source),
            );
            return;
        }
    };
    let wanted = topics::target_acls(flow, &source_acls);
    if wanted.is_empty() {
        return; // nothing to copy: no need to read the target's ACLs
    }
    // Creating is idempotent; reading the target first only avoids rewriting (and logging) the
    // same bindings every round. If it cannot be read, create them all.
    let target_admin = target.clone();
    let target_acls = tokio::task::spawn_blocking(move || target_admin.topic_acls())
        .await
        .ok()
        .and_then(Result::ok);
    let existing: HashSet<TopicAcl> = target_acls.unwrap_or_default().into_iter().collect();
    let missing: Vec<TopicAcl> = wanted
        .into_iter()
        .filter(|acl| !existing.contains(acl))
        .collect();
    if missing.is_empty() {
        return;
    }
    let target_admin = target.clone();
    let to_create = missing.clone();
    let created =
        tokio::task::spawn_blocking(move || target_admin.create_topic_acls(&to_create)).await;
    match created {
        Ok(Ok(outcomes)) => {
            for (acl, outcome) in missing.iter().zip(outcomes) {
                match outcome {
                    Ok(()) => {
                        info!(flow = %flow.id, topic = %acl.topic, principal = %acl.principal, host = %acl.host, operation = ?acl.operation, permission = ?acl.permission, "created topic ACL on the target")
                    }
                    Err(reason) => problems.report(
                        flow,
                        format!("acl {acl:?}"),
                        &format!(
                            "could not create ACL {:?} {:?} for {} on topic `{}`: {reason}",
                            acl.permission, acl.operation, acl.principal, acl.topic
                        ),
                    ),
                }
            }
        }
        Ok(Err(error)) => problems.report(
            flow,
            "create acls".into(),
            &format!("cannot create topic ACLs on `{}`: {error}", flow.id.target),
        ),
        Err(error) => problems.report(
            flow,
            "create acls".into(),
            &format!(
                "creating topic ACLs on `{}` failed: {error}",
                flow.id.target
            ),
        ),
    }
}

/// Spawns a supervisor for every task slot that has partitions but no running task.
fn start_idle_tasks(
    shared: &Arc<Shared>,
    supervisors: &mut JoinSet<()>,
    running: &mut HashSet<usize>,
) {
    let assignment = shared.assignment.lock().expect("assignment lock").clone();
    for index in 0..assignment.task_count() {
        if !assignment.task(index).is_empty() && running.insert(index) {
            supervisors.spawn(supervise_task(shared.clone(), index));
        }
    }
}

/// Runs one task, restarting it with exponential backoff when it fails.
async fn supervise_task(shared: Arc<Shared>, index: usize) {
    let flow = shared.flow.clone();
    let mut backoff = Duration::from_secs(1);
    loop {
        if shared.stop_tasks.load(Ordering::Acquire) {
            return;
        }
        let (sender, receiver) = mpsc::channel();
        // The current partitions, read under the same lock the control loop updates them with.
        let partitions: Vec<TopicPartition> = {
            let assignment = shared.assignment.lock().expect("assignment lock");
            *shared.slots[index].changes.lock().expect("slot lock") = Some(sender);
            assignment.task(index).iter().cloned().collect()
        };
        let input = TaskInput {
            flow: flow.clone(),
            index,
            partitions,
            changes: receiver,
            stop: shared.stop_tasks.clone(),
            counters: shared.slots[index].counters.clone(),
            telemetry: shared.telemetry.clone(),
        };
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || source_task::run(input)).await;
        *shared.slots[index].changes.lock().expect("slot lock") = None;
        match outcome {
            Ok(Ok(())) => return,
            Ok(Err(error)) => {
                error!(flow = %flow.id, task = index, retry_in_s = backoff.as_secs(), "source task failed: {error}");
                shared.telemetry.metrics.error(&flow.id, error.kind());
                shared
                    .telemetry
                    .flow_state(&flow.id, FlowState::Retrying, Some(error.to_string()));
            }
            Err(panic) => {
                error!(flow = %flow.id, task = index, "source task panicked: {panic}");
                shared.telemetry.metrics.error(&flow.id, "panic");
                shared.telemetry.flow_state(
                    &flow.id,
                    FlowState::Retrying,
                    Some(format!("task panicked: {panic}")),
                );
            }
        }
        if shared.stop_tasks.load(Ordering::Acquire) {
            return;
        }
        // A task that ran healthily for a while starts over with a short backoff.
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        let deadline = tokio::time::Instant::now() + backoff;
        while tokio::time::Instant::now() < deadline {
            if shared.stop_tasks.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
