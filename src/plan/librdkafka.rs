//! Java Kafka client settings → librdkafka settings, through one explicit table ([`TABLE`]).
//!
//! Every Java key is either mapped (renamed or converted), passed through unchanged (librdkafka
//! knows it under the same name), ignored with a reason (Java-only), or rejected with a reason and a
//! fix. Keys missing from the table are passed through when librdkafka itself accepts the name, and
//! ignored with a note otherwise. `librdkafka.<key>` passes `<key>` to librdkafka verbatim, for
//! librdkafka settings whose name collides with a Java key of different meaning.
//! `docs/client-settings.md` is generated from this table (a test keeps them equal).

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::clients::{JavaSettings, Kind};
use super::sasl;
use crate::config::diagnostics::Diagnostics;
use crate::config::properties::Property;
use crate::config::secrets::{is_secret_key, mask_if_secret};

/// What happens to one Java client key.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// librdkafka has the same key with the same meaning.
    Same,
    /// librdkafka calls it differently.
    Rename(&'static str),
    /// Converted by code; the text says how.
    Convert(&'static str),
    /// Java-only; the text says why it is safe to drop.
    Ignore(&'static str),
    /// Cannot be honoured; (reason, fix).
    Reject(&'static str, &'static str),
}

/// The translation table, published as `docs/client-settings.md`.
pub const TABLE: &[(&str, Rule)] = &[
    ("bootstrap.servers", Rule::Convert("same key; spaces around commas removed")),
    ("security.protocol", Rule::Convert("same key; validated (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, any case)")),
    ("client.id", Rule::Convert("used as the prefix of MM2's client id `<client.id>|<source>-><target>|<connector>|<role>`")),
    ("sasl.mechanism", Rule::Convert("→ `sasl.mechanisms`; PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER")),
    ("sasl.jaas.config", Rule::Convert("PlainLoginModule/ScramLoginModule → `sasl.username` + `sasl.password`; Krb5LoginModule → `sasl.kerberos.keytab` + `sasl.kerberos.principal`; OAuthBearerLoginModule: options `clientId`/`clientSecret`/`scope` → `sasl.oauthbearer.client.id`/`client.secret`/`scope` (the Kafka 4.1 keys win over them), `extension_<name>` → `sasl.oauthbearer.extensions`; other login modules are rejected")),
    ("sasl.kerberos.service.name", Rule::Same),
    ("sasl.kerberos.min.time.before.relogin", Rule::Same),
    ("sasl.kerberos.kinit.cmd", Rule::Ignore("Java's is the path of `kinit`; librdkafka builds its own kinit command from the keytab and principal (override with `librdkafka.sasl.kerberos.kinit.cmd`)")),
    ("sasl.kerberos.ticket.renew.window.factor", Rule::Ignore("librdkafka renews tickets every `sasl.kerberos.min.time.before.relogin`")),
    ("sasl.kerberos.ticket.renew.jitter", Rule::Ignore("librdkafka renews tickets every `sasl.kerberos.min.time.before.relogin`")),
    ("sasl.login.refresh.window.factor", Rule::Ignore("librdkafka refreshes OAUTHBEARER tokens itself")),
    ("sasl.login.refresh.window.jitter", Rule::Ignore("librdkafka refreshes OAUTHBEARER tokens itself")),
    ("sasl.login.refresh.min.period.seconds", Rule::Ignore("librdkafka refreshes OAUTHBEARER tokens itself")),
    ("sasl.login.refresh.buffer.seconds", Rule::Ignore("librdkafka refreshes OAUTHBEARER tokens itself")),
    ("sasl.login.connect.timeout.ms", Rule::Ignore("Java login module setting")),
    ("sasl.login.read.timeout.ms", Rule::Ignore("Java login module setting")),
    ("sasl.login.retry.backoff.ms", Rule::Ignore("Java login module setting")),
    ("sasl.login.retry.backoff.max.ms", Rule::Ignore("Java login module setting")),
    ("sasl.oauthbearer.token.endpoint.url", Rule::Convert("same key, with `sasl.oauthbearer.method=oidc`: OAUTHBEARER uses librdkafka's built-in OIDC client (client credentials, or a JWT-bearer assertion); a `file:` URL (a token read from a file) is rejected, and so is OAUTHBEARER without a token endpoint (Java's unsecured test tokens)")),
    ("sasl.oauthbearer.jwt.retriever.class", Rule::Convert("`ClientCredentialsJwtRetriever`/`DefaultJwtRetriever` → client credentials (librdkafka's default); `JwtBearerJwtRetriever` → `sasl.oauthbearer.grant.type=urn:ietf:params:oauth:grant-type:jwt-bearer`; `FileJwtRetriever` and other classes are rejected")),
    ("sasl.oauthbearer.jwt.validator.class", Rule::Ignore("client-side check of the token the identity provider returned; the broker validates it")),
    ("sasl.oauthbearer.scope", Rule::Same),
    ("sasl.oauthbearer.client.credentials.client.id", Rule::Rename("sasl.oauthbearer.client.id")),
    ("sasl.oauthbearer.client.credentials.client.secret", Rule::Rename("sasl.oauthbearer.client.secret")),
    ("sasl.oauthbearer.assertion.algorithm", Rule::Same),
    ("sasl.oauthbearer.assertion.claim.aud", Rule::Same),
    ("sasl.oauthbearer.assertion.claim.exp.seconds", Rule::Same),
    ("sasl.oauthbearer.assertion.claim.iss", Rule::Same),
    ("sasl.oauthbearer.assertion.claim.jti.include", Rule::Same),
    ("sasl.oauthbearer.assertion.claim.nbf.seconds", Rule::Same),
    ("sasl.oauthbearer.assertion.claim.sub", Rule::Same),
    ("sasl.oauthbearer.assertion.file", Rule::Same),
    ("sasl.oauthbearer.assertion.private.key.file", Rule::Same),
    ("sasl.oauthbearer.assertion.private.key.passphrase", Rule::Same),
    ("sasl.oauthbearer.assertion.template.file", Rule::Rename("sasl.oauthbearer.assertion.jwt.template.file")),
    ("sasl.oauthbearer.scope.claim.name", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.sub.claim.name", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.jwks.endpoint.url", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.jwks.endpoint.refresh.ms", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.clock.skew.seconds", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.expected.audience", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.expected.issuer", Rule::Ignore("broker-side token validation setting")),
    ("sasl.oauthbearer.header.urlencode", Rule::Ignore("Java OAuth client setting")),
    ("sasl.client.callback.handler.class", Rule::Reject("custom Java SASL callback handlers (e.g. AWS MSK IAM) cannot run in kafka-mirrord", "use SCRAM, PLAIN, GSSAPI or OAUTHBEARER/OIDC for this cluster")),
    ("sasl.login.callback.handler.class", Rule::Convert("Kafka's `OAuthBearerLoginCallbackHandler` (either package) is what librdkafka's OIDC login does; other (custom) Java handlers are rejected")),
    ("sasl.login.class", Rule::Reject("custom Java login classes cannot run in kafka-mirrord", "remove it and use a stock login module in `sasl.jaas.config`")),
    ("ssl.truststore.type", Rule::Convert("PEM: `ssl.truststore.location` → `ssl.ca.location`, `ssl.truststore.certificates` → `ssl.ca.pem`; JKS (Java's default) and PKCS12 truststores are rejected with the openssl/keytool command that converts them to PEM")),
    ("ssl.truststore.location", Rule::Convert("see `ssl.truststore.type`")),
    ("ssl.truststore.certificates", Rule::Convert("see `ssl.truststore.type`")),
    ("ssl.truststore.password", Rule::Ignore("PEM truststores have no password")),
    ("ssl.keystore.type", Rule::Convert("PKCS12: `ssl.keystore.location`/`ssl.keystore.password` kept; PEM: `ssl.keystore.location` → `ssl.certificate.location` + `ssl.key.location`, `ssl.keystore.key` → `ssl.key.pem`, `ssl.keystore.certificate.chain` → `ssl.certificate.pem`; JKS is rejected with the keytool command that converts it to PKCS12")),
    ("ssl.keystore.location", Rule::Convert("see `ssl.keystore.type`")),
    ("ssl.keystore.password", Rule::Convert("see `ssl.keystore.type`")),
    ("ssl.keystore.key", Rule::Convert("see `ssl.keystore.type`")),
    ("ssl.keystore.certificate.chain", Rule::Convert("see `ssl.keystore.type`")),
    ("ssl.key.password", Rule::Same),
    ("ssl.endpoint.identification.algorithm", Rule::Convert("same key; an empty value (Java's way to turn host name checks off) → `none`")),
    ("ssl.cipher.suites", Rule::Convert("same key when given as OpenSSL names; Java names (`TLS_..._WITH_...`) are rejected")),
    ("ssl.protocol", Rule::Ignore("OpenSSL negotiates the highest TLS version both sides support")),
    ("ssl.enabled.protocols", Rule::Ignore("OpenSSL negotiates the highest TLS version both sides support")),
    ("ssl.provider", Rule::Ignore("Java security provider")),
    ("ssl.keymanager.algorithm", Rule::Ignore("Java JSSE setting")),
    ("ssl.trustmanager.algorithm", Rule::Ignore("Java JSSE setting")),
    ("ssl.secure.random.implementation", Rule::Ignore("Java JSSE setting")),
    ("ssl.engine.factory.class", Rule::Reject("custom Java SSL engines cannot run in kafka-mirrord", "remove it and give PEM or PKCS12 stores")),
    ("enable.auto.commit", Rule::Convert("always `false`, as MM2 forces it")),
    ("enable.idempotence", Rule::Convert("same key; Java's boolean rule (`true`/`false`, any case); without idempotence the target producer is limited to one request in flight")),
    ("acks", Rule::Convert("same key (`all`, `-1`, `0`, `1`); the target producer needs `all`: progress is stored for acknowledged records only")),
    ("auto.offset.reset", Rule::Convert("same key; `none` → `error`")),
    ("fetch.max.wait.ms", Rule::Rename("fetch.wait.max.ms")),
    ("max.request.size", Rule::Rename("message.max.bytes")),
    ("send.buffer.bytes", Rule::Convert("→ `socket.send.buffer.bytes` (-1, the OS default, → 0)")),
    ("receive.buffer.bytes", Rule::Convert("→ `socket.receive.buffer.bytes` (-1, the OS default, → 0)")),
    ("buffer.memory", Rule::Convert("→ `queue.buffering.max.kbytes` (bytes / 1024)")),
    ("max.poll.records", Rule::Ignore("librdkafka has no poll batch limit; kafka-mirrord sizes its own batches")),
    ("default.api.timeout.ms", Rule::Ignore("Java client API timeout")),
    ("group.id", Rule::Ignore("kafka-mirrord assigns partitions explicitly, as MM2 does")),
    ("group.instance.id", Rule::Ignore("kafka-mirrord assigns partitions explicitly, as MM2 does")),
    ("partition.assignment.strategy", Rule::Ignore("kafka-mirrord assigns partitions explicitly, as MM2 does")),
    ("transactional.id", Rule::Ignore("kafka-mirrord derives transactional ids from the flow, like MM2 (`<group.id>-<connector>-<task>`)")),
    ("key.serializer", Rule::Ignore("records are copied as raw bytes")),
    ("value.serializer", Rule::Ignore("records are copied as raw bytes")),
    ("key.deserializer", Rule::Ignore("records are copied as raw bytes")),
    ("value.deserializer", Rule::Ignore("records are copied as raw bytes")),
    ("partitioner.class", Rule::Ignore("records keep their source partition number")),
    ("interceptor.classes", Rule::Reject("Java interceptors cannot run in kafka-mirrord", "remove it")),
    ("metric.reporters", Rule::Ignore("kafka-mirrord serves Prometheus metrics itself")),
    ("metrics.num.samples", Rule::Ignore("Java client metrics")),
    ("metrics.sample.window.ms", Rule::Ignore("Java client metrics")),
    ("metrics.recording.level", Rule::Ignore("Java client metrics")),
    ("auto.include.jmx.reporter", Rule::Ignore("Java client metrics")),
    ("enable.metrics.push", Rule::Ignore("Java client metrics")),
    ("security.providers", Rule::Ignore("Java security providers")),
];

/// The librdkafka settings of one client, with notes on Java keys that were dropped.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ClientSettings {
    pub settings: BTreeMap<String, String>,
    /// One line per ignored Java key: "`key`: reason".
    pub notes: Vec<String>,
    /// The keys of `settings` that come from kafka-mirrord's defaults ([`role_defaults`]), not
    /// from the file.
    pub defaulted: std::collections::BTreeSet<String>,
}

/// Serialized with secrets masked: this is what `check --json` and `/status` show.
impl Serialize for ClientSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let masked: BTreeMap<&str, String> = self
            .settings
            .iter()
            .map(|(key, value)| (key.as_str(), mask_if_secret(key, value)))
            .collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("settings", &masked)?;
        map.serialize_entry("notes", &self.notes)?;
        map.end()
    }
}

