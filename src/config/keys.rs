//! The catalogue of keys MM2 dedicated mode understands (docs/mm2-behaviour.md, *Client settings* and
//! *Connector settings and defaults*), grouped the
//! way MM2's precedence rules need them, plus kafka-mirrord's own `mirrord.*` keys.

/// `clusters`: the cluster aliases (required).
pub const CLUSTERS: &str = "clusters";
/// `config.providers`: names of the `${provider:...}` config providers.
pub const CONFIG_PROVIDERS: &str = "config.providers";
/// Top-level `emit.heartbeats.enabled` also decides which flows exist (docs/mm2-behaviour.md, *Which flows exist*).
pub const EMIT_HEARTBEATS_ENABLED: &str = "emit.heartbeats.enabled";
/// Prefix of every kafka-mirrord setting.
pub const MIRRORD_PREFIX: &str = "mirrord.";

/// `MirrorClientConfig.CLIENT_CONFIG_DEF`: the keys copied from cluster level (`A.k`) and top level
/// (`k`) into every client of a cluster (docs/mm2-behaviour.md, *Client settings*).
pub const CLIENT_KEYS: &[&str] = &[
    "bootstrap.servers",
    "security.protocol",
    // SSL
    "ssl.protocol",
    "ssl.provider",
    "ssl.cipher.suites",
    "ssl.enabled.protocols",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.certificates",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.endpoint.identification.algorithm",
    "ssl.secure.random.implementation",
    "ssl.engine.factory.class",
    // SASL
    "sasl.mechanism",
    "sasl.jaas.config",
    "sasl.client.callback.handler.class",
    "sasl.login.callback.handler.class",
    "sasl.login.class",
    "sasl.kerberos.service.name",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.login.refresh.window.factor",
    "sasl.login.refresh.window.jitter",
    "sasl.login.refresh.min.period.seconds",
    "sasl.login.refresh.buffer.seconds",
    "sasl.login.connect.timeout.ms",
    "sasl.login.read.timeout.ms",
    "sasl.login.retry.backoff.ms",
    "sasl.login.retry.backoff.max.ms",
    // Kafka 4.1+ (the OAuth client settings that used to live in the JAAS options, and JWT-bearer)
    "sasl.oauthbearer.jwt.retriever.class",
    "sasl.oauthbearer.jwt.validator.class",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.client.credentials.client.id",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.assertion.algorithm",
    "sasl.oauthbearer.assertion.claim.aud",
    "sasl.oauthbearer.assertion.claim.exp.seconds",
    "sasl.oauthbearer.assertion.claim.iss",
    "sasl.oauthbearer.assertion.claim.jti.include",
    "sasl.oauthbearer.assertion.claim.nbf.seconds",
    "sasl.oauthbearer.assertion.claim.sub",
    "sasl.oauthbearer.assertion.file",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.template.file",
    "sasl.oauthbearer.scope.claim.name",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.header.urlencode",
];

/// Keys defined by the Source, Checkpoint or Heartbeat connector ConfigDefs (the union MM2 reads at top level, docs/mm2-behaviour.md, *Client settings*):
/// only these are taken from the top level into a flow. Everything here is also valid per flow.
pub const CONNECTOR_KEYS: &[&str] = &[
    // Connect base
    "name",
    "connector.class",
    "tasks.max",
    "tasks.max.enforce",
    "key.converter",
    "value.converter",
    "header.converter",
    "transforms",
    "predicates",
    "config.action.reload",
    "errors.retry.timeout",
    "errors.retry.delay.max.ms",
    "errors.tolerance",
    "errors.log.enable",
    "errors.log.include.messages",
    // MirrorConnectorConfig
    "enabled",
    "source.cluster.alias",
    "target.cluster.alias",
    "admin.timeout.ms",
    "replication.policy.class",
    "replication.policy.separator",
    "replication.policy.internal.topic.separator.enabled",
    "forwarding.admin.class",
    "metric.reporters",
    "auto.include.jmx.reporter",
    // MirrorSourceConfig
    "topics",
    "topics.exclude",
    "topics.blacklist",
    "config.properties.exclude",
    "config.properties.blacklist",
    "topic.filter.class",
    "config.property.filter.class",
    "consumer.poll.timeout.ms",
    "refresh.topics.enabled",
    "refresh.topics.interval.seconds",
    "sync.topic.configs.enabled",
    "sync.topic.configs.interval.seconds",
    "use.incremental.alter.configs",
    "sync.topic.acls.enabled",
    "sync.topic.acls.interval.seconds",
    "replication.factor",
    "offset-syncs.topic.replication.factor",
    "offset.lag.max",
    "offset-syncs.topic.location",
    "add.source.alias.to.metrics",
    "emit.offset-syncs.enabled",
    "heartbeats.replication.enabled",
    "task.assigned.partitions",
    "task.index",
    // MirrorCheckpointConfig
    "groups",
    "groups.exclude",
    "groups.blacklist",
    "group.filter.class",
    "refresh.groups.enabled",
    "refresh.groups.interval.seconds",
    "emit.checkpoints.enabled",
    "emit.checkpoints.interval.seconds",
    "sync.group.offsets.enabled",
    "sync.group.offsets.interval.seconds",
    "checkpoints.topic.replication.factor",
    "task.assigned.groups",
    // MirrorHeartbeatConfig
    "emit.heartbeats.enabled",
    "emit.heartbeats.interval.seconds",
    "heartbeats.topic.replication.factor",
];

