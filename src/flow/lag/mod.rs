//! The lag monitor of a flow: every member measures every selected partition once a second (less
//! often, up to every 30 s, while everything is caught up and unchanged; at once when `/status`
//! asks), on a thread of its own, so a stalled, blocked or restarting source task — or a frozen
//! target — still shows the lag rising with every record written (docs/cutover.md, *True lag*).
//!
//! Lag = the source's last stable offset (what a `read_committed` consumer can get) − the next
//! offset to copy, which is the furthest of this process's acknowledged position and the stored
//! progress (any node's), never below the log start. Transaction markers and aborted records past
//! the last copied record count as copied: the source tasks store progress past them.
//!
//! The monitor also raises the alarms — records deleted at the source before replication, a
//! re-created source topic, someone else writing to a remote topic — and measures how old the
//! oldest record not replicated yet is.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, info, warn};

mod alarms;

use alarms::{check_foreign_writes, check_recreated, check_skipped, check_topic_ids};

use super::assignment::{partitions_of_slot, PartitionSet};
use super::membership::MembershipView;
use super::tail::TailState;
use super::task::{TaskFailure, TaskReporter};
use super::translation::{follow_progress, ProgressMap};
use super::FlowTelemetry;
use crate::kafka::context::LoggingContext;
use crate::kafka::offsets::{list_offsets, Offsets, Spec};
use crate::lifecycle::Stop;
use crate::locks::lock;
use crate::metrics::LagFigures;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;
use crate::status::{LagRound, Measured};

/// One measurement round per second.
const ROUND: Duration = Duration::from_secs(1);
/// Once every partition is caught up and unchanged, the pause between rounds grows with how long
/// that has lasted (1, 1, 2, 4, 8, 16 s …) up to this — or the next round starts at once (one
/// second after the last) when `/status` asks, the selection changes, a source task copies a
/// record or any member stores progress ([`IdleMarks`]). So only records written while no source
/// task copies (a stalled task) wait up to this long to show in `/metrics`.
const IDLE_ROUND: Duration = Duration::from_secs(30);
/// How often an idle monitor looks whether a source task copied, progress was stored or the
/// selection changed (a `/status` request wakes it at once).
const IDLE_LOOK_EVERY: Duration = Duration::from_millis(250);
/// The longest pause between rounds while the source does not answer for some partitions: the
/// pause doubles from [`ROUND`] up to this.
const UNREACHABLE_ROUND_MAX: Duration = Duration::from_secs(10);
/// The age of the oldest unreplicated record is probed this often.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Partitions probed per round (the most lagging ones).
const PROBE_PARTITIONS: usize = 64;
/// Log start offsets are asked this often (retention moves them slowly; the source tasks count
/// records skipped at once).
const EARLIEST_EVERY: Duration = Duration::from_secs(10);
/// Topic ids are compared this often.
const TOPIC_IDS_EVERY: Duration = Duration::from_secs(10);
/// Both, while every partition is caught up and unchanged: a log start that moves then deletes
/// nothing unreplicated, and a re-created topic changes its ends, which ends the idle pace. (Asked
/// at each idle round, they doubled its cost.)
const IDLE_CHECKS_EVERY: Duration = Duration::from_secs(60);
/// The trend of each topic's lag gets a sample this often.
const TREND_EVERY: Duration = Duration::from_secs(10);
/// Every partition's lag series is written anew this often (else only changes).
const EXPORT_ALL_EVERY: Duration = Duration::from_secs(30);
/// The remote topics' ends are checked this often (foreign writes).
const TARGET_CHECK_EVERY: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The requests' timeout while the source does not answer: librdkafka's threads stay busy while
/// such a request waits for a leader.
const UNREACHABLE_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const TARGET_TIMEOUT: Duration = Duration::from_secs(2);

/// What the supervisor hands the lag monitor.
pub struct LagInput {
    pub flow: Arc<FlowPlan>,
    /// Every selected source partition of the flow.
    pub partitions: watch::Receiver<Arc<PartitionSet>>,
    /// The flow's membership: which partitions this process copies (their lag series are
    /// exported here, not by the other members).
    pub view: watch::Receiver<MembershipView>,
    pub stop: Stop,
    pub telemetry: FlowTelemetry,
    pub reporter: TaskReporter,
}

