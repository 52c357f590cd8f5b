//! When offset syncs are emitted (MM2's `OffsetSyncWriter`, docs/mm2-behaviour.md, *Offset syncs*): a per-partition trigger
//! (`PartitionState`) and the pending/delayed queues with a budget of in-flight sends. Pure state;
//! the source task sends what [`OffsetSyncQueue::take_sendable`] hands out.

use std::collections::VecDeque;

use super::records::OffsetSync;

/// Offset-sync sends in flight per task. MM2 allows 10, which starves partitions during bursts:
/// a pending sync that cannot be sent is replaced by the next one, so a partition whose records
/// were acknowledged while the budget was used up loses its intermediate syncs and consumers
/// re-read more after failover (KAFKA-12558, KAFKA-14610). Which syncs become pending follows
/// MM2's rules exactly; only this budget differs.
pub const MAX_IN_FLIGHT_SYNCS: usize = 1000;

/// Trigger state of one source partition, reset when the task restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    max_lag: i64,
    previous_upstream: i64,
    previous_downstream: i64,
    last_sync_downstream: i64,
    should_sync: bool,
}

impl PartitionState {
    pub fn new(max_lag: i64) -> Self {
        Self {
            max_lag,
            previous_upstream: -1,
            previous_downstream: -1,
            last_sync_downstream: -1,
            should_sync: false,
        }
    }

    /// Records that upstream offset `upstream` landed at `downstream`; true when a sync is due.
    pub fn update(&mut self, upstream: i64, downstream: i64) -> bool {
        let first = self.last_sync_downstream == -1;
        let lagging = downstream - (self.last_sync_downstream + 1) >= self.max_lag;
        let upstream_gap = upstream - self.previous_upstream != 1;
        let downstream_reset = downstream < self.previous_downstream;
        if first || lagging || upstream_gap || downstream_reset {
            self.last_sync_downstream = downstream;
            self.should_sync = true;
        }
        self.previous_upstream = upstream;
        self.previous_downstream = downstream;
        self.should_sync
    }

    pub fn reset(&mut self) {
        self.should_sync = false;
    }

    pub fn last_sync_downstream(&self) -> i64 {
        self.last_sync_downstream
    }
}

/// Pending syncs go out as soon as a send permit is free; delayed ones are promoted at each
/// progress flush so idle partitions converge (KAFKA-14610, KAFKA-15906).
///
/// Partitions are addressed by the task's slot number (a small dense index the delivery callback
/// already has), so the per-record path neither hashes nor allocates.
#[derive(Debug)]
pub struct OffsetSyncQueue {
    max_lag: i64,
    /// Per slot: trigger state, the delayed (not yet synced) latest position and the pending sync.
    partitions: Vec<Option<PartitionEntry>>,
    /// Slots with a pending sync, oldest first (Java `LinkedHashMap`: replacing a pending sync
    /// keeps its original position).
    pending_order: VecDeque<usize>,
}

#[derive(Debug)]
struct PartitionEntry {
    topic: String,
    partition: i32,
    state: PartitionState,
    /// (upstream, downstream) of the latest acknowledged record not covered by a pending sync.
    delayed: Option<(i64, i64)>,
    pending: Option<OffsetSync>,
}

impl OffsetSyncQueue {
    pub fn new(max_lag: i64) -> Self {
        Self {
            max_lag,
            partitions: Vec::new(),
            pending_order: VecDeque::new(),
        }
    }

    fn put_pending(&mut self, slot: usize, upstream: i64, downstream: i64) {
        let Some(entry) = self.partitions.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let sync = OffsetSync {
            topic: entry.topic.clone(),
            partition: entry.partition,
            upstream,
            downstream,
        };
        if entry.pending.replace(sync).is_none() {
            self.pending_order.push_back(slot);
        }
    }