/// Debug output masks secrets too, so a stray `{:?}` cannot leak a password into a log.
impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked: BTreeMap<&str, String> = self
            .settings
            .iter()
            .map(|(key, value)| (key.as_str(), mask_if_secret(key, value)))
            .collect();
        f.debug_struct("ClientSettings")
            .field("settings", &masked)
            .field("notes", &self.notes)
            .finish()
    }
}

impl ClientSettings {
    /// An rdkafka `ClientConfig` with these settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.settings {
            config.set(key, value);
        }
        config
    }

    /// The source consumer's `ClientConfig` for a task that copies `partitions` partitions: past
    /// [`MANY_PARTITIONS`], the default fetch slice of a partition grows to
    /// [`MANY_PARTITIONS_FETCH_BYTES`] (unless the file sets it). Every fetch names every
    /// assigned partition (librdkafka has no fetch sessions), so with thousands of them a busy
    /// partition is copied at the pace of those round trips: one busy partition beside 2,000 idle
    /// ones went three times faster with 1 MiB slices than with 256 KiB. With a few partitions
    /// the smaller slices cost less memory and CPU for the same throughput.
    ///
    /// Past [`MANY_PARTITIONS`] the broker also holds a fetch of caught-up partitions up to
    /// [`MANY_PARTITIONS_FETCH_WAIT_MS`] (unless the file sets `fetch.max.wait.ms`): each empty
    /// answer names every partition again, and librdkafka looks each one's topic up by a linear
    /// search, so at 2,000 idle partitions the 500 ms default cost a third of the idle daemon's
    /// CPU, and 2 s still a quarter of its quiet seconds. A record that arrives ends the wait at once, so latency does not change; what waits
    /// is another request on that connection (the log starts of partitions added while running,
    /// asked in one pipelined batch: docs/operations.md, *Idle cost*).
    pub fn source_consumer_config(&self, partitions: usize) -> ClientConfig {
        let mut config = self.client_config();
        if partitions > MANY_PARTITIONS && self.defaulted.contains(FETCH_SLICE_KEY) {
            config.set(FETCH_SLICE_KEY, MANY_PARTITIONS_FETCH_BYTES.to_string());
        }
        if partitions > MANY_PARTITIONS && !self.settings.contains_key(FETCH_WAIT_KEY) {
            config.set(FETCH_WAIT_KEY, MANY_PARTITIONS_FETCH_WAIT_MS.to_string());
        }
        config
    }
}

