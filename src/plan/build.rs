//! Builds the `Plan` from a `Config`: which flows exist, each flow's typed settings with MM2's
//! defaults, and its clients (docs/mm2-behaviour.md). Every problem goes to `Diagnostics`.

use std::collections::BTreeMap;

use super::clients::{self, ClientRole, Kind, Side};
use super::filter::NameFilter;
use super::librdkafka::{self, ClientId, ClientSettings};
use super::policy::{PolicyKind, ReplicationPolicy};
use super::*;
use crate::config::diagnostics::Diagnostics;
use crate::config::keys;
use crate::config::properties::Property;
use crate::config::values;
use crate::config::{Config, Mm2Compatibility};

const TOPICS_EXCLUDE_3_9: &[&str] = &[r".*[\-\.]internal", r".*\.replica", r"__.*"];
const TOPICS_EXCLUDE_4_0: &[&str] = &[r"mm2.*\.internal", r".*\.replica", r"__.*"];
const GROUPS_EXCLUDE: &[&str] = &["console-consumer-.*", "connect-.*", "__.*"];
const CONFIG_PROPERTIES_EXCLUDE: &[&str] = &[
    r"follower\.replication\.throttled\.replicas",
    r"leader\.replication\.throttled\.replicas",
    r"message\.timestamp\.difference\.max\.ms",
    r"message\.timestamp\.type",
    r"unclean\.leader\.election\.enable",
    r"min\.insync\.replicas",
];

/// Stock classes that may be named in the file; anything else cannot be honoured.
const STOCK_CLASSES: &[(&str, &[&str])] = &[
    (
        "topic.filter.class",
        &["org.apache.kafka.connect.mirror.DefaultTopicFilter"],
    ),
    (
        "group.filter.class",
        &["org.apache.kafka.connect.mirror.DefaultGroupFilter"],
    ),
    (
        "config.property.filter.class",
        &["org.apache.kafka.connect.mirror.DefaultConfigPropertyFilter"],
    ),
    (
        "forwarding.admin.class",
        &["org.apache.kafka.clients.admin.ForwardingAdmin"],
    ),
];
const BYTE_ARRAY_CONVERTER: &str = "org.apache.kafka.connect.converters.ByteArrayConverter";

/// Builds every flow; problems are reported to `diagnostics` (the returned plan is only meaningful
/// when no error was reported).
pub fn build(config: &Config, options: &PlanOptions, diagnostics: &mut Diagnostics) -> Plan {
    let flow_ids = flow_ids(config, options, diagnostics);
    let mut flows = BTreeMap::new();
    let mut clusters = BTreeMap::new();
    for id in flow_ids {
        let flow = FlowReader {
            config,
            id: &id,
            diagnostics: &mut *diagnostics,
        }
        .flow_plan();
        for alias in [&id.source, &id.target] {
            if flow.mode == FlowMode::HeartbeatsOnly && alias == &id.source {
                continue;
            }
            if !clusters.contains_key(alias) {
                clusters.insert(alias.clone(), cluster_plan(config, alias, diagnostics));
            }
        }
        flows.insert(id, flow);
    }
    check_loops(config, &flows, diagnostics);
    Plan { clusters, flows }
}