/// What the monitor remembers of a partition between rounds.
#[derive(Debug, Default, Clone)]
struct Seen {
    end: Option<i64>,
    last_write_unix_ms: Option<u64>,
    /// (remote end, next downstream) of the last foreign-write check that looked suspicious.
    suspicious: Option<(i64, i64)>,
}

/// Runs until the stop is requested. Blocking.
pub fn run(mut input: LagInput) -> Result<(), TaskFailure> {
    let flow = input.flow.clone();
    let client_error = |error: rdkafka::error::KafkaError| TaskFailure::Client(error.to_string());
    let source_settings = &flow.clients[&ClientRole::SourceConsumer];
    let read_committed = source_settings
        .settings
        .get("isolation.level")
        .map(String::as_str)
        != Some("read_uncommitted");
    let quiet = |mut config: ClientConfig| {
        // Reads and lists only: never commits anything for any group.
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        config
    };
    let new_source = || -> Result<BaseConsumer<LoggingContext>, TaskFailure> {
        quiet(source_settings.client_config())
            .create_with_context(LoggingContext::new("lag-monitor"))
            .map_err(client_error)
    };
    let mut source = new_source()?;
    let probe: BaseConsumer<LoggingContext> = quiet(source_settings.client_config())
        .create_with_context(LoggingContext::new("lag-probe"))
        .map_err(client_error)?;
    let target: BaseConsumer<LoggingContext> =
        quiet(flow.clients[&ClientRole::TargetConsumer].client_config())
            .create_with_context(LoggingContext::new("lag-monitor-target"))
            .map_err(client_error)?;
    let follower = follow_progress(&flow, &input.stop)
        .map_err(|e| TaskFailure::Client(format!("cannot start a thread: {e}")))?;
    let (progress, progress_tail) = (&follower.progress, &follower.tail);
    input.reporter.running();
    let since = crate::status::unix_ms_now();
    let status = &input.telemetry.status;
    let mut seen: HashMap<(String, i32), Seen> = HashMap::new();
    let mut topic_ids: HashMap<String, String> = HashMap::new();
    let mut lag_seconds: Option<u64> = None;
    let mut lagging_since_probe = false;
    let mut target_backoff_until = Instant::now();
    let (mut export_all, mut earliest_due, mut topic_ids_due) = (
        Every::new(EXPORT_ALL_EVERY),
        Every::new(EARLIEST_EVERY),
        Every::new(TOPIC_IDS_EVERY),
    );
    let (mut target_check, mut probe_due, mut trend, mut figures_due) = (
        Every::new(TARGET_CHECK_EVERY),
        Every::new(PROBE_EVERY),
        Every::new(TREND_EVERY),
        Every::new(TREND_EVERY),
    );
    let mut unchanged_since: Option<Instant> = None;
    let mut earliest_known = Offsets::new();
    let mut exported = ExportedLags::default();
    let mut pause = ROUND;
    let mut selected: Arc<PartitionSet> = Arc::default();
    let mut wanted: Vec<(String, i32)> = Vec::new();
    let mut last: Option<LastRound> = None;
    while !input.stop.is_requested() {
        let started = Instant::now();
        let marks = IdleMarks::read(&input, progress_tail);
        let mut selection_changed = false;
        let export_all_now = export_all.due(started);
        // What follows the selection is redone only when it changed (and every
        // EXPORT_ALL_EVERY, for a position reported just after a partition left): idle, a round
        // does no per-partition work besides measuring.
        if export_all_now || input.partitions.has_changed().unwrap_or(false) {
            let now_selected = input.partitions.borrow_and_update().clone();
            // The periodic pass over an unchanged selection is no change: counted as one, it
            // kept an idle monitor measuring every second for ten of every forty seconds.
            selection_changed = now_selected != selected;
            selected = now_selected;
            status.retain_partitions(&selected);
            status.set_heartbeats_topics(
                selected
                    .iter()
                    .map(|(topic, _)| topic)
                    .filter(|topic| flow.replication_policy.is_heartbeats_topic(topic))
                    .cloned()
                    .collect(),
            );
            seen.retain(|key, _| selected.contains(key));
            earliest_known.retain(|key, _| selected.contains(key));
            wanted = selected.iter().cloned().collect();
        }
        let request_timeout = if pause == ROUND {
            REQUEST_TIMEOUT
        } else {
            UNREACHABLE_REQUEST_TIMEOUT
        };
        let ends = list_offsets(
            source.client(),
            &wanted,
            Spec::Latest,
            read_committed,
            request_timeout,
        );
        // Log starts move only with retention or deletions: asked every few rounds, and for
        // partitions not seen before.
        let stale = earliest_due.due(started);
        let mut starts_changed = false;
        let unknown: Vec<(String, i32)> = wanted
            .iter()
            .filter(|key| stale || !earliest_known.contains_key(*key))
            .cloned()
            .collect();
        let starts = match list_offsets(
            source.client(),
            &unknown,
            Spec::Earliest,
            false,
            request_timeout,
        ) {
            Ok(listed) => {
                for (key, earliest) in listed {
                    if earliest_known.get(&key) != Some(&earliest) {
                        starts_changed = true;
                        earliest_known.insert(key, earliest);
                    }
                }
                Ok(&earliest_known)
            }
            Err(error) => Err(error.to_string()),
        };
        let progress_known = progress_tail.read_to_end();
        let progress_read = progress_tail.records_read();
        let live = status.replicated_positions();
        let now = crate::status::unix_ms_now();
        let ends = ends.map_err(|error| error.to_string());
        // A partition whose end could not be listed (its broker is gone): asking again every
        // second keeps librdkafka's threads waking each other without pause (a core busy while
        // the source cluster is down), so the rounds slow down until it answers again.
        let unanswered = match &ends {
            Err(error) => Some(error.clone()),
            Ok(listed) => wanted.iter().find_map(|key| match listed.get(key) {
                Some(Ok(_)) => None,
                Some(Err(error)) => Some(format!("partition {}-{}: {error}", key.0, key.1)),
                None => Some(format!("partition {}-{}: no answer", key.0, key.1)),
            }),
        };
        match &unanswered {
            Some(problem) => {
                if pause == ROUND {
                    warn!(flow = %flow.id, "cannot measure the lag: the source does not answer ({problem}); measuring again less often until it does");
                } else {
                    debug!(flow = %flow.id, "the source does not answer: {problem}");
                }
                pause = (pause * 2).min(UNREACHABLE_ROUND_MAX);
                // A broker that restarted answers a client holding its old leader epochs with
                // "leader epoch is older" for good (seen on a restarted single-broker cluster):
                // the next round asks through a new client, with fresh metadata.
                crate::kafka::destroy_in_background(std::mem::replace(&mut source, new_source()?));
            }
            // Nothing selected (the source's topics could not be listed either): no answer to
            // judge by, the pause stays as it is.
            None if wanted.is_empty() => {}
            None => {
                if pause != ROUND {
                    info!(flow = %flow.id, "the source answers again: measuring the lag every second");
                }
                pause = ROUND;
            }
        }
        // Idle, a round measures what the one before did: the figures, the status and the alarms
        // stay as they are (the per-partition pass below cost more than the measuring).
        let same_ends = !selection_changed
            && !starts_changed
            && starts.is_ok()
            && last.as_ref().is_some_and(|last| {
                last.progress_known == progress_known
                    && ends.as_ref().is_ok_and(|ends| *ends == last.ends)
            });
        let same_as_last = same_ends
            && last
                .as_ref()
                .is_some_and(|last| last.progress_read == progress_read && last.live == live);
        let this = match last.take() {
            Some(last) if same_as_last => last,
            _ => {
                let mut this = LastRound {
                    progress_known,
                    progress_read,
                    ends: Offsets::new(),
                    live,
                    complete: progress_known,
                    lags: Vec::new(),
                    quiet_partitions: Vec::new(),
                };
                measure(
                    &input, &ends, &starts, &wanted, &mut seen, progress, now, &mut this,
                );
                if let Ok(ends) = ends {
                    this.ends = ends;
                }
                this
            }
        };
        let (lags, quiet_partitions, complete) =
            (&this.lags, &this.quiet_partitions, this.complete);
        if pause == ROUND && topic_ids_due.due(started) {
            check_topic_ids(&input, &source, &selected, &mut topic_ids);
        }
        if Instant::now() >= target_backoff_until
            && target_check.due(started)
            && !check_foreign_writes(&input, &target, quiet_partitions, &mut seen)
        {
            target_backoff_until = Instant::now() + Duration::from_secs(30);
        }
        let no_lag = lags.iter().all(|(_, lag, _)| *lag == 0);
        if no_lag {
            lag_seconds = Some(0);
            lagging_since_probe = false;
        } else if probe_due.due(started) || !lagging_since_probe {
            // Every 5 s, and at once when lag appears.
            lag_seconds = oldest_unreplicated_age(&probe, lags, now).or(lag_seconds);
            lagging_since_probe = true;
        }
        // Caught up and unchanged for a while: measured less often (docs/operations.md, *Idle
        // cost*), the status still fresh when asked. Progress stored or acknowledged meanwhile
        // changes nothing while every lag stays 0 and the ends stay put (the last of a catch-up's
        // progress, stored seconds after its last record, kept resetting the pace).
        let steady = same_ends && complete && pause == ROUND && no_lag;
        unchanged_since = if steady {
            unchanged_since.or(Some(started))
        } else {
            None
        };
        // Ten rounds a second apart before slowing down measured 2,000 partitions ten times in
        // the first seconds after a catch-up; doubling the pause settles in four.
        let idle_pause = unchanged_since.map(|since| since.elapsed().clamp(ROUND, IDLE_ROUND));
        let idle = idle_pause.is_some_and(|idle_pause| idle_pause > ROUND);
        (earliest_due.period, topic_ids_due.period) = if idle {
            (IDLE_CHECKS_EVERY, IDLE_CHECKS_EVERY)
        } else {
            (EARLIEST_EVERY, TOPIC_IDS_EVERY)
        };
        status.set_lag_round(LagRound {
            complete,
            caught_up: no_lag,
            lag_seconds,
            since_unix_ms: since,
            idle,
        });
        if trend.due(started) {
            status.sample_trend();
        }
        if export_all_now {
            // A series re-created by a restarted source task starts at 0: write them all anew.
            exported.lags.clear();
        }
        // The flow's figures come from the whole report: idle, every few rounds is enough (the
        // quiet gate's clock moves meanwhile, nothing else does).
        if figures_due.due(started) || !same_as_last {
            publish_metrics(&input, lags, lag_seconds, &mut exported);
        }
        debug!(flow = %flow.id, measured = !same_as_last, idle, elapsed_ms = started.elapsed().as_millis() as u64, "lag round done");
        last = Some(this);
        let stopped = if let Some(idle_pause) = idle_pause.filter(|_| idle) {
            wait_while_idle(
                &input,
                progress_tail,
                started,
                idle_pause,
                &marks,
                &mut trend,
            )
        } else {
            input
                .stop
                .sleep_blocking(pause.saturating_sub(started.elapsed()))
        };
        if stopped {
            break;
        }
    }
    // Nobody measures any more: `/status` must not wait for this monitor.
    status.set_lag_monitor_ended();
    let _ = follower.thread.join();
    Ok(())
}