const FETCH_WAIT_KEY: &str = "fetch.wait.max.ms";
/// How long the broker may hold a fetch of a task's caught-up partitions past
/// [`MANY_PARTITIONS`] (librdkafka's default is 500 ms).
pub const MANY_PARTITIONS_FETCH_WAIT_MS: u32 = 5_000;

const FETCH_SLICE_KEY: &str = "max.partition.fetch.bytes";
/// A source task copying more partitions than this fetches bigger slices of each.
pub const MANY_PARTITIONS: usize = 100;
/// The fetch slice of a partition (`max.partition.fetch.bytes`) past [`MANY_PARTITIONS`]:
/// librdkafka's own default; a response stays bounded by the prefetch (librdkafka derives
/// `fetch.max.bytes` from `queued.max.messages.kbytes`).
pub const MANY_PARTITIONS_FETCH_BYTES: usize = 1 << 20;

/// librdkafka's refusal of a secret setting, without anything that could quote the value: only
/// whether this build lacks the feature (the common case for OAUTHBEARER/OIDC keys).
fn secret_refusal(reason: &str) -> String {
    if reason.contains("not supported") || reason.contains("built without") {
        "not supported by this build of librdkafka".to_string()
    } else {
        "invalid value".to_string()
    }
}

/// What librdkafka says about one key/value.
enum Probe {
    Accepted,
    Unknown,
    Invalid(String),
}

