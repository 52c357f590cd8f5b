//! File-level checks: `clusters`, the `mirrord.*` settings, and keys that MM2 would silently ignore.

use std::net::SocketAddr;

use super::diagnostics::Diagnostics;
use super::keys::{self, mirrord};
use super::properties::RawProperties;
use super::values;
use super::{Config, ConnectTakeover, LogFormat, MirrordSettings, Mm2Compatibility};

/// The cluster aliases: required, non-empty names, treated as a set.
pub(super) fn clusters(props: &RawProperties, diagnostics: &mut Diagnostics) -> Vec<String> {
    let Some(property) = props.get(keys::CLUSTERS) else {
        diagnostics.error_without_line(
            Some(keys::CLUSTERS),
            "missing required key `clusters` (the cluster aliases)",
            Some("add for example `clusters = source, target`".to_string()),
        );
        return Vec::new();
    };
    let mut aliases = values::parse_list(&property.value);
    if aliases.iter().any(|alias| alias.is_empty()) || aliases.is_empty() {
        diagnostics.error(
            property,
            "cluster aliases must be non-empty",
            Some("list the aliases separated by commas, e.g. `clusters = A, B`".to_string()),
        );
    }
    for alias in &aliases {
        if alias.contains("->") || alias.chars().any(char::is_whitespace) {
            diagnostics.error(
                property,
                format!("cluster alias `{alias}` may not contain `->` or whitespace"),
                Some("use simple names such as `primary`, `dr`, `us-east`; note there are no inline comments in properties files".to_string()),
            );
        }
    }
    aliases.retain(|alias| !alias.is_empty());
    aliases.sort();
    aliases.dedup();
    aliases
}

/// The `mirrord.*` settings; unknown keys there are errors with a "did you mean" hint.
pub(super) fn mirrord_settings(
    props: &RawProperties,
    diagnostics: &mut Diagnostics,
) -> MirrordSettings {
    let mut settings = MirrordSettings::default();
    let (mut takeover_topic, mut takeover_connectors) = (None, None);
    for (_, property) in props.with_prefix(keys::MIRRORD_PREFIX) {
        let value = property.value.trim();
        match property.key.as_str() {
            mirrord::HTTP_LISTEN => {
                if value.eq_ignore_ascii_case("off") {
                    settings.http_listen = None;
                } else {
                    match value.parse::<SocketAddr>() {
                        Ok(address) => settings.http_listen = Some(address),
                        Err(_) => diagnostics.error(
                            property,
                            "expected `host:port` with an IP address, or `off`",
                            Some(
                                "e.g. `mirrord.http.listen = 127.0.0.1:9464` or `0.0.0.0:9464`"
                                    .to_string(),
                            ),
                        ),
                    }
                }
            }
            mirrord::LOG_LEVEL => match tracing_subscriber::EnvFilter::try_new(value) {
                Ok(_) => settings.log_level = Some(value.to_string()),
                Err(error) => diagnostics.error(
                    property,
                    format!("invalid log filter: {error}"),
                    Some(
                        "use one of `error`, `warn`, `info`, `debug`, `trace` or a RUST_LOG filter"
                            .to_string(),
                    ),
                ),
            },
            mirrord::LOG_FORMAT => match value {
                "text" => settings.log_format = LogFormat::Text,
                "json" => settings.log_format = LogFormat::Json,
                _ => diagnostics.error(property, "expected `text` or `json`", None),
            },
            mirrord::SHUTDOWN_TIMEOUT_MS => match values::parse_integer::<u64>(value, 1) {
                Ok(ms) => settings.shutdown_timeout_ms = ms,
                Err(reason) => diagnostics.error(
                    property,
                    reason,
                    Some("give milliseconds, e.g. `30000`".to_string()),
                ),
            },
            mirrord::MM2_COMPATIBILITY => match value {
                "3.9" | "3" => settings.mm2_compatibility = Mm2Compatibility::V3_9,
                "4.0" | "4" => settings.mm2_compatibility = Mm2Compatibility::V4_0,
                _ => diagnostics.error(
                    property,
                    "expected `3.9` or `4.0`",
                    Some(
                        "use `3.9` to match MirrorMaker 2 from Kafka 3.x, `4.0` for Kafka 4.x"
                            .to_string(),
                    ),
                ),
            },
            mirrord::TAKEOVER_CONNECT_OFFSETS_TOPIC => {
                let topic = value.trim();
                if topic.is_empty() {
                    diagnostics.error(
                        property,
                        "empty topic name",
                        Some("give the Connect worker's `offset.storage.topic`, e.g. `connect-offsets`".to_string()),
                    );
                } else {
                    takeover_topic = Some(topic.to_string());
                }
            }
            mirrord::TAKEOVER_CONNECT_CONNECTORS => {
                let names: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    diagnostics.error(
                        property,
                        "no connector name",
                        Some("give the MirrorSourceConnector names of the Connect cluster, comma-separated".to_string()),
                    );
                } else {
                    takeover_connectors = Some((names, property.clone()));
                }
            }
            unknown => {
                let fix = keys::did_you_mean(unknown, mirrord::ALL)
                    .map(|candidate| format!("did you mean `{candidate}`?"))
                    .or_else(|| Some(format!("known keys: {}", mirrord::ALL.join(", "))));
                diagnostics.error(property, "unknown kafka-mirrord setting", fix);
            }
        }
    }
    match (takeover_topic, takeover_connectors) {
        (Some(offsets_topic), connectors) => {
            settings.takeover = Some(ConnectTakeover {
                offsets_topic,
                connectors: connectors
                    .map(|(names, _)| names)
                    .unwrap_or_else(|| vec!["MirrorSourceConnector".to_string()]),
            })
        }
        (None, Some((_, property))) => diagnostics.error(
            &property,
            "connector names without the Connect cluster's offsets topic",
            Some(format!(
                "also set `{}` (the Connect worker's `offset.storage.topic`)",
                mirrord::TAKEOVER_CONNECT_OFFSETS_TOPIC
            )),
        ),
        (None, None) => {}
    }
    settings
}

