//! Metrics about a flow's health that the supervisor and the source tasks report: task restarts,
//! partitions held at a poison record, records deleted at the source before replication.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `kafka_mirrord_task_restarts_total` | counter | `flow,task` |
//! | `kafka_mirrord_stalled_partitions` | gauge | `flow` |
//! | `kafka_mirrord_records_skipped_total` | counter | `flow,topic,partition` |

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus::{IntCounterVec, IntGaugeVec, Registry};

use super::{int_counter_vec, int_gauge_vec};
use crate::plan::FlowId;

pub(super) struct HealthFamilies {
    task_restarts: IntCounterVec,
    stalled: IntGaugeVec,
    skipped: IntCounterVec,
    /// Label sets in use, to remove a flow's series.
    book: Mutex<HealthBook>,
}

#[derive(Default)]
struct HealthBook {
    tasks: BTreeSet<(String, String)>,
    stalled: BTreeSet<String>,
    skipped: BTreeSet<(String, String, String)>,
}

impl HealthFamilies {
    pub(super) fn register(registry: &Registry) -> prometheus::Result<HealthFamilies> {
        Ok(HealthFamilies {
            task_restarts: int_counter_vec(
                registry,
                "kafka_mirrord_task_restarts_total",
                "Restarts of a flow's task after a failure or panic.",
                &["flow", "task"],
            )?,
            stalled: int_gauge_vec(
                registry,
                "kafka_mirrord_stalled_partitions",
                "Partitions held at a record the target refuses (never skipped; retried with backoff).",
                &["flow"],
            )?,
            skipped: int_counter_vec(
                registry,
                "kafka_mirrord_records_skipped_total",
                "Records deleted at the source (retention, DeleteRecords) before they were replicated.",
                &["flow", "topic", "partition"],
            )?,
            book: Mutex::new(HealthBook::default()),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, HealthBook> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn task_restarted(&self, flow: &FlowId, task: &str) {
        let flow = flow.to_string();
        self.task_restarts.with_label_values(&[&flow, task]).inc();
        self.book().tasks.insert((flow, task.to_string()));
    }

    pub(super) fn set_stalled(&self, flow: &FlowId, partitions: usize) {
        let flow = flow.to_string();
        self.stalled
            .with_label_values(&[&flow])
            .set(i64::try_from(partitions).unwrap_or(i64::MAX));
        self.book().stalled.insert(flow);
    }

    pub(super) fn skipped(&self, flow: &FlowId, topic: &str, partition: i32, records: u64) {
        let (flow, partition) = (flow.to_string(), partition.to_string());
        self.skipped
            .with_label_values(&[&flow, topic, &partition])
            .inc_by(records);
        self.book()
            .skipped
            .insert((flow, topic.to_string(), partition));
    }

    pub(super) fn remove_flow(&self, flow: &FlowId) {
        let flow = flow.to_string();
        let mut book = self.book();
        book.tasks.retain(|(f, task)| {
            if *f == flow {
                let _ = self.task_restarts.remove_label_values(&[f, task]);
                false
            } else {
                true
            }
        });
        if book.stalled.remove(&flow) {
            let _ = self.stalled.remove_label_values(&[&flow]);
        }
        book.skipped.retain(|(f, topic, partition)| {
            if *f == flow {
                let _ = self.skipped.remove_label_values(&[f, topic, partition]);
                false
            } else {
                true
            }
        });
    }
}