fn probe(key: &str, value: &str) -> Probe {
    match ClientConfig::new().set(key, value).create_native_config() {
        Ok(_) => Probe::Accepted,
        Err(KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..)) => Probe::Unknown,
        Err(KafkaError::ClientConfig(_, description, ..)) => Probe::Invalid(description),
        Err(other) => Probe::Invalid(other.to_string()),
    }
}

/// How a user-set `client.id` combines with the MM2-style default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientId<'a> {
    /// MM2's connector clients: `<user client.id>|<default>`.
    Prefixed(&'a str),
    /// Connect's worker producer: the user's `client.id` replaces the default.
    Replaced(&'a str),
}

/// Translates one client's Java settings, naming the client per `client_id`.
pub fn translate(
    java: &JavaSettings,
    kind: Kind,
    client_id: ClientId<'_>,
    diagnostics: &mut Diagnostics,
) -> ClientSettings {
    let mut out = Translation {
        result: ClientSettings::default(),
        origins: BTreeMap::new(),
        diagnostics,
    };

    for (key, setting) in java {
        let origin = setting.origin.clone();
        let value = setting.value.as_str();
        if let Some(native_key) = key.strip_prefix("librdkafka.") {
            out.set(native_key, value, origin.as_ref());
            continue;
        }
        let rule = TABLE
            .iter()
            .find(|(java_key, _)| java_key == key)
            .map(|(_, rule)| *rule);
        match rule {
            Some(Rule::Same) => out.set(key, value, origin.as_ref()),
            Some(Rule::Rename(native)) => out.set(native, value, origin.as_ref()),
            Some(Rule::Ignore(reason)) => out.note(key, reason),
            Some(Rule::Reject(reason, fix)) => out.reject(origin.as_ref(), key, reason, fix),
            Some(Rule::Convert(_)) => convert(&mut out, key, value, origin.as_ref(), kind),
            None => match probe(key, value) {
                Probe::Accepted => out.set(key, value, origin.as_ref()),
                Probe::Unknown => out.note(key, "not a librdkafka setting"),
                // librdkafka's message may quote the value: never for a secret.
                Probe::Invalid(reason) => out.reject(
                    origin.as_ref(),
                    key,
                    &if is_secret_key(key) {
                        secret_refusal(&reason)
                    } else {
                        reason
                    },
                    "see librdkafka's CONFIGURATION.md for valid values",
                ),
            },
        }
    }

    let user_client_id = java
        .get("client.id")
        .map(|s| s.value.trim().to_string())
        .filter(|id| !id.is_empty());
    let full_client_id = match (client_id, user_client_id) {
        (ClientId::Prefixed(default), Some(prefix)) => format!("{prefix}|{default}"),
        (ClientId::Replaced(_), Some(user)) => user,
        (ClientId::Prefixed(default) | ClientId::Replaced(default), None) => default.to_string(),
    };
    out.result
        .settings
        .insert("client.id".to_string(), full_client_id);
    if kind == Kind::Consumer {
        out.result
            .settings
            .insert("enable.auto.commit".to_string(), "false".to_string());
        out.result
            .settings
            .entry("auto.offset.reset".to_string())
            .or_insert_with(|| "earliest".to_string());
    }
    truststore(&mut out, java);
    keystore(&mut out, java);
    sasl::credentials(&mut out, java);
    sasl::oauthbearer(&mut out, java);
    out.result
}

pub(super) struct Translation<'a> {
    pub(super) result: ClientSettings,
    /// Where each librdkafka key came from, for error messages.
    origins: BTreeMap<String, Option<Property>>,
    diagnostics: &'a mut Diagnostics,
}