/// A duty done at the first round, then once `period` has passed (rounds are a second apart, or
/// more when idle or while the source does not answer).
struct Every {
    period: Duration,
    last: Option<Instant>,
}

impl Every {
    fn new(period: Duration) -> Every {
        Every { period, last: None }
    }

    fn due(&mut self, now: Instant) -> bool {
        // Half a round of slack: a round that starts a little early still counts.
        let due = self.last.map_or(true, |last| {
            now.duration_since(last) + ROUND / 2 >= self.period
        });
        if due {
            self.last = Some(now);
        }
        due
    }
}

/// What wakes an idle monitor when it changes: a request for a fresh measurement (`/status`), a
/// position moved by this process's source tasks, a record of stored progress (any member's).
#[derive(Debug, PartialEq, Eq)]
struct IdleMarks {
    fresh_requests: u64,
    replicated_moves: u64,
    progress_read: u64,
}

impl IdleMarks {
    fn read(input: &LagInput, progress_tail: &TailState) -> IdleMarks {
        let status = &input.telemetry.status;
        IdleMarks {
            fresh_requests: status.fresh_lag_requests(),
            replicated_moves: status.replicated_moves(),
            progress_read: progress_tail.records_read(),
        }
    }
}

/// Idle, the next round starts `idle_pause` after the last one — or a second after it when the
/// [`IdleMarks`] read when it started changed, or the selection did. The lag trend keeps its
/// pace meanwhile (the lags it samples are those of the last round, unchanged). True when a stop
/// was requested.
fn wait_while_idle(
    input: &LagInput,
    progress_tail: &TailState,
    started: Instant,
    idle_pause: Duration,
    marks: &IdleMarks,
    trend: &mut Every,
) -> bool {
    loop {
        if input.stop.is_requested() {
            return true;
        }
        if trend.due(Instant::now()) {
            input.telemetry.status.sample_trend();
        }
        let elapsed = started.elapsed();
        if elapsed >= idle_pause {
            return false;
        }
        if elapsed >= ROUND
            && (IdleMarks::read(input, progress_tail) != *marks
                || input.partitions.has_changed().unwrap_or(false))
        {
            return false;
        }
        if elapsed < ROUND {
            // Nothing wakes a monitor sooner than a second after its last round.
            if input.stop.sleep_blocking(ROUND - elapsed) {
                return true;
            }
            continue;
        }
        // `/status` wakes the wait at once; the other marks are looked at every IDLE_LOOK_EVERY
        // (looking every 50 ms was 40 % of an idle monitor's own CPU).
        input.telemetry.status.wait_for_fresh_lag_request(
            marks.fresh_requests,
            IDLE_LOOK_EVERY.min(idle_pause - elapsed),
        );
    }
}

