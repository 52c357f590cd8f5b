//! The Kafka Connect worker and client series that Strimzi's MM2 dashboard reads besides MM2's own
//! (its template variables and its connector, task, worker and byte panels), named as Strimzi's
//! jmx_exporter rules name them, each computed from what this process really runs and copies
//! (docs/operations.md, *Strimzi's MM2 dashboard*).
//!
//! | metric | type | labels | what it counts here |
//! |---|---|---|---|
//! | `kafka_connect_worker_connector_count` | gauge | `source,target` | connectors of the flow this process runs (the flow's leader runs them) |
//! | `kafka_connect_worker_task_count` | gauge | `source,target` | tasks of the flow this process runs |
//! | `kafka_connect_coordinator_assigned_connectors` | gauge | `clientid` | the same, per flow, as Connect's group coordinator reports them |
//! | `kafka_connect_coordinator_assigned_tasks` | gauge | `clientid` | |
//! | `kafka_connect_worker_rebalance_rebalancing` | gauge | `source,target` | 1 while the flow's group rebalances |
//! | `kafka_consumer_incoming_byte_total` | counter | `clientid` | key + value bytes the flow's replication consumers read and the target acknowledged |
//! | `kafka_producer_outgoing_byte_total` | counter | `clientid` | the same bytes, as the flow's producer sent them |
//! | `kafka_connect_source_task_source_record_active_count` | gauge | `connector,task` | records of the source task sent and not yet acknowledged by the target |
//!
//! Client ids follow MM2's and Strimzi's names and are quoted with `"` inside the value, as Kafka's
//! JMX reporter quotes ids containing `>` or `|` and jmx_exporter keeps the quotes; the dashboard's
//! regular expressions expect them.

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::{int_counter_vec, int_gauge_vec};
use crate::plan::FlowId;

/// What the Connect worker series of one flow show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerFigures {
    /// Connectors (MirrorSource, MirrorCheckpoint, MirrorHeartbeat) running here.
    pub connectors: usize,
    /// Tasks running here: source task slots, the checkpoint and the heartbeat task.
    pub tasks: usize,
    /// The flow's group is rebalancing (this member is joining).
    pub rebalancing: bool,
}

/// A client id as jmx_exporter shows it: quoted, because it contains `>` or `|`.
pub(super) fn jmx_quoted(client_id: &str) -> String {
    format!("\"{client_id}\"")
}

/// The flow's source consumer as MM2 names it (`<source>-><target>|MirrorSourceConnector-0|replication-consumer`), quoted.
pub(super) fn replication_consumer_id(flow: &FlowId) -> String {
    jmx_quoted(&format!(
        "{flow}|MirrorSourceConnector-0|replication-consumer"
    ))
}

/// The flow's source producer as Strimzi's MM2 names it (`connector-producer-<source>-><target>.MirrorSourceConnector-0`), quoted.
fn source_producer_id(flow: &FlowId) -> String {
    jmx_quoted(&format!(
        "connector-producer-{flow}.MirrorSourceConnector-0"
    ))
}

/// The flow's source connector as Strimzi's MM2 names it (`<source>-><target>.MirrorSourceConnector`), quoted.
fn source_connector_name(flow: &FlowId) -> String {
    jmx_quoted(&format!("{flow}.MirrorSourceConnector"))
}

/// The flow's Connect worker (one per flow in dedicated mode), quoted.
fn worker_id(flow: &FlowId) -> String {
    jmx_quoted(&format!("connect-{flow}"))
}

pub(super) struct ConnectFamilies {
    connector_count: IntGaugeVec,
    task_count: IntGaugeVec,
    assigned_connectors: IntGaugeVec,
    assigned_tasks: IntGaugeVec,
    rebalancing: IntGaugeVec,
    incoming_bytes: IntCounterVec,
    outgoing_bytes: IntCounterVec,
    active_records: IntGaugeVec,
    book: Mutex<ConnectBook>,
}

/// Label sets in use, to remove a flow's series with the flow.
#[derive(Default)]
struct ConnectBook {
    workers: BTreeSet<FlowId>,
    byte_counters: BTreeSet<FlowId>,
    source_tasks: BTreeSet<(FlowId, usize)>,
}