/// Keys that MM2 accepts per flow (`A->B.k`) although they are not in [`CONNECTOR_KEYS`], so they
/// are dropped at top level (docs/mm2-behaviour.md, *Client settings*).
pub const FLOW_ONLY_KEYS: &[&str] = &[
    "exactly.once.support",
    "transaction.boundary",
    "transaction.boundary.interval.ms",
    "offsets.storage.topic",
    "topic.creation.groups",
    "use.defaults.from",
];

/// Top-level key prefixes that `workerConfig()` overlays onto the target cluster's worker (docs/mm2-behaviour.md, *Client settings*).
pub const WORKER_PREFIXES: &[&str] = &[
    "offset.storage",
    "config.storage",
    "status.storage",
    "key.converter",
    "value.converter",
    "header.converter",
    "task",
    "worker",
    "replication.policy",
];

/// Top-level keys read by the MM2 driver itself (`MirrorMakerConfig`) and its internal REST server.
pub const DRIVER_KEYS: &[&str] = &[
    CLUSTERS,
    CONFIG_PROVIDERS,
    "dedicated.mode.enable.internal.rest",
    "listeners",
    "rest.advertised.host.name",
    "rest.advertised.port",
    "rest.advertised.listener",
    "access.control.allow.origin",
    "access.control.allow.methods",
    "response.http.headers.config",
    "ssl.client.auth",
];

/// Connect worker settings that are meaningful per target cluster (`B.k`).
pub const WORKER_KEYS: &[&str] = &[
    "exactly.once.source.support",
    "offset.flush.interval.ms",
    "offset.flush.timeout.ms",
    "group.id",
    "client.id",
    "scheduled.rebalance.max.delay.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "rebalance.timeout.ms",
];

/// kafka-mirrord's own settings. Unknown `mirrord.*` keys are errors.
pub mod mirrord {
    /// Address of the HTTP endpoint (`/metrics`, `/status`); `off` disables it.
    pub const HTTP_LISTEN: &str = "mirrord.http.listen";
    /// Log level or `RUST_LOG`-style filter.
    pub const LOG_LEVEL: &str = "mirrord.log.level";
    /// `text` or `json`.
    pub const LOG_FORMAT: &str = "mirrord.log.format";
    /// How long a graceful shutdown may take before in-flight work is abandoned.
    pub const SHUTDOWN_TIMEOUT_MS: &str = "mirrord.shutdown.timeout.ms";
    /// Which MM2 release's rules to follow where 3.x and 4.x differ (`3.9` or `4.0`).
    pub const MM2_COMPATIBILITY: &str = "mirrord.mm2.compatibility";
    /// Takeover from MM2 on a Kafka Connect cluster: that cluster's offsets topic (on each flow's
    /// target cluster), read at a source task's start for partitions with no progress of ours.
    pub const TAKEOVER_CONNECT_OFFSETS_TOPIC: &str = "mirrord.takeover.connect.offsets.topic";
    /// The names the MirrorSourceConnectors had in that Connect cluster (comma-separated).
    pub const TAKEOVER_CONNECT_CONNECTORS: &str = "mirrord.takeover.connect.connectors";

    pub const ALL: &[&str] = &[
        HTTP_LISTEN,
        LOG_LEVEL,
        LOG_FORMAT,
        SHUTDOWN_TIMEOUT_MS,
        MM2_COMPATIBILITY,
        TAKEOVER_CONNECT_OFFSETS_TOPIC,
        TAKEOVER_CONNECT_CONNECTORS,
    ];
}

pub fn is_client_key(key: &str) -> bool {
    CLIENT_KEYS.contains(&key)
}

pub fn is_connector_key(key: &str) -> bool {
    CONNECTOR_KEYS.contains(&key)
}

/// Keys (besides [`CONNECTOR_KEYS`]) that `connectorBaseConfig()` overlays from the top level.
pub fn is_connector_overlay_key(key: &str) -> bool {
    key.starts_with("config.providers") || key.starts_with("replication.policy")
}

pub fn is_worker_overlay_key(key: &str) -> bool {
    WORKER_PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

/// The known key closest to `unknown`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::levenshtein(unknown, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 3.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}
