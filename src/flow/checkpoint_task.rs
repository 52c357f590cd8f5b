//! MM2's MirrorCheckpointTask for one flow (docs/mm2-behaviour.md, *Checkpoints*): tails the offset-syncs topic into an
//! `OffsetSyncStore`, discovers the source's consumer groups, emits checkpoints for them into
//! `<source>.checkpoints.internal` on the target, and (with `sync.group.offsets.enabled`) commits
//! translated offsets for groups that are idle or absent on the target — never rewinding, never
//! touching a group with active members.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::checkpoints::{self, CheckpointStore, CommittedOffsets, SkipReason, TargetGroup};
use super::connector::until_stopped;
use super::offset_sync_store::OffsetSyncStore;
use super::records::{Checkpoint, OffsetSync};
use super::task::{TaskFailure, TaskReporter};
use super::FlowTelemetry;
use crate::kafka::admin::Admin;
use crate::kafka::context::LoggingContext;
use crate::lifecycle::Stop;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// Runs until the stop is requested.
pub async fn run(
    flow: Arc<FlowPlan>,
    stop: Stop,
    telemetry: FlowTelemetry,
    reporter: TaskReporter,
) -> Result<(), TaskFailure> {
    let timeout = Duration::from_millis(flow.admin_timeout_ms as u64);
    let config = |role: ClientRole| flow.clients[&role].client_config();
    let client_error = |error: rdkafka::error::KafkaError| TaskFailure::Client(error.to_string());
    let source_admin =
        Arc::new(Admin::new(&config(ClientRole::SourceAdmin), timeout).map_err(client_error)?);
    let target_admin =
        Arc::new(Admin::new(&config(ClientRole::TargetAdmin), timeout).map_err(client_error)?);
    let producer = super::record_producer(&flow, "checkpoints-producer").map_err(client_error)?;
    let created = until_stopped(
        &stop,
        super::create_internal_topic(
            &flow,
            &target_admin,
            super::compacted_topic(&flow.checkpoints.topic, flow.checkpoints.replication_factor),
            &flow.id.target,
        ),
    )
    .await;
    if created.is_none() {
        return Ok(());
    }

    // Earlier checkpoints keep translations monotonic across restarts; without them MM2 only
    // trusts syncs read after start (KAFKA-15905), and so do we.
    let loaded = {
        let (flow, consumer) = (flow.clone(), config(ClientRole::TargetConsumer));
        let reading =
            tokio::task::spawn_blocking(move || load_checkpoints(&flow, &consumer, timeout));
        match until_stopped(&stop, reading).await {
            None => return Ok(()),
            Some(loaded) => loaded.ok().flatten(),
        }
    };
    let loaded_ok = loaded.is_some();
    if !loaded_ok {
        warn!(flow = %flow.id, topic = %flow.checkpoints.topic, "cannot read earlier checkpoints; translating only from offset syncs read from now on");
    }
    let mut store = loaded.unwrap_or_default();
    let syncs = Arc::new(Mutex::new(OffsetSyncStore::new(!loaded_ok)));
    let tailer = {
        let (syncs, stop, consumer, topic) = (
            syncs.clone(),
            stop.clone(),
            config(ClientRole::OffsetSyncsConsumer),
            flow.offset_syncs.topic.clone(),
        );
        let flow_id = flow.id.to_string();
        std::thread::Builder::new()
            .name("offset-syncs-reader".into())
            .spawn(move || tail_offset_syncs(&flow_id, consumer, &topic, &syncs, &stop))
            .map_err(|error| TaskFailure::Client(format!("cannot start a thread: {error}")))?
    };
    reporter.running();

    let every = |seconds: u64| {
        let mut interval = tokio::time::interval(Duration::from_secs(seconds.max(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    };
    let mut refresh = every(flow.checkpoints.refresh_groups.interval_seconds);
    let mut emit = every(flow.checkpoints.emit_checkpoints.interval_seconds);
    let mut sync = every(flow.checkpoints.sync_group_offsets.interval_seconds);
    let mut groups: BTreeSet<String> = BTreeSet::new();
    let mut skipped: HashMap<String, SkipReason> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.requested() => break,
            _ = refresh.tick() => {
                let (flow_clone, admin) = (flow.clone(), source_admin.clone());
                let listing = tokio::task::spawn_blocking(move || discover_groups(&flow_clone, &admin));
                match until_stopped(&stop, listing).await {
                    None => break,
                    Some(Ok(Ok(found))) => {
                        if found != groups {
                            info!(flow = %flow.id, groups = found.len(), "consumer groups to checkpoint");
                        }
                        groups = found;
                    }
                    Some(Ok(Err(error))) => warn!(flow = %flow.id, "cannot list consumer groups on the source: {error}"),
                    Some(Err(_)) => {}
                }
            }
            _ = emit.tick() => {
                if until_stopped(&stop, emit_checkpoints(&flow, &syncs, &mut store, &groups, &producer, &telemetry)).await.is_none() {
                    break;
                }
            }
            _ = sync.tick(), if flow.checkpoints.sync_group_offsets.enabled => {
                let (flow_clone, admin, snapshot) = (flow.clone(), target_admin.clone(), store.clone());
                let syncing = tokio::task::spawn_blocking(move || sync_group_offsets(&flow_clone, &admin, &snapshot));
                let Some(outcome) = until_stopped(&stop, syncing).await else {
                    break;
                };
                for (group, result) in outcome.unwrap_or_default() {
                    let reason = result.as_ref().err().map(|r| r.as_str().to_string());
                    telemetry.status.set_group(&group, store.group(&group).is_some(), reason);
                    match result {
                        Ok(count) => {
                            skipped.remove(&group);
                            info!(flow = %flow.id, group = %group, partitions = count, "synced consumer group offsets to the target");
                        }
                        Err(reason) => {
                            if skipped.insert(group.clone(), reason) != Some(reason) {
                                info!(flow = %flow.id, group = %group, reason = reason.as_str(), "group offsets not synced");
                            }
                        }
                    }
                }
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for reason in skipped.values() {
                    *counts.entry(reason.as_str()).or_default() += 1;
                }
                telemetry.metrics.set_groups_skipped(&flow.id, counts);
            }
        }
    }
    // The tailer sees the stop within 200 ms; join it off the runtime.
    let _ = tokio::task::spawn_blocking(move || tailer.join()).await;
    Ok(())
}

/// A poisoned store only means a panic elsewhere mid-update; keep checkpointing.
fn lock(syncs: &Mutex<OffsetSyncStore>) -> std::sync::MutexGuard<'_, OffsetSyncStore> {
    syncs
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads partition 0 of `topic` from the beginning to its end; calls `each` per record.
fn read_partition_zero(
    consumer_config: &ClientConfig,
    topic: &str,
    timeout: Duration,
    stop: Option<&Stop>,
    mut each: impl FnMut(&[u8], &[u8]),
    mut at_end: impl FnMut(),
) -> Result<(), String> {
    let mut config = consumer_config.clone();
    config
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("internal-topic-reader"))
        .map_err(|e| e.to_string())?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    // Tailing (with a stop flag) has no deadline; a one-off read must finish in time.
    let deadline = stop.is_none().then(|| std::time::Instant::now() + timeout);
    let mut reached_end = false;
    loop {
        if stop.is_some_and(Stop::is_requested) {
            return Ok(());
        }
        if deadline.is_some_and(|deadline| std::time::Instant::now() > deadline) {
            return Err(format!("reading `{topic}` did not reach its end in time"));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => each(
                message.key().unwrap_or_default(),
                message.payload().unwrap_or_default(),
            ),
            Some(Err(KafkaError::PartitionEOF(_))) => {
                if !reached_end {
                    reached_end = true;
                    at_end();
                }
                if stop.is_none() {
                    return Ok(());
                }
            }
            Some(Err(error)) => return Err(error.to_string()),
            None => {}
        }
    }
}

