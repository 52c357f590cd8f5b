//! What a reload changes: [`PlanDiff`] compares two plans flow by flow (by [`FlowId`]), and
//! [`restart_only_settings`] lists the process-wide settings that keep their old value until a
//! restart.
//!
//! A flow is "changed" when any part of its `FlowPlan` differs — filters, intervals, internal
//! topics, and every client setting including resolved `${file:...}` secrets — so a rotated
//! password restarts exactly the flows that use it. Unchanged flows are not touched at all.

use std::collections::BTreeSet;

use crate::config::keys::mirrord;
use crate::config::MirrordSettings;
use crate::plan::{FlowId, Plan};

/// Flow ids sorted into what a reload does with them. Every id of either plan is in exactly one
/// list; each list is sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanDiff {
    /// Only in the new plan: start.
    pub added: Vec<FlowId>,
    /// Only in the old plan: stop cleanly (progress stored).
    pub removed: Vec<FlowId>,
    /// In both, with different settings: stop, then start from stored progress.
    pub changed: Vec<FlowId>,
    /// In both and equal: leave running.
    pub unchanged: Vec<FlowId>,
}

impl PlanDiff {
    pub fn between(old: &Plan, new: &Plan) -> PlanDiff {
        let mut diff = PlanDiff::default();
        // BTreeMap iteration is sorted, so every list comes out sorted.
        for (id, old_flow) in &old.flows {
            match new.flows.get(id) {
                None => diff.removed.push(id.clone()),
                Some(new_flow) if new_flow != old_flow => diff.changed.push(id.clone()),
                Some(_) => diff.unchanged.push(id.clone()),
            }
        }
        diff.added = new
            .flows
            .keys()
            .filter(|id| !old.flows.contains_key(*id))
            .cloned()
            .collect();
        diff
    }

    /// Nothing to start, stop or restart.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Moves unchanged flows in `ids` to `changed`: for flows whose plan is equal but whose
    /// files on disk changed (a TLS certificate or keytab named by path), which need new clients.
    /// Ids that are not unchanged are left where they are.
    pub fn force_restart<'a>(&mut self, ids: impl IntoIterator<Item = &'a FlowId>) {
        let forced: BTreeSet<&FlowId> = ids.into_iter().collect();
        let (moved, kept): (Vec<FlowId>, Vec<FlowId>) = std::mem::take(&mut self.unchanged)
            .into_iter()
            .partition(|id| forced.contains(id));
        self.unchanged = kept;
        self.changed.extend(moved);
        self.changed.sort();
    }

    /// The diff that undoes this one (new → old), to restore the old flows when applying fails.
    pub fn flip(&self) -> PlanDiff {
        PlanDiff {
            added: self.removed.clone(),
            removed: self.added.clone(),
            changed: self.changed.clone(),
            unchanged: self.unchanged.clone(),
        }
    }
}

