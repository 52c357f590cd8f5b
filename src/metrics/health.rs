//! Metrics about a flow's health that the supervisor and the source tasks report: task restarts,
//! partitions held at a poison record, records deleted at the source before replication.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `kafka_mirrord_task_restarts_total` | counter | `flow,task` |
//! | `kafka_mirrord_stalled_partitions` | gauge | `flow` |
//! | `kafka_mirrord_records_skipped_total` | counter | `flow,topic,partition` |
//! | `kafka_mirrord_group_members` | gauge | `flow` |
//! | `kafka_mirrord_owned_tasks`, `kafka_mirrord_owned_partitions` | gauge | `flow` |
//! | `kafka_mirrord_leader` | gauge | `flow` |
//! | `kafka_mirrord_plan_conflict` | gauge | `flow` |
//! | `kafka_mirrord_rebalances_total` | counter | `flow` |
//! | `kafka_mirrord_last_rebalance_seconds` | gauge | `flow` |

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Registry};

use super::{gauge_vec, int_counter_vec, int_gauge_vec};
use crate::plan::FlowId;

pub(super) struct HealthFamilies {
    task_restarts: IntCounterVec,
    stalled: IntGaugeVec,
    skipped: IntCounterVec,
    members: IntGaugeVec,
    owned_tasks: IntGaugeVec,
    owned_partitions: IntGaugeVec,
    leader: IntGaugeVec,
    plan_conflict: IntGaugeVec,
    rebalances: IntCounterVec,
    rebalance_seconds: GaugeVec,
    /// Label sets in use, to remove a flow's series.
    book: Mutex<HealthBook>,
}

#[derive(Default)]
struct HealthBook {
    tasks: BTreeSet<(String, String)>,
    stalled: BTreeSet<String>,
    skipped: BTreeSet<(String, String, String)>,
    /// Flows with membership series, and the rebalance count last exported.
    membership: std::collections::BTreeMap<String, u64>,
}

/// What the membership series of one flow show.
pub struct MembershipFigures {
    pub members: usize,
    pub owned_tasks: usize,
    pub owned_partitions: usize,
    pub leader: bool,
    pub conflict: bool,
    pub rebalances: u64,
    pub last_rebalance_ms: Option<u64>,
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
            members: int_gauge_vec(
                registry,
                "kafka_mirrord_group_members",
                "Processes in the flow's group (as this process sees it).",
                &["flow"],
            )?,
            owned_tasks: int_gauge_vec(
                registry,
                "kafka_mirrord_owned_tasks",
                "Task slots of the flow this process runs.",
                &["flow"],
            )?,
            owned_partitions: int_gauge_vec(
                registry,
                "kafka_mirrord_owned_partitions",
                "Source partitions of the flow this process copies.",
                &["flow"],
            )?,
            leader: int_gauge_vec(
                registry,
                "kafka_mirrord_leader",
                "1 when this process leads the flow (topics, configs, ACLs, checkpoints, heartbeats).",
                &["flow"],
            )?,
            plan_conflict: int_gauge_vec(
                registry,
                "kafka_mirrord_plan_conflict",
                "1 while members of the flow's group run different plans (the properties files differ).",
                &["flow"],
            )?,
            rebalances: int_counter_vec(
                registry,
                "kafka_mirrord_rebalances_total",
                "Rebalances of the flow's group this process took part in.",
                &["flow"],
            )?,
            rebalance_seconds: gauge_vec(
                registry,
                "kafka_mirrord_last_rebalance_seconds",
                "How long the last rebalance of the flow's group took here (including draining).",
                &["flow"],
            )?,
            book: Mutex::new(HealthBook::default()),
        })
    }

    pub(super) fn membership(&self, flow: &FlowId, figures: &MembershipFigures) {
        let flow = flow.to_string();
        let set = |family: &IntGaugeVec, value: usize| {
            family
                .with_label_values(&[&flow])
                .set(i64::try_from(value).unwrap_or(i64::MAX))
        };
        set(&self.members, figures.members);
        set(&self.owned_tasks, figures.owned_tasks);
        set(&self.owned_partitions, figures.owned_partitions);
        set(&self.leader, usize::from(figures.leader));
        set(&self.plan_conflict, usize::from(figures.conflict));
        if let Some(ms) = figures.last_rebalance_ms {
            self.rebalance_seconds
                .with_label_values(&[&flow])
                .set(ms as f64 / 1000.0);
        }
        let mut book = self.book();
        let exported = book.membership.entry(flow.clone()).or_insert(0);
        if figures.rebalances > *exported {
            self.rebalances
                .with_label_values(&[&flow])
                .inc_by(figures.rebalances - *exported);
            *exported = figures.rebalances;
        }
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
        if book.membership.remove(&flow).is_some() {
            for family in [
                &self.members,
                &self.owned_tasks,
                &self.owned_partitions,
                &self.leader,
                &self.plan_conflict,
            ] {
                let _ = family.remove_label_values(&[&flow]);
            }
            let _ = self.rebalances.remove_label_values(&[&flow]);
            let _ = self.rebalance_seconds.remove_label_values(&[&flow]);
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
