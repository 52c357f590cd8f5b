//! Translating a consumer group's committed source offsets to the target: exactly from the offset
//! history where it covers them (`offset_history.rs`), otherwise by MM2's rule from the offset
//! syncs, saying how many records a consumer moved there may read again
//! (docs/offset-translation.md).
//!
//! [`TranslationSources`] follows what exact translation needs on the target: every partition's
//! stored progress (the offsets topic) and the change points (the history topic). Before a round
//! translates, [`TranslationSources::consistent_progress`] takes the progress and then waits until
//! the history was read past its end as of that moment: every point stored progress relies on was
//! written before that progress, so it has been read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::offset_history::{HistoryPoint, OffsetHistory, StoredProgress};
use super::offset_sync_store::OffsetSyncStore;
use super::records::decode_source_offset;
use super::tail::{self, TailState};
use crate::lifecycle::Stop;
use crate::locks::lock;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;
use crate::status::GroupTranslation;

/// Where a committed offset lands on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation {
    /// The consumer resumes at exactly the record after its last committed one.
    Exact(i64),
    /// MM2's rule (or the group is ahead of replication): it may read up to `max_rereads`
    /// records again, never skips one.
    Approximate { downstream: i64, max_rereads: i64 },
}

impl Translation {
    pub fn downstream(self) -> i64 {
        match self {
            Translation::Exact(downstream) => downstream,
            Translation::Approximate { downstream, .. } => downstream,
        }
    }

    pub fn max_rereads(self) -> i64 {
        match self {
            Translation::Exact(_) => 0,
            Translation::Approximate { max_rereads, .. } => max_rereads,
        }
    }
}

/// How well a whole group translates (`/status` and the metrics): exact on every partition, or
/// the sum of the possible re-reads; `None` without any translated partition.
pub fn group_translation(
    translations: impl IntoIterator<Item = Translation>,
) -> Option<GroupTranslation> {
    let mut any = false;
    let mut exact = true;
    let mut rereads = 0i64;
    for translation in translations {
        any = true;
        if let Translation::Approximate { max_rereads, .. } = translation {
            exact = false;
            rereads = rereads.saturating_add(max_rereads);
        }
    }
    any.then_some(if exact {
        GroupTranslation::Exact
    } else {
        GroupTranslation::Approximate {
            max_rereads: rereads,
        }
    })
}

/// Everything one round translates with.
pub struct Translator<'a> {
    pub syncs: &'a OffsetSyncStore,
    /// `None` when the history could not be read up to date this round: MM2's rule only.
    pub history: Option<&'a OffsetHistory>,
    pub progress: &'a HashMap<(String, i32), StoredProgress>,
}

impl Translator<'_> {
    /// `None` when nothing can translate it (no sync, no history yet); a downstream of -1 means
    /// older than every retained sync (no checkpoint).
    pub fn translate(&self, topic: &str, partition: i32, committed: i64) -> Option<Translation> {
        let stored = self.progress.get(&(topic.to_string(), partition));
        if let Some(history) = self.history {
            if let Some(downstream) = history.translate_exact(topic, partition, committed, stored) {
                return Some(Translation::Exact(downstream));
            }
        }
        // Ahead of replication: the records in between are copied later, to where the next one
        // goes; the consumer reads them again there.
        if let Some(StoredProgress {
            offset,
            next_downstream: Some(next),
        }) = stored
        {
            if committed > offset + 1 {
                return Some(Translation::Approximate {
                    downstream: *next,
                    max_rereads: committed - offset - 1,
                });
            }
        }
        let (downstream, max_rereads) =
            self.syncs.translate_bounded(topic, partition, committed)?;
        Some(Translation::Approximate {
            downstream,
            max_rereads,
        })
    }
}

/// Stored progress per source (topic, partition).
pub type ProgressMap = HashMap<(String, i32), StoredProgress>;

/// The stored progress of every partition, as a tail of the offsets topic reads it.
pub struct ProgressFollower {
    pub progress: Arc<Mutex<ProgressMap>>,
    pub tail: Arc<TailState>,
    pub thread: JoinHandle<()>,
}

/// Follows the flow's offsets topic on the target: every partition's stored progress, whichever
/// node stored it (a thread ending with `stop`).
pub fn follow_progress(flow: &FlowPlan, stop: &Stop) -> std::io::Result<ProgressFollower> {
    let consumer = flow.clients[&ClientRole::TargetConsumer].client_config();
    let progress = Arc::new(Mutex::new(ProgressMap::new()));
    let (map, source) = (progress.clone(), flow.id.source.clone());
    let (tail, thread) = tail::spawn(
        "progress-reader",
        &consumer,
        &flow.offset_storage.topic,
        stop.clone(),
        move |key, value| {
            if let Some((cluster, topic, partition, stored)) = decode_source_offset(key, value) {
                if cluster == source {
                    let mut progress = lock(&map);
                    match stored {
                        Some(stored) => progress.insert((topic, partition), stored),
                        None => progress.remove(&(topic, partition)),
                    };
                }
            }
        },
    )?;
    Ok(ProgressFollower {
        progress,
        tail,
        thread,
    })
}

/// Follows the flow's stored progress and offset history on the target.
pub struct TranslationSources {
    progress: Arc<Mutex<ProgressMap>>,
    history: Arc<Mutex<OffsetHistory>>,
    progress_tail: Arc<TailState>,
    history_tail: Arc<TailState>,
    threads: Vec<JoinHandle<()>>,
    history_ends: Mutex<tail::TopicEnds>,
    /// The last copy of the progress, with the tail's record count when it was taken.
    last_progress: Mutex<Option<(u64, Arc<ProgressMap>)>>,
}

