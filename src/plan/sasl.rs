//! SASL settings: the JAAS login module line (`sasl.jaas.config`) → librdkafka's SASL keys, the
//! check that a SASL cluster has credentials in the file, and OAUTHBEARER/OIDC (token endpoint,
//! client credentials or JWT-bearer assertion) → librdkafka's built-in OIDC login.

use std::collections::BTreeMap;

use super::clients::JavaSettings;
use super::librdkafka::Translation;
use crate::config::properties::Property;

/// SASL/PLAIN and SCRAM need a user and password, which only `sasl.jaas.config` gives: a JAAS
/// file handed to Java through `KAFKA_OPTS` (`java.security.auth.login.config`) is not read.
/// Without one the connection would fail at run time; say so now.
pub(super) fn credentials(out: &mut Translation<'_>, java: &JavaSettings) {
    let Some(protocol) = java.get("security.protocol") else {
        return;
    };
    if !protocol
        .value
        .trim()
        .to_ascii_uppercase()
        .starts_with("SASL_")
    {
        return;
    }
    let mechanism = java
        .get("sasl.mechanism")
        .map(|m| m.value.trim().to_ascii_uppercase())
        .unwrap_or_else(|| "GSSAPI".to_string());
    if !matches!(
        mechanism.as_str(),
        "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
    ) {
        return;
    }
    if out.result.settings.contains_key("sasl.username") || java.contains_key("sasl.jaas.config") {
        return;
    }
    let module = if mechanism == "PLAIN" {
        "org.apache.kafka.common.security.plain.PlainLoginModule"
    } else {
        "org.apache.kafka.common.security.scram.ScramLoginModule"
    };
    let origin = java
        .get("sasl.mechanism")
        .or(Some(protocol))
        .and_then(|setting| setting.origin.clone());
    let cluster = alias_of(origin.as_ref());
    out.reject(
        origin.as_ref(),
        "sasl.jaas.config",
        &format!("SASL/{mechanism} without credentials: no `sasl.jaas.config` for this cluster (a JAAS file passed through `KAFKA_OPTS` is not read)"),
        &format!("add `{cluster}.sasl.jaas.config = {module} required username=\"...\" password=\"${{file:/etc/kafka-mirrord/secrets.properties:password}}\";` (with `config.providers = file`)"),
    );
}

/// One JAAS login module entry: `<class> <flag> key="value" ...;`.
#[derive(Debug, PartialEq, Eq)]
struct JaasEntry {
    class: String,
    options: BTreeMap<String, String>,
}

fn parse_jaas(text: &str) -> Result<JaasEntry, String> {
    let mut chars = text.trim().chars().peekable();
    let mut word = || -> String {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut out = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            out.push(c);
            chars.next();
        }
        out
    };
    let class = word();
    let flag = word();
    if class.is_empty()
        || !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str())
    {
        return Err("expected `<LoginModule class> required key=\"value\" ...;`".to_string());
    }
    let mut options = BTreeMap::new();
    // The last option read, to point at a problem without quoting the text.
    let mut previous: Option<String> = None;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some(';') => break,
            _ => {}
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            // Never quote the text itself: an unquoted value with spaces (a password) would be
            // cut into "options" here.
            return Err(match previous.as_deref() {
                Some(previous) => format!(
                    "after option `{previous}` comes text that is no `name=value` (quote values with spaces or `;`)"
                ),
                None => "after the control flag comes text that is no `name=value` (quote values with spaces or `;`)".to_string(),
            });
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "the quoted value of `{}` never ends",
                            option_name_for_message(&name)
                        ))
                    }
                    Some('"') => break,
                    Some('\\') => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        previous = Some(option_name_for_message(&name).to_string());
        options.insert(name, value);
    }
    Ok(JaasEntry { class, options })
}