/// Replication that would never end: a flow between two aliases of the same cluster (its own
/// output is selected again), or IdentityReplicationPolicy in both directions (remote topics keep
/// their names, so MM2's cycle detection cannot see them).
fn check_loops(config: &Config, flows: &BTreeMap<FlowId, FlowPlan>, diagnostics: &mut Diagnostics) {
    let servers = |alias: &str| -> Option<(std::collections::BTreeSet<String>, Property)> {
        let property = config.cluster(alias, "bootstrap.servers")?;
        let set = property
            .value
            .split(',')
            .map(|server| server.trim().to_ascii_lowercase())
            .filter(|server| !server.is_empty())
            .collect();
        Some((set, property.clone()))
    };
    let replicating = |id: &FlowId| flows.get(id).is_some_and(|f| f.mode == FlowMode::Replicate);
    for (id, flow) in flows {
        if flow.mode != FlowMode::Replicate {
            continue;
        }
        if let (Some((source, _)), Some((target, property))) =
            (servers(&id.source), servers(&id.target))
        {
            if !source.is_disjoint(&target) {
                let fix = Some(format!("give `{}.bootstrap.servers` the other cluster's addresses, or disable `{id}.enabled`", id.target));
                if flow.replication_policy.class == super::policy::PolicyKind::Identity {
                    // The remote topic is the source topic itself.
                    diagnostics.error(
                        &property,
                        format!("`{}` and `{}` name the same cluster (shared bootstrap servers) and flow {id} keeps topic names: it would write every record back into the topic it reads", id.source, id.target),
                        fix,
                    );
                } else {
                    diagnostics.warn(
                        &property,
                        format!("`{}` and `{}` name the same cluster (shared bootstrap servers): unless `{id}.topics` leaves out the remote topics it writes (`{}.*`), flow {id} copies its own copies again and again", id.source, id.target, id.source),
                        fix,
                    );
                }
            }
        }
        let reverse = FlowId {
            source: id.target.clone(),
            target: id.source.clone(),
        };
        let identity =
            |plan: &FlowPlan| plan.replication_policy.class == super::policy::PolicyKind::Identity;
        if id.source < id.target
            && identity(flow)
            && replicating(&reverse)
            && flows.get(&reverse).is_some_and(identity)
        {
            let property = config
                .flow(&id.source, &id.target, "enabled")
                .cloned()
                .or_else(|| config.top("replication.policy.class").cloned());
            let message = format!("flows {id} and {reverse} both run with IdentityReplicationPolicy: remote topics keep their names, so each copies the other's copies back forever (MM2 cannot detect the cycle)");
            let fix = Some(format!("disable one direction, or use DefaultReplicationPolicy (remote topics named `{}.<topic>`) for an active-active pair", id.source));
            match property {
                Some(property) => diagnostics.error(&property, message, fix),
                None => {
                    diagnostics.error_without_line(Some("replication.policy.class"), message, fix)
                }
            }
        }
    }
}

/// Which ordered pairs get a flow (docs/mm2-behaviour.md, *Which flows exist*) after `--clusters` filtering.
fn flow_ids(config: &Config, options: &PlanOptions, diagnostics: &mut Diagnostics) -> Vec<FlowId> {
    if config.clusters.is_empty() {
        return Vec::new(); // already reported
    }
    for name in &options.target_clusters {
        if !config.clusters.contains(name) {
            diagnostics.error_without_line(
                Some(keys::CLUSTERS),
                format!(
                    "`--clusters {name}` is not one of the cluster aliases ({})",
                    config.clusters.join(", ")
                ),
                Some("pass aliases listed in `clusters` (they are case-sensitive)".to_string()),
            );
        }
    }
    let global_heartbeats = match config.top(keys::EMIT_HEARTBEATS_ENABLED) {
        Some(property) => flag(property, diagnostics),
        None => true,
    };
    let mut ids = Vec::new();
    for source in &config.clusters {
        for target in &config.clusters {
            if source == target {
                continue;
            }
            let enabled = config
                .flow(source, target, "enabled")
                .map(|p| flag(p, diagnostics))
                .unwrap_or(false);
            let heartbeats = config
                .flow(source, target, keys::EMIT_HEARTBEATS_ENABLED)
                .map(|p| flag(p, diagnostics))
                .unwrap_or(global_heartbeats);
            let targeted =
                options.target_clusters.is_empty() || options.target_clusters.contains(target);
            if (enabled || heartbeats) && targeted {
                ids.push(FlowId {
                    source: source.clone(),
                    target: target.clone(),
                });
            }
        }
    }
    if ids.is_empty() {
        diagnostics.error_without_line(
            Some(keys::CLUSTERS),
            "No source->target replication flows.",
            Some(
                "enable a flow with `<source>-><target>.enabled = true` (and check `--clusters`)"
                    .to_string(),
            ),
        );
    }
    ids
}

/// A boolean that decides whether a flow exists. MM2 uses Java's `parseBoolean` here (no trimming,
/// anything but `true` is false); we accept surrounding whitespace and reject non-booleans loudly.
fn flag(property: &Property, diagnostics: &mut Diagnostics) -> bool {
    match values::parse_bool(&property.value) {
        Ok(value) => {
            if value && !values::java_parse_boolean(&property.value) {
                diagnostics.warn(
                    property,
                    "value has surrounding whitespace; MirrorMaker 2 would read it as `false` here, kafka-mirrord reads `true`",
                    Some("remove the trailing spaces (properties files keep them)".to_string()),
                );
            }
            value
        }
        Err(reason) => {
            diagnostics.error(
                property,
                reason,
                Some("write `true` or `false`".to_string()),
            );
            false
        }
    }
}

