//! MM2's `OffsetSyncStore` (docs/mm2-behaviour.md, *Offset translation*): a sparse, roughly exponentially spaced history of
//! 64 offset syncs per upstream partition, and offset translation from it. Reproduces Java's
//! arithmetic (signed 64-bit with wrap-around) and its notion of "the same entry" (identity of a
//! received sync, not equal offsets), so translations match MM2's exactly. Pure state.

use std::collections::HashMap;

const SYNCS_PER_PARTITION: usize = 64;

/// One received offset sync; `id` tells apart syncs with equal offsets received separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: u64,
    upstream: i64,
    downstream: i64,
}

/// Offset-sync history per upstream (topic, partition).
#[derive(Debug, Default)]
pub struct OffsetSyncStore {
    next_id: u64,
    syncs: HashMap<(String, i32), Box<[Entry; SYNCS_PER_PARTITION]>>,
    /// The initial read of the offset-syncs topic reached its end.
    read_to_end: bool,
    /// Keep only the last sync seen during the initial read (MM2 does this when it could not load
    /// earlier checkpoints, so translations never go backwards).
    must_read_to_end: bool,
}

impl OffsetSyncStore {
    pub fn new(must_read_to_end: bool) -> Self {
        Self {
            must_read_to_end,
            ..Self::default()
        }
    }

    /// The initial read reached the end of the topic: translation may start.
    pub fn mark_read_to_end(&mut self) {
        self.read_to_end = true;
    }

    pub fn is_ready(&self) -> bool {
        self.read_to_end
    }

    /// Changes with every sync applied and when the initial read ends: unchanged, every
    /// translation from this store is the same.
    pub fn version(&self) -> (u64, bool) {
        (self.next_id, self.read_to_end)
    }

    /// Applies one sync read from the offset-syncs topic.
    pub fn update(&mut self, topic: &str, partition: i32, upstream: i64, downstream: i64) {
        let entry = Entry {
            id: self.next_id,
            upstream,
            downstream,
        };
        self.next_id += 1;
        let only_last = !self.read_to_end && self.must_read_to_end;
        match self.syncs.get_mut(&(topic.to_string(), partition)) {
            None => {
                self.syncs.insert(
                    (topic.to_string(), partition),
                    Box::new([entry; SYNCS_PER_PARTITION]),
                );
            }
            Some(syncs) => {
                let original = **syncs;
                update_sync_array(syncs, &original, entry, only_last);
            }
        }
    }

    /// `translateDownstream`: `None` = no translation possible (not ready, or no sync for the
    /// partition); `Some(-1)` = the offset is older than every retained sync.
    pub fn translate(&self, topic: &str, partition: i32, upstream: i64) -> Option<i64> {
        self.translate_bounded(topic, partition, upstream)
            .map(|(downstream, _)| downstream)
    }

    /// [`OffsetSyncStore::translate`] and how many records a consumer moved there may read
    /// again at most: those between the sync used and the committed offset.
    pub fn translate_bounded(
        &self,
        topic: &str,
        partition: i32,
        upstream: i64,
    ) -> Option<(i64, i64)> {
        if !self.read_to_end {
            return None;
        }
        let syncs = self.syncs.get(&(topic.to_string(), partition))?;
        let sync = syncs
            .iter()
            .find(|sync| sync.upstream <= upstream)
            .unwrap_or(&syncs[SYNCS_PER_PARTITION - 1]);
        if sync.upstream > upstream {
            return Some((-1, 0));
        }
        // Past the sync point only one record can be vouched for (records in between may have
        // been filtered or compacted), so MM2 never extrapolates further.
        if upstream == sync.upstream {
            Some((sync.downstream, 0))
        } else {
            let rereads = upstream.wrapping_sub(sync.upstream).wrapping_sub(1).max(0);
            Some((sync.downstream + 1, rereads))
        }
    }

    /// Distinct upstream offsets held for a partition, newest first (tests and diagnostics).
    pub fn upstream_offsets(&self, topic: &str, partition: i32) -> Vec<i64> {
        let mut out: Vec<i64> = Vec::new();
        if let Some(syncs) = self.syncs.get(&(topic.to_string(), partition)) {
            let mut last_id = None;
            for sync in syncs.iter() {
                if last_id != Some(sync.id) {
                    out.push(sync.upstream);
                    last_id = Some(sync.id);
                }
            }
        }
        out
    }

    /// Runs of the array as (first slot, upstream offset), as MM2's reference tables show them.
    pub fn slot_runs(&self, topic: &str, partition: i32) -> Vec<(usize, i64)> {
        let mut out = Vec::new();
        if let Some(syncs) = self.syncs.get(&(topic.to_string(), partition)) {
            for (index, sync) in syncs.iter().enumerate() {
                if index == 0 || syncs[index - 1].id != sync.id {
                    out.push((index, sync.upstream));
                }
            }
        }
        out
    }
}

fn pow2(exponent: usize) -> i64 {
    1i64.wrapping_shl(exponent as u32)
}