/// An option name as it may appear in a message: the known JAAS option names, or nothing (a typo
/// could hold a fragment of a secret).
fn option_name_for_message(name: &str) -> &str {
    const KNOWN: &[&str] = &[
        "username",
        "password",
        "useKeyTab",
        "keyTab",
        "principal",
        "storeKey",
        "useTicketCache",
        "serviceName",
        "clientId",
        "clientSecret",
        "scope",
        "unsecuredLoginStringClaim_sub",
        "extension_logicalCluster",
        "extension_identityPoolId",
    ];
    KNOWN
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("an option")
}

pub(super) fn jaas(out: &mut Translation<'_>, value: &str, origin: Option<&Property>) {
    let entry = match parse_jaas(value) {
        Ok(entry) => entry,
        Err(reason) => {
            out.reject(origin, "sasl.jaas.config", &format!("cannot parse the JAAS configuration: {reason}"), "write it as `org.apache.kafka.common.security.scram.ScramLoginModule required username=\"u\" password=\"p\";`");
            return;
        }
    };
    let option = |name: &str| entry.options.get(name).map(String::as_str);
    let simple_class = entry.class.rsplit('.').next().unwrap_or(&entry.class);
    match simple_class {
        "PlainLoginModule" | "ScramLoginModule" => match (option("username"), option("password")) {
            (Some(username), Some(password)) => {
                out.set("sasl.username", username, origin);
                out.set("sasl.password", password, origin);
            }
            _ => out.reject(
                origin,
                "sasl.jaas.config",
                "the login module needs `username` and `password`",
                "add username=\"...\" password=\"...\"",
            ),
        },
        "Krb5LoginModule" => {
            if let Some(principal) = option("principal") {
                out.set("sasl.kerberos.principal", principal, origin);
            }
            if let Some(keytab) = option("keyTab") {
                out.set("sasl.kerberos.keytab", keytab, origin);
            }
            if option("useKeyTab").is_some_and(|v| !v.eq_ignore_ascii_case("true"))
                || option("keyTab").is_none()
            {
                out.note("sasl.jaas.config", "Kerberos without a keytab: librdkafka relies on an existing ticket cache (kinit)");
            }
        }
        // Its options are read with the OAUTHBEARER keys, in `oauthbearer`.
        "OAuthBearerLoginModule" => {}
        _ => out.reject(
            origin,
            "sasl.jaas.config",
            &format!("login module `{}` cannot run in kafka-mirrord", entry.class),
            "use PlainLoginModule, ScramLoginModule, Krb5LoginModule or OAuthBearerLoginModule",
        ),
    }
}

/// The cluster alias a setting was written under (`A.sasl.mechanism` → `A`), for the fix text;
/// `<alias>` for a top-level key.
fn alias_of(origin: Option<&Property>) -> String {
    origin
        .and_then(|property| property.key.split_once('.'))
        .map(|(alias, _)| alias)
        .filter(|alias| *alias != "sasl")
        .unwrap_or("<alias>")
        .to_string()
}

/// Kafka's OIDC login callback handler: its 3.1–3.3 and 3.4+ class names.
const OIDC_LOGIN_HANDLERS: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
];

/// `sasl.login.callback.handler.class`: Kafka's OIDC handler is what librdkafka's built-in OIDC
/// login does (the token endpoint turns it on, in [`oauthbearer`]); any other class is Java code
/// that cannot run here.
pub(super) fn login_callback_handler(
    out: &mut Translation<'_>,
    value: &str,
    origin: Option<&Property>,
) {
    if !OIDC_LOGIN_HANDLERS.contains(&value.trim()) {
        out.reject(
            origin,
            "sasl.login.callback.handler.class",
            "custom Java login callback handlers cannot run in kafka-mirrord",
            "for OAuth/OIDC use `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler` with `sasl.oauthbearer.token.endpoint.url` and client credentials; otherwise remove it",
        );
    }
}

/// How the OAuth token is obtained, per `sasl.oauthbearer.jwt.retriever.class` (Kafka 4.1+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    ClientCredentials,
    JwtBearer,
}

const RETRIEVER_PACKAGE: &str = "org.apache.kafka.common.security.oauthbearer.";

