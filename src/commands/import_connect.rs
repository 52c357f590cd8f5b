//! `kafka-mirrord import-connect`: turns the configs of MirrorMaker 2's three connectors as run on
//! a Kafka Connect cluster (MirrorSourceConnector, MirrorCheckpointConnector,
//! MirrorHeartbeatConnector; JSON as the Connect REST API takes it, or properties as the KubeDB
//! and Strimzi guides show them) into one dedicated-mode properties file, with comments and the
//! takeover settings that make the first start resume where the connectors stopped
//! (docs/migrate-from-connect.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::keys::{self, mirrord};
use crate::config::properties::RawProperties;
use crate::config::secrets::{is_secret_key, MASK};
use crate::exit;

/// Which of MM2's connectors a config is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Source,
    Checkpoint,
    Heartbeat,
}

impl Role {
    fn of(class: &str) -> Option<Role> {
        match class.trim().rsplit('.').next()? {
            "MirrorSourceConnector" => Some(Role::Source),
            "MirrorCheckpointConnector" => Some(Role::Checkpoint),
            "MirrorHeartbeatConnector" => Some(Role::Heartbeat),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Source => "MirrorSourceConnector",
            Role::Checkpoint => "MirrorCheckpointConnector",
            Role::Heartbeat => "MirrorHeartbeatConnector",
        }
    }
}

/// One connector config, as read.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Where it came from, for messages.
    pub origin: String,
    /// The connector's name (`name`, or the JSON document's top-level `name`).
    pub name: Option<String>,
    pub settings: BTreeMap<String, String>,
}

/// Reads a connector config: a JSON object (`{"name": …, "config": {…}}` as POSTed to Connect, or
/// the bare `config` object) or a properties file.
pub fn read_connector(path: &Path) -> Result<ConnectorConfig, String> {
    let bytes = crate::config::files::read_regular(path, crate::config::files::MAX_FILE_BYTES)
        .map_err(|error| format!("{}: cannot read: {error}", path.display()))?;
    parse_connector(&bytes, &path.display().to_string())
}

pub fn parse_connector(bytes: &[u8], origin: &str) -> Result<ConnectorConfig, String> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim_start().starts_with('{') {
        let document: serde_json::Value = serde_json::from_str(&text)
            .map_err(|error| format!("{origin}: not valid JSON: {error}"))?;
        let (name, config) = match document.get("config") {
            Some(config) => (
                document
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(str::to_string),
                config,
            ),
            None => (None, &document),
        };
        let object = config
            .as_object()
            .ok_or_else(|| format!("{origin}: `config` is not a JSON object"))?;
        let mut settings = BTreeMap::new();
        for (key, value) in object {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.to_string(),
                _ => {
                    return Err(format!(
                        "{origin}: `{key}`: expected a string, number or boolean"
                    ))
                }
            };
            settings.insert(key.clone(), value);
        }
        let name = name.or_else(|| settings.get("name").cloned());
        return Ok(ConnectorConfig {
            origin: origin.to_string(),
            name,
            settings,
        });
    }
    let properties = RawProperties::parse(bytes, Path::new(origin)).map_err(|e| e.to_string())?;
    let settings: BTreeMap<String, String> = properties
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    Ok(ConnectorConfig {
        origin: origin.to_string(),
        name: settings.get("name").cloned(),
        settings,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Target,
}

/// Connector-config prefixes of client settings → (cluster, client prefix in dedicated mode).
const CLIENT_PREFIXES: &[(&str, Side, &str)] = &[
    ("source.cluster.", Side::Source, ""),
    ("target.cluster.", Side::Target, ""),
    ("consumer.override.", Side::Source, "consumer."),
    ("producer.override.", Side::Target, "producer."),
    ("admin.override.", Side::Target, "admin."),
    ("source.consumer.", Side::Source, "consumer."),
    ("source.admin.", Side::Source, "admin."),
    ("target.producer.", Side::Target, "producer."),
    ("target.admin.", Side::Target, "admin."),
];

/// One dedicated-mode line, with the comment that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    value: String,
    /// Which connector config (and key) it came from.
    from: String,
}

