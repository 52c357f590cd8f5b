//! Replication policies against MM2's own examples (docs/mm2-behaviour.md, *Replication policies*; MM2's
//! `ReplicationPolicyTest` and `MirrorClientTest`).

use kafka_mirrord::config::Mm2Compatibility;
use kafka_mirrord::plan::policy::ReplicationPolicy;

fn default_policy() -> ReplicationPolicy {
    ReplicationPolicy::default_policy(".")
}

#[test]
fn default_policy_topic_source_upstream_and_original() {
    let policy = default_policy();
    let rows: &[(&str, Option<&str>, Option<&str>, &str)] = &[
        ("topic1", None, None, "topic1"),
        ("us-west.topic1", Some("us-west"), Some("topic1"), "topic1"),
        (
            "us-east.us-west.topic1",
            Some("us-east"),
            Some("us-west.topic1"),
            "topic1",
        ),
        (".hidden", Some(""), Some("hidden"), "hidden"),
        ("a..b", Some("a"), Some(".b"), "b"),
        ("topic.", None, None, "topic."),
        ("a.b.", Some("a"), Some("b."), "b."),
        (".", None, None, "."),
        ("heartbeats", None, None, "heartbeats"),
        (
            "us-west.heartbeats",
            Some("us-west"),
            Some("heartbeats"),
            "heartbeats",
        ),
        (
            "mm2-offsets.A.internal",
            Some("mm2-offsets"),
            Some("A.internal"),
            "internal",
        ),
    ];
    for (topic, source, upstream, original) in rows {
        assert_eq!(
            policy.topic_source(topic).as_deref(),
            *source,
            "topicSource({topic})"
        );
        assert_eq!(
            policy.upstream_topic(topic).as_deref(),
            *upstream,
            "upstreamTopic({topic})"
        );
        assert_eq!(
            policy.original_topic(topic),
            *original,
            "originalTopic({topic})"
        );
    }
}

#[test]
fn internal_topic_classification_by_release() {
    let rows: &[(&str, bool, bool)] = &[
        ("__consumer_offsets", true, true),
        (".hiddentopic", true, true),
        ("mm2-offsets.CLUSTER.internal", true, true),
        ("mm2-offsets-CLUSTER-internal", true, false),
        ("mm2-offsets_CLUSTER_internal", false, false),
        ("orders.internal", true, false),
        ("A.checkpoints.internal", true, true),
    ];
    let v3 = default_policy().with_compatibility(Mm2Compatibility::V3_9);
    let v4 = default_policy().with_compatibility(Mm2Compatibility::V4_0);
    for (topic, internal_3_9, internal_4_0) in rows {
        assert_eq!(
            v3.is_internal_topic(topic),
            *internal_3_9,
            "3.9 isInternalTopic({topic})"
        );
        assert_eq!(
            v4.is_internal_topic(topic),
            *internal_4_0,
            "4.0 isInternalTopic({topic})"
        );
    }
}

#[test]
fn internal_topic_names_with_custom_separator() {
    let mut enabled = ReplicationPolicy::default_policy("__");
    assert_eq!(
        enabled.offset_syncs_topic("CLUSTER"),
        "mm2-offset-syncs__CLUSTER__internal"
    );
    assert_eq!(
        enabled.checkpoints_topic("CLUSTER"),
        "CLUSTER__checkpoints__internal"
    );
    assert_eq!(enabled.heartbeats_topic(), "heartbeats");
    enabled.internal_separator = ".".to_string();
    assert_eq!(
        enabled.offset_syncs_topic("CLUSTER"),
        "mm2-offset-syncs.CLUSTER.internal"
    );
    assert_eq!(
        enabled.checkpoints_topic("CLUSTER"),
        "CLUSTER.checkpoints.internal"
    );
}

/// MirrorSourceConnector's selection for flow source→target, filter accepting everything:
/// replicated iff not internal and not a cycle.
fn replicated(policy: &ReplicationPolicy, topic: &str) -> bool {
    !policy.is_internal_topic(topic) && !policy.is_cycle(topic, "target")
}

#[test]
fn cycle_detection_default_and_identity() {
    let default = default_policy();
    let identity = ReplicationPolicy::identity("source");
    for topic in [
        "target.topic1",
        "target.source.topic1",
        "source.target.topic1",
        "target.source.target.topic1",
        "source.target.source.topic1",
    ] {
        assert!(
            !replicated(&default, topic),
            "default policy must not replicate {topic}"
        );
        assert!(
            replicated(&identity, topic),
            "identity policy replicates {topic}"
        );
    }
    assert!(replicated(&default, "topic1") && replicated(&identity, "topic1"));
    assert!(replicated(&default, "source.topic1"));
    assert!(replicated(&identity, "othersource.topic1"));
    for topic in [
        "target.heartbeats",
        "target.source.heartbeats",
        "source.target.heartbeats",
        "target.source.target.heartbeats",
        "source.target.source.heartbeats",
    ] {
        assert!(
            !replicated(&identity, topic),
            "identity policy: heartbeat cycle {topic}"
        );
    }
    assert!(replicated(&identity, "heartbeats") && replicated(&identity, "othersource.heartbeats"));
}

#[test]
fn heartbeat_topics_depend_on_the_separator() {
    let dot = default_policy();
    assert!(dot.is_heartbeats_topic("heartbeats") && dot.is_heartbeats_topic("us-west.heartbeats"));
    let underscore = ReplicationPolicy::default_policy("_");
    assert!(underscore.is_heartbeats_topic("heartbeats"));
    assert!(!underscore.is_heartbeats_topic("us-west.heartbeats"));
}