fn grant_of(retriever_class: &str) -> Result<Grant, &'static str> {
    match retriever_class.trim().strip_prefix(RETRIEVER_PACKAGE) {
        Some("DefaultJwtRetriever" | "ClientCredentialsJwtRetriever") => Ok(Grant::ClientCredentials),
        Some("JwtBearerJwtRetriever") => Ok(Grant::JwtBearer),
        Some("FileJwtRetriever") => Err("`FileJwtRetriever` reads a ready-made token from a file; librdkafka only fetches tokens from an identity provider"),
        _ => Err("custom Java token retrievers cannot run in kafka-mirrord"),
    }
}

/// `sasl.oauthbearer.jwt.retriever.class`: checked here, applied in [`oauthbearer`].
pub(super) fn jwt_retriever(out: &mut Translation<'_>, value: &str, origin: Option<&Property>) {
    if let Err(reason) = grant_of(value) {
        out.reject(
            origin,
            "sasl.oauthbearer.jwt.retriever.class",
            reason,
            "use `org.apache.kafka.common.security.oauthbearer.ClientCredentialsJwtRetriever` (client id and secret) or `org.apache.kafka.common.security.oauthbearer.JwtBearerJwtRetriever` (a signed assertion), or remove it",
        );
    }
}

/// SASL/OAUTHBEARER → librdkafka's built-in OIDC login (`sasl.oauthbearer.method=oidc`), which
/// fetches and refreshes tokens from the token endpoint as Kafka's `OAuthBearerLoginCallbackHandler`
/// does. The client credentials come from the Kafka 4.1 keys or, when those are unset, from the
/// JAAS options `clientId`/`clientSecret`/`scope` (Kafka's own precedence); `extension_<name>`
/// options become SASL extensions. What librdkafka would refuse at start-up (no endpoint, no
/// client id or secret, no assertion key) is an error now, naming the key to add.
pub(super) fn oauthbearer(out: &mut Translation<'_>, java: &JavaSettings) {
    let Some(mechanism) = java.get("sasl.mechanism") else {
        return;
    };
    if !mechanism.value.trim().eq_ignore_ascii_case("OAUTHBEARER") {
        return;
    }
    let alias = alias_of(mechanism.origin.as_ref());
    let jaas_origin = java.get("sasl.jaas.config").and_then(|s| s.origin.clone());
    let jaas_options = java
        .get("sasl.jaas.config")
        .and_then(|setting| parse_jaas(&setting.value).ok())
        .filter(|entry| entry.class.ends_with(".OAuthBearerLoginModule"))
        .map(|entry| entry.options)
        .unwrap_or_default();

    let Some(endpoint) = java.get("sasl.oauthbearer.token.endpoint.url") else {
        if !out.result.settings.contains_key("sasl.oauthbearer.method") {
            out.reject(
                mechanism.origin.as_ref(),
                "sasl.oauthbearer.token.endpoint.url",
                "OAUTHBEARER without `sasl.oauthbearer.token.endpoint.url`: Java would log in with unsecured test tokens, which kafka-mirrord does not support",
                &format!("add `{alias}.sasl.oauthbearer.token.endpoint.url = https://<identity provider>/token` and the client credentials (`clientId`/`clientSecret` in `{alias}.sasl.jaas.config`)"),
            );
        }
        return;
    };
    let endpoint_url = endpoint.value.trim();
    if endpoint_url.to_ascii_lowercase().starts_with("file:") {
        out.reject(
            endpoint.origin.as_ref(),
            "sasl.oauthbearer.token.endpoint.url",
            "a `file:` token endpoint makes Java read a ready-made token from that file; librdkafka only fetches tokens from an identity provider",
            "give the identity provider's token endpoint (`https://...`) and client credentials",
        );
        return;
    }
    out.set(
        "sasl.oauthbearer.token.endpoint.url",
        endpoint_url,
        endpoint.origin.as_ref(),
    );
    if !out.result.settings.contains_key("sasl.oauthbearer.method") {
        out.set("sasl.oauthbearer.method", "oidc", endpoint.origin.as_ref());
    }

    let grant = java
        .get("sasl.oauthbearer.jwt.retriever.class")
        .and_then(|setting| grant_of(&setting.value).ok())
        .unwrap_or(Grant::ClientCredentials);
    if grant == Grant::JwtBearer {
        out.set(
            "sasl.oauthbearer.grant.type",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            endpoint.origin.as_ref(),
        );
    }
    for (option, native) in [
        ("clientId", "sasl.oauthbearer.client.id"),
        ("clientSecret", "sasl.oauthbearer.client.secret"),
        ("scope", "sasl.oauthbearer.scope"),
    ] {
        if let Some(value) = jaas_options.get(option) {
            if !out.result.settings.contains_key(native) {
                out.set(native, value, jaas_origin.as_ref());
            }
        }
    }
    let extensions: Vec<String> = jaas_options
        .iter()
        .filter_map(|(name, value)| {
            name.strip_prefix("extension_")
                .map(|extension| format!("{extension}={value}"))
        })
        .collect();
    if !extensions.is_empty()
        && !out
            .result
            .settings
            .contains_key("sasl.oauthbearer.extensions")
    {
        out.set(
            "sasl.oauthbearer.extensions",
            &extensions.join(","),
            jaas_origin.as_ref(),
        );
    }

    let missing: Vec<&str> = match grant {
        Grant::ClientCredentials => [
            ("sasl.oauthbearer.client.id", "clientId"),
            ("sasl.oauthbearer.client.secret", "clientSecret"),
        ]
        .into_iter()
        .filter(|(native, _)| !out.result.settings.contains_key(*native))
        .map(|(_, option)| option)
        .collect(),
        Grant::JwtBearer => {
            let has_key = [
                "sasl.oauthbearer.assertion.file",
                "sasl.oauthbearer.assertion.private.key.file",
                "sasl.oauthbearer.assertion.private.key.pem",
            ]
            .iter()
            .any(|native| out.result.settings.contains_key(*native));
            if has_key {
                Vec::new()
            } else {
                vec!["assertion"]
            }
        }
    };
    match missing.as_slice() {
        [] => {}
        ["assertion"] => out.reject(
            endpoint.origin.as_ref(),
            "sasl.oauthbearer.assertion.private.key.file",
            "the JWT-bearer grant needs a signed assertion: neither `sasl.oauthbearer.assertion.private.key.file` nor `sasl.oauthbearer.assertion.file` is set",
            &format!("add `{alias}.sasl.oauthbearer.assertion.private.key.file = /etc/kafka-mirrord/oauth-key.pem` (with the `assertion.claim.*` keys), or `{alias}.sasl.oauthbearer.assertion.file`"),
        ),
        options => out.reject(
            endpoint.origin.as_ref(),
            "sasl.jaas.config",
            &format!(
                "OAuth client credentials missing: no {} for this cluster (a JAAS file passed through `KAFKA_OPTS` is not read)",
                options.iter().map(|option| format!("`{option}`")).collect::<Vec<_>>().join(" and ")
            ),
            &format!("add `{alias}.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"...\" clientSecret=\"${{file:/etc/kafka-mirrord/secrets.properties:oauth-secret}}\";` (with `config.providers = file`), or on Kafka 4.1 and later `{alias}.sasl.oauthbearer.client.credentials.client.id`/`.client.secret`"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_parsing_handles_quotes_and_escapes() {
        let entry = parse_jaas(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p\"w;d" ;"#,
        )
        .unwrap();
        assert_eq!(
            entry.class,
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        );
        assert_eq!(entry.options["username"], "alice");
        assert_eq!(entry.options["password"], "p\"w;d");
        let krb = parse_jaas("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/etc/k.keytab\" principal=\"mm2@EXAMPLE.COM\";").unwrap();
        assert_eq!(krb.options["useKeyTab"], "true");
        assert_eq!(krb.options["principal"], "mm2@EXAMPLE.COM");
        assert!(parse_jaas("NoFlagModule username=\"x\";").is_err());
    }
}