/// Invariant B ("recent enough"): `a` is within `2^j - 2^i` of `b`.
fn invariant_b(a: Entry, b: Entry, i: usize, j: usize) -> bool {
    let bound = b.upstream.wrapping_add(pow2(j)).wrapping_sub(pow2(i));
    a.id == b.id || bound < 0 || a.upstream <= bound
}

/// Invariant C ("separated enough"): `a` is at least `2^max(i-2, 0)` past `b`.
fn invariant_c(a: Entry, b: Entry, i: usize) -> bool {
    let bound = b.upstream.wrapping_add(pow2(i.saturating_sub(2)));
    a.id == b.id || (bound >= 0 && a.upstream >= bound)
}

fn update_sync_array(
    syncs: &mut [Entry; SYNCS_PER_PARTITION],
    original: &[Entry; SYNCS_PER_PARTITION],
    sync: Entry,
    only_last: bool,
) {
    // While loading, or after an upstream rewind, earlier syncs cannot be used: keep only this one.
    if only_last || sync.upstream < syncs[0].upstream {
        *syncs = [sync; SYNCS_PER_PARTITION];
        return;
    }
    let mut replacement = sync;
    let mut replacement_index = 0;
    syncs[0] = replacement;
    for current in 1..SYNCS_PER_PARTITION {
        let previous = current - 1;
        loop {
            let old = original[replacement_index];
            let is_recent = invariant_b(syncs[previous], old, previous, current);
            let separated_from_previous = invariant_c(syncs[previous], old, previous);
            let separated_from_next =
                current + 1 >= SYNCS_PER_PARTITION || invariant_c(old, syncs[current + 1], current);
            let duplicate = replacement_index + 1 < SYNCS_PER_PARTITION
                && old.id == original[replacement_index + 1].id;
            let skip = duplicate || !separated_from_previous;
            if is_recent && separated_from_previous && separated_from_next {
                replacement = old;
                replacement_index += 1;
            } else if skip {
                replacement_index += 1;
            }
            if !(replacement_index < current && skip) {
                break;
            }
        }
        if invariant_b(syncs[previous], syncs[current], previous, current) {
            // The rest of the array already satisfies the invariants.
            break;
        }
        syncs[current] = replacement;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "topic1";
    const PARTITION: i32 = 2;

    fn started(must_read_to_end: bool) -> OffsetSyncStore {
        let mut store = OffsetSyncStore::new(must_read_to_end);
        store.mark_read_to_end();
        store
    }

    fn translate(store: &OffsetSyncStore, upstream: i64) -> Option<i64> {
        store.translate(TOPIC, PARTITION, upstream)
    }

    fn sync(store: &mut OffsetSyncStore, upstream: i64, downstream: i64) {
        store.update(TOPIC, PARTITION, upstream, downstream);
    }

    /// The store after identity syncs u→u (MM2's `OffsetSyncStoreTest`).
    fn assert_sparse(store: &OffsetSyncStore, x: i64, previous: i64) {
        let before = if previous == -1 { -1 } else { previous + 1 };
        assert_eq!(
            translate(store, x - 1),
            Some(before),
            "translate({}) with S({x}, {previous})",
            x - 1
        );
        assert_eq!(translate(store, x), Some(x), "translate({x})");
        assert_eq!(translate(store, x + 1), Some(x + 1), "translate({})", x + 1);
        assert_eq!(translate(store, x + 2), Some(x + 1), "translate({})", x + 2);
    }

    #[test]
    fn offset_translation() {
        let mut store = started(true);
        sync(&mut store, 100, 200);
        assert_eq!(translate(&store, 150), Some(201));
        sync(&mut store, 150, 251);
        assert_eq!(translate(&store, 150), Some(251));
        assert_eq!(translate(&store, 5), Some(-1));
        sync(&mut store, 200, 10);
        assert_eq!(translate(&store, 200), Some(10));
        sync(&mut store, 20, 20);
        assert_eq!(translate(&store, 20), Some(20));
    }

    #[test]
    fn no_translation_before_start_or_without_syncs() {
        let mut store = OffsetSyncStore::new(true);
        sync(&mut store, 100, 200);
        for upstream in [0, 100, 200] {
            assert_eq!(translate(&store, upstream), None);
        }
        store.mark_read_to_end();
        assert_eq!(translate(&store, 0), Some(-1));
        assert_eq!(translate(&store, 100), Some(200));
        assert_eq!(translate(&store, 200), Some(201));
        assert_eq!(started(true).translate(TOPIC, PARTITION, 0), None);
    }

    #[test]
    fn past_offset_translation_with_read_to_end() {
        let mut store = OffsetSyncStore::new(true);
        for offset in (0..=1000).step_by(10) {
            sync(&mut store, offset, offset);
        }
        store.mark_read_to_end();
        assert_sparse(&store, 1000, -1);
        for offset in (1010..=10_000).step_by(10) {
            sync(&mut store, offset, offset);
        }
        for (x, previous) in [
            (1000, -1),
            (4840, 1000),
            (6760, 4840),
            (8680, 6760),
            (9160, 8680),
            (9640, 9160),
            (9880, 9640),
            (9940, 9880),
            (9970, 9940),
            (9990, 9970),
            (10_000, 9990),
        ] {
            assert_sparse(&store, x, previous);
        }
        let mut distinct = store.upstream_offsets(TOPIC, PARTITION);
        distinct.sort();
        assert_eq!(
            distinct,
            vec![1000, 4840, 6760, 8680, 9160, 9640, 9880, 9940, 9970, 9990, 10_000]
        );
        sync(&mut store, 1500, 11_000);
        assert_eq!(translate(&store, 1499), Some(-1));
        assert_eq!(translate(&store, 1500), Some(11_000));
        assert_eq!(translate(&store, 2000), Some(11_001));
    }

    #[test]
    fn past_offset_translation_without_read_to_end() {
        let mut store = OffsetSyncStore::new(false);
        for offset in (0..=1000).step_by(10) {
            sync(&mut store, offset, offset);
        }
        store.mark_read_to_end();
        for (x, previous) in [(480, 0), (720, 480), (1000, 990)] {
            assert_sparse(&store, x, previous);
        }
        let mut distinct = store.upstream_offsets(TOPIC, PARTITION);
        distinct.sort();
        assert_eq!(distinct, vec![0, 480, 720, 840, 900, 960, 990, 1000]);
        for offset in (1000..=10_000).step_by(10) {
            sync(&mut store, offset, offset);
        }
        for (x, previous) in [
            (3840, 0),
            (7680, 3840),
            (8640, 7680),
            (9120, 8640),
            (9600, 9120),
            (9840, 9600),
            (9900, 9840),
            (9960, 9900),
            (9990, 9960),
            (10_000, 9990),
        ] {
            assert_sparse(&store, x, previous);
        }
        sync(&mut store, 1500, 11_000);
        assert_eq!(translate(&store, 1499), Some(-1));
        assert_eq!(translate(&store, 1500), Some(11_000));
        assert_eq!(translate(&store, 2000), Some(11_001));
    }

    #[test]
    fn array_evolution_matches_the_reference_table() {
        let mut store = started(true);
        let expected: [&[(usize, i64)]; 11] = [
            &[(0, 0)],
            &[(0, 10), (5, 0)],
            &[(0, 20), (5, 10), (6, 0)],
            &[(0, 30), (5, 20), (6, 0)],
            &[(0, 40), (5, 30), (6, 0)],
            &[(0, 50), (5, 40), (6, 30), (7, 0)],
            &[(0, 60), (5, 50), (6, 30), (7, 0)],
            &[(0, 70), (5, 60), (6, 30), (7, 0)],
            &[(0, 80), (5, 70), (6, 60), (7, 0)],
            &[(0, 90), (5, 80), (6, 60), (7, 0)],
            &[(0, 100), (5, 90), (6, 60), (7, 0)],
        ];
        for (step, runs) in expected.iter().enumerate() {
            sync(&mut store, step as i64 * 10, step as i64 * 10);
            assert_eq!(
                store.slot_runs(TOPIC, PARTITION),
                runs.to_vec(),
                "after sync {}",
                step * 10
            );
        }
    }

    #[test]
    fn consistently_spaced_syncs_expire_at_most_one_sync_per_update() {
        let mut step: i64 = 1;
        while step < i64::MAX / 100 {
            for first in 0..30 {
                let mut store = started(true);
                let mut offset = first;
                let mut previous: Vec<i64> = Vec::new();
                for _ in 0..100 {
                    sync(&mut store, offset, offset);
                    let runs = store.slot_runs(TOPIC, PARTITION);
                    assert_eq!(runs[0].1, offset, "slot 0 is the newest");
                    assert_eq!(runs.last().unwrap().1, first, "slot 63 is the first sync");
                    let now = store.upstream_offsets(TOPIC, PARTITION);
                    let expired = previous.iter().filter(|o| !now.contains(o)).count();
                    assert!(expired <= 1, "step {step}: {expired} syncs expired at once");
                    previous = now;
                    offset += step;
                }
            }
            step = step * 2 + 1;
        }
    }

    #[test]
    fn checkpoint_store_rewind_contents() {
        // MM2's MirrorCheckpointTaskTest.testCheckpointRecordsMonotonicIfStoreRewinds (derived store contents).
        let mut store = started(true);
        store.update("topic1", 0, 11, 4);
        store.update("topic1", 0, 12, 5);
        assert_eq!(store.translate("topic1", 0, 13), Some(6));
        let expected: [&[i64]; 5] = [
            &[13, 12, 11],
            &[14, 13, 11],
            &[15, 14, 13, 11],
            &[16, 15, 13, 11],
            &[17, 16, 15, 11],
        ];
        for (index, upstream) in (13..=17).enumerate() {
            store.update("topic1", 0, upstream, upstream - 7);
            assert_eq!(
                store.upstream_offsets("topic1", 0),
                expected[index].to_vec(),
                "after {upstream}"
            );
        }
        assert_eq!(store.translate("topic1", 0, 13), Some(5));
    }
}
