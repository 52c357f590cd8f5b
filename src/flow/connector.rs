//! A replicating flow's connector task (MM2's MirrorSourceConnector): discovers the source
//! partitions to copy and publishes them to the flow's source tasks. On the flow's leader only
//! (`membership.rs`) it also creates the internal topics, creates and grows remote topics, and
//! syncs topic configs and ACLs — exactly once per flow however many nodes run it. Other nodes
//! publish only partitions whose remote topic exists, and look again every few seconds while one
//! is missing, so a topic the leader just created is picked up quickly.
//!
//! Every wait observes the task's [`Stop`]: a blocking admin call still running when a stop is
//! requested is left to finish on its own (each is bounded by `admin.timeout.ms`) instead of
//! holding the flow.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::assignment::PartitionSet;
use super::task::{TaskFailure, TaskReporter};
use super::topics;
use super::FlowTelemetry;
use crate::kafka::acls::{AclError, TopicAcl};
use crate::kafka::admin::{Admin, Created, TopicSpec};
use crate::lifecycle::Stop;
use crate::plan::clients::ClientRole;
use crate::plan::{FlowPlan, OffsetSyncsLocation};

/// How soon a non-leader looks again for a remote topic the leader has yet to create.
const MISSING_REMOTE_RECHECK: Duration = Duration::from_secs(5);

/// Runs until its stop is requested; publishes every selected source partition whose remote topic
/// exists into `partitions`. `leader` says whether this process does the connector's duties.
pub async fn run(
    flow: Arc<FlowPlan>,
    partitions: watch::Sender<Arc<PartitionSet>>,
    mut leader: watch::Receiver<bool>,
    stop: Stop,
    telemetry: FlowTelemetry,
    reporter: TaskReporter,
) -> Result<(), TaskFailure> {
    let timeout = Duration::from_millis(flow.admin_timeout_ms as u64);
    let admin = |role: ClientRole| {
        Admin::shared(&flow.clients[&role].client_config(), timeout)
            .map_err(|error| TaskFailure::Client(error.to_string()))
    };
    let (source_admin, target_admin) = (
        admin(ClientRole::SourceAdmin)?,
        admin(ClientRole::TargetAdmin)?,
    );
    let mut problems = Problems::default();
    let mut leading = *leader.borrow_and_update();
    let Some(known) = until_stopped(
        &stop,
        sync_topics_creating_internal(
            &flow,
            (&source_admin, &target_admin),
            leading,
            leading,
            &mut problems,
        ),
    )
    .await
    else {
        return Ok(());
    };
    let (mut known, mut missing) = known.map_err(TaskFailure::Unavailable)?;
    partitions.send_replace(Arc::new(known.clone()));
    reporter.running();
    info!(flow = %flow.id, topics = known.iter().map(|(t, _)| t).collect::<BTreeSet<_>>().len(), partitions = known.len(), leader = leading, "flow running");
    if leading
        && (until_stopped(
            &stop,
            sync_configs(&flow, &source_admin, &target_admin, &known, &mut problems),
        )
        .await
        .is_none()
            || until_stopped(
                &stop,
                sync_acls(&flow, &source_admin, &target_admin, &mut problems),
            )
            .await
            .is_none())
    {
        return Ok(());
    }

    let (mut refresh, mut config_sync, mut acl_sync) = (
        every(flow.source.refresh_topics),
        every(flow.source.sync_topic_configs),
        every(flow.source.sync_topic_acls),
    );
    let mut recheck = tokio::time::interval(MISSING_REMOTE_RECHECK);
    loop {
        let became_leader;
        tokio::select! {
            _ = stop.requested() => return Ok(()),
            Ok(()) = leader.changed() => {
                let now = *leader.borrow_and_update();
                became_leader = now && !leading;
                leading = now;
                if !became_leader {
                    continue;
                }
                info!(flow = %flow.id, "this process now leads the flow: creating and syncing topics");
            }
            _ = tick(&mut refresh) => became_leader = false,
            _ = recheck.tick(), if missing => became_leader = false,
            _ = tick(&mut config_sync), if leading => {
                if until_stopped(&stop, sync_configs(&flow, &source_admin, &target_admin, &known, &mut problems)).await.is_none() {
                    return Ok(());
                }
                continue;
            }
            _ = tick(&mut acl_sync), if leading => {
                if until_stopped(&stop, sync_acls(&flow, &source_admin, &target_admin, &mut problems)).await.is_none() {
                    return Ok(());
                }
                continue;
            }
        }
        let Some(outcome) = until_stopped(
            &stop,
            sync_topics_creating_internal(
                &flow,
                (&source_admin, &target_admin),
                became_leader,
                leading,
                &mut problems,
            ),
        )
        .await
        else {
            return Ok(());
        };
        match outcome {
            Ok((now, still_missing)) => {
                missing = still_missing;
                if now != known {
                    let added = now.difference(&known).count();
                    let removed = known.difference(&now).count();
                    info!(flow = %flow.id, added, removed, "source partitions changed");
                    for (topic, partition) in known.difference(&now) {
                        telemetry.status.remove_partition(topic, *partition);
                        telemetry
                            .metrics
                            .remove_source_partition(&flow.id, topic, *partition);
                    }
                    partitions.send_replace(Arc::new(now.clone()));
                    known = now;
                }
            }
            Err(message) => warn!(flow = %flow.id, "topic refresh failed: {message}"),
        }
        if became_leader
            && (until_stopped(
                &stop,
                sync_configs(&flow, &source_admin, &target_admin, &known, &mut problems),
            )
            .await
            .is_none()
                || until_stopped(
                    &stop,
                    sync_acls(&flow, &source_admin, &target_admin, &mut problems),
                )
                .await
                .is_none())
        {
            return Ok(());
        }
    }
}

