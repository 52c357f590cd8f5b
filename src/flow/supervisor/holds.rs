//! Partitions held at a record they cannot copy: refused by the target (too large, invalid), or
//! deleted at the source while `auto.offset.reset = none` forbids skipping it. A held partition is
//! copied by no task; after its own backoff (1 s doubling to 5 min) it is released for a try, on
//! which the refused batch is sent one record at a time; it stays in `/status` until it got past
//! the record.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use super::{FIRST_BACKOFF, MAX_BACKOFF};
use crate::flow::assignment::{PartitionSet, TopicPartition};
use crate::flow::source::{HeldPartitions, Hold};
use crate::flow::task::TaskFailure;
use crate::flow::FlowTelemetry;
use crate::plan::FlowId;
use crate::status::Stall;

struct Held {
    offset: i64,
    /// The last offset of the refused request: copied one by one up to it on the next try.
    last_offset: i64,
    reason: String,
    fix: String,
    since_unix_ms: u64,
    attempts: u32,
    backoff: Duration,
    /// When it is released for another try; `None` while a try is in progress.
    retry_at: Option<Instant>,
}

pub(super) struct Holds {
    flow: FlowId,
    telemetry: FlowTelemetry,
    held: BTreeMap<TopicPartition, Held>,
    published: watch::Sender<Arc<HeldPartitions>>,
}

impl Holds {
    pub fn new(flow: FlowId, telemetry: FlowTelemetry) -> Holds {
        Holds {
            flow,
            telemetry,
            held: BTreeMap::new(),
            published: watch::Sender::new(Arc::new(HeldPartitions::new())),
        }
    }

    /// What the source tasks follow.
    pub fn subscribe(&self) -> watch::Receiver<Arc<HeldPartitions>> {
        self.published.subscribe()
    }

    /// Holds the partition a failure names, if it names one; true then (the task restarts at once
    /// for its other partitions).
    pub fn hold(&mut self, failure: &TaskFailure) -> bool {
        let (topic, partition, offset, last_offset, reason, fix) = match failure {
            TaskFailure::Rejected {
                topic,
                partition,
                offset,
                last_offset,
                reason,
                fix,
            } => (topic, *partition, *offset, *last_offset, reason.clone(), fix.clone()),
            TaskFailure::SourceRecordsDeleted {
                topic,
                partition,
                next,
                ..
            } => (
                topic,
                *partition,
                *next,
                *next,
                failure.to_string(),
                "set the source consumer's `auto.offset.reset` to `earliest` (skips the deleted records) and reload".to_string(),
            ),
            _ => return false,
        };
        let now_ms = crate::clock::unix_ms().max(0) as u64;
        let held = self
            .held
            .entry((topic.clone(), partition))
            .or_insert_with(|| Held {
                offset,
                last_offset,
                reason: reason.clone(),
                fix: fix.clone(),
                since_unix_ms: now_ms,
                attempts: 0,
                backoff: FIRST_BACKOFF,
                retry_at: None,
            });
        if held.offset != offset {
            // It moved on since the last refusal: a new episode.
            held.offset = offset;
            held.attempts = 0;
            held.backoff = FIRST_BACKOFF;
            held.since_unix_ms = now_ms;
        }
        held.last_offset = last_offset.max(offset);
        held.reason = reason;
        held.fix = fix;
        held.attempts += 1;
        held.retry_at = Some(Instant::now() + held.backoff);
        held.backoff = (held.backoff * 2).min(MAX_BACKOFF);
        warn!(flow = %self.flow, topic = %topic, partition, offset, attempts = held.attempts,
            "partition held at a record it cannot copy; the others continue, it is retried with backoff");
        self.publish();
        true
    }

    /// Releases the partitions whose retry is due.
    pub fn release_due(&mut self) {
        let now = Instant::now();
        let mut released = false;
        for held in self.held.values_mut() {
            if held.retry_at.is_some_and(|at| at <= now) {
                held.retry_at = None;
                released = true;
            }
        }
        if released {
            self.publish();
        }
    }

    /// Forgets held partitions that got past their record (`positions`: next offset to copy per
    /// partition) or are no longer replicated (not in `all`).
    pub fn forget_recovered(
        &mut self,
        positions: &HashMap<TopicPartition, i64>,
        all: &PartitionSet,
    ) {
        let recovered: Vec<TopicPartition> = self
            .held
            .iter()
            .filter(|(key, held)| {
                held.retry_at.is_none()
                    && (!all.contains(*key)
                        || positions.get(*key).is_some_and(|next| *next > held.offset))
            })
            .map(|(key, _)| key.clone())
            .collect();
        if recovered.is_empty() {
            return;
        }
        for key in recovered {
            info!(flow = %self.flow, topic = %key.0, partition = key.1, "held partition flows again");
            self.held.remove(&key);
            self.telemetry.status.set_stall(&key.0, key.1, None);
        }
        self.publish();
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether a partition is on trial (released, not yet past its record).
    pub fn any_on_trial(&self) -> bool {
        self.held.values().any(|held| held.retry_at.is_none())
    }

    pub fn next_retry(&self) -> Option<Instant> {
        self.held.values().filter_map(|held| held.retry_at).min()
    }

    /// The first held partition, as the flow's error.
    pub fn describe_first(&self) -> Option<String> {
        self.held.iter().next().map(|((topic, partition), held)| {
            format!(
                "`{topic}` partition {partition} waits at source offset {}: {}; fix: {}",
                held.offset, held.reason, held.fix
            )
        })
    }

    /// Tells the source tasks and `/status`.
    fn publish(&mut self) {
        let held: HeldPartitions = self
            .held
            .iter()
            .map(|(key, held)| {
                let hold = if held.retry_at.is_some() {
                    Hold::Held
                } else {
                    Hold::OneByOneUntil(held.last_offset)
                };
                (key.clone(), hold)
            })
            .collect();
        for ((topic, partition), held) in &self.held {
            let next_retry = held.retry_at.map_or(0, |at| {
                crate::clock::unix_ms().max(0) as u64
                    + at.saturating_duration_since(Instant::now()).as_millis() as u64
            });
            self.telemetry.status.set_stall(
                topic,
                *partition,
                Some(Stall {
                    offset: held.offset,
                    reason: held.reason.clone(),
                    fix: held.fix.clone(),
                    since_unix_ms: held.since_unix_ms,
                    attempts: held.attempts,
                    next_retry_unix_ms: next_retry,
                }),
            );
        }
        self.telemetry
            .metrics
            .set_stalled_partitions(&self.flow, self.held.len());
        self.published.send_replace(Arc::new(held));
    }
}