/// What a round measured, kept to tell whether the next one measures the same.
struct LastRound {
    /// The stored progress was read to the end once, and how many records of it were read.
    progress_known: bool,
    progress_read: u64,
    /// The source's ends (empty when they could not be listed).
    ends: Offsets,
    /// The source tasks' acknowledged positions in this process.
    live: HashMap<(String, i32), i64>,
    /// Every selected partition was measured.
    complete: bool,
    /// (partition, lag, next offset to copy).
    lags: Vec<((String, i32), i64, i64)>,
    /// Partitions replicated and stored to their end, with the next remote offset.
    quiet_partitions: Vec<((String, i32), i64)>,
}

/// Measures every wanted partition from the listed `ends` and `starts`, the stored `progress` and
/// `round.live` into `round`, updates `/status` and raises the alarms that follow.
#[allow(clippy::too_many_arguments)]
fn measure(
    input: &LagInput,
    ends: &Result<Offsets, String>,
    starts: &Result<&Offsets, String>,
    wanted: &[(String, i32)],
    seen: &mut HashMap<(String, i32), Seen>,
    progress: &Mutex<ProgressMap>,
    now: u64,
    round: &mut LastRound,
) {
    // Held for this pass only (the follower thread adds to it as progress is stored).
    let stored = lock(progress);
    let mut measured = Vec::with_capacity(wanted.len());
    match (ends.as_ref(), starts.as_ref()) {
        (Ok(ends), Ok(starts)) => {
            for key in wanted {
                let (Some(Ok(end)), Some(Ok(earliest))) = (ends.get(key), starts.get(key)) else {
                    round.complete = false;
                    continue;
                };
                let (end, earliest) = (*end, *earliest);
                let memory = seen.entry(key.clone()).or_default();
                if memory.end.is_some_and(|before| end > before) {
                    memory.last_write_unix_ms = Some(now);
                }
                memory.end = Some(end);
                let stored_here = stored.get(key).copied();
                let stored_next = match stored_here {
                    Some(stored) => Some(stored.offset + 1),
                    None if round.progress_known => Some(earliest),
                    None => None,
                };
                measured.push((
                    key.clone(),
                    Measured {
                        end,
                        earliest,
                        stored_next,
                        last_write_unix_ms: memory.last_write_unix_ms,
                    },
                ));
                let next = match (round.live.get(key).copied(), stored_next) {
                    (Some(live), Some(stored)) => Some(live.max(stored)),
                    (live, stored) => live.or(stored),
                };
                let Some(next) = next else {
                    round.complete = false;
                    continue;
                };
                round
                    .lags
                    .push((key.clone(), (end - next.max(earliest)).max(0), next));
                check_skipped(input, key, earliest, next);
                check_recreated(input, key, end, stored_here);
                if let Some(stored) = stored_here {
                    if stored.offset + 1 >= end {
                        if let Some(next_downstream) = stored.next_downstream {
                            round.quiet_partitions.push((key.clone(), next_downstream));
                        }
                    }
                }
            }
        }
        (Err(error), _) | (_, Err(error)) => {
            round.complete = false;
            debug!(flow = %input.flow.id, "cannot list the source's offsets: {error}");
        }
    }
    drop(stored);
    input.telemetry.status.set_all_measured(&measured);
}