    fn entry(&mut self, slot: usize, topic: &str, partition: i32) -> &mut PartitionEntry {
        if self.partitions.len() <= slot {
            self.partitions.resize_with(slot + 1, || None);
        }
        let max_lag = self.max_lag;
        self.partitions[slot].get_or_insert_with(|| PartitionEntry {
            topic: topic.to_string(),
            partition,
            state: PartitionState::new(max_lag),
            delayed: None,
            pending: None,
        })
    }

    /// `maybeQueueOffsetSyncs`: called for every record the target acknowledged. `slot` identifies
    /// `topic`/`partition` within the task.
    pub fn maybe_queue(
        &mut self,
        slot: usize,
        topic: &str,
        partition: i32,
        upstream: i64,
        downstream: i64,
    ) {
        let entry = self.entry(slot, topic, partition);
        if entry.state.update(upstream, downstream) {
            entry.state.reset();
            entry.delayed = None;
            self.put_pending(slot, upstream, downstream);
        } else {
            entry.delayed = Some((upstream, downstream));
        }
    }

    /// `promoteDelayedOffsetSyncs`: every not-yet-synced latest position becomes pending.
    pub fn promote_delayed(&mut self) {
        for slot in 0..self.partitions.len() {
            let delayed = self.partitions[slot]
                .as_mut()
                .and_then(|entry| entry.delayed.take());
            if let Some((upstream, downstream)) = delayed {
                self.put_pending(slot, upstream, downstream);
            }
        }
    }

    /// `firePendingOffsetSyncs`: the oldest pending syncs, at most `permits` of them.
    pub fn take_sendable(&mut self, permits: usize) -> Vec<OffsetSync> {
        let mut out = Vec::new();
        while out.len() < permits {
            let Some(slot) = self.pending_order.pop_front() else {
                break;
            };
            if let Some(sync) = self.partitions[slot]
                .as_mut()
                .and_then(|entry| entry.pending.take())
            {
                out.push(sync);
            }
        }
        out
    }

    fn get(&self, slot: usize) -> Option<&PartitionEntry> {
        self.partitions.get(slot).and_then(Option::as_ref)
    }

    pub fn has_pending(&self, slot: usize) -> bool {
        self.get(slot).is_some_and(|e| e.pending.is_some())
    }

    pub fn has_delayed(&self, slot: usize) -> bool {
        self.get(slot).is_some_and(|e| e.delayed.is_some())
    }

    pub fn last_sync_downstream(&self, slot: usize) -> Option<i64> {
        self.get(slot).map(|e| e.state.last_sync_downstream())
    }