impl Translation<'_> {
    pub(super) fn set(&mut self, key: &str, value: &str, origin: Option<&Property>) {
        if let Probe::Invalid(reason) = probe(key, value) {
            // librdkafka's message may quote the value: never for a secret.
            let reason = if is_secret_key(key) {
                secret_refusal(&reason)
            } else {
                reason
            };
            self.reject(
                origin,
                key,
                &format!("librdkafka rejects `{key}`: {reason}"),
                "correct the value",
            );
            return;
        }
        self.result
            .settings
            .insert(key.to_string(), value.to_string());
        self.origins.insert(key.to_string(), origin.cloned());
    }

    pub(super) fn note(&mut self, key: &str, reason: &str) {
        self.result.notes.push(format!("`{key}` ignored: {reason}"));
    }

    pub(super) fn reject(&mut self, origin: Option<&Property>, key: &str, reason: &str, fix: &str) {
        match origin {
            Some(property) => {
                self.diagnostics
                    .error(property, reason.to_string(), Some(fix.to_string()))
            }
            None => self.diagnostics.error_without_line(
                Some(key),
                reason.to_string(),
                Some(fix.to_string()),
            ),
        }
    }
}

fn convert(
    out: &mut Translation<'_>,
    key: &str,
    value: &str,
    origin: Option<&Property>,
    kind: Kind,
) {
    let trimmed = value.trim();
    match key {
        "bootstrap.servers" => {
            let servers: Vec<&str> = trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if servers.is_empty() {
                out.reject(
                    origin,
                    key,
                    "no broker address given",
                    "list `host:port` pairs separated by commas",
                );
            } else {
                out.set(key, &servers.join(","), origin);
            }
        }
        "security.protocol" => {
            let upper = trimmed.to_ascii_uppercase();
            if ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&upper.as_str()) {
                out.set(key, &upper.to_ascii_lowercase(), origin);
            } else {
                out.reject(
                    origin,
                    key,
                    &format!("Invalid value {value} for configuration security.protocol: String must be one of (case insensitive): PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                    "use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                );
            }
        }
        "client.id" => {} // applied by `translate` as the client id prefix
        "sasl.mechanism" => {
            let upper = trimmed.to_ascii_uppercase();
            if [
                "PLAIN",
                "SCRAM-SHA-256",
                "SCRAM-SHA-512",
                "GSSAPI",
                "OAUTHBEARER",
            ]
            .contains(&upper.as_str())
            {
                out.set("sasl.mechanisms", &upper, origin);
            } else {
                out.reject(
                    origin,
                    key,
                    &format!("SASL mechanism `{trimmed}` is not supported by librdkafka"),
                    "use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or OAUTHBEARER",
                );
            }
        }
        "sasl.jaas.config" => sasl::jaas(out, value, origin),
        "sasl.login.callback.handler.class" => sasl::login_callback_handler(out, value, origin),
        "sasl.oauthbearer.jwt.retriever.class" => sasl::jwt_retriever(out, value, origin),
        // OAUTHBEARER is translated as a whole once every key is known.
        "sasl.oauthbearer.token.endpoint.url" => {}
        "ssl.endpoint.identification.algorithm" => {
            let native = if trimmed.is_empty() { "none" } else { trimmed };
            out.set(key, native, origin);
        }
        "ssl.cipher.suites" => {
            if trimmed.contains("_WITH_") {
                out.reject(
                    origin,
                    key,
                    "Java cipher suite names are not OpenSSL names",
                    "give OpenSSL names, e.g. `ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384`, or remove it",
                );
            } else if !trimmed.is_empty() {
                out.set(key, &trimmed.replace(',', ":"), origin);
            }
        }
        "enable.auto.commit" => {
            if kind == Kind::Consumer && trimmed.eq_ignore_ascii_case("true") {
                out.note(key, "forced to `false`, as MM2 does: progress is stored after the target acknowledged");
            }
        }
        "enable.idempotence" => {
            if trimmed.eq_ignore_ascii_case("true") {
                out.set(key, "true", origin);
            } else if trimmed.eq_ignore_ascii_case("false") {
                out.set(key, "false", origin);
            } else {
                out.reject(
                    origin,
                    key,
                    "expected `true` or `false`",
                    "write `true` or `false`",
                );
            }
        }
        "acks" => {
            if matches!(trimmed, "all" | "-1" | "0" | "1") {
                out.set(key, trimmed, origin);
            } else {
                out.reject(
                    origin,
                    key,
                    "expected `all`, `-1`, `0` or `1`",
                    "write `all` (the default)",
                );
            }
        }
        "auto.offset.reset" => {
            let native = if trimmed.eq_ignore_ascii_case("none") {
                "error"
            } else {
                trimmed
            };
            out.set(key, native, origin);
        }
        "send.buffer.bytes" | "receive.buffer.bytes" => {
            let native_key = format!("socket.{key}");
            let native = if trimmed == "-1" { "0" } else { trimmed };
            out.set(&native_key, native, origin);
        }
        "buffer.memory" => match trimmed.parse::<u64>() {
            Ok(bytes) => out.set(
                "queue.buffering.max.kbytes",
                &(bytes / 1024).max(1).to_string(),
                origin,
            ),
            Err(_) => out.reject(origin, key, "expected a number of bytes", "e.g. `33554432`"),
        },
        // Stores are handled together once every key is known.
        "ssl.truststore.type"
        | "ssl.truststore.location"
        | "ssl.truststore.certificates"
        | "ssl.keystore.type"
        | "ssl.keystore.location"
        | "ssl.keystore.password"
        | "ssl.keystore.key"
        | "ssl.keystore.certificate.chain" => {}
        _ => unreachable!("every Convert rule is handled: {key}"),
    }
}

