//! Metrics that tell whether it is safe to switch: the lag monitor's figures, alarms, and each
//! consumer group's translation and sync state.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `kafka_mirrord_caught_up` | gauge (0/1) | `flow` |
//! | `kafka_mirrord_lag_records` | gauge | `flow` |
//! | `kafka_mirrord_lag_seconds` | gauge | `flow` |
//! | `kafka_mirrord_alarms` | gauge | `flow,kind` |
//! | `kafka_mirrord_cutover_ready` | gauge (0/1) | `flow` |
//! | `kafka_mirrord_group_translation_exact` | gauge (0/1) | `flow,group` |
//! | `kafka_mirrord_group_max_rereads` | gauge | `flow,group` |
//! | `kafka_mirrord_group_sync_state` | gauge (one-hot) | `flow,group,state` |

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus::{GaugeVec, IntGaugeVec, Registry};

use super::{gauge_vec, int_gauge_vec};
use crate::plan::FlowId;
use crate::status::{AlarmKind, GroupTranslation};

/// States of `kafka_mirrord_group_sync_state`.
pub const GROUP_SYNC_STATES: [&str; 4] = [
    "in_sync",
    "active_on_target",
    "target_ahead",
    "no_translation",
];

pub(super) struct CutoverFamilies {
    caught_up: IntGaugeVec,
    lag_records: IntGaugeVec,
    lag_seconds: GaugeVec,
    alarms: IntGaugeVec,
    cutover_ready: IntGaugeVec,
    group_exact: IntGaugeVec,
    group_rereads: IntGaugeVec,
    group_sync: IntGaugeVec,
    book: Mutex<CutoverBook>,
}

#[derive(Default)]
struct CutoverBook {
    flows: BTreeSet<String>,
    groups: BTreeSet<(String, String)>,
    synced_groups: BTreeSet<(String, String)>,
}

/// One lag monitor round of a flow.
pub struct LagFigures {
    pub caught_up: bool,
    pub lag_records: i64,
    pub lag_seconds: Option<u64>,
    pub cutover_ready: bool,
}

impl CutoverFamilies {
    pub(super) fn register(registry: &Registry) -> prometheus::Result<CutoverFamilies> {
        Ok(CutoverFamilies {
            caught_up: int_gauge_vec(
                registry,
                "kafka_mirrord_caught_up",
                "1 when every selected partition's lag was measured and is 0 (nothing a read_committed consumer could read is left).",
                &["flow"],
            )?,
            lag_records: int_gauge_vec(
                registry,
                "kafka_mirrord_lag_records",
                "Records of the selected partitions not replicated yet (source last stable offset − replicated position).",
                &["flow"],
            )?,
            lag_seconds: gauge_vec(
                registry,
                "kafka_mirrord_lag_seconds",
                "Age of the oldest record not replicated yet (0 when caught up).",
                &["flow"],
            )?,
            alarms: int_gauge_vec(
                registry,
                "kafka_mirrord_alarms",
                "Partitions in alarm: records_skipped, topic_recreated, foreign_writes.",
                &["flow", "kind"],
            )?,
            cutover_ready: int_gauge_vec(
                registry,
                "kafka_mirrord_cutover_ready",
                "1 when every cutover gate passes with the default options (docs/cutover.md).",
                &["flow"],
            )?,
            group_exact: int_gauge_vec(
                registry,
                "kafka_mirrord_group_translation_exact",
                "1 when the group's committed offsets translate exactly (zero re-reads after moving).",
                &["flow", "group"],
            )?,
            group_rereads: int_gauge_vec(
                registry,
                "kafka_mirrord_group_max_rereads",
                "Records a consumer of the group moved to the target may read again, at most (0 when exact).",
                &["flow", "group"],
            )?,
            group_sync: int_gauge_vec(
                registry,
                "kafka_mirrord_group_sync_state",
                "The group's offsets on the target (sync.group.offsets.enabled): 1 for the current state.",
                &["flow", "group", "state"],
            )?,
            book: Mutex::new(CutoverBook::default()),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, CutoverBook> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn lag_round(
        &self,
        flow: &FlowId,
        figures: &LagFigures,
        alarms: &std::collections::HashMap<AlarmKind, usize>,
    ) {
        let flow = flow.to_string();
        self.caught_up
            .with_label_values(&[&flow])
            .set(i64::from(figures.caught_up));
        self.lag_records
            .with_label_values(&[&flow])
            .set(figures.lag_records);
        if let Some(seconds) = figures.lag_seconds {
            self.lag_seconds
                .with_label_values(&[&flow])
                .set(seconds as f64);
        }
        self.cutover_ready
            .with_label_values(&[&flow])
            .set(i64::from(figures.cutover_ready));
        for kind in AlarmKind::ALL {
            let count = alarms.get(&kind).copied().unwrap_or(0);
            self.alarms
                .with_label_values(&[&flow, kind.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.book().flows.insert(flow);
    }

    pub(super) fn group_translation(
        &self,
        flow: &FlowId,
        group: &str,
        translation: Option<GroupTranslation>,
    ) {
        let Some(translation) = translation else {
            return;
        };
        let flow = flow.to_string();
        let (exact, rereads) = match translation {
            GroupTranslation::Exact => (1, 0),
            GroupTranslation::Approximate { max_rereads } => (0, max_rereads),
        };
        self.group_exact
            .with_label_values(&[&flow, group])
            .set(exact);
        self.group_rereads
            .with_label_values(&[&flow, group])
            .set(rereads);
        self.book().groups.insert((flow, group.to_string()));
    }

    pub(super) fn group_sync_state(&self, flow: &FlowId, group: &str, state: &str) {
        let flow = flow.to_string();
        for candidate in GROUP_SYNC_STATES {
            self.group_sync
                .with_label_values(&[&flow, group, candidate])
                .set(i64::from(candidate == state));
        }
        self.book().synced_groups.insert((flow, group.to_string()));
    }

    pub(super) fn remove_group(&self, flow: &FlowId, group: &str) {
        let key = (flow.to_string(), group.to_string());
        let mut book = self.book();
        if book.groups.remove(&key) {
            let _ = self.group_exact.remove_label_values(&[&key.0, group]);
            let _ = self.group_rereads.remove_label_values(&[&key.0, group]);
        }
        if book.synced_groups.remove(&key) {
            for state in GROUP_SYNC_STATES {
                let _ = self.group_sync.remove_label_values(&[&key.0, group, state]);
            }
        }
    }

    pub(super) fn remove_flow(&self, flow: &FlowId) {
        let text = flow.to_string();
        let groups: Vec<String> = {
            let book = self.book();
            book.groups
                .iter()
                .chain(book.synced_groups.iter())
                .filter(|(f, _)| *f == text)
                .map(|(_, group)| group.clone())
                .collect()
        };
        for group in groups {
            self.remove_group(flow, &group);
        }
        if self.book().flows.remove(&text) {
            for family in [&self.caught_up, &self.lag_records, &self.cutover_ready] {
                let _ = family.remove_label_values(&[&text]);
            }
            let _ = self.lag_seconds.remove_label_values(&[&text]);
            for kind in AlarmKind::ALL {
                let _ = self.alarms.remove_label_values(&[&text, kind.as_str()]);
            }
        }
    }
}