    /// Forgets a partition that this task no longer owns (its pending and delayed syncs too).
    pub fn forget(&mut self, slot: usize) {
        if let Some(entry) = self.partitions.get_mut(slot) {
            *entry = None;
        }
        self.pending_order.retain(|&pending| pending != slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MM2's `MirrorSourceTaskTest.testOffsetSync`, offset.lag.max = 50: (upstream, downstream, expected, reset after).
    #[test]
    fn trigger_sequence_with_lag_50() {
        let steps: &[(i64, i64, bool, bool)] = &[
            (0, 100, true, true),
            (2, 102, true, true),
            (3, 152, false, true),
            (4, 153, true, true),
            (5, 154, false, true),
            (6, 203, false, true),
            (7, 204, true, true),
            (2, 206, true, true),
            (3, 207, false, true),
            (4, 3, true, true),
            (5, 4, false, false),
            (7, 6, true, false),
            (7, 6, true, false),
            (8, 7, true, false),
            (10, 57, true, true),
            (11, 58, false, false),
        ];
        let expected_last_sync = [
            100, 102, 102, 153, 153, 153, 204, 206, 206, 3, 3, 6, 6, 6, 57, 57,
        ];
        let mut state = PartitionState::new(50);
        for (index, (upstream, downstream, expected, reset)) in steps.iter().enumerate() {
            assert_eq!(
                state.update(*upstream, *downstream),
                *expected,
                "step {} ({upstream}, {downstream})",
                index + 1
            );
            assert_eq!(
                state.last_sync_downstream(),
                expected_last_sync[index],
                "step {}",
                index + 1
            );
            if *reset {
                state.reset();
            }
        }
    }

    /// MM2's `MirrorSourceTaskTest.testZeroOffsetSync`: with offset.lag.max = 0 every update triggers.
    #[test]
    fn trigger_sequence_with_lag_0() {
        let mut state = PartitionState::new(0);
        for (upstream, downstream) in [
            (0, 100),
            (2, 102),
            (3, 153),
            (4, 154),
            (5, 155),
            (6, 207),
            (2, 208),
            (3, 209),
            (4, 3),
        ] {
            assert!(state.update(upstream, downstream));
            state.reset();
        }
        for (upstream, downstream) in [(5, 4), (7, 6), (7, 6), (8, 7)] {
            assert!(state.update(upstream, downstream));
        }
        assert!(state.update(10, 57));
        state.reset();
        assert!(state.update(11, 58));
    }

    /// MM2's `OffsetSyncWriterTest`.
    #[test]
    fn pending_delayed_and_permits() {
        let mut queue = OffsetSyncQueue::new(2);
        queue.maybe_queue(0, "topic", 0, 0, 1);
        assert!(queue.has_pending(0) && !queue.has_delayed(0));
        assert_eq!(queue.last_sync_downstream(0), Some(1));
        queue.maybe_queue(0, "topic", 0, 1, 2);
        assert!(queue.has_delayed(0));
        assert_eq!(queue.last_sync_downstream(0), Some(1));

        let mut queue = OffsetSyncQueue::new(1);
        queue.maybe_queue(0, "topic", 0, 0, 100);
        assert_eq!(
            queue.take_sendable(1).len(),
            1,
            "one send with the single permit"
        );
        queue.maybe_queue(0, "topic", 0, 2, 102);
        assert_eq!(queue.last_sync_downstream(0), Some(102));
        assert_eq!(
            queue.take_sendable(0).len(),
            0,
            "no permit left: nothing more is sent"
        );

        let mut queue = OffsetSyncQueue::new(50);
        queue.maybe_queue(0, "topic", 0, 0, 100);
        queue.maybe_queue(0, "topic", 0, 1, 101);
        queue.promote_delayed();
        assert!(!queue.has_delayed(0));
        let sent = queue.take_sendable(MAX_IN_FLIGHT_SYNCS);
        assert_eq!(
            sent,
            vec![OffsetSync {
                topic: "topic".into(),
                partition: 0,
                upstream: 1,
                downstream: 101
            }]
        );
    }

    /// Pending syncs leave oldest first, a replaced one keeps its place (Java's LinkedHashMap),
    /// and a forgotten partition's syncs are dropped.
    #[test]
    fn pending_order_replacement_and_forget() {
        let mut queue = OffsetSyncQueue::new(0);
        queue.maybe_queue(0, "a", 0, 0, 10);
        queue.maybe_queue(1, "b", 3, 0, 20);
        queue.maybe_queue(0, "a", 0, 1, 11);
        assert_eq!(
            queue.take_sendable(MAX_IN_FLIGHT_SYNCS),
            vec![
                OffsetSync {
                    topic: "a".into(),
                    partition: 0,
                    upstream: 1,
                    downstream: 11
                },
                OffsetSync {
                    topic: "b".into(),
                    partition: 3,
                    upstream: 0,
                    downstream: 20
                },
            ]
        );
        queue.maybe_queue(0, "a", 0, 2, 12);
        queue.maybe_queue(1, "b", 3, 1, 21);
        queue.forget(0);
        assert!(!queue.has_pending(0) && queue.last_sync_downstream(0).is_none());
        assert_eq!(
            queue.take_sendable(MAX_IN_FLIGHT_SYNCS),
            vec![OffsetSync {
                topic: "b".into(),
                partition: 3,
                upstream: 1,
                downstream: 21
            }]
        );
    }
}
