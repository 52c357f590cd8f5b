//! Which Java client settings each of a flow's Kafka clients gets, following MM2's layering
//! (docs/mm2-behaviour.md, *Client settings*), before translation to librdkafka (see `librdkafka.rs`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::keys::CLIENT_KEYS;
use crate::config::properties::Property;
use crate::config::Config;

/// The Kafka clients a flow uses, named by what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientRole {
    /// Reads the replicated records from the source (MM2 `replication-consumer`).
    SourceConsumer,
    /// Writes records, source offsets, heartbeats and checkpoints to the target (Connect's worker producer).
    TargetProducer,
    /// Lists topics, configs, ACLs and consumer groups on the source.
    SourceAdmin,
    /// Creates topics and partitions and syncs configs, ACLs and group offsets on the target.
    TargetAdmin,
    /// Reads the source offsets and checkpoints topics on the target.
    TargetConsumer,
    /// Writes offset syncs (to the source or the target, per `offset-syncs.topic.location`).
    OffsetSyncsProducer,
    /// Reads offset syncs for checkpointing.
    OffsetSyncsConsumer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Consumer,
    Producer,
    Admin,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Consumer => "consumer",
            Kind::Producer => "producer",
            Kind::Admin => "admin",
        }
    }
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl ClientRole {
    pub fn name(self) -> &'static str {
        match self {
            ClientRole::SourceConsumer => "source-consumer",
            ClientRole::TargetProducer => "target-producer",
            ClientRole::SourceAdmin => "source-admin",
            ClientRole::TargetAdmin => "target-admin",
            ClientRole::TargetConsumer => "target-consumer",
            ClientRole::OffsetSyncsProducer => "offset-syncs-producer",
            ClientRole::OffsetSyncsConsumer => "offset-syncs-consumer",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            ClientRole::SourceConsumer
            | ClientRole::TargetConsumer
            | ClientRole::OffsetSyncsConsumer => Kind::Consumer,
            ClientRole::TargetProducer | ClientRole::OffsetSyncsProducer => Kind::Producer,
            ClientRole::SourceAdmin | ClientRole::TargetAdmin => Kind::Admin,
        }
    }
}

/// A Java client setting with the line it came from (`None` for defaults MM2 adds itself).
#[derive(Debug, Clone)]
pub struct JavaSetting {
    pub value: String,
    pub origin: Option<Property>,
}

pub type JavaSettings = BTreeMap<String, JavaSetting>;

fn put(settings: &mut JavaSettings, key: &str, property: &Property) {
    settings.insert(
        key.to_string(),
        JavaSetting {
            value: property.value.clone(),
            origin: Some(property.clone()),
        },
    );
}

/// `MirrorConnectorConfig.<side><Kind>Config()` for flow `source->target`:
/// `<side>.cluster.{CLIENT_KEYS}` → flow `<kind>.*` → `<side>.<kind>.*`, later layers winning.
pub fn connector_client(
    config: &Config,
    source: &str,
    target: &str,
    side: Side,
    kind: Kind,
) -> JavaSettings {
    let alias = match side {
        Side::Source => source,
        Side::Target => target,
    };
    let cluster_props = config.cluster_props(alias);
    let mut settings = JavaSettings::new();

    // Layer 1: `<side>.cluster.k` for client keys: clusterProps(alias)[k], overridden per flow by
    // `source->target.<side>.cluster.k`.
    for key in CLIENT_KEYS {
        let flow_key = format!("{}.cluster.{key}", side.prefix());
        if let Some(property) = config
            .flow(source, target, &flow_key)
            .or(cluster_props.get(*key).copied())
        {
            put(&mut settings, key, property);
        }
    }
    // Layer 2: the connector's own `<kind>.*` keys, which in dedicated mode only come from the flow.
    for (key, property) in config.flow_with_prefix(source, target, &format!("{}.", kind.prefix())) {
        if !is_connector_key_sharing_prefix(kind, &key) {
            put(&mut settings, &key, property);
        }
    }
    // Layer 3: `<side>.<kind>.*`: clusterProps(alias)["<kind>.k"], overridden by the flow's
    // `source->target.<side>.<kind>.k`.
    let cluster_prefix = format!("{}.", kind.prefix());
    for (key, property) in &cluster_props {
        if let Some(stripped) = key.strip_prefix(&cluster_prefix) {
            put(&mut settings, stripped, property);
        }
    }
    let flow_prefix = format!("{}.{}.", side.prefix(), kind.prefix());
    for (key, property) in config.flow_with_prefix(source, target, &flow_prefix) {
        put(&mut settings, &key, property);
    }
    settings
}

/// `consumer.poll.timeout.ms` and `admin.timeout.ms` are MM2 connector settings that merely share
/// the client prefixes; MM2 leaks them into clients as unknown keys, we do not.
fn is_connector_key_sharing_prefix(kind: Kind, key: &str) -> bool {
    matches!(
        (kind, key),
        (Kind::Consumer, "poll.timeout.ms") | (Kind::Admin, "timeout.ms")
    )
}

/// The Connect worker's producer for flow `source->target`, which writes the replicated records:
/// the target's `producer.*` settings from `clusterProps(target)`, then the flow's
/// `producer.override.*` (dedicated mode allows every override).
pub fn worker_producer(config: &Config, source: &str, target: &str) -> JavaSettings {
    let cluster_props = config.cluster_props(target);
    let mut settings = JavaSettings::new();
    if let Some(property) = config.worker(target, "bootstrap.servers") {
        put(&mut settings, "bootstrap.servers", property);
    }
    for (key, property) in &cluster_props {
        if let Some(stripped) = key.strip_prefix("producer.") {
            put(&mut settings, stripped, property);
        }
    }
    for (key, property) in config.flow_with_prefix(source, target, "producer.override.") {
        put(&mut settings, &key, property);
    }
    settings
}

/// The settings used to reach a cluster outside any flow (`check --connect`, start-up probes):
/// `clusterProps(alias)`'s admin layer.
pub fn cluster_admin(config: &Config, alias: &str) -> JavaSettings {
    let cluster_props = config.cluster_props(alias);
    let mut settings = JavaSettings::new();
    for key in CLIENT_KEYS {
        if let Some(property) = cluster_props.get(*key) {
            put(&mut settings, key, property);
        }
    }
    for (key, property) in &cluster_props {
        if let Some(stripped) = key.strip_prefix("admin.") {
            put(&mut settings, stripped, property);
        }
    }
    settings
}