#[test]
fn downstream_topic_renaming_for_checkpoints() {
    // MirrorCheckpointTaskTest.testDownstreamTopicRenaming, flow source1→target2.
    let policy = default_policy();
    let rename = |topic: &str| {
        if policy.topic_source(topic).as_deref() == Some("target2") {
            policy.original_topic(topic)
        } else {
            policy.format_remote_topic("source1", topic)
        }
    };
    assert_eq!(rename("topic3"), "source1.topic3");
    assert_eq!(rename("target2.topic3"), "topic3");
    assert_eq!(rename("source6.topic7"), "source1.source6.topic7");
}

#[test]
fn identity_policy_names() {
    let identity = ReplicationPolicy::identity("primary");
    assert_eq!(identity.format_remote_topic("primary", "topic1"), "topic1");
    assert_eq!(identity.topic_source("topic1").as_deref(), Some("primary"));
    assert_eq!(
        identity.format_remote_topic("backup", "heartbeats"),
        "backup.heartbeats"
    );
    assert_eq!(
        identity.topic_source("backup.heartbeats").as_deref(),
        Some("backup")
    );
}

// === MM2's MirrorClientTest ===

#[test]
fn mirror_client_heartbeat_and_checkpoint_topics() {
    let policy = default_policy();
    for topic in [
        "heartbeats",
        "source1.heartbeats",
        "source2.source1.heartbeats",
    ] {
        assert!(policy.is_heartbeats_topic(topic), "{topic}");
    }
    for topic in [
        "heartbeats!",
        "!heartbeats",
        "source1heartbeats",
        "source1-heartbeats",
    ] {
        assert!(!policy.is_heartbeats_topic(topic), "{topic}");
    }
    assert!(policy.is_checkpoints_topic("source1.checkpoints.internal"));
    for topic in [
        "checkpoints.internal",
        "checkpoints-internal",
        "checkpoints.internal!",
        "!checkpoints.internal",
        "source1checkpointsinternal",
    ] {
        assert!(!policy.is_checkpoints_topic(topic), "{topic}");
    }
}

#[test]
fn mirror_client_count_hops() {
    let policy = default_policy();
    let rows: &[(&str, &str, i32)] = &[
        ("topic", "source", -1),
        ("source", "source", -1),
        ("sourcetopic", "source", -1),
        ("source1.topic", "source2", -1),
        ("source1.topic", "source1", 1),
        ("source2.source1.topic", "source2", 1),
        ("source2.source1.topic", "source1", 2),
        ("source3.source2.source1.topic", "source1", 3),
        ("source3.source2.source1.topic", "source4", -1),
    ];
    for (topic, alias, hops) in rows {
        assert_eq!(
            policy.count_hops_for_topic(topic, alias),
            *hops,
            "countHopsForTopic({topic}, {alias})"
        );
    }
}

#[test]
fn mirror_client_replication_hops_and_remote_topics() {
    let policy = default_policy();
    let topics = [
        "topic1",
        "topic2",
        "heartbeats",
        "source1.heartbeats",
        "source1.source2.heartbeats",
        "source3.heartbeats",
    ];
    let hops = |alias: &str| {
        topics
            .iter()
            .filter(|t| policy.is_heartbeats_topic(t))
            .map(|t| policy.count_hops_for_topic(t, alias))
            .filter(|h| *h != -1)
            .min()
            .unwrap_or(-1)
    };
    assert_eq!(
        (
            hops("source1"),
            hops("source2"),
            hops("source3"),
            hops("source4")
        ),
        (1, 2, 1, -1)
    );

    let all = [
        "topic1",
        "topic2",
        "topic3",
        "source1.topic4",
        "source1.source2.topic5",
        "source3.source4.source5.topic6",
    ];
    let remote: Vec<&str> = all
        .iter()
        .copied()
        .filter(|t| policy.is_remote_topic(t))
        .collect();
    assert_eq!(
        remote,
        vec![
            "source1.topic4",
            "source1.source2.topic5",
            "source3.source4.source5.topic6"
        ]
    );
    let underscore = ReplicationPolicy::default_policy("__");
    let all = ["topic1", "source1__topic4", "source1__source2__topic5"];
    let remote: Vec<&str> = all
        .iter()
        .copied()
        .filter(|t| underscore.is_remote_topic(t))
        .collect();
    assert_eq!(remote, vec!["source1__topic4", "source1__source2__topic5"]);
    let identity = ReplicationPolicy::identity("primary");
    assert!(identity.is_remote_topic("topic1") && identity.is_remote_topic("backup.heartbeats"));
    assert!(!identity.is_remote_topic("heartbeats"));
}

#[test]
fn mirror_client_upstream_clusters() {
    let policy = default_policy();
    let topics = [
        "topic1",
        "heartbeats",
        "source1.heartbeats",
        "source1.source2.heartbeats",
        "source3.source4.source5.heartbeats",
    ];
    let mut upstream = std::collections::BTreeSet::new();
    for topic in topics.iter().filter(|t| policy.is_heartbeats_topic(t)) {
        let mut current = topic.to_string();
        while let Some(source) = policy.topic_source(&current) {
            upstream.insert(source);
            current = policy.upstream_topic(&current).unwrap();
        }
    }
    let expected: std::collections::BTreeSet<String> =
        (1..=5).map(|i| format!("source{i}")).collect();
    assert_eq!(upstream, expected);
}