/// How old the oldest record not replicated yet is, in seconds, probing the most lagging
/// partitions (the record at the next offset to copy of each). `Some(0)` without lag.
fn oldest_unreplicated_age(
    probe: &BaseConsumer<LoggingContext>,
    lags: &[((String, i32), i64, i64)],
    now_ms: u64,
) -> Option<u64> {
    let mut lagging: Vec<&((String, i32), i64, i64)> =
        lags.iter().filter(|(_, lag, _)| *lag > 0).collect();
    if lagging.is_empty() {
        return Some(0);
    }
    lagging.sort_by_key(|(_, lag, _)| std::cmp::Reverse(*lag));
    lagging.truncate(PROBE_PARTITIONS);
    let mut assignment = TopicPartitionList::new();
    for ((topic, partition), _, next) in &lagging {
        if assignment
            .add_partition_offset(topic, *partition, Offset::Offset(*next))
            .is_err()
        {
            return None;
        }
    }
    probe.assign(&assignment).ok()?;
    let mut oldest: Option<i64> = None;
    let mut answered: BTreeSet<(String, i32)> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    while answered.len() < lagging.len() && Instant::now() < deadline {
        if let Some(Ok(message)) = probe.poll(Duration::from_millis(100)) {
            let key = (message.topic().to_string(), message.partition());
            if answered.insert(key) {
                if let Some(timestamp) = message.timestamp().to_millis() {
                    oldest = Some(oldest.map_or(timestamp, |o| o.min(timestamp)));
                }
            }
        }
    }
    let _ = probe.unassign();
    oldest.map(|timestamp| (now_ms as i64 - timestamp).max(0) as u64 / 1000)
}