/// What [`TranslationSources::consistent_progress`] found.
#[derive(Default)]
pub struct ConsistentProgress {
    /// Every partition's stored progress (empty when it was not read to the end in time).
    pub progress: Arc<ProgressMap>,
    /// The history was read past everything written before that progress.
    pub consistent: bool,
    /// The progress tail's record count when the progress was taken.
    pub progress_read: u64,
}

impl TranslationSources {
    /// Starts both tails (threads ending with `stop`).
    pub fn start(flow: &FlowPlan, stop: &Stop) -> std::io::Result<TranslationSources> {
        let consumer = flow.clients[&ClientRole::TargetConsumer].client_config();
        let ProgressFollower {
            progress,
            tail: progress_tail,
            thread: progress_thread,
        } = follow_progress(flow, stop)?;
        let history = Arc::new(Mutex::new(OffsetHistory::default()));
        let (history_tail, history_thread) = {
            let (history, flow_id) = (history.clone(), flow.id.to_string());
            let mut warned = false;
            tail::spawn(
                "history-reader",
                &consumer,
                &flow.offset_storage.history_topic,
                stop.clone(),
                move |key, value| match HistoryPoint::decode(key, value) {
                    Ok((topic, partition, upstream, point)) => {
                        lock(&history).apply(topic, partition, upstream, point)
                    }
                    // Written by someone else: not ours to trust, said once.
                    Err(error) if !warned => {
                        warned = true;
                        tracing::warn!(flow = %flow_id, "skipping records of the offset history that do not decode: {error}");
                    }
                    Err(_) => {}
                },
            )?
        };
        Ok(TranslationSources {
            progress,
            history,
            progress_tail,
            history_tail,
            threads: vec![progress_thread, history_thread],
            history_ends: Mutex::new(tail::TopicEnds::new(
                &consumer,
                &flow.offset_storage.history_topic,
            )),
            last_progress: Mutex::new(None),
        })
    }

    /// Stored progress, and whether the history was read past everything written before it
    /// (waiting up to `timeout`). The progress is copied only when the tail read something since
    /// the last copy: idle, thousands of partitions are not copied every round. Blocking.
    pub fn consistent_progress(&self, timeout: Duration) -> ConsistentProgress {
        let deadline = Instant::now() + timeout;
        while !self.progress_tail.read_to_end() {
            if Instant::now() >= deadline {
                return ConsistentProgress::default();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Read before the copy: a record applied meanwhile makes the next round copy again.
        let progress_read = self.progress_tail.records_read();
        let progress = {
            let mut last = lock(&self.last_progress);
            match &*last {
                Some((read, progress)) if *read == progress_read => progress.clone(),
                _ => {
                    let progress = Arc::new(lock(&self.progress).clone());
                    *last = Some((progress_read, progress.clone()));
                    progress
                }
            }
        };
        let consistent = match lock(&self.history_ends).get(timeout) {
            Ok(ends) => loop {
                if self.history_tail.caught_up_with(&ends) {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            },
            Err(error) => {
                tracing::debug!("offset history ends unknown: {error}");
                false
            }
        };
        ConsistentProgress {
            progress,
            consistent,
            progress_read,
        }
    }

    /// Records the history tail has applied so far: unchanged, so is the history (pruning aside).
    pub fn history_read(&self) -> u64 {
        self.history_tail.records_read()
    }

    /// The history, locked while a round translates.
    pub fn history(&self) -> MutexGuard<'_, OffsetHistory> {
        lock(&self.history)
    }

    /// Why one of the topics cannot be read, if so.
    pub fn problem(&self) -> Option<String> {
        self.progress_tail
            .problem()
            .or_else(|| self.history_tail.problem())
    }

    /// Waits for the tails to end (after the stop). Blocking.
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_where_the_history_covers_else_mm2_with_a_bound() {
        let mut syncs = OffsetSyncStore::new(false);
        syncs.mark_read_to_end();
        syncs.update("t", 0, 0, 0);
        let mut history = OffsetHistory::default();
        history.apply("t".into(), 0, 0, Some((0, true)));
        history.apply("t".into(), 0, 11, Some((10, false)));
        let progress = HashMap::from([(
            ("t".to_string(), 0),
            StoredProgress {
                offset: 20,
                next_downstream: Some(20),
            },
        )]);
        let exact = Translator {
            syncs: &syncs,
            history: Some(&history),
            progress: &progress,
        };
        assert_eq!(exact.translate("t", 0, 15), Some(Translation::Exact(14)));
        assert_eq!(
            exact.translate("t", 0, 25),
            Some(Translation::Approximate {
                downstream: 20,
                max_rereads: 4
            }),
            "ahead of replication"
        );
        let mm2_only = Translator {
            history: None,
            ..exact
        };
        assert_eq!(
            mm2_only.translate("t", 0, 15),
            Some(Translation::Approximate {
                downstream: 1,
                max_rereads: 14
            })
        );
        assert_eq!(mm2_only.translate("u", 0, 15), None);
        assert_eq!(
            group_translation([Translation::Exact(3), Translation::Exact(4)]),
            Some(GroupTranslation::Exact)
        );
        let mixed = group_translation([
            Translation::Exact(3),
            mm2_only.translate("t", 0, 15).unwrap(),
        ])
        .unwrap();
        assert_eq!(mixed.describe(), "approximate (at most 14 re-reads)");
        assert_eq!(group_translation([]), None);
    }
}
