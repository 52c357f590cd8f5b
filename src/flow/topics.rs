//! Which source topics a flow replicates and what their remote copies look like (docs/mm2-behaviour.md,
//! *Replication policies*, *Remote topics*, *Topic config sync*, *ACL sync*): selection, remote names, partition growth, and the configs and ACLs copied to the
//! target.
//! Pure functions; the connector applies them with the admin clients.

use std::collections::BTreeMap;

use crate::kafka::acls::{AclOperation, AclPermission, PatternType, TopicAcl};
use crate::kafka::admin::TopicConfigEntry;
use crate::plan::filter::NameFilter;
use crate::plan::FlowPlan;

/// MirrorSourceConnector's `shouldReplicateTopic`: accepted by the filter (or a heartbeats topic),
/// not internal, and not a cycle back to the target.
pub fn should_replicate(flow: &FlowPlan, topic: &str) -> bool {
    let policy = &flow.replication_policy;
    let accepted = flow.source.topics.matches(topic)
        || (policy.is_heartbeats_topic(topic) && flow.source.heartbeats_replication_enabled);
    accepted && !policy.is_internal_topic(topic) && !policy.is_cycle(topic, &flow.id.target)
}

/// Source topic → partition count, for the topics the flow replicates.
pub fn selected(flow: &FlowPlan, source_topics: &BTreeMap<String, i32>) -> BTreeMap<String, i32> {
    source_topics
        .iter()
        .filter(|(topic, _)| should_replicate(flow, topic))
        .map(|(topic, partitions)| (topic.clone(), *partitions))
        .collect()
}

/// What must change on the target so every selected topic has a remote copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetChanges {
    /// (source topic, remote topic, partitions) to create.
    pub create: Vec<(String, String, i32)>,
    /// (remote topic, new partition count) to grow.
    pub grow: Vec<(String, i32)>,
}

/// `computeAndCreateTopicPartitions` (docs/mm2-behaviour.md, *Remote topics*): remote topics never shrink nor get deleted.
pub fn target_changes(
    flow: &FlowPlan,
    selected: &BTreeMap<String, i32>,
    target_topics: &BTreeMap<String, i32>,
) -> TargetChanges {
    let mut changes = TargetChanges::default();
    for (topic, partitions) in selected {
        let remote = flow
            .replication_policy
            .format_remote_topic(&flow.id.source, topic);
        match target_topics.get(&remote) {
            None => changes.create.push((topic.clone(), remote, *partitions)),
            Some(existing) if existing < partitions => changes.grow.push((remote, *partitions)),
            Some(_) => {}
        }
    }
    changes
}

/// The configs MM2 copies from a source topic to its remote copy (`targetConfig`, non-incremental):
/// explicitly set values (topic or dynamic broker level), never read-only, sensitive, static-broker
/// or excluded ones; default-valued ones only with `use.defaults.from=source`.
pub fn target_config(
    entries: &[TopicConfigEntry],
    exclude: &NameFilter,
    copy_source_defaults: bool,
) -> Vec<(String, String)> {
    entries
        .iter()
        .filter(|entry| !entry.is_default || copy_source_defaults)
        .filter(|entry| !entry.is_read_only && !entry.is_sensitive && !entry.is_static_broker)
        .filter(|entry| !exclude.matches(&entry.name))
        .filter_map(|entry| entry.value.clone().map(|value| (entry.name.clone(), value)))
        .collect()
}

/// The config-property exclusion list as a filter (matching means "do not copy").
pub fn config_exclusions(flow: &FlowPlan) -> NameFilter {
    NameFilter::new(flow.source.config_properties_exclude.clone(), Vec::new()).unwrap_or_else(
        |_| {
            NameFilter::new(Vec::new(), Vec::new()).expect("empty filters compile")
            // validated at plan time
        },
    )
}