fn truststore(out: &mut Translation<'_>, java: &JavaSettings) {
    let location = java.get("ssl.truststore.location");
    let certificates = java.get("ssl.truststore.certificates");
    if location.is_none() && certificates.is_none() {
        return;
    }
    let store_type = java
        .get("ssl.truststore.type")
        .map(|s| s.value.trim().to_ascii_uppercase());
    let anchor = location.or(certificates).and_then(|s| s.origin.clone());
    match store_type.as_deref() {
        Some("PEM") => {
            if let Some(location) = location {
                out.set("ssl.ca.location", location.value.trim(), location.origin.as_ref());
            }
            if let Some(certificates) = certificates {
                out.set("ssl.ca.pem", &certificates.value, certificates.origin.as_ref());
            }
        }
        Some("PKCS12") => out.reject(
            anchor.as_ref(),
            "ssl.truststore.location",
            "PKCS12 truststores are not supported by librdkafka",
            "convert it: `openssl pkcs12 -in truststore.p12 -nokeys -out ca.pem`, then set `ssl.truststore.type=PEM` and `ssl.truststore.location=/path/ca.pem`",
        ),
        _ => out.reject(
            anchor.as_ref(),
            "ssl.truststore.location",
            "JKS truststores (Java's default `ssl.truststore.type`) are not supported by librdkafka",
            "convert it: `keytool -importkeystore -srckeystore truststore.jks -destkeystore truststore.p12 -deststoretype PKCS12` then `openssl pkcs12 -in truststore.p12 -nokeys -out ca.pem`, and set `ssl.truststore.type=PEM` and `ssl.truststore.location=/path/ca.pem`",
        ),
    }
}

