//! MM2's own configuration test cases (MirrorMakerConfigTest, MirrorConnectorConfigTest, ...; the
//! rules are in docs/mm2-behaviour.md) replayed against
//! kafka-mirrord's properties → config → plan pipeline. Where MM2 asserts on its internal connector
//! maps, we assert on the equivalent outcome in the plan (client settings, filters, topics).

use std::collections::BTreeMap;

use kafka_mirrord::config::diagnostics::{ConfigErrors, Severity};
use kafka_mirrord::config::properties::RawProperties;
use kafka_mirrord::plan::clients::ClientRole;
use kafka_mirrord::plan::{
    load_properties, FlowId, FlowMode, FlowPlan, Loaded, OffsetSyncsLocation, PlanOptions,
};

fn load_with(pairs: &[(&str, &str)], targets: &[&str]) -> Result<Loaded, ConfigErrors> {
    let props = RawProperties::from_pairs(pairs.iter().copied());
    let options = PlanOptions {
        target_clusters: targets.iter().map(|s| s.to_string()).collect(),
    };
    load_properties(props, &options, &|name| match name {
        "MM2_SECRET" => Some("secret2".to_string()),
        _ => None,
    })
}

fn load(pairs: &[(&str, &str)]) -> Loaded {
    match load_with(pairs, &[]) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("expected a valid config, got: {:#?}", errors.diagnostics),
    }
}

fn errors(pairs: &[(&str, &str)]) -> Vec<String> {
    match load_with(pairs, &[]) {
        Ok(_) => panic!("expected configuration errors"),
        Err(errors) => errors.errors().map(|d| d.to_string()).collect(),
    }
}

fn flow<'a>(loaded: &'a Loaded, source: &str, target: &str) -> &'a FlowPlan {
    let id = FlowId {
        source: source.into(),
        target: target.into(),
    };
    loaded
        .plan
        .flows
        .get(&id)
        .unwrap_or_else(|| panic!("flow {id} missing"))
}

fn client(flow: &FlowPlan, role: ClientRole) -> &BTreeMap<String, String> {
    &flow
        .clients
        .get(&role)
        .unwrap_or_else(|| panic!("{} missing in {}", role.name(), flow.id))
        .settings
}

fn flow_ids(loaded: &Loaded) -> Vec<String> {
    loaded.plan.flows.keys().map(|id| id.to_string()).collect()
}

/// Bootstrap servers for every alias so that only the rule under test matters.
fn with_servers<'a>(aliases: &[&'a str], rest: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = aliases
        .iter()
        .map(|a| (format!("{a}.bootstrap.servers"), format!("{a}:9092")))
        .collect();
    pairs.push(("clusters".into(), aliases.join(", ")));
    pairs.extend(rest.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    pairs
}

fn borrow(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

// === MM2's MirrorMakerConfigTest ===

#[test]
fn cluster_config_properties() {
    let loaded = load(&[
        ("clusters", "a, b"),
        ("a.bootstrap.servers", "servers-one"),
        ("b.bootstrap.servers", "servers-two"),
        ("security.protocol", "SSL"),
        ("replication.factor", "4"),
        ("a->b.enabled", "true"),
    ]);
    let a_to_b = flow(&loaded, "a", "b");
    assert_eq!(
        client(a_to_b, ClientRole::SourceConsumer)["bootstrap.servers"],
        "servers-one"
    );
    assert_eq!(
        client(a_to_b, ClientRole::TargetProducer)["bootstrap.servers"],
        "servers-two"
    );
    for role in [
        ClientRole::SourceConsumer,
        ClientRole::TargetProducer,
        ClientRole::SourceAdmin,
        ClientRole::TargetAdmin,
    ] {
        assert_eq!(
            client(a_to_b, role)["security.protocol"],
            "ssl",
            "{}",
            role.name()
        );
    }
    assert_eq!(a_to_b.source.replication_factor, 4);
}

#[test]
fn replication_config_properties() {
    let pairs = with_servers(
        &["a", "b"],
        &[("a->b.tasks.max", "123"), ("a->b.enabled", "true")],
    );
    assert_eq!(flow(&load(&borrow(&pairs)), "a", "b").source.tasks_max, 123);
}

#[test]
fn client_config_properties() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secret.properties");
    std::fs::write(&secrets, "password=secret2\n").unwrap();
    let placeholder = format!("${{file:{}:password}}", secrets.display());
    let loaded = load(&[
        ("clusters", "a, b"),
        ("config.providers", "file"),
        (
            "config.providers.file.class",
            "org.apache.kafka.common.config.provider.FileConfigProvider",
        ),
        ("replication.policy.separator", "__"),
        ("ssl.key.password", &placeholder),
        ("security.protocol", "SSL"),
        ("a.security.protocol", "PLAINTEXT"),
        ("a.producer.security.protocol", "SSL"),
        ("a.bootstrap.servers", "127.0.0.1:9092, 127.0.0.2:9092"),
        ("b.bootstrap.servers", "127.0.0.3:9092, 127.0.0.4:9092"),
        ("metric.reporters", "FakeMetricsReporter"),
        ("a.metric.reporters", "FakeMetricsReporter"),
        ("b->a.metric.reporters", "FakeMetricsReporter"),
        ("a.xxx", "yyy"),
        ("xxx", "zzz"),
        ("a->b.enabled", "true"),
    ]);
    let a_to_b = flow(&loaded, "a", "b");
    assert_eq!(
        a_to_b.replication_policy.format_remote_topic("b", "topic1"),
        "b__topic1"
    );
    let admin = client(a_to_b, ClientRole::SourceAdmin);
    assert_eq!(admin["bootstrap.servers"], "127.0.0.1:9092,127.0.0.2:9092");
    assert_eq!(admin["security.protocol"], "plaintext");
    assert_eq!(
        admin["ssl.key.password"], "secret2",
        "provider resolved inside the admin config"
    );
    assert!(!admin.contains_key("xxx") && !admin.contains_key("metric.reporters"));
    // Offset syncs live on the source by default: they use cluster a's producer settings.
    assert_eq!(
        client(a_to_b, ClientRole::OffsetSyncsProducer)["security.protocol"],
        "ssl"
    );
    assert_eq!(
        client(a_to_b, ClientRole::SourceConsumer)["security.protocol"],
        "plaintext"
    );
}