/// Runs `work` unless a stop comes first (`None`).
pub(crate) async fn until_stopped<T>(stop: &Stop, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        _ = stop.requested() => None,
        value = work => Some(value),
    }
}

/// A periodic timer (first tick after one period), or none when the job is disabled.
fn every(job: crate::plan::Interval) -> Option<tokio::time::Interval> {
    job.enabled.then(|| {
        let period = Duration::from_secs(job.interval_seconds.max(1));
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

/// Runs a blocking admin call off the async runtime.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|error| format!("admin call failed: {error}"))
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

/// [`sync_topics`], and when `create_internal` (this process leads now and did not a moment ago)
/// [`ensure_internal_topics`] at the same time: each creation is a round trip to the controller,
/// and the source tasks wait for both (start-up time).
async fn sync_topics_creating_internal(
    flow: &Arc<FlowPlan>,
    (source, target): (&Arc<Admin>, &Arc<Admin>),
    create_internal: bool,
    leading: bool,
    problems: &mut Problems,
) -> Result<(PartitionSet, bool), String> {
    let internal_topics = async {
        if create_internal {
            ensure_internal_topics(flow, source, target).await;
        }
    };
    let ((), synced) = tokio::join!(
        internal_topics,
        sync_topics(flow, source, target, leading, problems)
    );
    synced
}

/// Creates the offsets-storage topic and the offset-history topic on the target and the
/// offset-syncs topic, compacted (docs/mm2-behaviour.md, *Internal topics*;
/// docs/offset-translation.md).
async fn ensure_internal_topics(flow: &FlowPlan, source: &Admin, target: &Admin) {
    let compact = vec![("cleanup.policy".to_string(), "compact".to_string())];
    let storage = &flow.offset_storage;
    let offsets = TopicSpec {
        name: storage.topic.clone(),
        partitions: storage.partitions,
        replication_factor: storage.replication_factor as i32,
        configs: compact,
    };
    let history = super::compacted_topic(&storage.history_topic, storage.replication_factor);
    let mut on_target = vec![offsets, history];
    let mut on_source = Vec::new();
    if flow.offset_syncs.enabled {
        let syncs = super::compacted_topic(
            &flow.offset_syncs.topic,
            flow.offset_syncs.replication_factor,
        );
        match flow.offset_syncs.location {
            OffsetSyncsLocation::Source => on_source.push(syncs),
            OffsetSyncsLocation::Target => on_target.push(syncs),
        }
    }
    // One request per cluster, both at once: the controller commits a request's topics together,
    // and the source tasks wait for them (start-up time).
    let source_side = async {
        if !on_source.is_empty() {
            super::create_internal_topics(flow, source, on_source, &flow.id.source).await;
        }
    };
    tokio::join!(
        super::create_internal_topics(flow, target, on_target, &flow.id.target),
        source_side,
    );
}

/// Lists source topics and, when `leading`, creates missing remote topics and partitions; returns
/// the selected source partitions whose remote partition exists (or was just created), and whether
/// some selected partition still has none.
async fn sync_topics(
    flow: &Arc<FlowPlan>,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
    leading: bool,
    problems: &mut Problems,
) -> Result<(PartitionSet, bool), String> {
    let (source_list, target_list) = {
        let (source, target) = (source.clone(), target.clone());
        let lists = blocking(move || (source.list_topics(), target.list_topics())).await?;
        (
            lists.0.map_err(|e| format!("source: {e}"))?,
            lists.1.map_err(|e| format!("target: {e}"))?,
        )
    };
    let selected = topics::selected(flow, &source_list);
    let mut changes = topics::target_changes(flow, &selected, &target_list);
    if !leading {
        changes = topics::TargetChanges::default();
    }
    // Remote partition counts as they will be after this round.
    let mut remote_partitions: BTreeMap<String, i32> = target_list.clone();
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
                        Created::Failed(reason) => {
                            problems.report(
                                flow,
                                format!("create {topic}"),
                                &format!("cannot create remote topic `{topic}`: {reason}"),
                            );
                            continue;
                        }
                    }
                    if let Some(spec) = requests.iter().find(|spec| spec.name == topic) {
                        remote_partitions.insert(topic, spec.partitions);
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
                            info!(flow = %flow.id, topic = %topic, "added partitions to remote topic");
                            if let Some((_, count)) = changes.grow.iter().find(|(t, _)| *t == topic)
                            {
                                remote_partitions.insert(topic, *count);
                            }
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
    let mut missing = false;
    let mut partitions = PartitionSet::new();
    for (topic, count) in &selected {
        let remote = flow
            .replication_policy
            .format_remote_topic(&flow.id.source, topic);
        let existing = remote_partitions.get(&remote).copied().unwrap_or(0);
        missing |= existing < *count;
        partitions.extend((0..(*count).min(existing)).map(|partition| (topic.clone(), partition)));
    }
    Ok((partitions, missing))
}

/// Topic config sync (docs/mm2-behaviour.md, *Topic config sync*): the source's copied configs replace the remote topic's dynamic config,
/// keeping the target's own values of excluded properties. Only writes when something differs.
async fn sync_configs(
    flow: &FlowPlan,
    source: &Admin,
    target: &Admin,
    partitions: &PartitionSet,
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

/// Topic ACL sync (docs/mm2-behaviour.md, *ACL sync*): creates on the target the remote-topic ACLs derived from the source's
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
    let Ok(source_acls) = blocking(move || source.topic_acls()).await else {
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
    let target_acls = blocking(move || target_admin.topic_acls())
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
    let created = blocking(move || target_admin.create_topic_acls(&to_create)).await;
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