/// The per-partition lag series this process exported, so that only changes are written (the
/// series lookup is the costly part at thousands of partitions; idle, nothing changes).
#[derive(Default)]
struct ExportedLags {
    /// The task slots these were exported for: another set starts over.
    owned: BTreeSet<usize>,
    /// How many partitions were selected then (a change moves partitions between slots).
    selected: usize,
    lags: HashMap<(String, i32), i64>,
}

/// The flow's lag figures, and each partition this process copies as its own series.
fn publish_metrics(
    input: &LagInput,
    lags: &[((String, i32), i64, i64)],
    lag_seconds: Option<u64>,
    exported: &mut ExportedLags,
) {
    let flow = &input.flow;
    let metrics = &input.telemetry.metrics;
    let owned: BTreeSet<usize> = input.view.borrow().owned.clone();
    if owned != exported.owned || lags.len() != exported.selected {
        exported.lags.clear();
        exported.owned = owned.clone();
        exported.selected = lags.len();
    }
    let changed: Vec<&((String, i32), i64, i64)> = lags
        .iter()
        .filter(|(key, lag, _)| exported.lags.get(key) != Some(lag))
        .collect();
    if !owned.is_empty() && !changed.is_empty() {
        let all: PartitionSet = lags.iter().map(|(key, _, _)| key.clone()).collect();
        let mine: BTreeSet<(String, i32)> = owned
            .iter()
            .flat_map(|slot| partitions_of_slot(&all, *slot, flow.source.tasks_max))
            .collect();
        for (key, lag, _) in changed {
            if mine.contains(key) && metrics.set_partition_lag(&flow.id, &key.0, key.1, *lag) {
                exported.lags.insert(key.clone(), *lag);
            }
        }
    }
    let Some(report) = input.telemetry.status.report() else {
        return;
    };
    let figures = LagFigures {
        caught_up: report.caught_up,
        lag_records: report.lag,
        lag_seconds,
        cutover_ready: report.cutover.as_ref().is_some_and(|verdict| verdict.ready),
    };
    metrics.lag_round(&flow.id, &figures, &input.telemetry.status.alarm_counts());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duty_is_due_at_the_first_round_then_once_its_period_passed() {
        let start = Instant::now();
        let at = |seconds: f64| start + Duration::from_secs_f64(seconds);
        let mut every = Every::new(Duration::from_secs(10));
        assert!(every.due(at(0.0)));
        assert!(!every.due(at(1.0)));
        assert!(!every.due(at(9.0)));
        // A round a little early still counts; the next period starts from it.
        assert!(every.due(at(9.8)));
        assert!(!every.due(at(15.0)));
        // Idle rounds 5 s apart: due at the first round past the period.
        assert!(every.due(at(20.0)));
    }
}