/// Warns about keys that MM2 dedicated mode reads nowhere, so "my setting has no effect" is visible.
pub(super) fn classify_keys(config: &Config, diagnostics: &mut Diagnostics) {
    for property in config.properties().iter() {
        let key = property.key.as_str();
        if key.starts_with(keys::MIRRORD_PREFIX) || key.starts_with(keys::CONFIG_PROVIDERS) {
            continue;
        }
        if let Some((source, rest)) = key.split_once("->") {
            let target = config
                .clusters
                .iter()
                .find(|alias| rest.starts_with(&format!("{alias}.")));
            if !config.clusters.iter().any(|alias| alias == source) || target.is_none() {
                diagnostics.warn(
                    property,
                    "flow key for a pair of clusters that is not in `clusters`; it is ignored",
                    Some(format!(
                        "check the aliases against `clusters = {}` (they are case-sensitive)",
                        config.clusters.join(", ")
                    )),
                );
            }
            continue;
        }
        if let Some(alias) = config
            .clusters
            .iter()
            .find(|alias| key.starts_with(&format!("{alias}.")))
        {
            let setting = &key[alias.len() + 1..];
            if let Some((message, fix)) = cluster_key_problem(alias, setting, &config.clusters) {
                diagnostics.warn(property, message, Some(fix));
            }
            continue;
        }
        if keys::DRIVER_KEYS.contains(&key)
            || keys::is_client_key(key)
            || keys::is_connector_key(key)
            || keys::is_worker_overlay_key(key)
        {
            continue;
        }
        let (message, fix) = if ["consumer.", "producer.", "admin."]
            .iter()
            .any(|p| key.starts_with(p))
        {
            (
                "MM2 dedicated mode drops top-level client settings; it has no effect".to_string(),
                format!("set it per cluster, e.g. `<alias>.{key}`, or per flow, e.g. `<source>-><target>.{key}`"),
            )
        } else if keys::FLOW_ONLY_KEYS.contains(&key) {
            (
                "MM2 dedicated mode only reads this setting per flow; at top level it has no effect".to_string(),
                format!("set `<source>-><target>.{key}`"),
            )
        } else if keys::WORKER_KEYS.contains(&key) {
            (
                "MM2 reads this Connect worker setting per target cluster only; at top level it has no effect".to_string(),
                format!("set `<target alias>.{key}`"),
            )
        } else if key.contains("retention") {
            (
                "MM2 has no retention setting: it creates its heartbeats, checkpoints and offset-syncs topics compacted, and remote topics take the source topic's configs".to_string(),
                "remove it; to change a topic's retention, alter the topic on its cluster (`kafka-configs.sh --alter --entity-type topics --add-config retention.ms=…`)".to_string(),
            )
        } else {
            let known: Vec<&str> = keys::CONNECTOR_KEYS
                .iter()
                .chain(keys::CLIENT_KEYS)
                .copied()
                .collect();
            let hint = keys::did_you_mean(key, &known)
                .map(|candidate| format!("did you mean `{candidate}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "cluster keys start with one of the aliases ({}) and a dot",
                        config.clusters.join(", ")
                    )
                });
            (
                "unknown key, ignored (MM2 ignores it too)".to_string(),
                hint,
            )
        };
        diagnostics.warn(property, message, Some(fix));
    }
}

/// librdkafka's names of settings people copy from librdkafka-based tools, with MM2's (Java) name.
const LIBRDKAFKA_NAMES: &[(&str, &str)] = &[
    ("sasl.mechanisms", "sasl.mechanism"),
    ("sasl.username", "sasl.jaas.config"),
    ("sasl.password", "sasl.jaas.config"),
    (
        "sasl.oauthbearer.method",
        "sasl.oauthbearer.token.endpoint.url",
    ),
    (
        "sasl.oauthbearer.client.id",
        "sasl.oauthbearer.client.credentials.client.id",
    ),
    (
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.client.credentials.client.secret",
    ),
    ("ssl.ca.location", "ssl.truststore.location"),
    ("ssl.certificate.location", "ssl.keystore.location"),
    ("ssl.key.location", "ssl.keystore.location"),
];

