//! MM2's MirrorCheckpointTask for one flow (docs/mm2-behaviour.md, *Checkpoints*): tails the
//! offset-syncs topic into an `OffsetSyncStore` and the target's stored progress and offset history
//! (`translation.rs`), discovers the source's consumer groups, emits checkpoints for them into
//! `<source>.checkpoints.internal` on the target — translated exactly where the history covers
//! them — and (with `sync.group.offsets.enabled`) commits translated offsets for groups that are
//! idle or absent on the target (`group_offsets.rs`). `kafka-mirrord cutover --final-sync` asks
//! for one immediate round of all three.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use tracing::{debug, info, warn};

use super::checkpoints::CommittedOffsets;
use super::checkpoints::{self, CheckpointStore, SkipReason};
use super::connector::until_stopped;
use super::group_commits::{CommitWatch, Committed};
use super::group_offsets::{self, SourceGroups};
use super::mm2_topics::{load_checkpoints, tail_offset_syncs};
use super::offset_sync_store::OffsetSyncStore;
use super::records::Checkpoint;
use super::task::{TaskFailure, TaskReporter};
use super::translation::{ConsistentProgress, TranslationSources, Translator};
use super::FlowTelemetry;
use crate::kafka::admin::Admin;
use crate::kafka::context::LoggingContext;
use crate::kafka::producer::{Acknowledgement, Record, RecordProducer};
use crate::lifecycle::Stop;
use crate::locks::lock;
use crate::metrics::GroupRound;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// How long a round waits for the offset history to be read up to date before it translates by
/// MM2's rule alone.
const HISTORY_WAIT: Duration = Duration::from_secs(5);
/// How long rounds skip translating while the stored progress and history are still being read
/// (without an error) before they translate by MM2's rule alone.
const HISTORY_PATIENCE: Duration = Duration::from_secs(60);
/// How often a sync round reads the target offsets of every idle group, including those in sync
/// before whose checkpoints have not moved (someone may have moved them on the target). Reading
/// 1,000 groups costs librdkafka one request and one coordinator look-up each: a fifth of a
/// core-second, which once a minute was a fifth of the idle daemon's CPU.
const FULL_SYNC_EVERY: Duration = Duration::from_secs(300);
/// How often an emit round asks every group for its offsets even though the commit watch says
/// which ones committed (a safety net: the watch misses nothing by design).
const FULL_EMIT_EVERY: Duration = Duration::from_secs(300);
/// How often the offset history is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// Change points kept per partition (docs/offset-translation.md): older committed offsets are
/// translated by MM2's rule.
pub const HISTORY_POINTS_PER_PARTITION: usize = 2_000;

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
        Admin::shared(&config(ClientRole::SourceAdmin), timeout).map_err(client_error)?;
    let target_admin =
        Admin::shared(&config(ClientRole::TargetAdmin), timeout).map_err(client_error)?;
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
    let thread_error =
        |error: std::io::Error| TaskFailure::Client(format!("cannot start a thread: {error}"));
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
            .map_err(thread_error)?
    };
    let sources = Arc::new(TranslationSources::start(&flow, &stop).map_err(thread_error)?);
    let commits = CommitWatch::start(
        &flow.id.to_string(),
        &config(ClientRole::SourceConsumer),
        flow.checkpoints.groups.clone(),
        stop.clone(),
    )
    .map_err(thread_error)?;
    telemetry
        .status
        .set_sync_group_offsets(flow.checkpoints.sync_group_offsets.enabled);
    let mut final_sync = telemetry.status.final_sync_requests();
    reporter.running();

    let every = |seconds: u64| {
        let mut interval = tokio::time::interval(Duration::from_secs(seconds.max(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    };
    let mut refresh = every(flow.checkpoints.refresh_groups.interval_seconds);
    let mut emit = every(flow.checkpoints.emit_checkpoints.interval_seconds);
    let mut sync = every(flow.checkpoints.sync_group_offsets.interval_seconds);
    let sync_enabled = flow.checkpoints.sync_group_offsets.enabled;
    let mut prune = every(PRUNE_EVERY.as_secs());
    prune.reset(); // not at start: the history is being read then
    let mut rounds = Rounds {
        flow: flow.clone(),
        syncs,
        sources: sources.clone(),
        store: loaded.unwrap_or_default(),
        groups: SourceGroups::new(),
        skipped: HashMap::new(),
        inconsistent_since: Some(Instant::now()),
        telemetry: telemetry.clone(),
        producer,
        source_admin,
        target_admin,
        in_sync: HashSet::new(),
        last_full_sync: None,
        commits,
        committed: HashMap::new(),
        last_full_emit: None,
        sync_states: HashMap::new(),
        translations: HashMap::new(),
        translated_with: None,
        settled: HashSet::new(),
    };
    loop {
        let done = tokio::select! {
            _ = stop.requested() => break,
            _ = refresh.tick() => until_stopped(&stop, rounds.refresh_groups()).await,
            _ = emit.tick() => until_stopped(&stop, rounds.emit(false)).await,
            _ = sync.tick(), if sync_enabled => until_stopped(&stop, rounds.sync(false)).await,
            _ = prune.tick() => until_stopped(&stop, rounds.prune_history()).await,
            Ok(()) = final_sync.changed() => {
                let requested = *final_sync.borrow_and_update();
                let round = async {
                    rounds.refresh_groups().await;
                    rounds.emit(true).await;
                    if sync_enabled {
                        rounds.sync(true).await;
                    }
                };
                let done = until_stopped(&stop, round).await;
                if done.is_some() {
                    info!(flow = %flow.id, "final sync round done");
                    telemetry.status.final_sync_done(requested);
                }
                done
            }
        };
        if done.is_none() {
            break;
        }
    }
    // The tailers see the stop within 200 ms; join them off the runtime. The rounds' handle on
    // the sources goes first, so the one below is the last and the tails are joined (and the
    // kept consumer destroyed) on the blocking thread, not on the runtime.
    let commits = rounds.commits;
    drop(rounds.sources);
    let _ = tokio::task::spawn_blocking(move || {
        commits.join();
        let _ = tailer.join();
        if let Ok(sources) = Arc::try_unwrap(sources) {
            sources.join();
        }
    })
    .await;
    Ok(())
}

/// The checkpoint task's state between rounds.
struct Rounds {
    flow: Arc<FlowPlan>,
    syncs: Arc<Mutex<OffsetSyncStore>>,
    sources: Arc<TranslationSources>,
    store: CheckpointStore,
    /// Groups to checkpoint, with their members on the source.
    groups: SourceGroups,
    /// Groups not synced in the last round, and why.
    skipped: HashMap<String, SkipReason>,
    /// Since when rounds could not read the progress and history up to date (`None`: last
    /// round could); a task starts not up to date.
    inconsistent_since: Option<Instant>,
    telemetry: FlowTelemetry,
    producer: RecordProducer,
    source_admin: Arc<Admin>,
    target_admin: Arc<Admin>,
    /// Groups the last sync round found in sync (or wrote) whose checkpoints have not moved since
    /// (a group leaves it when the target acknowledges a new checkpoint of it).
    in_sync: HashSet<String>,
    last_full_sync: Option<Instant>,
    /// Which groups committed since the last emit round.
    commits: CommitWatch,
    /// Each group's committed offsets as last read (asked again when the group commits).
    committed: HashMap<String, CommittedOffsets>,
    /// When the last emit round that asked every group started.
    last_full_emit: Option<Instant>,
    /// Each group's sync state as last written to the metrics.
    sync_states: HashMap<String, &'static str>,
    /// Each group's translation as last written to the metrics.
    translations: HashMap<String, Option<crate::status::GroupTranslation>>,
    /// What the last emit round translated with.
    translated_with: Option<TranslationInputs>,
    /// Groups that queued no checkpoint when last translated with `translated_with`.
    settled: HashSet<String>,
}

/// What a translation depends on besides the group's own offsets and checkpoints: the offset
/// syncs, the offset history and the stored progress as far as they were read, and whether the
/// history was read up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TranslationInputs {
    syncs: (u64, bool),
    history_read: u64,
    progress_read: u64,
    consistent: bool,
}

impl Rounds {
    /// `findConsumerGroups`, and each group's members on the source.
    async fn refresh_groups(&mut self) {
        let (flow, admin, known) = (
            self.flow.clone(),
            self.source_admin.clone(),
            self.groups.clone(),
        );
        let listing = tokio::task::spawn_blocking(move || {
            group_offsets::discover_groups(&flow, &admin, &known)
        });
        match listing.await {
            Ok(Ok(found)) => {
                if found.keys().ne(self.groups.keys()) {
                    info!(flow = %self.flow.id, groups = found.len(), "consumer groups to checkpoint");
                }
                let gone: Vec<String> = self
                    .groups
                    .keys()
                    .filter(|g| !found.contains_key(*g))
                    .cloned()
                    .collect();
                for group in &gone {
                    self.forget_group(group);
                }
                for (group, members) in &found {
                    self.telemetry
                        .status
                        .set_group_members(group, Some(*members), None);
                }
                self.groups = found;
            }
            Ok(Err(error)) => {
                warn!(flow = %self.flow.id, "cannot list consumer groups on the source: {error}")
            }
            Err(_) => {}
        }
    }

    /// A group no longer checkpointed: out of the status and the metrics.
    fn forget_group(&mut self, group: &str) {
        self.groups.remove(group);
        self.committed.remove(group);
        self.in_sync.remove(group);
        self.skipped.remove(group);
        self.sync_states.remove(group);
        self.translations.remove(group);
        self.settled.remove(group);
        self.telemetry.status.remove_group(group);
        self.telemetry.metrics.remove_group(&self.flow.id, group);
    }

    /// Translates every group's committed offsets and emits the checkpoints that moved. The
    /// source is asked for the offsets of the groups that committed since the last round (and
    /// of every group when the commit watch cannot tell, every [`FULL_EMIT_EVERY`] and with
    /// `force_full`); the others keep the offsets read before, translated anew.
    async fn emit(&mut self, force_full: bool) {
        let flow = self.flow.clone();
        if self.groups.is_empty() || !lock(&self.syncs).is_ready() {
            return;
        }
        let started = Instant::now();
        let listed_at = crate::clock::unix_ms();
        let committed_lately = self.commits.take(self.last_full_emit);
        self.telemetry
            .status
            .set_group_commit_watch(matches!(committed_lately, Committed::Only(_)));
        let due = !matches!(self.last_full_emit, Some(at) if at.elapsed() < FULL_EMIT_EVERY);
        let names: Vec<String> = match committed_lately {
            Committed::Only(changed) if !force_full && !due => self
                .groups
                .keys()
                .filter(|group| changed.contains(*group) || !self.committed.contains_key(*group))
                .cloned()
                .collect(),
            _ => self.groups.keys().cloned().collect(),
        };
        let full = names.len() == self.groups.len();
        let offsets = {
            let (flow, admin, names) = (flow.clone(), self.source_admin.clone(), names.clone());
            tokio::task::spawn_blocking(move || {
                group_offsets::committed_offsets(&flow, &admin, &names)
            })
            .await
            .ok()
        };
        let Some(offsets) = offsets else {
            warn!(flow = %flow.id, "cannot list group offsets on the source; no checkpoints this round");
            // The watch reported these groups' commits once: the next round asks them again.
            for group in &names {
                self.commits.again(group);
            }
            return;
        };
        if full {
            self.last_full_emit = Some(started);
        }
        for (group, committed) in offsets {
            match committed {
                // No offset on a selected topic any more (expired or deleted): MM2 stops
                // checkpointing the group; the next refresh finds it again if it commits.
                Ok(committed) if committed.is_empty() => self.forget_group(&group),
                Ok(committed) => {
                    self.committed.insert(group, committed);
                }
                Err(error) => {
                    warn!(flow = %flow.id, group = %group, "cannot list committed offsets: {error}");
                    self.committed.remove(&group);
                    self.commits.again(&group);
                }
            }
        }
        // Stored progress first, then the history read past everything written before it.
        let ConsistentProgress {
            progress,
            consistent,
            progress_read,
        } = {
            let sources = self.sources.clone();
            tokio::task::spawn_blocking(move || sources.consistent_progress(HISTORY_WAIT))
                .await
                .unwrap_or_default()
        };
        if consistent {
            self.inconsistent_since = None;
        } else {
            let since = *self.inconsistent_since.get_or_insert_with(Instant::now);
            match self.sources.problem() {
                Some(problem) => {
                    warn!(flow = %flow.id, "offsets translated by MM2's rule this round: {problem}")
                }
                // Still reading (at start, or a burst of history): an approximate translation now
                // would move groups behind where the next round puts them exactly.
                None if since.elapsed() < HISTORY_PATIENCE => {
                    debug!(flow = %flow.id, "stored progress and offset history still being read; no checkpoints this round");
                    return;
                }
                None => warn!(
                    flow = %flow.id,
                    "the offset history was not read up to date for {} s; offsets translated by MM2's rule this round",
                    since.elapsed().as_secs()
                ),
            }
        }
        // A group whose offsets were not asked again, translated with the same inputs as last
        // round and with nothing queued then, translates to the same checkpoints: it is skipped
        // (idle, 1,000 groups were translated again every round for nothing).
        let inputs = TranslationInputs {
            syncs: lock(&self.syncs).version(),
            history_read: self.sources.history_read(),
            progress_read,
            consistent,
        };
        if full || self.translated_with != Some(inputs) {
            self.settled.clear();
            self.translated_with = Some(inputs);
        }
        let asked: HashSet<&String> = names.iter().collect();
        // Every checkpoint of the round is queued at once and acknowledged together: one by one,
        // 4,000 of them (1,000 groups) took a round trip each.
        let mut in_flight = Vec::new();
        for (group, committed) in &self.committed {
            if !asked.contains(group) && self.settled.contains(group) {
                continue;
            }
            let (new, translation) = {
                let syncs = lock(&self.syncs);
                let history = self.sources.history();
                let translator = Translator {
                    syncs: &syncs,
                    history: consistent.then_some(&*history),
                    progress: &progress,
                };
                let translate = |topic: &str, partition: i32, offset: i64| {
                    translator.translate(topic, partition, offset)
                };
                checkpoints::checkpoints_for_group(&flow, &translate, &self.store, group, committed)
            };
            self.telemetry
                .status
                .set_group_translation(group, translation);
            // Written when it changed (and by every full round), as the sync states are.
            if full || self.translations.get(group) != Some(&translation) {
                self.telemetry
                    .metrics
                    .set_group_translation(&flow.id, group, translation);
                self.translations.insert(group.clone(), translation);
            }
            if new.is_empty() {
                self.settled.insert(group.clone());
            } else {
                self.settled.remove(group);
            }
            for checkpoint in new {
                match self.enqueue(&checkpoint, listed_at) {
                    Ok(delivery) => in_flight.push((group.clone(), checkpoint, delivery)),
                    Err(error) => {
                        warn!(flow = %flow.id, group = %group, "cannot emit checkpoint: {error}")
                    }
                }
            }
        }
        self.settle(in_flight, listed_at).await;
        debug!(flow = %flow.id, groups_asked = names.len(), full, elapsed_ms = started.elapsed().as_millis() as u64, "emit round done");
        if full {
            self.telemetry.metrics.group_round(
                &flow.id,
                GroupRound::Emit,
                started.elapsed(),
                names.len(),
            );
        }
    }

    /// Queues one checkpoint (MM2's record, timestamped with the listing time).
    fn enqueue(
        &self,
        checkpoint: &Checkpoint,
        listed_at: i64,
    ) -> Result<Acknowledgement, rdkafka::error::KafkaError> {
        let (key, value) = (checkpoint.key(), checkpoint.value());
        self.producer.enqueue(&Record {
            topic: &self.flow.checkpoints.topic,
            partition: Some(0),
            key: &key,
            payload: Some(&value),
            timestamp: Some(listed_at),
        })
    }

    /// Waits (30 s at most, for the whole round) for the target to acknowledge the queued
    /// checkpoints; only acknowledged ones move the store and the metrics.
    async fn settle(
        &mut self,
        in_flight: Vec<(String, Checkpoint, Acknowledgement)>,
        listed_at: i64,
    ) {
        let flow = self.flow.clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for (group, checkpoint, delivery) in in_flight {
            match tokio::time::timeout_at(deadline, delivery).await {
                Ok(Ok(Ok(_))) => {
                    self.store.update(&checkpoint);
                    self.in_sync.remove(&group);
                    self.telemetry
                        .metrics
                        .checkpoint(&flow.id, &group, &checkpoint.topic, checkpoint.partition)
                        .checkpoint_emitted(crate::clock::unix_ms() - listed_at);
                    self.telemetry.status.set_group(&group, true, None);
                    // The target's offsets are behind this checkpoint until the next sync round.
                    if flow.checkpoints.sync_group_offsets.enabled {
                        self.telemetry.status.set_group_target(&group, None);
                    }
                }
                Ok(Ok(Err(error))) => {
                    warn!(flow = %flow.id, group = %group, "cannot emit checkpoint: {error}");
                }
                Ok(Err(_)) => {
                    warn!(flow = %flow.id, group = %group, "cannot emit checkpoint: the producer went away");
                }
                Err(_) => {
                    warn!(flow = %flow.id, "the target did not acknowledge the checkpoints within 30 s; next round");
                    return;
                }
            }
        }
    }

    /// Deletes change points no committed offset can need any more: runs that ended below the
    /// source's log start, and the oldest beyond [`HISTORY_POINTS_PER_PARTITION`] per partition
    /// (tombstones in the compacted history topic).
    async fn prune_history(&mut self) {
        let flow = self.flow.clone();
        let sources = self.sources.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let partitions = sources.history().partitions();
            let earliest = match log_starts(&flow, &partitions) {
                Ok(earliest) => earliest,
                Err(error) => {
                    warn!(flow = %flow.id, "cannot prune the offset history: {error}");
                    return Vec::new();
                }
            };
            sources
                .history()
                .prune(&earliest, HISTORY_POINTS_PER_PARTITION)
        })
        .await
        .unwrap_or_default();
        if removed.is_empty() {
            return;
        }
        // The history changed in memory: the next emit round translates every group again.
        self.translated_with = None;
        for (topic, partition, upstream) in &removed {
            let key = super::offset_history::point_key(topic, *partition, *upstream);
            let tombstone = Record {
                topic: &self.flow.offset_storage.history_topic,
                partition: None,
                key: &key,
                payload: None,
                timestamp: None,
            };
            let sent =
                tokio::time::timeout(Duration::from_secs(30), self.producer.send(&tombstone))
                    .await
                    .unwrap_or(Err(rdkafka::error::KafkaError::Canceled));
            if let Err(error) = sent {
                warn!(flow = %self.flow.id, "cannot delete an offset-history point: {error}");
                return;
            }
        }
        info!(flow = %self.flow.id, points = removed.len(), "pruned the offset history");
    }

    /// One round of group offset sync. Only a full round (every [`FULL_SYNC_EVERY`], and the
    /// final sync) reads the target offsets of every idle group; the others skip groups found in
    /// sync before, still idle on the target, whose checkpoints have not moved since: nothing of
    /// theirs is copied, asked or reported again (docs/operations.md, *Idle cost*).
    async fn sync(&mut self, force_full: bool) {
        let flow = self.flow.clone();
        let full = force_full
            || !matches!(self.last_full_sync, Some(at) if at.elapsed() < FULL_SYNC_EVERY);
        let started = Instant::now();
        let states = {
            let (flow, admin) = (flow.clone(), self.target_admin.clone());
            tokio::task::spawn_blocking(move || group_offsets::target_groups(&flow, &admin))
                .await
                .ok()
                .flatten()
        };
        let Some(states) = states else {
            return;
        };
        if full {
            self.last_full_sync = Some(started);
        }
        let confirmed = |group: &str| {
            !full && group_offsets::idle_on_target(&states, group) && self.in_sync.contains(group)
        };
        // Only the groups checkpointed now: one that left the selection, or whose offsets were
        // deleted on the source, keeps its checkpoints (monotonic if it comes back) but is no
        // longer synced — MM2's checkpoint task is reconfigured without it.
        let mut confirmed_count = 0;
        let snapshot = CheckpointStore {
            last: self
                .store
                .last
                .iter()
                .filter(|(group, _)| self.groups.contains_key(*group))
                .filter(|(group, _)| {
                    let skip = confirmed(group);
                    confirmed_count += usize::from(skip);
                    !skip
                })
                .map(|(group, checkpoints)| (group.clone(), checkpoints.clone()))
                .collect(),
        };
        if snapshot.last.is_empty() {
            return;
        }
        // A round that confirms no group from before goes over every group.
        let every_group = confirmed_count == 0;
        let (flow_clone, admin) = (flow.clone(), self.target_admin.clone());
        let syncing = tokio::task::spawn_blocking(move || {
            group_offsets::sync_group_offsets(&flow_clone, &admin, &snapshot, &states)
        });
        let rounds = syncing.await.unwrap_or_default();
        debug!(flow = %flow.id, groups_synced = rounds.len(), full, elapsed_ms = started.elapsed().as_millis() as u64, "sync round done");
        if every_group && !rounds.is_empty() {
            self.telemetry.metrics.group_round(
                &flow.id,
                GroupRound::Sync,
                started.elapsed(),
                rounds.len(),
            );
        }
        for synced in &rounds {
            match (&synced.outcome, self.store.group(&synced.group)) {
                (Ok(_), Some(_)) => {
                    self.in_sync.insert(synced.group.clone());
                }
                _ => {
                    self.in_sync.remove(&synced.group);
                }
            }
        }
        for synced in rounds {
            let group = synced.group;
            let status = &self.telemetry.status;
            let reason = synced
                .outcome
                .as_ref()
                .err()
                .map(|r| r.as_str().to_string());
            status.set_group(&group, self.store.group(&group).is_some(), reason);
            status.set_group_members(&group, None, Some(synced.target_members));
            let state = match synced.outcome {
                Ok(count) => {
                    self.skipped.remove(&group);
                    if count > 0 {
                        info!(flow = %flow.id, group = %group, partitions = count, "synced consumer group offsets to the target");
                    }
                    "in_sync"
                }
                Err(reason) => {
                    if self.skipped.insert(group.clone(), reason) != Some(reason) {
                        info!(flow = %flow.id, group = %group, reason = reason.as_str(), "group offsets not synced");
                    }
                    reason.as_str()
                }
            };
            status.set_group_target(&group, Some(state.to_string()));
            // Written when it changed (and by every full round): setting the same state of every
            // group again each round was a sixth of an idle sync round's CPU.
            if full || self.sync_states.get(&group) != Some(&state) {
                self.telemetry
                    .metrics
                    .set_group_sync_state(&flow.id, &group, state);
                self.sync_states.insert(group, state);
            }
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for reason in self.skipped.values() {
            *counts.entry(reason.as_str()).or_default() += 1;
        }
        self.telemetry.metrics.set_groups_skipped(&flow.id, counts);
    }
}

/// The source's log start of `partitions`. Blocking.
fn log_starts(
    flow: &FlowPlan,
    partitions: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, String> {
    let consumer: BaseConsumer<LoggingContext> = flow.clients[&ClientRole::SourceConsumer]
        .client_config()
        .create_with_context(LoggingContext::new("history-pruning"))
        .map_err(|e| e.to_string())?;
    let listed = crate::kafka::offsets::list_offsets(
        consumer.client(),
        partitions,
        crate::kafka::offsets::Spec::Earliest,
        false,
        Duration::from_secs(30),
    )
    .map_err(|e| e.to_string())?;
    Ok(listed
        .into_iter()
        .filter_map(|(partition, offset)| Some((partition, offset.ok()?)))
        .collect())
}
