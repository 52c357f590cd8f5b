//! The change-point history of each source partition's offset mapping, which makes consumer-group
//! translation exact (docs/offset-translation.md).
//!
//! Where a source partition's records land on the target, `downstream - upstream` (the *delta*)
//! stays constant over long runs and changes only at known points: transaction markers or aborted
//! records at the source (not copied), transaction markers of our own exactly-once writes, a
//! restart that copies records again, someone else writing to the remote topic. The source tasks
//! record every point where the delta changes ([`HistoryPoint`]) in
//! `mm2-mirrord-offset-history.<source>.internal` on the target before they store progress past
//! it; inside a run of constant delta, translation is exact arithmetic.
//!
//! Record format (ours; Kafka `Struct` rules like MM2's internal records):
//! key `INT16 version (0), STRING topic, INT32 partition, INT64 upstream`;
//! value `INT16 version (0), INT64 downstream, INT8 flags` (bit 0: coverage starts here: nothing
//! before this point is known, e.g. the partition was copied by another tool until then).
//! A null value deletes a point (pruning). The topic is compacted; one key per point.

use std::collections::{BTreeMap, HashMap};

use super::records::{DecodeError, Reader};

const VERSION: i16 = 0;
const STARTS_COVERAGE: i8 = 1;

/// Source upstream offset `upstream` (a record, or the position after skipped markers) lands at
/// `downstream`; the delta holds from here to the next point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPoint {
    pub topic: String,
    pub partition: i32,
    pub upstream: i64,
    pub downstream: i64,
    /// Nothing before this point is covered by the history (a first start, or a start after
    /// another tool stored the progress).
    pub starts_coverage: bool,
}

impl HistoryPoint {
    pub fn key(&self) -> Vec<u8> {
        point_key(&self.topic, self.partition, self.upstream)
    }

    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(11);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.downstream.to_be_bytes());
        out.push(if self.starts_coverage {
            STARTS_COVERAGE as u8
        } else {
            0
        });
        out
    }

    /// Decodes a record; the point is `None` for a deletion (null value) of a well-formed key.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<DecodedPoint, DecodeError> {
        let mut key = Reader::new(key, "offset history key");
        let version = key.i16()?;
        if version != VERSION {
            return Err(DecodeError {
                what: "offset history key",
                reason: format!("unknown version {version}"),
            });
        }
        let topic = key.string()?;
        let partition = key.i32()?;
        let upstream = key.i64()?;
        let Some(value) = value else {
            return Ok((topic, partition, upstream, None));
        };
        let mut value = Reader::new(value, "offset history value");
        let _version = value.i16()?;
        let downstream = value.i64()?;
        let flags = value.i8()?;
        Ok((
            topic,
            partition,
            upstream,
            Some((downstream, flags & STARTS_COVERAGE != 0)),
        ))
    }
}

/// A decoded history record: topic, partition, upstream, and (downstream, starts coverage) or
/// `None` for a deletion.
pub type DecodedPoint = (String, i32, i64, Option<(i64, bool)>);

/// The key of the point at `upstream` (also for deleting it).
pub fn point_key(topic: &str, partition: i32, upstream: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + topic.len());
    out.extend_from_slice(&VERSION.to_be_bytes());
    super::records::put_string(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&upstream.to_be_bytes());
    out
}

/// What the offsets topic says about a source partition: the last replicated upstream offset and,
/// when kafka-mirrord stored it, the target offset the next record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredProgress {
    pub offset: i64,
    /// `None` when another tool (MM2) stored the progress: the history does not cover it.
    pub next_downstream: Option<i64>,
}

/// One partition's points: upstream → (downstream, starts coverage).
type Points = BTreeMap<i64, (i64, bool)>;

/// Every partition's change points, as read from the history topic.
#[derive(Debug, Default)]
pub struct OffsetHistory {
    partitions: HashMap<(String, i32), Points>,
}