/// The converted file: its settings by key, comments and what needs a person's attention.
#[derive(Debug, Default)]
pub struct Conversion {
    lines: BTreeMap<String, Line>,
    /// Keys that have no dedicated-mode meaning, with why (written as comments).
    dropped: Vec<String>,
    /// Problems that make the result wrong unless a person decides (printed on stderr too).
    pub warnings: Vec<String>,
    /// Conflicting values for one key, or configs that are not MM2's: the conversion fails.
    pub errors: Vec<String>,
    source: String,
    target: String,
    /// (connector name, role) of every config read.
    connectors: Vec<(String, Role)>,
}

/// Converts the connector configs of one source→target pair. `source_connector_name` names the
/// MirrorSourceConnector when its config does not (a properties file from a guide has no `name`).
pub fn convert(configs: &[ConnectorConfig], source_connector_name: Option<&str>) -> Conversion {
    let mut out = Conversion::default();
    let mut aliases: Option<(String, String)> = None;
    for config in configs {
        let Some(role) = config
            .settings
            .get("connector.class")
            .and_then(|class| Role::of(class))
        else {
            out.errors.push(format!(
                "{}: `connector.class` is {}: not one of MirrorMaker 2's connectors (MirrorSourceConnector, MirrorCheckpointConnector, MirrorHeartbeatConnector)",
                config.origin,
                config.settings.get("connector.class").map_or("missing".to_string(), |c| format!("`{c}`"))
            ));
            continue;
        };
        let alias = |key: &str, default: &str| {
            config
                .settings
                .get(key)
                .map_or(default.to_string(), |a| a.trim().to_string())
        };
        let pair = (
            alias("source.cluster.alias", "source"),
            alias("target.cluster.alias", "target"),
        );
        match &aliases {
            Some(known) if *known != pair => out.errors.push(format!(
                "{}: flow {}->{} differs from {}->{} of the other configs: convert each source/target pair on its own",
                config.origin, pair.0, pair.1, known.0, known.1
            )),
            Some(_) => {}
            None => aliases = Some(pair.clone()),
        }
        let name = match (role, source_connector_name, &config.name) {
            (Role::Source, Some(given), _) => given.to_string(),
            (_, _, Some(name)) => name.clone(),
            (Role::Source, None, None) => {
                out.warnings.push(format!(
                    "{}: the source connector's name is not in its config; Connect stored its progress under that name: give it with --source-connector-name NAME (assumed `{}`)",
                    config.origin,
                    role.name()
                ));
                role.name().to_string()
            }
            (_, _, None) => role.name().to_string(),
        };
        out.connectors.push((name, role));
        for (key, value) in &config.settings {
            out.add(config, role, &pair, key, value);
        }
    }
    if let Some((source, target)) = aliases {
        out.source = source;
        out.target = target;
    } else if out.errors.is_empty() {
        out.errors.push(
            "no connector config given: pass the JSON or properties file of each connector"
                .to_string(),
        );
    }
    out
}