fn cluster_plan(config: &Config, alias: &str, diagnostics: &mut Diagnostics) -> ClusterPlan {
    // MM2 reads the forwarding admin per cluster (KIP-787); only the stock one can be honoured.
    if let Some(property) = config.cluster(alias, "forwarding.admin.class") {
        let stock = "org.apache.kafka.clients.admin.ForwardingAdmin";
        if property.value.trim() != stock {
            diagnostics.error(
                property,
                "custom `forwarding.admin.class` is not supported",
                Some(format!("remove it to use `{stock}`")),
            );
        }
    }
    if config
        .cluster_client_key(alias, "bootstrap.servers")
        .is_none()
    {
        diagnostics.error_without_line(
            Some(&format!("{alias}.bootstrap.servers")),
            format!("cluster `{alias}` has no bootstrap servers"),
            Some(format!(
                "add `{alias}.bootstrap.servers = host1:9092,host2:9092`"
            )),
        );
    }
    let java = clients::cluster_admin(config, alias);
    let client_id = format!("kafka-mirrord|{alias}|admin");
    let admin = librdkafka::translate(
        &java,
        Kind::Admin,
        ClientId::Prefixed(&client_id),
        diagnostics,
    );
    ClusterPlan {
        alias: alias.to_string(),
        bootstrap_servers: admin
            .settings
            .get("bootstrap.servers")
            .cloned()
            .unwrap_or_default(),
        admin,
    }
}

/// Reads one flow's connector settings with their defaults, reporting bad values.
struct FlowReader<'a> {
    config: &'a Config,
    id: &'a FlowId,
    diagnostics: &'a mut Diagnostics,
}