/// `CheckpointStore.start()`: the last checkpoint per (group, partition) already on the target.
fn load_checkpoints(
    flow: &FlowPlan,
    consumer: &ClientConfig,
    timeout: Duration,
) -> Option<CheckpointStore> {
    let mut store = CheckpointStore::default();
    let result = read_partition_zero(
        consumer,
        &flow.checkpoints.topic,
        timeout,
        None,
        |key, value| {
            if let Ok(checkpoint) = Checkpoint::decode(key, value) {
                if flow.checkpoints.groups.matches(&checkpoint.group) {
                    store.update(&checkpoint);
                }
            }
        },
        || {},
    );
    result.ok().map(|_| store)
}

/// Tails partition 0 of the offset-syncs topic into the store until `stop`.
fn tail_offset_syncs(
    flow: &str,
    consumer: ClientConfig,
    topic: &str,
    syncs: &Mutex<OffsetSyncStore>,
    stop: &Stop,
) {
    while !stop.is_requested() {
        let result = read_partition_zero(
            &consumer,
            topic,
            Duration::MAX,
            Some(stop),
            |key, value| match OffsetSync::decode(key, value) {
                Ok(sync) => {
                    lock(syncs).update(&sync.topic, sync.partition, sync.upstream, sync.downstream)
                }
                Err(error) => warn!(flow, "skipping undecodable offset sync: {error}"),
            },
            || lock(syncs).mark_read_to_end(),
        );
        if let Err(error) = result {
            // Typically the topic does not exist yet (the source flow creates it); retry.
            warn!(
                flow,
                topic, "reading offset syncs: {error}; retrying in 5 s"
            );
            if stop.sleep_blocking(Duration::from_secs(5)) {
                return;
            }
        }
    }
}