/// The `mirrord.*` keys whose new value cannot take effect without a restart, in key order.
///
/// - `mirrord.http.listen`: the listening socket is bound once at start;
/// - `mirrord.log.format`: the log output (journald, text, JSON) is chosen once at start.
///
/// `mirrord.log.level` is not listed: it is applied on reload (`logging::reload_level`).
/// `mirrord.shutdown.timeout.ms` is read when a shutdown begins, and
/// `mirrord.mm2.compatibility` shows up as changed flows in [`PlanDiff`].
pub fn restart_only_settings(old: &MirrordSettings, new: &MirrordSettings) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.http_listen != new.http_listen {
        keys.push(mirrord::HTTP_LISTEN);
    }
    if old.log_format != new.log_format {
        keys.push(mirrord::LOG_FORMAT);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::RawProperties;
    use crate::config::LogFormat;
    use crate::plan::{load_properties, PlanOptions};

    const BASE: &[(&str, &str)] = &[
        ("clusters", "A, B, C"),
        ("A.bootstrap.servers", "a:9092"),
        ("B.bootstrap.servers", "b:9092"),
        ("C.bootstrap.servers", "c:9092"),
        ("A->B.enabled", "true"),
        ("C->B.enabled", "true"),
        ("emit.heartbeats.enabled", "false"),
    ];

    fn plan(changes: &[(&str, &str)]) -> Plan {
        let mut pairs: Vec<(&str, &str)> = BASE.to_vec();
        for (key, value) in changes {
            pairs.retain(|(k, _)| k != key);
            pairs.push((key, value));
        }
        load_properties(
            RawProperties::from_pairs(pairs),
            &PlanOptions::default(),
            &|_| None,
        )
        .unwrap_or_else(|errors| panic!("test plan invalid: {errors}"))
        .plan
    }

    fn id(s: &str) -> FlowId {
        let (source, target) = s.split_once("->").unwrap();
        FlowId {
            source: source.into(),
            target: target.into(),
        }
    }

    fn ids(list: &[&str]) -> Vec<FlowId> {
        list.iter().map(|s| id(s)).collect()
    }

    #[test]
    fn same_plan_changes_nothing() {
        let diff = PlanDiff::between(&plan(&[]), &plan(&[]));
        assert!(diff.is_empty());
        assert_eq!(diff.unchanged, ids(&["A->B", "C->B"]));
    }

    #[test]
    fn added_and_removed_flows() {
        let old = plan(&[]);
        let new = plan(&[("C->B.enabled", "false"), ("B->A.enabled", "true")]);
        let diff = PlanDiff::between(&old, &new);
        assert_eq!(diff.added, ids(&["B->A"]));
        assert_eq!(diff.removed, ids(&["C->B"]));
        assert!(diff.changed.is_empty());
        assert_eq!(diff.unchanged, ids(&["A->B"]));
        let back = diff.flip();
        assert_eq!(back.added, ids(&["C->B"]));
        assert_eq!(back.removed, ids(&["B->A"]));
        assert_eq!(back, PlanDiff::between(&new, &old));
    }

    #[test]
    fn one_flows_topics_change_leaves_the_other_untouched() {
        let diff = PlanDiff::between(&plan(&[]), &plan(&[("A->B.topics", "orders.*")]));
        assert_eq!(diff.changed, ids(&["A->B"]));
        assert_eq!(diff.unchanged, ids(&["C->B"]));
        assert!(diff.added.is_empty() && diff.removed.is_empty());
    }

    #[test]
    fn a_top_level_setting_changes_every_flow_it_reaches() {
        let diff = PlanDiff::between(&plan(&[]), &plan(&[("topics", "orders.*")]));
        assert_eq!(diff.changed, ids(&["A->B", "C->B"]));
        assert!(diff.unchanged.is_empty());
    }

    #[test]
    fn a_changed_password_restarts_the_flows_using_that_cluster() {
        let secured = [
            ("C.security.protocol", "SASL_SSL"),
            ("C.sasl.mechanism", "SCRAM-SHA-512"),
            (
                "C.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"old\";",
            ),
        ];
        let mut rotated = secured;
        rotated[2].1 = "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"new\";";
        let diff = PlanDiff::between(&plan(&secured), &plan(&rotated));
        // C is only the source of C->B; A->B never talks to C.
        assert_eq!(diff.changed, ids(&["C->B"]));
        assert_eq!(diff.unchanged, ids(&["A->B"]));
    }

    #[test]
    fn force_restart_moves_only_unchanged_flows() {
        let mut diff = PlanDiff::between(&plan(&[]), &plan(&[("A->B.topics", "x")]));
        let c_b = id("C->B");
        let a_b = id("A->B");
        let unknown = id("X->Y");
        diff.force_restart([&c_b, &a_b, &unknown]);
        assert_eq!(diff.changed, ids(&["A->B", "C->B"]));
        assert!(diff.unchanged.is_empty());
    }

    #[test]
    fn restart_only_settings_lists_listen_address_and_log_format() {
        let old = MirrordSettings::default();
        let mut new = old.clone();
        new.log_level = Some("debug".into());
        new.shutdown_timeout_ms = 5_000;
        assert!(restart_only_settings(&old, &new).is_empty());
        new.http_listen = None;
        new.log_format = LogFormat::Json;
        assert_eq!(
            restart_only_settings(&old, &new),
            vec!["mirrord.http.listen", "mirrord.log.format"]
        );
    }
}