impl FlowReader<'_> {
    fn get(&self, key: &str) -> Option<&Property> {
        self.config.connector(&self.id.source, &self.id.target, key)
    }

    fn compatibility(&self) -> Mm2Compatibility {
        self.config.mirrord.mm2_compatibility
    }

    fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(property) = self.get(key).cloned() else {
            return default;
        };
        values::parse_bool(&property.value).unwrap_or_else(|reason| {
            self.diagnostics.error(
                &property,
                reason,
                Some("write `true` or `false`".to_string()),
            );
            default
        })
    }

    fn integer<T>(&mut self, property: Option<Property>, default: T, min: T) -> T
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(property) = property else {
            return default;
        };
        values::parse_integer(&property.value, min).unwrap_or_else(|reason| {
            self.diagnostics.error(
                &property,
                reason,
                Some(format!(
                    "write a whole number, e.g. the default `{default}`"
                )),
            );
            default
        })
    }

    fn long(&mut self, key: &str, default: i64, min: i64) -> i64 {
        let property = self.get(key).cloned();
        self.integer(property, default, min)
    }

    /// A replication factor: -1 (broker default) or at least 1.
    fn replication_factor<T>(&mut self, property: Option<Property>, default: T) -> T
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + From<i8>,
    {
        let value = self.integer(property.clone(), default, T::from(-1));
        if value == T::from(0) {
            if let Some(property) = property {
                self.diagnostics.error(
                    &property,
                    "a replication factor of 0 is invalid",
                    Some("use -1 for the broker default, or 1 or more".to_string()),
                );
            }
            return default;
        }
        value
    }

    fn interval(
        &mut self,
        enabled_key: &str,
        interval_key: &str,
        default_seconds: i64,
    ) -> Interval {
        let enabled = enabled_key.is_empty() || self.bool(enabled_key, true);
        let seconds = self.long(interval_key, default_seconds, 1);
        Interval {
            enabled,
            interval_seconds: seconds as u64,
        }
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key)
            .map(|p| p.value.trim().to_string())
            .unwrap_or_else(|| default.to_string())
    }

    fn list(&self, key: &str, default: &[&str]) -> Vec<String> {
        match self.get(key) {
            Some(property) => values::parse_list(&property.value),
            None => default.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A list with a deprecated alias (docs/mm2-behaviour.md, *Legacy names*): the new name wins; in 4.0 mode the alias is gone.
    fn list_with_legacy(&mut self, key: &str, legacy: &str, default: &[&str]) -> Vec<String> {
        let new = self.get(key).cloned();
        let Some(old) = self.get(legacy).cloned() else {
            return self.list(key, default);
        };
        if self.compatibility() >= Mm2Compatibility::V4_0 {
            self.diagnostics.warn(
                &old,
                format!("`{legacy}` was removed in Kafka 4.0 and is ignored"),
                Some(format!("rename it to `{key}`")),
            );
            return self.list(key, default);
        }
        match new {
            Some(_) => {
                self.diagnostics.warn(
                    &old,
                    format!("ignored because `{key}` is also set"),
                    Some(format!("remove `{legacy}`")),
                );
                self.list(key, default)
            }
            None => {
                self.diagnostics.warn(
                    &old,
                    format!("deprecated alias of `{key}` (removed in Kafka 4.0)"),
                    Some(format!("rename it to `{key}`")),
                );
                values::parse_list(&old.value)
            }
        }
    }

    fn filter(
        &mut self,
        include_key: &str,
        include: Vec<String>,
        exclude_key: &str,
        exclude: Vec<String>,
    ) -> NameFilter {
        match NameFilter::new(include.clone(), exclude.clone()) {
            Ok(filter) => filter,
            Err((is_include, error)) => {
                let key = if is_include { include_key } else { exclude_key };
                let fix = error.fix();
                let message = format!(
                    "pattern `{}` is not a valid regex: {}",
                    error.pattern, error.reason
                );
                // The value may have come from the legacy name: point at the line as written.
                let written = self
                    .get(key)
                    .or_else(|| self.get(&key.replace(".exclude", ".blacklist")))
                    .cloned();
                match written {
                    Some(property) => self.diagnostics.error(&property, message, Some(fix)),
                    None => self
                        .diagnostics
                        .error_without_line(Some(key), message, Some(fix)),
                }
                NameFilter::new(Vec::new(), Vec::new()).expect("empty filters compile")
            }
        }
    }

    fn check_stock_classes(&mut self) {
        for (key, allowed) in STOCK_CLASSES {
            if let Some(property) = self.get(key).cloned() {
                if !allowed.contains(&property.value.trim()) {
                    self.diagnostics.error(
                        &property,
                        format!("custom `{key}` is not supported"),
                        Some(format!("remove it to use `{}`", allowed[0])),
                    );
                }
            }
        }
        for key in ["key.converter", "value.converter", "header.converter"] {
            if let Some(property) = self.get(key).cloned() {
                if property.value.trim() != BYTE_ARRAY_CONVERTER {
                    self.diagnostics.warn(&property, "ignored: kafka-mirrord always copies keys, values and headers byte for byte (ByteArrayConverter)", Some("remove it".to_string()));
                }
            }
        }
        if let Some(property) = self.get("transforms").cloned() {
            if !values::parse_list(&property.value).is_empty() {
                self.diagnostics.error(
                    &property,
                    "single message transforms (SMTs) are not supported",
                    Some("remove `transforms`; kafka-mirrord copies records unchanged".to_string()),
                );
            }
        }
    }

    fn policy(&mut self) -> ReplicationPolicy {
        let class = match self.get("replication.policy.class").cloned() {
            None => PolicyKind::Default,
            Some(property) => PolicyKind::from_class(property.value.trim()).unwrap_or_else(|| {
                let legacy = property.value.trim().ends_with("LegacyReplicationPolicy");
                self.diagnostics.error(
                    &property,
                    if legacy {
                        "`LegacyReplicationPolicy` never existed in Apache Kafka (some guides use the name for MirrorMaker 1's naming, where topics keep their names)"
                    } else {
                        "custom replication policies are not supported"
                    },
                    Some(if legacy {
                        format!(
                            "for MirrorMaker 1's naming use `{}`; for MM2's `<source>.<topic>` use `{}`",
                            policy::IDENTITY_POLICY_CLASS,
                            policy::DEFAULT_POLICY_CLASS
                        )
                    } else {
                        format!(
                            "use `{}` or `{}`",
                            policy::DEFAULT_POLICY_CLASS,
                            policy::IDENTITY_POLICY_CLASS
                        )
                    }),
                );
                PolicyKind::Default
            }),
        };
        // docs/mm2-behaviour.md, *Replication policies*: the separator only changes when the key is present; the internal-topic separator
        // follows it unless `replication.policy.internal.topic.separator.enabled` is false.
        let separator = self
            .get("replication.policy.separator")
            .map(|p| p.value.clone());
        let mut policy = ReplicationPolicy::default_policy(".");
        if let Some(separator) = separator {
            policy.separator = separator.clone();
            policy.internal_separator = separator;
            if self
                .get("replication.policy.internal.topic.separator.enabled")
                .is_some()
                && !self.bool("replication.policy.internal.topic.separator.enabled", true)
            {
                policy.internal_separator = ".".to_string();
            }
        }
        if policy.separator.is_empty() {
            if let Some(property) = self.get("replication.policy.separator").cloned() {
                self.diagnostics.error(
                    &property,
                    "the separator may not be empty",
                    Some("use `.` (the default) or e.g. `_`".to_string()),
                );
            }
        }
        policy.class = class;
        policy.source_alias = self.id.source.clone();
        policy.with_compatibility(self.compatibility())
    }

    fn client(
        &mut self,
        role: ClientRole,
        location: OffsetSyncsLocation,
        heartbeats_only: bool,
        exactly_once: bool,
    ) -> ClientSettings {
        let (source, target) = (&self.id.source, &self.id.target);
        let location_side = match location {
            OffsetSyncsLocation::Source => Side::Source,
            OffsetSyncsLocation::Target => Side::Target,
        };
        let location_name = location.as_str();
        let flow = format!("{source}->{target}");
        let (java, client_id) = match role {
            ClientRole::SourceConsumer => (
                clients::connector_client(
                    self.config,
                    source,
                    target,
                    Side::Source,
                    Kind::Consumer,
                ),
                format!("{flow}|MirrorSourceConnector|replication-consumer"),
            ),
            ClientRole::SourceAdmin => (
                clients::connector_client(self.config, source, target, Side::Source, Kind::Admin),
                format!("{flow}|MirrorSourceConnector|replication-source-admin"),
            ),
            ClientRole::TargetAdmin => (
                clients::connector_client(self.config, source, target, Side::Target, Kind::Admin),
                if heartbeats_only {
                    format!("{flow}|MirrorHeartbeatConnector|heartbeats-target-admin")
                } else {
                    format!("{flow}|MirrorSourceConnector|replication-target-admin")
                },
            ),
            ClientRole::TargetConsumer => (
                clients::connector_client(
                    self.config,
                    source,
                    target,
                    Side::Target,
                    Kind::Consumer,
                ),
                format!("{flow}|MirrorCheckpointConnector|checkpoints-target-consumer"),
            ),
            ClientRole::TargetProducer => (
                clients::worker_producer(self.config, source, target),
                if heartbeats_only {
                    "connector-producer-MirrorHeartbeatConnector".to_string()
                } else {
                    "connector-producer-MirrorSourceConnector".to_string()
                },
            ),
            ClientRole::OffsetSyncsProducer => (
                clients::connector_client(
                    self.config,
                    source,
                    target,
                    location_side,
                    Kind::Producer,
                ),
                format!("{flow}|MirrorSourceConnector|offset-syncs-{location_name}-producer"),
            ),
            ClientRole::OffsetSyncsConsumer => (
                clients::connector_client(
                    self.config,
                    source,
                    target,
                    location_side,
                    Kind::Consumer,
                ),
                format!("{flow}|MirrorCheckpointConnector|offset-syncs-{location_name}-consumer"),
            ),
        };
        let client_id = if role == ClientRole::TargetProducer {
            ClientId::Replaced(&client_id)
        } else {
            ClientId::Prefixed(&client_id)
        };
        let mut settings = librdkafka::translate(&java, role.kind(), client_id, self.diagnostics);
        for (key, value) in librdkafka::role_defaults(role, exactly_once) {
            let set_by_file = std::iter::once(key)
                .chain(librdkafka::aliases_of(key).iter().copied())
                .any(|name| settings.settings.contains_key(name));
            if !set_by_file {
                settings.settings.insert(key.to_string(), value.to_string());
                settings.defaulted.insert(key.to_string());
            }
        }
        for (key, reason, fix) in librdkafka::role_conflicts(role, &settings) {
            let origin = [key, "acks", "request.required.acks"]
                .iter()
                .flat_map(|name| [name.to_string(), format!("librdkafka.{name}")])
                .find_map(|name| java.get(&name).and_then(|s| s.origin.clone()));
            match origin {
                Some(property) => self
                    .diagnostics
                    .error(&property, reason, Some(fix.to_string())),
                None => self.diagnostics.error_without_line(
                    Some(key),
                    format!("{}: {reason}", role.name()),
                    Some(fix.to_string()),
                ),
            }
        }
        for (key, value, why) in librdkafka::role_overrides(role, &settings, exactly_once) {
            if settings
                .settings
                .get(key)
                .is_some_and(|current| current != value)
            {
                settings
                    .notes
                    .push(format!("`{key}` forced to `{value}`: {why}"));
            }
            settings.settings.insert(key.to_string(), value.to_string());
        }
        settings
    }

    fn flow_plan(mut self) -> FlowPlan {
        let (source, target) = (self.id.source.clone(), self.id.target.clone());
        let mode = if self.bool("enabled", false) {
            FlowMode::Replicate
        } else {
            FlowMode::HeartbeatsOnly
        };
        self.check_stock_classes();
        let policy = self.policy();
        let compatibility = self.compatibility();

        // Source connector.
        let topics_include = self.list("topics", &[".*"]);
        let default_exclude = match compatibility {
            Mm2Compatibility::V3_9 => TOPICS_EXCLUDE_3_9,
            Mm2Compatibility::V4_0 => TOPICS_EXCLUDE_4_0,
        };
        let topics_exclude =
            self.list_with_legacy("topics.exclude", "topics.blacklist", default_exclude);
        let topics = self.filter("topics", topics_include, "topics.exclude", topics_exclude);
        if mode == FlowMode::Replicate {
            let topics_key = self.get("topics").cloned();
            for (message, fix) in super::registry::warnings(self.id, &topics, policy.class) {
                match &topics_key {
                    Some(property) => self.diagnostics.warn(property, message, Some(fix)),
                    None => self.diagnostics.warn_without_line(
                        Some(&format!("{}.topics", self.id)),
                        message,
                        Some(fix),
                    ),
                }
            }
        }
        let config_properties_exclude = self.list_with_legacy(
            "config.properties.exclude",
            "config.properties.blacklist",
            CONFIG_PROPERTIES_EXCLUDE,
        );
        if let Err((_, error)) = NameFilter::new(config_properties_exclude.clone(), Vec::new()) {
            if let Some(property) = self.get("config.properties.exclude").cloned() {
                self.diagnostics.error(
                    &property,
                    format!(
                        "pattern `{}` is not a valid regex: {}",
                        error.pattern, error.reason
                    ),
                    None,
                );
            }
        }
        if let Some(property) = self.get("use.incremental.alter.configs").cloned() {
            if !["requested", "required", "never"].contains(&property.value.trim()) {
                self.diagnostics.error(
                    &property,
                    "expected `requested`, `required` or `never`",
                    None,
                );
            }
        }
        let tasks_max_property = self.get("tasks.max").cloned();
        let replication_factor_property = self.get("replication.factor").cloned();
        let source_plan = SourcePlan {
            topics,
            refresh_topics: self.interval(
                "refresh.topics.enabled",
                "refresh.topics.interval.seconds",
                600,
            ),
            sync_topic_configs: self.interval(
                "sync.topic.configs.enabled",
                "sync.topic.configs.interval.seconds",
                600,
            ),
            sync_topic_acls: self.interval(
                "sync.topic.acls.enabled",
                "sync.topic.acls.interval.seconds",
                600,
            ),
            config_properties_exclude,
            use_defaults_from: self.string("use.defaults.from", "target"),
            replication_factor: self.replication_factor(replication_factor_property, 2i32),
            offset_lag_max: self.long("offset.lag.max", 100, 0),
            consumer_poll_timeout_ms: self.long("consumer.poll.timeout.ms", 1000, 1),
            heartbeats_replication_enabled: self.bool("heartbeats.replication.enabled", true),
            tasks_max: self.integer(tasks_max_property, 1u32, 1),
        };

        // Offset syncs.
        let location = match self.get("offset-syncs.topic.location").cloned() {
            None => OffsetSyncsLocation::Source,
            Some(property) => match property.value.trim() {
                "source" => OffsetSyncsLocation::Source,
                "target" => OffsetSyncsLocation::Target,
                _ => {
                    self.diagnostics.error(
                        &property,
                        "expected `source` or `target` (lower case)",
                        None,
                    );
                    OffsetSyncsLocation::Source
                }
            },
        };
        let emit_offset_syncs = self.bool("emit.offset-syncs.enabled", true);
        if !emit_offset_syncs && mode == FlowMode::Replicate {
            let offset_sync_keys: Vec<Property> = self
                .config
                .properties()
                .iter()
                .filter(|p| {
                    let flow_prefix = format!("{source}->{target}.");
                    let key = p.key.strip_prefix(&flow_prefix).unwrap_or(&p.key);
                    (key.starts_with("offset-syncs.") || key.starts_with("offset-syncs-"))
                        && self.get(key).is_some_and(|effective| effective == *p)
                })
                .cloned()
                .collect();
            for property in offset_sync_keys {
                self.diagnostics.error(
                    &property,
                    "MirrorSourceConnector can't setup offset-syncs feature while emit.offset-syncs.enabled set to false",
                    Some("remove the offset-syncs setting or enable `emit.offset-syncs.enabled`".to_string()),
                );
            }
        }
        let offset_syncs_rf_property = self.get("offset-syncs.topic.replication.factor").cloned();
        let offset_syncs = OffsetSyncsPlan {
            enabled: emit_offset_syncs,
            location,
            topic: match location {
                OffsetSyncsLocation::Source => policy.offset_syncs_topic(&target),
                OffsetSyncsLocation::Target => policy.offset_syncs_topic(&source),
            },
            replication_factor: self.replication_factor(offset_syncs_rf_property, 3i16),
        };

        // Checkpoint connector.
        let groups_include = self.list("groups", &[".*"]);
        let groups_exclude =
            self.list_with_legacy("groups.exclude", "groups.blacklist", GROUPS_EXCLUDE);
        let groups = self.filter("groups", groups_include, "groups.exclude", groups_exclude);
        let mut emit_checkpoints = self.interval(
            "emit.checkpoints.enabled",
            "emit.checkpoints.interval.seconds",
            60,
        );
        if mode == FlowMode::Replicate && !emit_checkpoints.enabled {
            if let Some(property) = self.get("emit.checkpoints.enabled").cloned() {
                self.diagnostics.warn(&property, "this flow emits no checkpoints, so consumer groups cannot be moved to the target (MM2 3.9 logs a validation error for it)", None);
            }
        }
        if mode == FlowMode::Replicate && emit_checkpoints.enabled && !emit_offset_syncs {
            if let Some(property) = self.get("emit.offset-syncs.enabled").cloned() {
                self.diagnostics.warn(&property, "without offset syncs no checkpoints can be emitted; checkpointing is off for this flow", None);
            }
            emit_checkpoints.enabled = false;
        }
        let checkpoints_rf_property = self.get("checkpoints.topic.replication.factor").cloned();
        let checkpoints = CheckpointPlan {
            groups,
            emit_checkpoints,
            refresh_groups: self.interval(
                "refresh.groups.enabled",
                "refresh.groups.interval.seconds",
                600,
            ),
            sync_group_offsets: {
                let enabled = self.bool("sync.group.offsets.enabled", false);
                let seconds = self.long("sync.group.offsets.interval.seconds", 60, 1);
                Interval {
                    enabled,
                    interval_seconds: seconds as u64,
                }
            },
            topic: policy.checkpoints_topic(&source),
            replication_factor: self.replication_factor(checkpoints_rf_property, 3i16),
        };

        // Heartbeat connector (runs on every flow, replicating or not).
        let heartbeats_rf_property = self.get("heartbeats.topic.replication.factor").cloned();
        let heartbeats = HeartbeatPlan {
            emit_heartbeats: self.interval(
                "emit.heartbeats.enabled",
                "emit.heartbeats.interval.seconds",
                1,
            ),
            topic: policy.heartbeats_topic().to_string(),
            replication_factor: self.replication_factor(heartbeats_rf_property, 3i16),
        };

        // Connect worker settings: source offsets storage and the group id behind transactional ids.
        let worker = |key: &str| self.config.worker(&target, key).cloned();
        let (offsets_topic, offsets_partitions, offsets_rf, flush_interval, group_id) = (
            worker("offset.storage.topic"),
            worker("offset.storage.partitions"),
            worker("offset.storage.replication.factor"),
            worker("offset.flush.interval.ms"),
            worker("group.id"),
        );
        let (session_timeout, heartbeat_interval) = (
            worker("session.timeout.ms"),
            worker("heartbeat.interval.ms"),
        );
        let offsets_rf_set = offsets_rf.is_some();
        let offset_storage = OffsetStoragePlan {
            topic: offsets_topic
                .map(|p| p.value.trim().to_string())
                .unwrap_or_else(|| format!("mm2-offsets.{source}.internal")),
            partitions: self.integer(offsets_partitions, 25i32, 1),
            replication_factor: self.replication_factor(offsets_rf, 3i16),
            // MM2 flushes every 60 s; kafka-mirrord every 10 s by default, so a crash re-sends less.
            flush_interval_ms: self.integer(flush_interval, 10_000i64, 1),
            history_topic: format!("mm2-mirrord-offset-history.{source}.internal"),
            takeover: self.config.mirrord.takeover.clone(),
        };
        let group_id = group_id
            .map(|p| p.value.trim().to_string())
            .unwrap_or_else(|| format!("{source}-mm2"));
        let exactly_once = self.exactly_once(&group_id);
        let membership = MembershipPlan {
            group_id: format!("{group_id}-mirrord"),
            topic: format!("mm2-mirrord-tasks.{source}.internal"),
            partitions: match mode {
                FlowMode::Replicate => source_plan.tasks_max.max(1) as i32,
                FlowMode::HeartbeatsOnly => 1,
            },
            replication_factor: offsets_rf_set.then_some(offset_storage.replication_factor),
            session_timeout_ms: self.integer(session_timeout, 10_000u64, 1_000),
            heartbeat_interval_ms: self.integer(heartbeat_interval, 3_000u64, 100),
        };

        let admin_timeout_ms = self.long("admin.timeout.ms", 60_000, 1);
        let roles: &[ClientRole] = match mode {
            FlowMode::HeartbeatsOnly => &[
                ClientRole::TargetProducer,
                ClientRole::TargetAdmin,
                ClientRole::TargetConsumer,
            ],
            FlowMode::Replicate => &[
                ClientRole::SourceConsumer,
                ClientRole::TargetProducer,
                ClientRole::SourceAdmin,
                ClientRole::TargetAdmin,
                ClientRole::TargetConsumer,
                ClientRole::OffsetSyncsProducer,
                ClientRole::OffsetSyncsConsumer,
            ],
        };
        let mut client_settings = BTreeMap::new();
        for role in roles {
            if *role == ClientRole::OffsetSyncsProducer && !offset_syncs.enabled {
                continue;
            }
            if *role == ClientRole::OffsetSyncsConsumer && !checkpoints.emit_checkpoints.enabled {
                continue;
            }
            let settings = self.client(
                *role,
                location,
                mode == FlowMode::HeartbeatsOnly,
                exactly_once.enabled,
            );
            client_settings.insert(*role, settings);
        }
        if exactly_once.enabled && mode == FlowMode::Replicate {
            let isolation = client_settings
                .get(&ClientRole::SourceConsumer)
                .and_then(|c| c.settings.get("isolation.level"))
                .map(String::as_str);
            if isolation != Some("read_committed") {
                self.warn_isolation();
            }
        }

        FlowPlan {
            id: self.id.clone(),
            mode,
            replication_policy: policy,
            source: source_plan,
            offset_syncs,
            checkpoints,
            heartbeats,
            offset_storage,
            exactly_once,
            membership,
            admin_timeout_ms,
            clients: client_settings,
        }
    }

    /// docs/mm2-behaviour.md, *Exactly once*: on when the target's worker has `exactly.once.source.support=enabled`, or (our
    /// extension) when the flow sets `exactly.once.support=enabled`.
    fn exactly_once(&mut self, group_id: &str) -> ExactlyOncePlan {
        let (source, target) = (self.id.source.clone(), self.id.target.clone());
        let mut enabled = false;
        let mut reason = "off (at-least-once)".to_string();
        if let Some(property) = self
            .config
            .cluster(&target, "exactly.once.source.support")
            .cloned()
        {
            match property.value.trim().to_ascii_lowercase().as_str() {
                "enabled" => {
                    enabled = true;
                    reason = format!("`{}` = enabled", property.key);
                }
                "disabled" | "preparing" => {}
                _ => self.diagnostics.error(
                    &property,
                    "expected `disabled`, `preparing` or `enabled`",
                    None,
                ),
            }
        }
        if let Some(property) = self
            .config
            .flow(&source, &target, "exactly.once.support")
            .cloned()
        {
            match property.value.trim().to_ascii_lowercase().as_str() {
                "enabled" => {
                    enabled = true;
                    reason = format!("`{}` = enabled", property.key);
                }
                "required" if enabled => {
                    let isolation = self.source_isolation_level();
                    if isolation.as_deref() != Some("read_committed") {
                        self.diagnostics.error(
                            &property,
                            "exactly.once.support=required needs the source consumer's isolation.level=read_committed",
                            Some(format!("add `{source}.consumer.isolation.level = read_committed`")),
                        );
                    }
                }
                "requested" | "required" => {}
                _ => self.diagnostics.error(
                    &property,
                    "expected `requested`, `required` or `enabled`",
                    None,
                ),
            }
        }
        ExactlyOncePlan {
            enabled,
            reason,
            transactional_id_prefix: format!("{group_id}-MirrorSourceConnector"),
        }
    }

    fn source_isolation_level(&self) -> Option<String> {
        let java = clients::connector_client(
            self.config,
            &self.id.source,
            &self.id.target,
            Side::Source,
            Kind::Consumer,
        );
        java.get("isolation.level")
            .map(|s| s.value.trim().to_string())
    }

    fn warn_isolation(&mut self) {
        let key = format!("{}.consumer.isolation.level", self.id.source);
        let message = format!(
            "flow `{}` is exactly-once but its source consumer reads uncommitted records, so aborted source transactions would be copied",
            self.id
        );
        let fix = Some(format!("set `{key} = read_committed`"));
        match self.config.top(&key).cloned() {
            Some(property) => self.diagnostics.warn(&property, message, fix),
            None => self.diagnostics.warn_without_line(Some(&key), message, fix),
        }
    }
}