/// What is wrong with the cluster setting `<alias>.<setting>`, if anything: MM2 reads client keys,
/// Connect worker keys and the client overrides (`consumer.`, `producer.`, `admin.`) per cluster;
/// anything else has no effect there.
fn cluster_key_problem(
    alias: &str,
    setting: &str,
    clusters: &[String],
) -> Option<(String, String)> {
    let known = keys::is_client_key(setting)
        || keys::WORKER_KEYS.contains(&setting)
        || keys::is_worker_overlay_key(setting)
        || ["consumer.", "producer.", "admin.", "librdkafka."]
            .iter()
            .any(|prefix| setting.starts_with(prefix));
    if known {
        return None;
    }
    if setting == "exactly.once.support" {
        return Some((
            "`exactly.once.support` is a per-flow connector setting; per cluster it has no effect, so exactly-once stays off".to_string(),
            format!("set `{alias}.exactly.once.source.support = enabled` (every flow into `{alias}`) or `<source>->{alias}.exactly.once.support = enabled` (one flow)"),
        ));
    }
    if let Some(rest) = setting.strip_prefix("cluster.") {
        // Connect-style names (`source.cluster.sasl.jaas.config`) from MM2-on-Connect configs.
        return Some((
            format!("`{alias}.cluster.{rest}` is how a connector on a Connect cluster names its cluster's settings; dedicated mode does not read it"),
            format!("write `{alias}.{rest}`"),
        ));
    }
    if keys::is_connector_key(setting) || keys::FLOW_ONLY_KEYS.contains(&setting) {
        return Some((
            format!("MM2 does not read connector setting `{setting}` per cluster; it has no effect"),
            format!("set `<source>->{alias}.{setting}` or `{alias}->...` for one flow, or top-level `{setting}` for all flows"),
        ));
    }
    if let Some((_, java_name)) = LIBRDKAFKA_NAMES
        .iter()
        .find(|(native, _)| *native == setting)
    {
        return Some((
            format!("`{setting}` is librdkafka's name; MM2 files use Java client names, and kafka-mirrord translates them"),
            format!("write `{alias}.{java_name}` (or `{alias}.librdkafka.{setting}` to hand it to librdkafka as is)"),
        ));
    }
    let candidates: Vec<&str> = keys::CLIENT_KEYS
        .iter()
        .chain(keys::WORKER_KEYS)
        .copied()
        .collect();
    let fix = match keys::did_you_mean(setting, &candidates) {
        Some(candidate) => format!("did you mean `{alias}.{candidate}`?"),
        None => format!(
            "per cluster MM2 reads client settings (`{alias}.security.protocol`, ...), Connect worker settings (`{alias}.offset.flush.interval.ms`, ...) and client overrides (`{alias}.consumer.*`, `{alias}.producer.*`, `{alias}.admin.*`); aliases: {}",
            clusters.join(", ")
        ),
    };
    Some((
        format!("`{setting}` is not a client, worker or client-override setting kafka-mirrord reads for cluster `{alias}`; it has no effect"),
        fix,
    ))
}

/// Values that still hold a shell variable (`$NAME`, `${NAME}`): the properties file is not
/// expanded by a shell (guides set `old.bootstrap.servers=$OLD_SERVERS`), so the literal text would
/// be used as a host name or password. An error with the `${env:NAME}` fix. Checked per
/// comma-separated item and per quoted string (JAAS lines).
pub(super) fn shell_placeholders(config: &Config, diagnostics: &mut Diagnostics) {
    static VARIABLE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let variable = VARIABLE.get_or_init(|| {
        regex::Regex::new(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$")
            .expect("the pattern is valid")
    });
    for property in config.properties().iter() {
        let quoted = property.value.split('"').skip(1).step_by(2);
        let items = property.value.split(',').map(str::trim);
        let Some(found) = items.chain(quoted).find(|item| variable.is_match(item)) else {
            continue;
        };
        let name = found
            .trim_start_matches('$')
            .trim_matches(|c| c == '{' || c == '}');
        let shown = if super::secrets::is_secret_key(&property.key) {
            "a shell variable".to_string()
        } else {
            format!("`{found}`")
        };
        diagnostics.error(
            property,
            format!("{shown} is not expanded: the properties file is not read by a shell"),
            Some(format!(
                "write `${{env:{name}}}` and declare `config.providers = env` with `config.providers.env.class = org.apache.kafka.common.config.provider.EnvVarConfigProvider` (under systemd, set {name} in /etc/default/kafka-mirrord), or put the value itself"
            )),
        );
    }
}