impl Conversion {
    fn add(
        &mut self,
        config: &ConnectorConfig,
        role: Role,
        (source, target): &(String, String),
        key: &str,
        value: &str,
    ) {
        let from = format!("{} `{key}`", config.origin);
        let flow = format!("{source}->{target}");
        let drop = |reason: &str| format!("{key} = {} ({reason})", shown(key, value));
        let client_key = CLIENT_PREFIXES.iter().find_map(|(prefix, side, client)| {
            let rest = key.strip_prefix(prefix)?;
            let alias = if *side == Side::Source {
                source
            } else {
                target
            };
            Some(format!("{alias}.{client}{rest}"))
        });
        let destination = if let Some(destination) = client_key {
            if key.ends_with(".cluster.alias") {
                return;
            }
            destination
        } else if let Some(rest) = key.strip_prefix("consumer.") {
            if key == "consumer.poll.timeout.ms" {
                format!("{flow}.{key}")
            } else {
                format!("{source}.consumer.{rest}")
            }
        } else {
            match key {
                "name"
                | "connector.class"
                | "task.assigned.partitions"
                | "task.assigned.groups"
                | "task.index" => return,
                "key.converter" | "value.converter" | "header.converter" => {
                    if !value.contains("ByteArrayConverter") && key != "header.converter" {
                        self.warnings.push(format!(
                            "{from}: `{value}`: MirrorMaker 2 should copy bytes (ByteArrayConverter); kafka-mirrord always copies keys and values byte for byte"
                        ));
                    }
                    self.dropped
                        .push(drop("dedicated mode copies bytes unchanged"));
                    return;
                }
                _ if key.starts_with("key.converter.")
                    || key.starts_with("value.converter.")
                    || key.starts_with("header.converter.")
                    || key.starts_with("errors.")
                    || key == "config.action.reload" =>
                {
                    self.dropped
                        .push(drop("a Connect framework setting with no effect here"));
                    return;
                }
                _ if key == "transforms"
                    || key == "predicates"
                    || key.starts_with("transforms.")
                    || key.starts_with("predicates.") =>
                {
                    self.warnings.push(format!(
                        "{from}: single message transforms are not supported: records are copied unchanged"
                    ));
                    self.dropped
                        .push(drop("not supported: records are copied unchanged"));
                    return;
                }
                "exactly.once.support" => {
                    self.dropped.push(drop(
                        "on Connect it needs the worker's exactly.once.source.support; here that key alone turns exactly-once on",
                    ));
                    if value.trim() == "required" || value.trim() == "requested" {
                        self.warnings.push(format!(
                            "{from}: exactly-once was {value} on Connect: it was on only if the Connect workers set `exactly.once.source.support=enabled`; if they did, add `{target}.exactly.once.source.support = enabled`"
                        ));
                    }
                    return;
                }
                _ if keys::is_connector_key(key) || keys::FLOW_ONLY_KEYS.contains(&key) => {
                    format!("{flow}.{key}")
                }
                _ => {
                    self.warnings.push(format!(
                        "{from}: not a MirrorMaker 2 connector setting; left out (commented in the output)"
                    ));
                    self.dropped
                        .push(drop("unknown to MirrorMaker 2's connectors"));
                    return;
                }
            }
        };
        let line = Line {
            value: value.to_string(),
            from: format!("{} ({})", config.origin, role.name()),
        };
        match self.lines.get(&destination) {
            Some(existing) if existing.value.trim() != value.trim() => {
                self.errors.push(format!(
                    "`{destination}`: {} says `{}`, {} says `{}`: the connectors disagree; make them equal first",
                    existing.from,
                    shown(key, &existing.value),
                    line.from,
                    shown(key, value)
                ));
            }
            Some(_) => {}
            None => {
                self.lines.insert(destination, line);
            }
        }
    }

    fn has_role(&self, role: Role) -> bool {
        self.connectors.iter().any(|(_, r)| *r == role)
    }