/// `findConsumerGroups`: groups accepted by the group filter with a committed offset on a topic
/// the topic filter accepts.
fn discover_groups(flow: &FlowPlan, source: &Admin) -> Result<BTreeSet<String>, String> {
    let groups = source.groups(None).map_err(|e| e.to_string())?;
    let partitions = source_partitions(flow, source)?;
    let mut out = BTreeSet::new();
    for group in groups
        .into_iter()
        .filter(|g| flow.checkpoints.groups.matches(&g.name))
    {
        if !committed_offsets(
            &flow.clients[&ClientRole::SourceConsumer].client_config(),
            &group.name,
            &partitions,
        )?
        .is_empty()
        {
            out.insert(group.name);
        }
    }
    Ok(out)
}

/// Partitions of the source topics the topic filter accepts.
fn source_partitions(flow: &FlowPlan, source: &Admin) -> Result<Vec<(String, i32)>, String> {
    let topics = source.list_topics().map_err(|e| e.to_string())?;
    Ok(topics
        .into_iter()
        .filter(|(topic, _)| flow.source.topics.matches(topic))
        .flat_map(|(topic, count)| (0..count).map(move |p| (topic.clone(), p)))
        .collect())
}

/// A group's committed offsets on `partitions`, read with a client of that group id (it never
/// joins the group).
pub fn committed_offsets(
    consumer: &ClientConfig,
    group: &str,
    partitions: &[(String, i32)],
) -> Result<CommittedOffsets, String> {
    if partitions.is_empty() {
        return Ok(CommittedOffsets::new());
    }
    let mut config = consumer.clone();
    config.set("group.id", group);
    let client: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("group-offsets"))
        .map_err(|e| e.to_string())?;
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let committed = client
        .committed_offsets(list, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    Ok(crate::kafka::groups::offsets_with_metadata(&committed)
        .into_iter()
        .map(|(topic, partition, offset, metadata)| ((topic, partition), (offset, metadata)))
        .collect())
}