fn keystore(out: &mut Translation<'_>, java: &JavaSettings) {
    let location = java.get("ssl.keystore.location");
    let key_pem = java.get("ssl.keystore.key");
    let chain_pem = java.get("ssl.keystore.certificate.chain");
    if location.is_none() && key_pem.is_none() && chain_pem.is_none() {
        return;
    }
    let store_type = java
        .get("ssl.keystore.type")
        .map(|s| s.value.trim().to_ascii_uppercase());
    let anchor = location
        .or(key_pem)
        .or(chain_pem)
        .and_then(|s| s.origin.clone());
    match store_type.as_deref() {
        Some("PEM") => {
            if let Some(location) = location {
                out.set("ssl.certificate.location", location.value.trim(), location.origin.as_ref());
                out.set("ssl.key.location", location.value.trim(), location.origin.as_ref());
            }
            if let Some(key_pem) = key_pem {
                out.set("ssl.key.pem", &key_pem.value, key_pem.origin.as_ref());
            }
            if let Some(chain_pem) = chain_pem {
                out.set("ssl.certificate.pem", &chain_pem.value, chain_pem.origin.as_ref());
            }
        }
        Some("PKCS12") => {
            if let Some(location) = location {
                out.set("ssl.keystore.location", location.value.trim(), location.origin.as_ref());
            }
            if let Some(password) = java.get("ssl.keystore.password") {
                out.set("ssl.keystore.password", &password.value, password.origin.as_ref());
            }
        }
        _ => out.reject(
            anchor.as_ref(),
            "ssl.keystore.location",
            "JKS keystores (Java's default `ssl.keystore.type`) are not supported by librdkafka",
            "convert it: `keytool -importkeystore -srckeystore keystore.jks -destkeystore keystore.p12 -deststoretype PKCS12`, then set `ssl.keystore.type=PKCS12` and `ssl.keystore.location=/path/keystore.p12`",
        ),
    }
}

/// kafka-mirrord's librdkafka defaults per client role, applied when the file does not set the key
/// (documented in README "Client defaults"). They favour throughput with a bounded memory footprint
/// and never trade away ordering or durability.
pub fn role_defaults(
    role: super::clients::ClientRole,
    exactly_once: bool,
) -> Vec<(&'static str, &'static str)> {
    use super::clients::ClientRole;
    match role {
        ClientRole::SourceConsumer => vec![
            // Bounded prefetch (the bulk of our memory, with the producer queue): 4 MiB of payload
            // or 20,000 records, whichever comes first (small records cost more than their bytes).
            ("queued.max.messages.kbytes", "4096"),
            ("queued.min.messages", "20000"),
            // 256 KiB slices per partition, so one response cannot overshoot by much; 1 MiB for a
            // task with many partitions (`ClientSettings::source_consumer_config`).
            // scripts/bench measured ~50 MiB peak RSS at ~90 % of the raw ceiling with these.
            ("max.partition.fetch.bytes", "262144"),
            // librdkafka >= 2.3 otherwise pauses fetching for 1 s whenever its queue is full; 0
            // would re-check in a busy loop while the target applies backpressure.
            ("fetch.queue.backoff.ms", "10"),
            // Never copy records of aborted source transactions (librdkafka's default, made explicit).
            ("isolation.level", "read_committed"),
        ],
        ClientRole::TargetProducer => {
            let mut defaults = vec![
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("batch.num.messages", "10000"),
                // 256 KiB batches keep several requests in flight within a 16 MiB queue.
                ("batch.size", "262144"),
                ("queue.buffering.max.kbytes", "16384"),
                ("queue.buffering.max.messages", "30000"),
            ];
            // Never drop a record because the target was away for a while: wait (backpressure).
            // Transactions bound it by `transaction.timeout.ms` (60 s) instead.
            defaults.push((
                "message.timeout.ms",
                if exactly_once { "60000" } else { "0" },
            ));
            defaults
        }
        _ => Vec::new(),
    }
}

/// librdkafka's other names for the keys `role_defaults` sets (CONFIGURATION.md "alias for"). A
/// default must not be added when the file set the same property under another name: both would
/// reach librdkafka and the one applied last would win, in no fixed order.
pub fn aliases_of(key: &str) -> &'static [&'static str] {
    match key {
        "max.partition.fetch.bytes" => &["fetch.message.max.bytes"],
        "acks" => &["request.required.acks"],
        "linger.ms" => &["queue.buffering.max.ms"],
        "message.timeout.ms" => &["delivery.timeout.ms"],
        _ => &[],
    }
}