impl ConnectFamilies {
    pub(super) fn register(registry: &Registry) -> prometheus::Result<ConnectFamilies> {
        let flow_labels = &["source", "target"];
        Ok(ConnectFamilies {
            connector_count: int_gauge_vec(
                registry,
                "kafka_connect_worker_connector_count",
                "Connectors of the flow this process runs (Connect worker metric, for Strimzi's MM2 dashboard).",
                flow_labels,
            )?,
            task_count: int_gauge_vec(
                registry,
                "kafka_connect_worker_task_count",
                "Tasks of the flow this process runs (Connect worker metric, for Strimzi's MM2 dashboard).",
                flow_labels,
            )?,
            assigned_connectors: int_gauge_vec(
                registry,
                "kafka_connect_coordinator_assigned_connectors",
                "Connectors of the flow assigned to this process.",
                &["clientid"],
            )?,
            assigned_tasks: int_gauge_vec(
                registry,
                "kafka_connect_coordinator_assigned_tasks",
                "Tasks of the flow assigned to this process.",
                &["clientid"],
            )?,
            rebalancing: int_gauge_vec(
                registry,
                "kafka_connect_worker_rebalance_rebalancing",
                "1 while the flow's group rebalances.",
                flow_labels,
            )?,
            incoming_bytes: int_counter_vec(
                registry,
                "kafka_consumer_incoming_byte_total",
                "Key + value bytes of the records the flow's replication consumers read and the target acknowledged.",
                &["clientid"],
            )?,
            outgoing_bytes: int_counter_vec(
                registry,
                "kafka_producer_outgoing_byte_total",
                "Key + value bytes of the records the flow's producer sent and the target acknowledged.",
                &["clientid"],
            )?,
            active_records: int_gauge_vec(
                registry,
                "kafka_connect_source_task_source_record_active_count",
                "Records of the source task sent to the target and not yet acknowledged.",
                &["connector", "task"],
            )?,
            book: Mutex::new(ConnectBook::default()),
        })
    }

    fn book(&self) -> std::sync::MutexGuard<'_, ConnectBook> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn worker(&self, flow: &FlowId, figures: WorkerFigures) {
        let flow_values = [flow.source.as_str(), flow.target.as_str()];
        let worker = worker_id(flow);
        let count = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.connector_count
            .with_label_values(&flow_values)
            .set(count(figures.connectors));
        self.task_count
            .with_label_values(&flow_values)
            .set(count(figures.tasks));
        self.assigned_connectors
            .with_label_values(&[&worker])
            .set(count(figures.connectors));
        self.assigned_tasks
            .with_label_values(&[&worker])
            .set(count(figures.tasks));
        self.rebalancing
            .with_label_values(&flow_values)
            .set(i64::from(figures.rebalancing));
        self.book().workers.insert(flow.clone());
    }

    /// The flow's (incoming, outgoing) byte counters, created at 0.
    pub(super) fn byte_counters(&self, flow: &FlowId) -> (IntCounter, IntCounter) {
        self.book().byte_counters.insert(flow.clone());
        (
            self.incoming_bytes
                .with_label_values(&[&replication_consumer_id(flow)]),
            self.outgoing_bytes
                .with_label_values(&[&source_producer_id(flow)]),
        )
    }

    pub(super) fn remove_flow(&self, flow: &FlowId) {
        let mut book = self.book();
        if book.workers.remove(flow) {
            let flow_values = [flow.source.as_str(), flow.target.as_str()];
            for family in [&self.connector_count, &self.task_count, &self.rebalancing] {
                let _ = family.remove_label_values(&flow_values);
            }
            let worker = worker_id(flow);
            for family in [&self.assigned_connectors, &self.assigned_tasks] {
                let _ = family.remove_label_values(&[&worker]);
            }
        }
        if book.byte_counters.remove(flow) {
            let _ = self
                .incoming_bytes
                .remove_label_values(&[&replication_consumer_id(flow)]);
            let _ = self
                .outgoing_bytes
                .remove_label_values(&[&source_producer_id(flow)]);
        }
        let connector = source_connector_name(flow);
        book.source_tasks.retain(|(f, slot)| {
            if f == flow {
                let _ = self
                    .active_records
                    .remove_label_values(&[&connector, &slot.to_string()]);
                false
            } else {
                true
            }
        });
    }

    /// The gauge of a source task's records awaiting the target's acknowledgement.
    pub(super) fn source_task_active(&self, flow: &FlowId, slot: usize) -> IntGauge {
        self.book().source_tasks.insert((flow.clone(), slot));
        self.active_records
            .with_label_values(&[&source_connector_name(flow), &slot.to_string()])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;
    use super::*;

    #[test]
    fn worker_series_carry_quoted_ids_and_leave_with_the_flow() {
        let metrics = Metrics::register(&Registry::new()).unwrap();
        let flow = FlowId {
            source: "A".into(),
            target: "B".into(),
        };
        metrics.set_worker(
            &flow,
            WorkerFigures {
                connectors: 3,
                tasks: 4,
                rebalancing: false,
            },
        );
        metrics.source_task_active(&flow, 1).set(7);
        let text = metrics.encode();
        for line in [
            r#"kafka_connect_worker_connector_count{source="A",target="B"} 3"#,
            r#"kafka_connect_worker_task_count{source="A",target="B"} 4"#,
            r#"kafka_connect_coordinator_assigned_tasks{clientid="\"connect-A->B\""} 4"#,
            r#"kafka_connect_worker_rebalance_rebalancing{source="A",target="B"} 0"#,
            r#"kafka_connect_source_task_source_record_active_count{connector="\"A->B.MirrorSourceConnector\"",task="1"} 7"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        metrics.remove_flow(&flow);
        let text = metrics.encode();
        assert!(!text.contains("A->B"), "{text}");
    }
}