async fn emit_checkpoints(
    flow: &Arc<FlowPlan>,
    syncs: &Arc<Mutex<OffsetSyncStore>>,
    store: &mut CheckpointStore,
    groups: &BTreeSet<String>,
    producer: &FutureProducer<LoggingContext>,
    telemetry: &FlowTelemetry,
) {
    if groups.is_empty() || !lock(syncs).is_ready() {
        return;
    }
    let listed_at = crate::clock::unix_ms();
    let offsets = {
        let (flow, groups) = (flow.clone(), groups.clone());
        tokio::task::spawn_blocking(move || {
            let admin = Admin::new(
                &flow.clients[&ClientRole::SourceAdmin].client_config(),
                Duration::from_secs(30),
            )
            .ok()?;
            let partitions = source_partitions(&flow, &admin).ok()?;
            let consumer = flow.clients[&ClientRole::SourceConsumer].client_config();
            Some(
                groups
                    .iter()
                    .map(|group| {
                        (
                            group.clone(),
                            committed_offsets(&consumer, group, &partitions),
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
            )
        })
        .await
        .ok()
        .flatten()
    };
    let Some(offsets) = offsets else {
        warn!(flow = %flow.id, "cannot list group offsets on the source; no checkpoints this round");
        return;
    };
    for (group, committed) in offsets {
        let committed = match committed {
            Ok(committed) => committed,
            Err(error) => {
                warn!(flow = %flow.id, group = %group, "cannot list committed offsets: {error}");
                continue;
            }
        };
        let new = {
            let syncs = lock(syncs);
            checkpoints::checkpoints_for_group(flow, &syncs, store, &group, &committed)
        };
        for checkpoint in new {
            let (key, value) = (checkpoint.key(), checkpoint.value());
            let record = FutureRecord::to(&flow.checkpoints.topic)
                .partition(0)
                .key(&key)
                .payload(&value)
                .timestamp(listed_at);
            let sent = tokio::time::timeout(
                Duration::from_secs(30),
                producer.send(record, Duration::from_secs(30)),
            )
            .await;
            match sent {
                Ok(Ok(_)) => {
                    store.update(&checkpoint);
                    telemetry
                        .metrics
                        .checkpoint(&flow.id, &group, &checkpoint.topic, checkpoint.partition)
                        .checkpoint_emitted(crate::clock::unix_ms() - listed_at);
                    telemetry.status.set_group(&group, true, None);
                }
                Ok(Err((error, _))) => {
                    warn!(flow = %flow.id, group = %group, "cannot emit checkpoint: {error}")
                }
                Err(_) => {
                    warn!(flow = %flow.id, group = %group, "the target did not acknowledge a checkpoint within 30 s; next round");
                    return;
                }
            }
        }
    }
}

/// One round of group offset sync; per group the number of partitions written or why not.
fn sync_group_offsets(
    flow: &FlowPlan,
    target: &Admin,
    store: &CheckpointStore,
) -> Vec<(String, Result<usize, SkipReason>)> {
    let consumer = flow.clients[&ClientRole::TargetConsumer].client_config();
    let mut out = Vec::new();
    for (group, group_checkpoints) in &store.last {
        let state = match target.groups(Some(group)) {
            Ok(groups) => groups.into_iter().next(),
            Err(error) => {
                warn!(flow = %flow.id, group = %group, "cannot describe the group on the target: {error}");
                continue;
            }
        };
        let target_group = match state {
            None => TargetGroup::Missing,
            Some(info) if info.state == "Dead" || info.state.is_empty() => TargetGroup::Missing,
            Some(info) if info.state == "Empty" && info.members == 0 => {
                let partitions: Vec<(String, i32)> = group_checkpoints.keys().cloned().collect();
                match committed_offsets(&consumer, group, &partitions) {
                    Ok(committed) => TargetGroup::Idle(
                        committed
                            .into_iter()
                            .map(|(tp, (offset, _))| (tp, Some(offset)))
                            .collect(),
                    ),
                    Err(error) => {
                        warn!(flow = %flow.id, group = %group, "cannot read the group's offsets on the target: {error}");
                        continue;
                    }
                }
            }
            Some(_) => TargetGroup::Active,
        };
        match checkpoints::group_offsets_to_write(Some(group_checkpoints), &target_group) {
            Ok(offsets) => match commit(&consumer, group, &offsets) {
                Ok(()) => out.push((group.clone(), Ok(offsets.len()))),
                // The group became active between the check and the commit: the broker refused.
                Err(error)
                    if error.contains("member")
                        || error.contains("generation")
                        || error.contains("rebalance") =>
                {
                    out.push((group.clone(), Err(SkipReason::ActiveOnTarget)))
                }
                Err(error) => {
                    warn!(flow = %flow.id, group = %group, "cannot commit offsets on the target: {error}")
                }
            },
            Err(reason) => out.push((group.clone(), Err(reason))),
        }
    }
    out
}

fn commit(
    consumer: &ClientConfig,
    group: &str,
    offsets: &BTreeMap<(String, i32), (i64, String)>,
) -> Result<(), String> {
    let mut config = consumer.clone();
    config.set("group.id", group);
    let client: BaseConsumer<LoggingContext> = config
        .create_with_context(LoggingContext::new("group-offset-sync"))
        .map_err(|e| e.to_string())?;
    let mut list = TopicPartitionList::new();
    for ((topic, partition), (offset, metadata)) in offsets {
        let mut element = list.add_partition(topic, *partition);
        element
            .set_offset(Offset::Offset(*offset))
            .map_err(|e| e.to_string())?;
        element.set_metadata(metadata.clone());
    }
    client
        .commit(&list, CommitMode::Sync)
        .map_err(|e| e.to_string())
}