impl OffsetHistory {
    /// Applies one record of the history topic (a later record for the same point replaces it).
    pub fn apply(
        &mut self,
        topic: String,
        partition: i32,
        upstream: i64,
        value: Option<(i64, bool)>,
    ) {
        match value {
            Some(point) => {
                self.partitions
                    .entry((topic, partition))
                    .or_default()
                    .insert(upstream, point);
            }
            None => {
                let key = (topic, partition);
                if let Some(points) = self.partitions.get_mut(&key) {
                    points.remove(&upstream);
                    if points.is_empty() {
                        self.partitions.remove(&key);
                    }
                }
            }
        }
    }

    /// The partitions with points.
    pub fn partitions(&self) -> Vec<(String, i32)> {
        self.partitions.keys().cloned().collect()
    }

    /// Points held over every partition.
    pub fn len(&self) -> usize {
        self.partitions.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// The exact target offset for a group committed at `committed` (the next record it reads) on
    /// `topic`/`partition`, given the partition's stored progress; `None` when the history cannot
    /// vouch for it (not covered, or the group is ahead of replication).
    ///
    /// Inside the run of point `p` (the last point at or before `committed`), the record at
    /// `committed` landed at `d_p + (committed - u_p)`. Where upstream offsets are missing at the
    /// end of a run (markers, aborted or compacted records), that value is capped by where the next
    /// run starts, so the consumer resumes at the next record copied after them, never past it.
    pub fn translate_exact(
        &self,
        topic: &str,
        partition: i32,
        committed: i64,
        stored: Option<&StoredProgress>,
    ) -> Option<i64> {
        let stored = stored?;
        let next_downstream = stored.next_downstream?;
        if committed == stored.offset + 1 {
            return Some(next_downstream);
        }
        if committed > stored.offset + 1 || committed < 0 {
            return None;
        }
        let points = self.partitions.get(&(topic.to_string(), partition))?;
        let (&upstream, &(downstream, _)) = points.range(..=committed).next_back()?;
        let in_run = downstream.checked_add(committed - upstream)?;
        let cap = match points.range(committed + 1..).next() {
            // Coverage restarts there: the run before it may have been continued by another tool.
            Some((_, &(_, true))) => return None,
            Some((_, &(next, false))) => next,
            None => next_downstream,
        };
        Some(in_run.min(cap).max(0))
    }

    /// Points to delete: those whose run ended below the source's log start (no record of it is
    /// left to consume), and the oldest beyond `max_points` per partition. `earliest` maps a
    /// partition to its log start offset.
    pub fn prune(
        &mut self,
        earliest: &HashMap<(String, i32), i64>,
        max_points: usize,
    ) -> Vec<(String, i32, i64)> {
        let mut removed = Vec::new();
        for ((topic, partition), points) in &mut self.partitions {
            let log_start = earliest.get(&(topic.clone(), *partition)).copied();
            let mut doomed: Vec<i64> = Vec::new();
            if let Some(log_start) = log_start {
                // A point is obsolete when the next one also starts at or below the log start.
                let upstreams: Vec<i64> = points.keys().copied().collect();
                for pair in upstreams.windows(2) {
                    if pair[1] <= log_start {
                        doomed.push(pair[0]);
                    }
                }
            }
            let left = points.len() - doomed.len();
            if left > max_points {
                let skip = doomed.len();
                doomed.extend(points.keys().skip(skip).take(left - max_points).copied());
            }
            for upstream in doomed {
                points.remove(&upstream);
                removed.push((topic.clone(), *partition, upstream));
            }
        }
        self.partitions.retain(|_, points| !points.is_empty());
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(points: &[(i64, i64, bool)]) -> OffsetHistory {
        let mut history = OffsetHistory::default();
        for (upstream, downstream, starts) in points {
            history.apply("t".into(), 0, *upstream, Some((*downstream, *starts)));
        }
        history
    }

    fn stored(offset: i64, next_downstream: i64) -> StoredProgress {
        StoredProgress {
            offset,
            next_downstream: Some(next_downstream),
        }
    }

    #[test]
    fn records_round_trip_and_deletions_decode() {
        let point = HistoryPoint {
            topic: "orders".into(),
            partition: 3,
            upstream: 1_000,
            downstream: 990,
            starts_coverage: true,
        };
        let decoded = HistoryPoint::decode(&point.key(), Some(&point.value())).unwrap();
        assert_eq!(decoded, ("orders".into(), 3, 1_000, Some((990, true))));
        let deleted = HistoryPoint::decode(&point.key(), None).unwrap();
        assert_eq!(deleted.3, None);
        assert!(HistoryPoint::decode(&point.key()[..5], None).is_err());
        assert!(HistoryPoint::decode(&point.key(), Some(&[0, 0, 1])).is_err());
    }

    #[test]
    fn source_transaction_markers_translate_without_rereads_or_skips() {
        // Source: records 0..=9, a commit marker at 10, records 11..=20, a marker at 21.
        // Target (at-least-once): 0..=9 → 0..=9, 11..=20 → 10..=19. Position after 21: 22.
        let history = history(&[(0, 0, true), (11, 10, false), (22, 20, false)]);
        let progress = stored(21, 20);
        let at = |committed| history.translate_exact("t", 0, committed, Some(&progress));
        assert_eq!(at(0), Some(0));
        assert_eq!(at(5), Some(5));
        // Committed after record 9: either at the marker (10) or past it (11) → record 11 at 10.
        assert_eq!(at(10), Some(10));
        assert_eq!(at(11), Some(10));
        assert_eq!(at(15), Some(14));
        assert_eq!(at(21), Some(20));
        assert_eq!(at(22), Some(20), "the tip: the next record goes to 20");
        assert_eq!(at(23), None, "ahead of replication");
    }

    #[test]
    fn target_side_gaps_and_compaction_gaps_are_followed() {
        // Exactly-once target: a commit marker after each transaction moves the delta up by one;
        // a compacted source leaves holes (records 3..=6 gone).
        let history = history(&[
            (0, 100, true),
            (3, 103, false),
            (7, 104, false),
            (9, 107, false),
        ]);
        let progress = stored(12, 111);
        let at = |committed| history.translate_exact("t", 0, committed, Some(&progress));
        assert_eq!(at(2), Some(102));
        assert_eq!(at(3), Some(103));
        assert_eq!(
            at(5),
            Some(104),
            "a compacted hole resumes at the next copied record"
        );
        assert_eq!(at(8), Some(105));
        assert_eq!(at(9), Some(107));
        assert_eq!(at(12), Some(110));
        assert_eq!(at(13), Some(111));
    }

    #[test]
    fn uncovered_offsets_are_not_exact() {
        let history = history(&[(50, 40, true), (80, 75, false), (90, 90, true)]);
        let progress = stored(100, 101);
        let at = |committed| history.translate_exact("t", 0, committed, Some(&progress));
        assert_eq!(at(10), None, "before the first point");
        assert_eq!(at(60), Some(50));
        assert_eq!(
            at(85),
            None,
            "coverage restarted at 90: the run before may not reach it"
        );
        assert_eq!(at(95), Some(95));
        // Progress stored by another tool: nothing is vouched for.
        let foreign = StoredProgress {
            offset: 100,
            next_downstream: None,
        };
        assert_eq!(history.translate_exact("t", 0, 60, Some(&foreign)), None);
        assert_eq!(history.translate_exact("t", 0, 60, None), None);
        assert_eq!(history.translate_exact("t", 1, 60, Some(&progress)), None);
    }

    #[test]
    fn pruning_drops_runs_below_the_log_start_and_beyond_the_cap() {
        let mut history = history(&[
            (0, 0, true),
            (10, 12, false),
            (20, 25, false),
            (30, 40, false),
        ]);
        let earliest = HashMap::from([(("t".to_string(), 0), 20)]);
        let removed = history.prune(&earliest, 100);
        assert_eq!(removed, vec![("t".into(), 0, 0), ("t".into(), 0, 10)]);
        assert_eq!(history.len(), 2);
        let removed = history.prune(&HashMap::new(), 1);
        assert_eq!(removed, vec![("t".into(), 0, 20)]);
        let progress = stored(35, 46);
        assert_eq!(history.translate_exact("t", 0, 25, Some(&progress)), None);
        assert_eq!(
            history.translate_exact("t", 0, 33, Some(&progress)),
            Some(43)
        );
        history.apply("t".into(), 0, 30, None);
        assert!(history.is_empty());
    }
}