    /// The dedicated-mode file. `mask` replaces secret values (for a terminal).
    pub fn render(&self, offsets_topic: &str, mask: bool) -> String {
        let (source, target) = (&self.source, &self.target);
        let flow = format!("{source}->{target}");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Converted by `kafka-mirrord import-connect` from MirrorMaker 2's connectors on Kafka Connect:"
        );
        for (name, role) in &self.connectors {
            let _ = writeln!(out, "#   {} `{name}`", role.name());
        }
        if mask {
            let _ = writeln!(out, "# Secret values are shown as {MASK}: write the file with --output FILE to keep them.");
        }
        let _ = writeln!(out, "# Check it with `kafka-mirrord check FILE`; docs/migrate-from-connect.md has the whole move.");
        let _ = writeln!(out);
        let _ = writeln!(out, "clusters = {source}, {target}");
        let _ = writeln!(out, "{flow}.enabled = {}", self.has_role(Role::Source));
        let mut extra: Vec<(String, String, &str)> = Vec::new();
        if !self.has_role(Role::Heartbeat)
            && !self
                .lines
                .contains_key(&format!("{flow}.{}", keys::EMIT_HEARTBEATS_ENABLED))
        {
            extra.push((
                format!("{flow}.{}", keys::EMIT_HEARTBEATS_ENABLED),
                "false".into(),
                "no MirrorHeartbeatConnector was given: none ran on Connect",
            ));
        }
        // Dedicated mode runs a heartbeat connector for every pair of clusters, the reverse one
        // included: it would write heartbeats into the source cluster, which Connect never did.
        extra.push((
            format!("{target}->{source}.{}", keys::EMIT_HEARTBEATS_ENABLED),
            "false".into(),
            "dedicated mode would also send heartbeats the other way, into the source cluster",
        ));
        if self.has_role(Role::Source)
            && !self.has_role(Role::Checkpoint)
            && !self
                .lines
                .contains_key(&format!("{flow}.emit.checkpoints.enabled"))
        {
            extra.push((
                format!("{flow}.emit.checkpoints.enabled"),
                "false".into(),
                "no MirrorCheckpointConnector was given: no checkpoints were emitted on Connect",
            ));
        }
        let mut bytes = Vec::new();
        let mut writer = java_properties::PropertiesWriter::new(&mut bytes);
        let _ = writer.set_kv_separator(" = ");
        let _ = writer.set_comment_prefix("#");
        let mut last_prefix = String::new();
        for (key, line) in &self.lines {
            let prefix = key.split('.').next().unwrap_or_default().to_string();
            if prefix != last_prefix {
                let _ = writer.write_comment("");
                last_prefix = prefix;
            }
            let value = if mask && is_secret_key(key) {
                MASK.to_string()
            } else {
                line.value.clone()
            };
            let _ = writer.write_comment(&format!(" from {}", line.from));
            let _ = writer.write(key, &value);
        }
        let _ = writer.write_comment("");
        for (key, value, why) in &extra {
            let _ = writer.write_comment(&format!(" {why}"));
            let _ = writer.write(key, value);
        }
        if self.has_role(Role::Source) {
            let _ = writer.write_comment("");
            let _ = writer.write_comment(" Takeover: the first start reads the progress the source connector stored in the Connect");
            let _ = writer.write_comment(" cluster's offsets topic (its workers' offset.storage.topic, on the target cluster), so");
            let _ = writer.write_comment(" nothing is copied twice. Stop the connectors first; see docs/migrate-from-connect.md.");
            let _ = writer.write(mirrord::TAKEOVER_CONNECT_OFFSETS_TOPIC, offsets_topic);
            let sources: Vec<&str> = self
                .connectors
                .iter()
                .filter(|(_, role)| *role == Role::Source)
                .map(|(name, _)| name.as_str())
                .collect();
            let _ = writer.write(mirrord::TAKEOVER_CONNECT_CONNECTORS, &sources.join(", "));
        }
        if !self.dropped.is_empty() {
            let _ = writer.write_comment("");
            let _ = writer.write_comment(" Not converted:");
            let dropped: std::collections::BTreeSet<&String> = self.dropped.iter().collect();
            for dropped in dropped {
                let _ = writer.write_comment(&format!("   {dropped}"));
            }
        }
        let _ = writer.finish();
        drop(writer);
        out.push_str(&String::from_utf8_lossy(&bytes));
        out
    }
}

/// A value as it may be shown in a message.
fn shown(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        MASK.to_string()
    } else {
        value.to_string()
    }
}

/// The verb: converts `files`, prints or writes the result. Exit 0, or 64 for unusable input.
pub fn run(
    files: &[PathBuf],
    offsets_topic: &str,
    source_connector_name: Option<&str>,
    output: Option<&Path>,
) -> u8 {
    let mut configs = Vec::new();
    for file in files {
        match read_connector(file) {
            Ok(config) => configs.push(config),
            Err(error) => {
                eprintln!("kafka-mirrord: {error}");
                return exit::CONFIG_ERROR;
            }
        }
    }
    let conversion = convert(&configs, source_connector_name);
    for warning in &conversion.warnings {
        eprintln!("warning: {warning}");
    }
    if !conversion.errors.is_empty() {
        for error in &conversion.errors {
            eprintln!("error: {error}");
        }
        return exit::CONFIG_ERROR;
    }
    match output {
        None => {
            print!("{}", conversion.render(offsets_topic, true));
            exit::OK
        }
        Some(path) => match write_private(path, &conversion.render(offsets_topic, false)) {
            Ok(()) => {
                eprintln!(
                    "wrote {} (mode 0600); check it with: kafka-mirrord check {}",
                    path.display(),
                    path.display()
                );
                exit::OK
            }
            Err(error) => {
                eprintln!("kafka-mirrord: cannot write {}: {error}", path.display());
                exit::FAILURE
            }
        },
    }
}

/// Creates `path` readable by its owner only (it holds the clusters' credentials).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
