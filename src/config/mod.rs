//! Properties file → validated `Config`: the only way in is [`load`] (or [`from_properties`]).
//!
//! `Config` keeps the resolved properties and answers MM2's precedence questions (flow > cluster >
//! top level, docs/mm2-behaviour.md, *Client settings*); the plan module turns it into typed flows.

pub mod diagnostics;
pub mod files;
pub mod keys;
pub mod properties;
pub mod providers;
pub mod secrets;
mod validate;
pub mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use diagnostics::{ConfigErrors, Diagnostics};
use properties::{Property, RawProperties};

/// Which MM2 release's rules apply where 3.x and 4.x differ (topic exclusion defaults, internal
/// topic detection, legacy `*.blacklist` names). Set with `mirrord.mm2.compatibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Mm2Compatibility {
    #[serde(rename = "3.9")]
    V3_9,
    #[serde(rename = "4.0")]
    V4_0,
}

/// Process-wide settings from the `mirrord.*` keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MirrordSettings {
    /// `None` when the HTTP endpoint is off.
    pub http_listen: Option<SocketAddr>,
    pub log_level: Option<String>,
    pub log_format: LogFormat,
    pub shutdown_timeout_ms: u64,
    pub mm2_compatibility: Mm2Compatibility,
    /// Where MM2 on a Connect cluster stored its progress (docs/migrate-from-connect.md).
    pub takeover: Option<ConnectTakeover>,
}

/// The offsets topic of a Kafka Connect cluster that ran MirrorSourceConnectors, and their names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnectTakeover {
    pub offsets_topic: String,
    pub connectors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for MirrordSettings {
    fn default() -> Self {
        Self {
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            log_level: None,
            log_format: LogFormat::Text,
            shutdown_timeout_ms: 30_000,
            mm2_compatibility: Mm2Compatibility::V3_9,
            takeover: None,
        }
    }
}

/// A parsed properties file with `${...}` resolved and file-level rules checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    props: RawProperties,
    /// Files referenced through `${file:...}`/`${dir:...}` (reload watches them).
    pub referenced_files: Vec<PathBuf>,
    /// Cluster aliases from `clusters`, sorted and de-duplicated (MM2 treats them as a set).
    pub clusters: Vec<String>,
    pub mirrord: MirrordSettings,
}

/// Reads, resolves and checks `path`. Problems are added to `diagnostics`; `Err` only when the file
/// cannot be read or parsed at all.
pub fn load(path: &Path, diagnostics: &mut Diagnostics) -> Result<Config, ConfigErrors> {
    let props = RawProperties::read(path).map_err(|error| match error {
        properties::PropertiesError::Io { .. } => {
            ConfigErrors::whole_file(path.to_path_buf(), None, error.to_string())
        }
        properties::PropertiesError::Syntax { line, message, .. } => {
            ConfigErrors::whole_file(path.to_path_buf(), Some(line), message)
        }
    })?;
    Ok(from_properties(props, diagnostics, &|name| {
        std::env::var(name).ok()
    }))
}

/// Builds a `Config` from already-read properties; `env` answers `${env:...}` look-ups.
pub fn from_properties(
    mut props: RawProperties,
    diagnostics: &mut Diagnostics,
    env: &dyn Fn(&str) -> Option<String>,
) -> Config {
    let referenced_files = providers::resolve(&mut props, diagnostics, env);
    let clusters = validate::clusters(&props, diagnostics);
    let mirrord = validate::mirrord_settings(&props, diagnostics);
    let config = Config {
        file: props.file.clone(),
        props,
        referenced_files,
        clusters,
        mirrord,
    };
    validate::classify_keys(&config, diagnostics);
    validate::shell_placeholders(&config, diagnostics);
    config
}

impl Config {
    pub fn properties(&self) -> &RawProperties {
        &self.props
    }

    /// A top-level key.
    pub fn top(&self, key: &str) -> Option<&Property> {
        self.props.get(key)
    }

    /// `<alias>.<key>`.
    pub fn cluster(&self, alias: &str, key: &str) -> Option<&Property> {
        self.props.get(&format!("{alias}.{key}"))
    }

    /// `<source>-><target>.<key>`.
    pub fn flow(&self, source: &str, target: &str, key: &str) -> Option<&Property> {
        self.props.get(&format!("{source}->{target}.{key}"))
    }

    /// A connector setting of flow `source->target`: the flow-level key wins, then the
    /// top-level key if MM2 copies it into connectors; cluster-level keys never count.
    pub fn connector(&self, source: &str, target: &str, key: &str) -> Option<&Property> {
        self.flow(source, target, key).or_else(|| {
            if keys::is_connector_key(key) || keys::is_connector_overlay_key(key) {
                self.top(key)
            } else {
                None
            }
        })
    }

    /// A Connect worker setting for flow `source->target`: the worker talks to the target, and
    /// top-level keys with a worker prefix win over the target's cluster-level keys.
    pub fn worker(&self, target: &str, key: &str) -> Option<&Property> {
        if keys::is_worker_overlay_key(key) {
            if let Some(top) = self.top(key) {
                return Some(top);
            }
        }
        self.cluster_client_key(target, key)
    }

    /// `clusterProps(alias)[key]`: `<alias>.<key>`, else the top-level key if it is a client key.
    pub fn cluster_client_key(&self, alias: &str, key: &str) -> Option<&Property> {
        self.cluster(alias, key).or_else(|| {
            if keys::is_client_key(key) {
                self.top(key)
            } else {
                None
            }
        })
    }

    /// The cluster-level settings of `alias` as MM2's `clusterProps(alias)` builds them: every
    /// `<alias>.k`, plus `consumer.k`/`producer.k`/`admin.k` for client keys.
    pub fn cluster_props(&self, alias: &str) -> std::collections::BTreeMap<String, &Property> {
        let mut cluster = std::collections::BTreeMap::new();
        let prefix = format!("{alias}.");
        for (key, property) in self.props.with_prefix(&prefix) {
            cluster.insert(key.to_string(), property);
        }
        for key in keys::CLIENT_KEYS {
            let value = self.cluster(alias, key).or_else(|| self.top(key));
            if let Some(property) = value {
                cluster.entry(key.to_string()).or_insert(property);
                for role in ["consumer", "producer", "admin"] {
                    cluster.entry(format!("{role}.{key}")).or_insert(property);
                }
            }
        }
        cluster
    }

    /// Keys under `<source>-><target>.<prefix>`, with that whole prefix stripped.
    pub fn flow_with_prefix<'a>(
        &'a self,
        source: &str,
        target: &str,
        prefix: &str,
    ) -> Vec<(String, &'a Property)> {
        let full = format!("{source}->{target}.{prefix}");
        self.props
            .with_prefix(&full)
            .map(|(key, property)| (key.to_string(), property))
            .collect()
    }
}