#[test]
fn custom_forwarding_admin_is_rejected_naming_the_key() {
    let pairs = with_servers(
        &["a", "b"],
        &[("b.forwarding.admin.class", "FakeForwardingAdmin")],
    );
    let found = errors(&borrow(&pairs));
    assert!(
        found
            .iter()
            .any(|e| e.contains("`b.forwarding.admin.class`") && e.contains("not supported")),
        "{found:?}"
    );
}

#[test]
fn includes_connector_config_properties() {
    let pairs = with_servers(
        &["a", "b"],
        &[
            ("tasks.max", "100"),
            ("topics", "topic-1"),
            ("groups", "group-2"),
            ("replication.policy.separator", "__"),
            ("config.properties.exclude", "property-3"),
            ("metric.reporters", "FakeMetricsReporter"),
            (
                "topic.filter.class",
                "org.apache.kafka.connect.mirror.DefaultTopicFilter",
            ),
            ("xxx", "yyy"),
            ("a->b.enabled", "true"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let a_to_b = flow(&loaded, "a", "b");
    assert_eq!(a_to_b.source.tasks_max, 100);
    assert_eq!(a_to_b.source.topics.include, vec!["topic-1"]);
    assert_eq!(a_to_b.source.config_properties_exclude, vec!["property-3"]);
    assert_eq!(a_to_b.replication_policy.separator, "__");
    assert_eq!(a_to_b.checkpoints.groups.include, vec!["group-2"]);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.key.as_deref() == Some("xxx")),
        "unknown top-level key is reported"
    );
}

#[test]
fn config_backwards_compatibility() {
    let pairs = with_servers(
        &["a", "b"],
        &[
            ("groups.blacklist", "group-7"),
            ("topics.blacklist", "topic3"),
            ("config.properties.blacklist", "property-3"),
            (
                "topic.filter.class",
                "org.apache.kafka.connect.mirror.DefaultTopicFilter",
            ),
            ("a->b.enabled", "true"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let a_to_b = flow(&loaded, "a", "b");
    assert_eq!(a_to_b.source.topics.exclude, vec!["topic3"]);
    assert!(!a_to_b.source.topics.matches("topic3") && a_to_b.source.topics.matches("topic4"));
    assert_eq!(a_to_b.source.config_properties_exclude, vec!["property-3"]);
    assert_eq!(a_to_b.checkpoints.groups.exclude, vec!["group-7"]);
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("topics.blacklist") && w.message.contains("deprecated")));
}

#[test]
fn config_backwards_compatibility_source_target() {
    let pairs = with_servers(
        &["source", "target"],
        &[
            ("source->target.topics.blacklist", "topic3"),
            ("source->target.groups.blacklist", "group-7"),
            ("source->target.enabled", "true"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let flow = flow(&loaded, "source", "target");
    assert_eq!(flow.source.topics.exclude, vec!["topic3"]);
    assert_eq!(flow.checkpoints.groups.exclude, vec!["group-7"]);
}

#[test]
fn legacy_alias_loses_to_new_name_and_is_gone_in_4_0() {
    let pairs = with_servers(
        &["a", "b"],
        &[
            ("topics.exclude", "x"),
            ("a->b.topics.blacklist", "y"),
            ("a->b.enabled", "true"),
        ],
    );
    assert_eq!(
        flow(&load(&borrow(&pairs)), "a", "b").source.topics.exclude,
        vec!["x"]
    );
    let pairs = with_servers(
        &["a", "b"],
        &[
            ("topics.blacklist", "y"),
            ("a->b.enabled", "true"),
            ("mirrord.mm2.compatibility", "4.0"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    assert_eq!(
        flow(&loaded, "a", "b").source.topics.exclude,
        vec!["mm2.*\\.internal", ".*\\.replica", "__.*"]
    );
}

#[test]
fn includes_topic_filter_properties() {
    let pairs = with_servers(
        &["source", "target"],
        &[
            ("source->target.topics", "topic1, topic2"),
            ("source->target.topics.exclude", "topic3"),
            ("source->target.enabled", "true"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let topics = &flow(&loaded, "source", "target").source.topics;
    assert_eq!(topics.include, vec!["topic1", "topic2"]);
    assert_eq!(topics.exclude, vec!["topic3"]);
}

#[test]
fn worker_configs() {
    let loaded = load(&[
        ("clusters", "a, b"),
        ("a.bootstrap.servers", "a:9092"),
        ("b.bootstrap.servers", "b:9092"),
        ("config.providers", "env"),
        (
            "config.providers.env.class",
            "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        ),
        ("replication.policy.separator", "__"),
        ("offset.storage.replication.factor", "123"),
        ("b.status.storage.replication.factor", "456"),
        ("b.producer.client.id", "client-one"),
        ("b.security.protocol", "PLAINTEXT"),
        ("b.producer.security.protocol", "SASL_PLAINTEXT"),
        ("ssl.truststore.password", "secret1"),
        ("ssl.key.password", "${env:MM2_SECRET}"),
        ("a->b.enabled", "true"),
        ("b->a.enabled", "true"),
    ]);
    let b_to_a = flow(&loaded, "b", "a");
    assert_eq!(b_to_a.offset_storage.replication_factor, 123);
    assert_eq!(b_to_a.offset_storage.topic, "mm2-offsets.b.internal");
    assert_eq!(b_to_a.replication_policy.separator, "__");
    let a_to_b = flow(&loaded, "a", "b");
    let producer = client(a_to_b, ClientRole::TargetProducer);
    assert_eq!(
        producer["client.id"], "client-one",
        "Connect's worker producer takes the user's client.id as is"
    );
    assert_eq!(producer["security.protocol"], "sasl_plaintext");
    assert_eq!(producer["ssl.key.password"], "secret2");
    assert_eq!(
        client(a_to_b, ClientRole::TargetConsumer)["security.protocol"],
        "plaintext"
    );
    assert_eq!(
        client(a_to_b, ClientRole::TargetConsumer)["ssl.key.password"],
        "secret2"
    );
    assert!(a_to_b.clients[&ClientRole::TargetProducer]
        .notes
        .iter()
        .any(|n| n.contains("ssl.truststore.password")));
}

#[test]
fn cluster_pairs_with_default_settings() {
    let pairs = with_servers(&["a", "b", "c"], &[]);
    let loaded = load(&borrow(&pairs));
    assert_eq!(
        flow_ids(&loaded),
        vec!["a->b", "a->c", "b->a", "b->c", "c->a", "c->b"]
    );
    assert!(loaded
        .plan
        .flows
        .values()
        .all(|f| f.mode == FlowMode::HeartbeatsOnly));
}

#[test]
fn empty_cluster_pairs_with_globally_disabled_heartbeats() {
    let pairs = with_servers(&["a", "b", "c"], &[("emit.heartbeats.enabled", "false")]);
    let found = errors(&borrow(&pairs));
    assert!(
        found
            .iter()
            .any(|e| e.contains("No source->target replication flows.")),
        "{found:?}"
    );
}

#[test]
fn cluster_pairs_with_two_disabled_heartbeats() {
    let pairs = with_servers(
        &["a", "b", "c"],
        &[
            ("a->b.emit.heartbeats.enabled", "false"),
            ("a->c.emit.heartbeats.enabled", "false"),
        ],
    );
    assert_eq!(
        flow_ids(&load(&borrow(&pairs))),
        vec!["b->a", "b->c", "c->a", "c->b"]
    );
}

#[test]
fn cluster_pairs_with_globally_disabled_heartbeats() {
    let pairs = with_servers(
        &["a", "b", "c", "d", "e", "f"],
        &[
            ("emit.heartbeats.enabled", "false"),
            ("a->b.enabled", "true"),
            ("a->c.enabled", "true"),
            ("a->d.enabled", "true"),
            ("a->e.enabled", "false"),
            ("a->f.enabled", "false"),
        ],
    );
    assert_eq!(
        flow_ids(&load(&borrow(&pairs))),
        vec!["a->b", "a->c", "a->d"]
    );
}

#[test]
fn cluster_pairs_with_globally_disabled_heartbeats_central_local() {
    let pairs = with_servers(
        &["central", "local_one", "local_two", "beats_emitter"],
        &[
            ("emit.heartbeats.enabled", "false"),
            ("central->local_one.enabled", "true"),
            ("central->local_two.enabled", "true"),
            ("beats_emitter->central.emit.heartbeats.enabled", "true"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    assert_eq!(
        flow_ids(&loaded),
        vec![
            "beats_emitter->central",
            "central->local_one",
            "central->local_two"
        ]
    );
    assert_eq!(
        flow(&loaded, "beats_emitter", "central").mode,
        FlowMode::HeartbeatsOnly
    );
}

#[test]
fn invalid_security_protocol_names_the_key() {
    let pairs = with_servers(&["a", "b"], &[("security.protocol", "abc")]);
    let found = errors(&borrow(&pairs));
    assert!(
        found
            .iter()
            .any(|e| e.contains("security.protocol") && e.contains("abc")),
        "{found:?}"
    );
    let pairs = with_servers(
        &["a", "b"],
        &[
            ("a.consumer.security.protocol", "abc"),
            ("a->b.enabled", "true"),
        ],
    );
    assert!(errors(&borrow(&pairs))
        .iter()
        .any(|e| e.contains("`a.consumer.security.protocol`")));
}

#[test]
fn case_insensitive_security_protocol() {
    let pairs = with_servers(&["a", "b"], &[("security.protocol", "sasl_ssl")]);
    let loaded = load(&borrow(&pairs));
    assert_eq!(
        client(flow(&loaded, "a", "b"), ClientRole::TargetAdmin)["security.protocol"],
        "sasl_ssl"
    );
}

// === cases derived from MM2's rules ===

#[test]
fn enabled_flow_also_gives_reverse_heartbeat_flow() {
    let pairs = with_servers(&["A", "B"], &[("A->B.enabled", "true")]);
    let loaded = load(&borrow(&pairs));
    assert_eq!(flow_ids(&loaded), vec!["A->B", "B->A"]);
    assert_eq!(flow(&loaded, "A", "B").mode, FlowMode::Replicate);
    assert_eq!(flow(&loaded, "B", "A").mode, FlowMode::HeartbeatsOnly);

    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("emit.heartbeats.enabled", "false"),
        ],
    );
    assert_eq!(flow_ids(&load(&borrow(&pairs))), vec!["A->B"]);
}

#[test]
fn clusters_option_keeps_flows_into_the_listed_targets() {
    let pairs = with_servers(&["A", "B"], &[("A->B.enabled", "true")]);
    let loaded = load_with(&borrow(&pairs), &["A"]).unwrap();
    assert_eq!(flow_ids(&loaded), vec!["B->A"]);
    let failed = load_with(&borrow(&pairs), &["C"]).unwrap_err();
    let messages: Vec<String> = failed.errors().map(|d| d.to_string()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("No source->target replication flows.")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("--clusters C")),
        "{messages:?}"
    );
}

#[test]
fn cluster_client_settings_reach_the_right_clients() {
    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("A.consumer.fetch.min.bytes", "5"),
            ("A.consumer.max.poll.records", "5"),
            ("A.security.protocol", "SSL"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let a_to_b = flow(&loaded, "A", "B");
    assert_eq!(
        client(a_to_b, ClientRole::SourceConsumer)["fetch.min.bytes"],
        "5"
    );
    assert!(a_to_b.clients[&ClientRole::SourceConsumer]
        .notes
        .iter()
        .any(|n| n.contains("max.poll.records")));
    for role in [
        ClientRole::SourceConsumer,
        ClientRole::SourceAdmin,
        ClientRole::OffsetSyncsProducer,
    ] {
        assert_eq!(
            client(a_to_b, role)["security.protocol"],
            "ssl",
            "{}",
            role.name()
        );
    }
    assert!(!client(a_to_b, ClientRole::TargetProducer).contains_key("security.protocol"));
}

#[test]
fn top_level_client_settings_are_dropped_with_a_warning() {
    let pairs = with_servers(
        &["A", "B"],
        &[("A->B.enabled", "true"), ("consumer.fetch.min.bytes", "5")],
    );
    let loaded = load(&borrow(&pairs));
    assert!(!client(flow(&loaded, "A", "B"), ClientRole::SourceConsumer)
        .contains_key("fetch.min.bytes"));
    let warning = loaded
        .warnings
        .iter()
        .find(|w| w.key.as_deref() == Some("consumer.fetch.min.bytes"))
        .expect("warned");
    assert_eq!(warning.severity, Severity::Warning);
    assert!(warning
        .fix
        .as_deref()
        .unwrap()
        .contains("<alias>.consumer.fetch.min.bytes"));
}

#[test]
fn flow_level_wins_over_top_level_and_cluster_level_does_not_count() {
    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("topics", "x"),
            ("A->B.topics", "y"),
            ("A.groups", "z"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let a_to_b = flow(&loaded, "A", "B");
    assert_eq!(a_to_b.source.topics.include, vec!["y"]);
    assert_eq!(
        a_to_b.checkpoints.groups.include,
        vec![".*"],
        "cluster-level `A.groups` is not a connector setting"
    );
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("A.groups")));
}

#[test]
fn top_level_worker_prefix_wins_over_target_cluster() {
    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("B.offset.storage.replication.factor", "2"),
            ("offset.storage.replication.factor", "1"),
        ],
    );
    assert_eq!(
        flow(&load(&borrow(&pairs)), "A", "B")
            .offset_storage
            .replication_factor,
        1
    );
}

#[test]
fn defaults_of_an_untouched_flow() {
    let pairs = with_servers(&["A", "B"], &[("A->B.enabled", "true")]);
    let loaded = load(&borrow(&pairs));
    let a_to_b = flow(&loaded, "A", "B");
    assert_eq!(a_to_b.offset_storage.topic, "mm2-offsets.A.internal");
    assert_eq!(a_to_b.offset_storage.partitions, 25);
    assert_eq!(
        a_to_b.exactly_once.transactional_id_prefix,
        "A-mm2-MirrorSourceConnector"
    );
    assert!(!a_to_b.exactly_once.enabled);
    assert_eq!(a_to_b.source.topics.include, vec![".*"]);
    assert_eq!(
        a_to_b.source.topics.exclude,
        vec![r".*[\-\.]internal", r".*\.replica", r"__.*"]
    );
    assert_eq!(
        a_to_b.checkpoints.groups.exclude,
        vec!["console-consumer-.*", "connect-.*", "__.*"]
    );
    assert_eq!(a_to_b.source.replication_factor, 2);
    assert_eq!(
        (
            a_to_b.offset_syncs.replication_factor,
            a_to_b.checkpoints.replication_factor,
            a_to_b.heartbeats.replication_factor
        ),
        (3, 3, 3)
    );
    assert_eq!(a_to_b.source.refresh_topics.interval_seconds, 600);
    assert_eq!(a_to_b.checkpoints.emit_checkpoints.interval_seconds, 60);
    assert!(!a_to_b.checkpoints.sync_group_offsets.enabled);
    assert_eq!(a_to_b.heartbeats.emit_heartbeats.interval_seconds, 1);
    assert_eq!(a_to_b.source.offset_lag_max, 100);
    assert_eq!(a_to_b.offset_syncs.location, OffsetSyncsLocation::Source);
    assert_eq!(a_to_b.offset_syncs.topic, "mm2-offset-syncs.B.internal");
    assert_eq!(a_to_b.checkpoints.topic, "A.checkpoints.internal");
    assert_eq!(a_to_b.heartbeats.topic, "heartbeats");
}

#[test]
fn exactly_once_from_the_target_worker_or_the_flow() {
    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("B.exactly.once.source.support", "enabled"),
            ("A.consumer.isolation.level", "read_committed"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    assert!(flow(&loaded, "A", "B").exactly_once.enabled);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("A->B.exactly.once.support", "enabled"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    assert!(flow(&loaded, "A", "B").exactly_once.enabled);
    assert!(
        loaded.warnings.is_empty(),
        "read_committed is kafka-mirrord's default: {:?}",
        loaded.warnings
    );

    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("A->B.exactly.once.support", "enabled"),
            ("A.consumer.isolation.level", "read_uncommitted"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("uncommitted")),
        "read_uncommitted with exactly-once is reported"
    );

    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("B.exactly.once.source.support", "enabled"),
            ("A->B.exactly.once.support", "required"),
        ],
    );
    assert!(errors(&borrow(&pairs))
        .iter()
        .any(|e| e.contains("isolation.level")));
}

// === client configs (MirrorConnectorConfigTest, MirrorSourceConfigTest, MirrorCheckpointConfigTest) ===

#[test]
fn source_consumer_config_exactly() {
    let pairs = with_servers(
        &["source1", "target2"],
        &[
            ("source1->target2.enabled", "true"),
            ("source1->target2.consumer.max.poll.interval.ms", "120000"),
            ("source1.bootstrap.servers", "localhost:2345"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let expected: BTreeMap<String, String> = [
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("max.poll.interval.ms", "120000"),
        (
            "client.id",
            "source1->target2|MirrorSourceConnector|replication-consumer",
        ),
        ("bootstrap.servers", "localhost:2345"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let actual = client(
        flow(&loaded, "source1", "target2"),
        ClientRole::SourceConsumer,
    );
    let (from_mm2, extra): (BTreeMap<String, String>, BTreeMap<String, String>) = actual
        .clone()
        .into_iter()
        .partition(|(key, _)| expected.contains_key(key));
    assert_eq!(from_mm2, expected, "MM2's sourceConsumerConfig entries");
    // Everything else is one of kafka-mirrord's documented librdkafka defaults.
    // Everything else: kafka-mirrord's documented defaults and the group id librdkafka needs.
    let mut defaults: BTreeMap<String, String> =
        kafka_mirrord::plan::librdkafka::role_defaults(ClientRole::SourceConsumer, false)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    defaults.insert("group.id".into(), "kafka-mirrord-assign-only".into());
    assert_eq!(extra, defaults);
}

#[test]
fn consumer_auto_offset_reset_layers() {
    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("s->t.consumer.auto.offset.reset", "latest"),
        ],
    );
    assert_eq!(
        client(
            flow(&load(&borrow(&pairs)), "s", "t"),
            ClientRole::SourceConsumer
        )["auto.offset.reset"],
        "latest"
    );
    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("s->t.source.consumer.auto.offset.reset", "latest"),
            ("s->t.source.consumer.max.poll.interval.ms", "100"),
            ("s->t.consumer.max.poll.interval.ms", "5000"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let consumer = client(flow(&loaded, "s", "t"), ClientRole::SourceConsumer);
    assert_eq!(consumer["auto.offset.reset"], "latest");
    assert_eq!(
        consumer["max.poll.interval.ms"], "100",
        "source.consumer.* beats consumer.*"
    );
}

#[test]
fn cluster_client_key_beats_flow_consumer_layer() {
    // docs/mm2-behaviour.md, *Client settings*: `s->t.consumer.security.protocol` loses to `s.security.protocol`.
    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("s->t.consumer.security.protocol", "SSL"),
            ("s.security.protocol", "SASL_SSL"),
        ],
    );
    assert_eq!(
        client(
            flow(&load(&borrow(&pairs)), "s", "t"),
            ClientRole::SourceConsumer
        )["security.protocol"],
        "sasl_ssl"
    );
}

#[test]
fn producer_and_admin_layers() {
    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("s->t.producer.acks", "1"),
            ("s->t.admin.connections.max.idle.ms", "10000"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let s_to_t = flow(&loaded, "s", "t");
    assert_eq!(client(s_to_t, ClientRole::OffsetSyncsProducer)["acks"], "1");
    assert_eq!(
        client(s_to_t, ClientRole::OffsetSyncsProducer)["client.id"],
        "s->t|MirrorSourceConnector|offset-syncs-source-producer"
    );
    assert_eq!(
        client(s_to_t, ClientRole::SourceAdmin)["connections.max.idle.ms"],
        "10000"
    );
    assert_eq!(
        client(s_to_t, ClientRole::TargetAdmin)["connections.max.idle.ms"],
        "10000"
    );
}

#[test]
fn offset_syncs_clients_follow_the_location() {
    let base = [
        ("s->t.enabled", "true"),
        ("s->t.source.producer.batch.size", "1"),
        ("s->t.target.producer.acks", "1"),
        ("s->t.producer.max.poll.interval.ms", "1"),
    ];
    let pairs = with_servers(&["s", "t"], &base);
    let loaded = load(&borrow(&pairs));
    let producer = client(flow(&loaded, "s", "t"), ClientRole::OffsetSyncsProducer);
    assert_eq!(producer.get("batch.size").map(String::as_str), Some("1"));
    assert!(!producer.contains_key("acks"));
    assert_eq!(
        flow(&loaded, "s", "t").offset_syncs.topic,
        "mm2-offset-syncs.t.internal"
    );

    let mut with_target = base.to_vec();
    with_target.push(("s->t.offset-syncs.topic.location", "target"));
    let pairs = with_servers(&["s", "t"], &with_target);
    let loaded = load(&borrow(&pairs));
    let s_to_t = flow(&loaded, "s", "t");
    let producer = client(s_to_t, ClientRole::OffsetSyncsProducer);
    assert_eq!(producer.get("acks").map(String::as_str), Some("1"));
    assert!(!producer.contains_key("batch.size"));
    assert_eq!(
        producer["client.id"],
        "s->t|MirrorSourceConnector|offset-syncs-target-producer"
    );
    assert_eq!(
        client(s_to_t, ClientRole::OffsetSyncsConsumer)["client.id"],
        "s->t|MirrorCheckpointConnector|offset-syncs-target-consumer"
    );
    assert_eq!(s_to_t.offset_syncs.topic, "mm2-offset-syncs.s.internal");
}

#[test]
fn offset_syncs_location_is_validated() {
    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("s->t.offset-syncs.topic.location", "something"),
        ],
    );
    assert!(errors(&borrow(&pairs))
        .iter()
        .any(|e| e.contains("offset-syncs.topic.location")));
}

#[test]
fn empty_topics_list_replicates_nothing() {
    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("topics", ""),
            ("groups", "group1"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let s_to_t = flow(&loaded, "s", "t");
    for topic in ["topic1", "topic2", ""] {
        assert!(!s_to_t.source.topics.matches(topic));
    }
    assert!(
        s_to_t.checkpoints.groups.matches("group1") && !s_to_t.checkpoints.groups.matches("group2")
    );
}

#[test]
fn checkpoint_validation_cases() {
    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("emit.checkpoints.enabled", "false"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    assert!(!flow(&loaded, "s", "t").checkpoints.emit_checkpoints.enabled);
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("emit.checkpoints.enabled")));

    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("emit.offset-syncs.enabled", "false"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let s_to_t = flow(&loaded, "s", "t");
    assert!(!s_to_t.offset_syncs.enabled && !s_to_t.checkpoints.emit_checkpoints.enabled);
    assert!(!s_to_t
        .clients
        .contains_key(&ClientRole::OffsetSyncsProducer));

    let pairs = with_servers(
        &["s", "t"],
        &[
            ("s->t.enabled", "true"),
            ("emit.offset-syncs.enabled", "false"),
            ("s->t.offset-syncs.topic.location", "target"),
        ],
    );
    assert!(errors(&borrow(&pairs))
        .iter()
        .any(|e| e.contains("can't setup offset-syncs feature")));
}

// === errors: every problem at once, named by key and line ===

#[test]
fn every_error_is_reported_at_once_with_its_line() {
    let found = errors(&[
        ("clusters", "A, B"),
        ("A.bootstrap.servers", "a:9092"),
        ("A->B.enabled", "yes"),
        ("A->B.tasks.max", "0"),
        ("A->B.topics", "(?!internal).*"),
        ("replication.policy.class", "com.example.MyPolicy"),
        ("mirrord.http.listn", "127.0.0.1:9000"),
        ("B.ssl.truststore.location", "/etc/kafka/truststore.jks"),
        ("B.sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"topsecret\";"),
        ("B.sasl.mechanism", "AWS_MSK_IAM"),
    ]);
    let joined = found.join("\n");
    assert!(
        joined.contains(":3: error: `A->B.enabled` = `yes`"),
        "{joined}"
    );
    assert!(
        joined.contains(":4: error: `A->B.tasks.max` = `0`: must be at least 1"),
        "{joined}"
    );
    assert!(
        joined.contains(":5: error: `A->B.topics`")
            && joined.contains("look-around")
            && joined.contains("topics.exclude"),
        "{joined}"
    );
    assert!(
        joined.contains(":6: error: `replication.policy.class`")
            && joined.contains("custom replication policies"),
        "{joined}"
    );
    assert!(
        joined.contains(":7: error: `mirrord.http.listn`")
            && joined.contains("did you mean `mirrord.http.listen`"),
        "{joined}"
    );
    assert!(
        joined.contains(":8: error: `B.ssl.truststore.location`") && joined.contains("keytool"),
        "{joined}"
    );
    assert!(
        joined.contains(":10: error: `B.sasl.mechanism`"),
        "{joined}"
    );
    assert!(
        joined.contains("`B.bootstrap.servers`"),
        "missing bootstrap servers: {joined}"
    );
    assert!(
        !joined.contains("topsecret"),
        "secrets never appear in errors: {joined}"
    );
}

#[test]
fn missing_clusters_is_an_error() {
    let found = errors(&[("A.bootstrap.servers", "a:9092")]);
    assert!(
        found
            .iter()
            .any(|e| e.contains("missing required key `clusters`")),
        "{found:?}"
    );
}

#[test]
fn unresolvable_placeholders_are_errors() {
    let pairs = with_servers(
        &["A", "B"],
        &[
            (
                "A.sasl.jaas.config",
                "${file:/nonexistent/secrets.properties:jaas}",
            ),
            ("B.ssl.key.password", "${env:NOPE}"),
        ],
    );
    let found = errors(&borrow(&pairs)).join("\n");
    assert!(
        found.contains("`A.sasl.jaas.config`") && found.contains("not declared"),
        "{found}"
    );
    assert!(
        found.contains("config.providers=file"),
        "the fix says how to declare it: {found}"
    );
}

#[test]
fn jaas_and_pem_stores_translate() {
    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("B.security.protocol", "SASL_SSL"),
            ("B.sasl.mechanism", "SCRAM-SHA-512"),
            ("B.sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"pw\";"),
            ("B.ssl.truststore.type", "PEM"),
            ("B.ssl.truststore.location", "/etc/ssl/ca.pem"),
            ("B.ssl.keystore.type", "PKCS12"),
            ("B.ssl.keystore.location", "/etc/ssl/client.p12"),
            ("B.ssl.keystore.password", "changeit"),
            ("B.ssl.endpoint.identification.algorithm", ""),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let producer = client(flow(&loaded, "A", "B"), ClientRole::TargetProducer);
    assert_eq!(producer["sasl.mechanisms"], "SCRAM-SHA-512");
    assert_eq!(producer["sasl.username"], "mm2");
    assert_eq!(producer["sasl.password"], "pw");
    assert_eq!(producer["ssl.ca.location"], "/etc/ssl/ca.pem");
    assert_eq!(producer["ssl.keystore.location"], "/etc/ssl/client.p12");
    assert_eq!(producer["ssl.keystore.password"], "changeit");
    assert_eq!(producer["ssl.endpoint.identification.algorithm"], "none");
    let shown = serde_json::to_string(&loaded.plan).unwrap();
    assert!(
        !shown.contains("\"pw\"") && !shown.contains("changeit"),
        "serialized plans mask secrets"
    );
}

/// A default of ours never doubles a property the file set under a librdkafka alias (or a Java name
/// that is one): both would reach librdkafka and the winner would depend on iteration order.
#[test]
fn defaults_yield_to_the_same_property_under_another_name() {
    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("B.producer.delivery.timeout.ms", "120000"),
            ("B.producer.queue.buffering.max.ms", "20"),
            ("A.consumer.fetch.message.max.bytes", "2097152"),
        ],
    );
    let loaded = load(&borrow(&pairs));
    let a_to_b = flow(&loaded, "A", "B");
    let producer = client(a_to_b, ClientRole::TargetProducer);
    assert_eq!(producer["delivery.timeout.ms"], "120000");
    assert!(!producer.contains_key("message.timeout.ms"));
    assert_eq!(producer["queue.buffering.max.ms"], "20");
    assert!(!producer.contains_key("linger.ms"));
    let consumer = client(a_to_b, ClientRole::SourceConsumer);
    assert_eq!(consumer["fetch.message.max.bytes"], "2097152");
    assert!(!consumer.contains_key("max.partition.fetch.bytes"));
    // Without them, the defaults apply.
    let plain = load(&borrow(&with_servers(
        &["A", "B"],
        &[("A->B.enabled", "true")],
    )));
    let producer = client(flow(&plain, "A", "B"), ClientRole::TargetProducer);
    assert_eq!(producer["message.timeout.ms"], "0");
    assert_eq!(producer["linger.ms"], "5");
}

/// The librdkafka setting `key` of the flow's source consumer in a task of `partitions` partitions.
fn source_consumer_setting(flow: &FlowPlan, partitions: usize, key: &str) -> Option<String> {
    flow.clients[&ClientRole::SourceConsumer]
        .source_consumer_config(partitions)
        .get(key)
        .map(str::to_string)
}

/// A source task with many partitions fetches 1 MiB slices of each instead of 256 KiB (every fetch
/// names every partition); a slice the file sets, in any spelling, is kept whatever the count.
#[test]
fn many_partitions_fetch_bigger_slices_unless_the_file_sets_them() {
    let slice = |flow: &FlowPlan, partitions: usize| {
        source_consumer_setting(flow, partitions, "max.partition.fetch.bytes")
    };
    let plain = load(&borrow(&with_servers(
        &["A", "B"],
        &[("A->B.enabled", "true")],
    )));
    let a_to_b = flow(&plain, "A", "B");
    assert_eq!(slice(a_to_b, 8).as_deref(), Some("262144"));
    assert_eq!(slice(a_to_b, 100).as_deref(), Some("262144"));
    assert_eq!(slice(a_to_b, 2_000).as_deref(), Some("1048576"));
    for (key, value) in [
        ("A.consumer.max.partition.fetch.bytes", "524288"),
        ("A.consumer.librdkafka.fetch.message.max.bytes", "524288"),
    ] {
        let set = load(&borrow(&with_servers(
            &["A", "B"],
            &[("A->B.enabled", "true"), (key, value)],
        )));
        let config =
            flow(&set, "A", "B").clients[&ClientRole::SourceConsumer].source_consumer_config(2_000);
        let name = key.rsplit_once("consumer.").unwrap().1;
        let name = name.strip_prefix("librdkafka.").unwrap_or(name);
        assert_eq!(config.get(name), Some("524288"), "{key}");
        assert_eq!(
            config
                .get("max.partition.fetch.bytes")
                .filter(|_| name != "max.partition.fetch.bytes"),
            None,
            "{key}"
        );
    }
}

/// A source task with many partitions lets the broker hold a fetch of caught-up partitions for
/// 5 s instead of 500 ms (each empty answer names every partition); a wait the file sets, in
/// any spelling, is kept whatever the count.
#[test]
fn many_partitions_fetch_waits_longer_unless_the_file_sets_it() {
    let wait = |flow: &FlowPlan, partitions: usize| {
        source_consumer_setting(flow, partitions, "fetch.wait.max.ms")
    };
    let plain = load(&borrow(&with_servers(
        &["A", "B"],
        &[("A->B.enabled", "true")],
    )));
    let a_to_b = flow(&plain, "A", "B");
    assert_eq!(wait(a_to_b, 8), None);
    assert_eq!(wait(a_to_b, 100), None);
    assert_eq!(wait(a_to_b, 2_000).as_deref(), Some("5000"));
    for key in [
        "A.consumer.fetch.max.wait.ms",
        "A.consumer.librdkafka.fetch.wait.max.ms",
        "A->B.consumer.fetch.max.wait.ms",
    ] {
        let set = load(&borrow(&with_servers(
            &["A", "B"],
            &[("A->B.enabled", "true"), (key, "100")],
        )));
        assert_eq!(
            wait(flow(&set, "A", "B"), 2_000).as_deref(),
            Some("100"),
            "{key}"
        );
        assert_eq!(
            wait(flow(&set, "A", "B"), 8).as_deref(),
            Some("100"),
            "{key}"
        );
    }
}

/// Idempotence off in any spelling Java or librdkafka accepts limits the target producer to one
/// request in flight (order kept); a spelling Java rejects is an error, as in MM2.
#[test]
fn idempotence_off_in_any_spelling_keeps_one_request_in_flight() {
    for (key, value) in [
        ("B.producer.enable.idempotence", "False"),
        ("B.producer.enable.idempotence", " false "),
        ("B.producer.librdkafka.enable.idempotence", "0"),
        ("B.producer.librdkafka.enable.idempotence", "f"),
    ] {
        let pairs = with_servers(&["A", "B"], &[("A->B.enabled", "true"), (key, value)]);
        let loaded = load(&borrow(&pairs));
        let producer = client(flow(&loaded, "A", "B"), ClientRole::TargetProducer);
        assert_eq!(
            producer["max.in.flight.requests.per.connection"], "1",
            "{key} = {value}"
        );
    }
    let pairs = with_servers(
        &["A", "B"],
        &[
            ("A->B.enabled", "true"),
            ("B.producer.enable.idempotence", "0"),
        ],
    );
    let found = errors(&borrow(&pairs));
    assert!(
        found
            .iter()
            .any(|e| e.contains("enable.idempotence") && e.contains("`true` or `false`")),
        "{found:?}"
    );
}

/// `acks = 0` or `1` on the target producer would store progress for records a failover can
/// lose: an error naming the line and the fix. The offset-syncs producer may use them.
#[test]
fn the_target_producer_refuses_acks_below_all() {
    for (key, value) in [
        ("B.producer.acks", "1"),
        ("B.producer.acks", "0"),
        ("A->B.producer.override.acks", "1"),
        ("B.producer.librdkafka.request.required.acks", "1"),
    ] {
        let pairs = with_servers(&["A", "B"], &[("A->B.enabled", "true"), (key, value)]);
        let found = errors(&borrow(&pairs));
        assert!(
            found
                .iter()
                .any(|e| e.contains("acks = all") && e.contains("fix:")),
            "{key} = {value}: {found:?}"
        );
        if !key.contains("librdkafka") {
            assert!(
                found.iter().any(|e| e.contains(":5:")),
                "line of the key: {found:?}"
            );
        }
    }
    for value in ["all", "-1"] {
        let pairs = with_servers(
            &["A", "B"],
            &[("A->B.enabled", "true"), ("B.producer.acks", value)],
        );
        load(&borrow(&pairs));
    }
}
