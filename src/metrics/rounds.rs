//! How long the checkpoint task's rounds over every consumer group take: the emit round (committed
//! offsets read on the source, translated, checkpoints acknowledged by the target) and the sync
//! round (checkpoints applied to the target's groups).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `kafka_mirrord_group_round_seconds` | gauge | `flow,round` |
//! | `kafka_mirrord_group_round_groups` | gauge | `flow,round` |
//!
//! Only rounds that covered every group are recorded: most rounds ask just the groups that
//! committed since the last one, and their time says nothing about how the work grows.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{GaugeVec, IntGaugeVec, Registry};

use super::{gauge_vec, int_gauge_vec};
use crate::plan::FlowId;

/// Which round of the checkpoint task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRound {
    /// Checkpoints emitted for every group.
    Emit,
    /// Every group's checkpoints applied to the target.
    Sync,
}

impl GroupRound {
    fn as_str(self) -> &'static str {
        match self {
            GroupRound::Emit => "emit",
            GroupRound::Sync => "sync",
        }
    }
}

pub(super) struct RoundFamilies {
    seconds: GaugeVec,
    groups: IntGaugeVec,
    /// Flows with round series, to remove them with the flow.
    flows: Mutex<BTreeSet<String>>,
}

impl RoundFamilies {
    pub(super) fn register(registry: &Registry) -> prometheus::Result<RoundFamilies> {
        Ok(RoundFamilies {
            seconds: gauge_vec(
                registry,
                "kafka_mirrord_group_round_seconds",
                "How long the last checkpoint round over every consumer group took (round=emit: \
                 offsets read, translated and checkpoints acknowledged; round=sync: applied to \
                 the target's groups).",
                &["flow", "round"],
            )?,
            groups: int_gauge_vec(
                registry,
                "kafka_mirrord_group_round_groups",
                "Consumer groups in that round.",
                &["flow", "round"],
            )?,
            flows: Mutex::new(BTreeSet::new()),
        })
    }

    pub(super) fn record(&self, flow: &FlowId, round: GroupRound, took: Duration, groups: usize) {
        let flow = flow.to_string();
        let labels = [flow.as_str(), round.as_str()];
        self.seconds
            .with_label_values(&labels)
            .set(took.as_secs_f64());
        self.groups
            .with_label_values(&labels)
            .set(i64::try_from(groups).unwrap_or(i64::MAX));
        self.flows().insert(flow);
    }

    pub(super) fn remove_flow(&self, flow: &FlowId) {
        let flow = flow.to_string();
        if self.flows().remove(&flow) {
            for round in [GroupRound::Emit, GroupRound::Sync] {
                let labels = [flow.as_str(), round.as_str()];
                let _ = self.seconds.remove_label_values(&labels);
                let _ = self.groups.remove_label_values(&labels);
            }
        }
    }

    fn flows(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.flows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