/// ACL sync (docs/mm2-behaviour.md, *ACL sync*): the source's literal topic ACLs for replicated topics, renamed to the remote
/// topic. ALLOW WRITE is never copied (only the replicator writes remote topics) and ALLOW ALL
/// becomes ALLOW READ; DENY bindings are copied as they are. Prefixed ACLs are not copied.
pub fn target_acls(flow: &FlowPlan, source_acls: &[TopicAcl]) -> Vec<TopicAcl> {
    let mut acls: Vec<TopicAcl> = source_acls
        .iter()
        .filter(|acl| acl.pattern == PatternType::Literal)
        .filter(|acl| {
            !(acl.permission == AclPermission::Allow && acl.operation == AclOperation::Write)
        })
        .filter(|acl| should_replicate(flow, &acl.topic))
        .map(|acl| {
            let operation =
                if acl.permission == AclPermission::Allow && acl.operation == AclOperation::All {
                    AclOperation::Read
                } else {
                    acl.operation
                };
            TopicAcl {
                topic: flow
                    .replication_policy
                    .format_remote_topic(&flow.id.source, &acl.topic),
                pattern: PatternType::Literal,
                operation,
                ..acl.clone()
            }
        })
        .collect();
    acls.sort();
    acls.dedup();
    acls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::RawProperties;
    use crate::plan::{load_properties, FlowId, PlanOptions};

    fn flow(extra: &[(&str, &str)]) -> FlowPlan {
        let mut pairs = vec![
            ("clusters", "source, target"),
            ("source.bootstrap.servers", "s:9092"),
            ("target.bootstrap.servers", "t:9092"),
            ("source->target.enabled", "true"),
        ];
        pairs.extend_from_slice(extra);
        let loaded = load_properties(
            RawProperties::from_pairs(pairs),
            &PlanOptions::default(),
            &|_| None,
        )
        .unwrap();
        loaded.plan.flows[&FlowId {
            source: "source".into(),
            target: "target".into(),
        }]
            .clone()
    }

    #[test]
    fn selection_skips_internal_excluded_and_cyclic_topics_but_keeps_heartbeats() {
        let flow = flow(&[("topics", "orders.*"), ("topics.exclude", "orders.tmp")]);
        for (topic, expected) in [
            ("orders", true),
            ("orders.eu", true),
            ("orders.tmp", false),
            ("payments", false),
            ("heartbeats", true),
            ("other.heartbeats", true),
            ("target.heartbeats", false),
            ("target.orders", false),
            ("__consumer_offsets", false),
            ("mm2-offsets.source.internal", false),
            ("orders.internal", false),
        ] {
            assert_eq!(should_replicate(&flow, topic), expected, "{topic}");
        }
    }

    #[test]
    fn remote_topics_are_created_or_grown_never_shrunk() {
        let flow = flow(&[]);
        let selected: BTreeMap<String, i32> = [
            ("a".to_string(), 4),
            ("b".to_string(), 2),
            ("c".to_string(), 1),
        ]
        .into();
        let target: BTreeMap<String, i32> =
            [("source.b".to_string(), 1), ("source.c".to_string(), 3)].into();
        let changes = target_changes(&flow, &selected, &target);
        assert_eq!(
            changes.create,
            vec![("a".to_string(), "source.a".to_string(), 4)]
        );
        assert_eq!(changes.grow, vec![("source.b".to_string(), 2)]);
    }

    #[test]
    fn copied_configs_follow_mm2_rules() {
        let entry = |name: &str, value: &str, is_default: bool| TopicConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            is_default,
            is_read_only: false,
            is_sensitive: false,
            is_static_broker: false,
        };
        let mut read_only = entry("segment.index.bytes", "1", false);
        read_only.is_read_only = true;
        let entries = vec![
            entry("retention.ms", "1000", false),
            entry("cleanup.policy", "delete", true),
            entry("min.insync.replicas", "2", false),
            read_only,
        ];
        let flow = flow(&[]);
        let exclude = config_exclusions(&flow);
        assert_eq!(
            target_config(&entries, &exclude, false),
            vec![("retention.ms".to_string(), "1000".to_string())]
        );
        assert_eq!(
            target_config(&entries, &exclude, true),
            vec![
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "delete".to_string())
            ]
        );
    }

    fn acl(topic: &str, operation: AclOperation, permission: AclPermission) -> TopicAcl {
        TopicAcl {
            topic: topic.into(),
            pattern: PatternType::Literal,
            principal: "User:kafka".into(),
            host: "".into(),
            operation,
            permission,
        }
    }

    /// MM2's `MirrorSourceConnectorTest.testAclFiltering` and `testAclTransformation`.
    #[test]
    fn acl_sync_drops_allow_write_and_turns_allow_all_into_read() {
        let flow = flow(&[]);
        use AclOperation::*;
        use AclPermission::*;
        assert_eq!(
            target_acls(&flow, &[acl("test_topic", Write, Allow)]),
            vec![],
            "ALLOW WRITE is not replicated"
        );
        assert_eq!(
            target_acls(&flow, &[acl("test_topic", All, Allow)]),
            vec![acl("source.test_topic", Read, Allow)]
        );
        assert_eq!(
            target_acls(&flow, &[acl("test_topic", All, Deny)]),
            vec![acl("source.test_topic", All, Deny)]
        );
        assert_eq!(
            target_acls(&flow, &[acl("test_topic", Write, Deny)]),
            vec![acl("source.test_topic", Write, Deny)],
            "DENY WRITE is kept"
        );
    }

    #[test]
    fn acl_sync_ignores_prefixed_acls_and_topics_not_replicated() {
        let flow = flow(&[("topics", "orders.*"), ("topics.exclude", "orders.tmp")]);
        let prefixed = TopicAcl {
            pattern: PatternType::Prefixed,
            ..acl("orders", AclOperation::Read, AclPermission::Allow)
        };
        let source = [
            prefixed,
            acl("orders.tmp", AclOperation::Read, AclPermission::Allow),
            acl("payments", AclOperation::Read, AclPermission::Allow),
            acl("target.orders", AclOperation::Read, AclPermission::Allow),
            acl("orders.eu", AclOperation::Describe, AclPermission::Allow),
        ];
        assert_eq!(
            target_acls(&flow, &source),
            vec![acl(
                "source.orders.eu",
                AclOperation::Describe,
                AclPermission::Allow
            )]
        );
    }
}