/// Settings kafka-mirrord must own for correctness, whatever the file says.
pub fn role_overrides(
    role: super::clients::ClientRole,
    settings: &ClientSettings,
    exactly_once: bool,
) -> Vec<(&'static str, &'static str, &'static str)> {
    use super::clients::ClientRole;
    let mut forced = Vec::new();
    if role.kind() == super::clients::Kind::Consumer {
        // librdkafka refuses manual assignment without a group id; this one never joins a group
        // nor commits (partitions are assigned explicitly and auto commit is off).
        forced.push((
            "group.id",
            "kafka-mirrord-assign-only",
            "librdkafka needs a group id for manual assignment",
        ));
    }
    if role == ClientRole::TargetProducer {
        forced.push((
            "partitioner",
            "murmur2_random",
            "source offsets must land on the partition Java Connect uses",
        ));
        let idempotent = settings
            .settings
            .get("enable.idempotence")
            .and_then(|value| librdkafka_bool(value))
            != Some(false);
        if idempotent && !exactly_once {
            // A batch the target refuses (too large, invalid) stops the producer instead of
            // letting later batches of the partition through: they would land before the refused
            // records once those are sent again, out of order.
            forced.push((
                "enable.gapless.guarantee",
                "true",
                "a refused batch must not let later records of its partition overtake it",
            ));
        }
        if !idempotent {
            forced.push((
                "max.in.flight.requests.per.connection",
                "1",
                "without idempotence only one request in flight keeps records in order",
            ));
        }
    }
    forced
}

/// A boolean as librdkafka parses it (`true`/`t`/`1`, `false`/`f`/`0`, any case).
pub fn librdkafka_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if ["true", "t", "1"]
        .iter()
        .any(|v| value.eq_ignore_ascii_case(v))
    {
        Some(true)
    } else if ["false", "f", "0"]
        .iter()
        .any(|v| value.eq_ignore_ascii_case(v))
    {
        Some(false)
    } else {
        None
    }
}

/// Settings a role cannot run with: (librdkafka key, what is wrong, the fix). The target
/// producer must wait for every in-sync replica: source progress is stored for acknowledged
/// records, and `acks = 0` or `1` acknowledges records a leader failover can lose.
pub fn role_conflicts(
    role: super::clients::ClientRole,
    settings: &ClientSettings,
) -> Vec<(&'static str, String, &'static str)> {
    let mut conflicts = Vec::new();
    if role == super::clients::ClientRole::TargetProducer {
        for key in ["acks", "request.required.acks"] {
            if let Some(value) = settings.settings.get(key) {
                if !matches!(value.trim(), "all" | "-1") {
                    conflicts.push((
                        key,
                        format!("the target producer needs `acks = all`, not `{value}`: source progress is stored once the target acknowledged a record, and with `{value}` an acknowledged record can be lost in a leader failover"),
                        "remove it (kafka-mirrord uses `all`)",
                    ));
                }
            }
        }
    }
    conflicts
}

/// The table as Markdown, for `docs/client-settings.md`.
pub fn table_markdown() -> String {
    let mut out = String::from(
        "# Java client settings → librdkafka\n\n\
         Generated from `src/plan/librdkafka.rs` (a test keeps this file equal to the table; \
         regenerate with `UPDATE_DOCS=1 cargo test client_settings_doc`).\n\n\
         kafka-mirrord reads the Java client settings of an MM2 properties file \
         (`A.security.protocol`, `A.consumer.fetch.min.bytes`, `A->B.producer.override.linger.ms`, …) \
         with MM2's precedence and hands them to librdkafka as follows:\n\n\
         - keys listed below are mapped, ignored (with the reason shown by `kafka-mirrord check`) or \
         rejected (a configuration error with a fix);\n\
         - any other key is passed through unchanged when librdkafka knows a setting of that name \
         (e.g. `fetch.min.bytes`, `linger.ms`, `compression.type`, `acks`, `isolation.level`), and \
         ignored with a note otherwise (e.g. Java-only keys);\n\
         - `librdkafka.<key>` passes `<key>` to librdkafka verbatim (e.g. \
         `A.consumer.librdkafka.fetch.queue.backoff.ms=0`).\n\n\
         | Java key | what kafka-mirrord does |\n|---|---|\n",
    );
    for (key, rule) in TABLE {
        let action = match rule {
            Rule::Same => "passed through unchanged".to_string(),
            Rule::Rename(native) => format!("renamed to `{native}`"),
            Rule::Convert(how) => format!("mapped: {how}"),
            Rule::Ignore(why) => format!("ignored: {why}"),
            Rule::Reject(why, fix) => format!("**rejected**: {why}; fix: {fix}"),
        };
        // A `|` inside a cell would end it.
        out.push_str(&format!("| `{key}` | {} |\n", action.replace('|', "\\|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_probe_distinguishes_unknown_and_invalid() {
        assert!(matches!(probe("fetch.min.bytes", "1"), Probe::Accepted));
        assert!(matches!(probe("max.poll.records", "5"), Probe::Unknown));
        assert!(matches!(probe("acks", "banana"), Probe::Invalid(_)));
    }

    #[test]
    fn client_settings_doc() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/client-settings.md");
        let expected = table_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            actual, expected,
            "docs/client-settings.md is stale: run `UPDATE_DOCS=1 cargo test client_settings_doc`"
        );
    }
}
