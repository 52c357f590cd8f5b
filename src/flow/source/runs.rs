//! Where the offset delta (`downstream - upstream`) of one source partition changes, as its
//! task sees records acknowledged: the change points (`offset_history.rs`) to write to the history
//! topic before stored progress passes them, and the target offset the next record goes to.
//!
//! Pure state, kept per partition behind the slot's lock by the delivery callback (at-least-once)
//! or the transaction commit (exactly-once).

use std::collections::VecDeque;

use crate::flow::offset_history::StoredProgress;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PointState {
    /// Not handed to the producer yet.
    Unsent,
    /// Sent, not acknowledged (or, exactly-once, not committed) yet.
    Sending,
    /// On the target: progress may pass it.
    Stored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TrackedPoint {
    upstream: i64,
    downstream: i64,
    starts_coverage: bool,
    state: PointState,
}

/// A change point to write: (upstream, downstream, starts coverage).
pub type PointToSend = (i64, i64, bool);

#[derive(Debug)]
pub struct RunTracker {
    /// The delta of the last acknowledged record; `None` right after a (re)start, so the first
    /// record always writes a point and the history never relies on memory lost in a restart.
    delta: Option<i64>,
    /// The target offset of the next record, when known.
    next_downstream: Option<i64>,
    /// The stored progress was written by kafka-mirrord: the history covers it, so the first
    /// point continues it instead of starting coverage anew.
    continued: bool,
    written_first: bool,
    /// Progress read at start (what `next_downstream_after` answers before any point).
    initial: Option<StoredProgress>,
    /// Points not yet passed by stored progress, oldest first (plus the last one passed).
    points: VecDeque<TrackedPoint>,
}

impl RunTracker {
    pub fn new(stored: Option<StoredProgress>) -> RunTracker {
        let next_downstream = stored.and_then(|stored| stored.next_downstream);
        RunTracker {
            delta: None,
            next_downstream,
            continued: next_downstream.is_some(),
            written_first: false,
            initial: stored,
            points: VecDeque::new(),
        }
    }

    /// Record `upstream` was acknowledged at `downstream` (records arrive in order). True when it
    /// starts a new run.
    pub fn acknowledged(&mut self, upstream: i64, downstream: i64) -> bool {
        let delta = downstream - upstream;
        let changed = self.delta != Some(delta);
        if changed {
            self.push(upstream, downstream);
        }
        self.delta = Some(delta);
        self.next_downstream = Some(downstream + 1);
        changed
    }

    /// The consumer moved past markers (or aborted records) to `position` with every record
    /// before it acknowledged: the next record, at `position` or later, goes to the target offset
    /// after the last one. False when that offset is unknown (nothing copied since a start by
    /// another tool): the caller must not count the markers as replicated then.
    pub fn skipped_to(&mut self, position: i64) -> bool {
        let Some(next) = self.next_downstream else {
            return false;
        };
        let delta = next - position;
        if self.delta != Some(delta) {
            self.push(position, next);
        }
        self.delta = Some(delta);
        true
    }

    fn push(&mut self, upstream: i64, downstream: i64) {
        let starts_coverage = !self.written_first && !self.continued;
        self.written_first = true;
        if let Some(last) = self.points.back_mut() {
            if last.upstream == upstream && last.state == PointState::Unsent {
                last.downstream = downstream;
                return;
            }
        }
        self.points.push_back(TrackedPoint {
            upstream,
            downstream,
            starts_coverage: starts_coverage
                || self
                    .points
                    .back()
                    .is_some_and(|last| last.upstream == upstream && last.starts_coverage),
            state: PointState::Unsent,
        });
    }

    /// The lowest upstream offset of a point not on the target yet (`i64::MAX`: none): stored
    /// progress stays below it.
    pub fn floor(&self) -> i64 {
        self.points
            .iter()
            .filter(|point| point.state != PointState::Stored)
            .map(|point| point.upstream)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// The points to write now; they count as sending until [`RunTracker::stored`] or
    /// [`RunTracker::failed`]. `again` also hands out points already sending (a fresh producer
    /// writes them once more).
    pub fn take_unsent(&mut self, again: bool) -> Vec<PointToSend> {
        let mut out = Vec::new();
        for point in &mut self.points {
            if point.state == PointState::Unsent || (again && point.state == PointState::Sending) {
                point.state = PointState::Sending;
                out.push((point.upstream, point.downstream, point.starts_coverage));
            }
        }
        out
    }

    /// The point at `upstream` is on the target.
    pub fn stored(&mut self, upstream: i64) {
        for point in &mut self.points {
            if point.upstream == upstream && point.state == PointState::Sending {
                point.state = PointState::Stored;
            }
        }
    }

    /// Every point sent is on the target (an exactly-once commit, or a flush of every write).
    pub fn all_sent_stored(&mut self) {
        for point in &mut self.points {
            if point.state == PointState::Sending {
                point.state = PointState::Stored;
            }
        }
    }

    /// Writing the point at `upstream` failed: it is sent again at the next flush.
    pub fn failed(&mut self, upstream: i64) {
        for point in &mut self.points {
            if point.upstream == upstream && point.state == PointState::Sending {
                point.state = PointState::Unsent;
            }
        }
    }

    /// The target offset of the first record after upstream `offset` (stored with the progress
    /// `offset`), when known.
    pub fn next_downstream_after(&self, offset: i64) -> Option<i64> {
        let next = offset.checked_add(1)?;
        match self
            .points
            .iter()
            .rev()
            .find(|point| point.upstream <= next)
        {
            Some(point) => point.downstream.checked_add(next - point.upstream),
            None => self
                .initial
                .filter(|initial| initial.offset == offset)
                .and_then(|initial| initial.next_downstream),
        }
    }

    /// Progress `offset` is stored: forgets the points it passed, keeping the last of them (it
    /// still answers `next_downstream_after`).
    pub fn trim(&mut self, offset: i64) {
        while self.points.len() > 1
            && self.points[0].state == PointState::Stored
            && self.points[1].upstream <= offset.saturating_add(1)
        {
            self.points.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_partition_starts_coverage_and_records_only_changes() {
        let mut runs = RunTracker::new(None);
        assert!(runs.acknowledged(0, 0));
        assert!(!runs.acknowledged(1, 1));
        assert!(!runs.acknowledged(2, 2));
        // Source transaction marker at 3: record 4 lands at 3.
        assert!(runs.acknowledged(4, 3));
        assert_eq!(runs.floor(), 0);
        assert_eq!(runs.take_unsent(false), vec![(0, 0, true), (4, 3, false)]);
        assert_eq!(runs.floor(), 0, "sent is not stored");
        runs.stored(0);
        assert_eq!(runs.floor(), 4);
        runs.failed(4);
        assert_eq!(runs.take_unsent(false), vec![(4, 3, false)]);
        runs.stored(4);
        assert_eq!(runs.floor(), i64::MAX);
        assert_eq!(runs.next_downstream_after(2), Some(3));
        assert_eq!(runs.next_downstream_after(4), Some(4));
        runs.trim(4);
        assert_eq!(runs.next_downstream_after(4), Some(4));
    }

    #[test]
    fn markers_at_the_end_become_a_point_at_the_position() {
        let mut runs = RunTracker::new(None);
        runs.acknowledged(0, 0);
        runs.acknowledged(1, 1);
        // A commit marker at 2; the consumer's position is 3.
        assert!(runs.skipped_to(3));
        assert_eq!(runs.next_downstream_after(2), Some(2));
        // The next record lands where the point said: no new point.
        assert!(!runs.acknowledged(3, 2));
        let points = runs.take_unsent(false);
        assert_eq!(points, vec![(0, 0, true), (3, 2, false)]);
    }

    #[test]
    fn a_restart_continues_the_history_of_progress_we_stored() {
        let stored = StoredProgress {
            offset: 9,
            next_downstream: Some(12),
        };
        let mut runs = RunTracker::new(Some(stored));
        assert_eq!(runs.next_downstream_after(9), Some(12));
        assert!(
            runs.skipped_to(10),
            "the next target offset is known from the progress"
        );
        assert!(!runs.acknowledged(10, 12), "lands where the point said");
        assert_eq!(runs.take_unsent(false), vec![(10, 12, false)]);
        // Without markers, the first record after a start writes a point all the same.
        let mut runs = RunTracker::new(Some(stored));
        assert!(runs.acknowledged(10, 12));
        assert_eq!(runs.take_unsent(false), vec![(10, 12, false)]);

        // Progress stored by MM2: coverage starts anew, and markers cannot be counted before a
        // record was copied.
        let mm2 = StoredProgress {
            offset: 9,
            next_downstream: None,
        };
        let mut runs = RunTracker::new(Some(mm2));
        assert!(!runs.skipped_to(11));
        runs.acknowledged(11, 30);
        assert_eq!(runs.take_unsent(false), vec![(11, 30, true)]);
    }

    #[test]
    fn a_point_replaced_before_it_was_sent_keeps_one_entry() {
        let mut runs = RunTracker::new(None);
        runs.acknowledged(0, 0);
        runs.skipped_to(2); // point (2, 1)
                            // Exactly-once target: our commit marker took offset 1, the record at 2 lands at 2.
        runs.acknowledged(2, 2);
        assert_eq!(runs.take_unsent(false), vec![(0, 0, true), (2, 2, false)]);
        // A point already sending is written again by a fresh producer when asked.
        assert_eq!(runs.take_unsent(true).len(), 2);
        runs.all_sent_stored();
        assert_eq!(runs.floor(), i64::MAX);
    }
}
