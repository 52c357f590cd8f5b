//! Config blocks shaped like the migration guides' (issue 12), through `kafka-mirrord check
//! --json`: each mistake a guide's reader makes gets its error or warning, on the right line, with
//! a fix — cluster-prefixed keys, shell placeholders, loops, SASL without credentials.

use std::process::Command;

use serde_json::Value;

/// `check --json` of `text`: (exit code, the document).
fn check(text: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mm2.properties");
    std::fs::write(&file, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
        .args(["check", "--json"])
        .arg(&file)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let document = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json prints JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), document)
}

/// The diagnostic of `kind` (`errors`/`warnings`) about `key`, as (line, message, fix).
fn diagnostic(document: &Value, kind: &str, key: &str) -> Option<(u64, String, String)> {
    document[kind].as_array()?.iter().find_map(|d| {
        (d["key"] == key).then(|| {
            (
                d["line"].as_u64().unwrap_or(0),
                d["message"].as_str().unwrap_or_default().to_string(),
                d["fix"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
}

const TWO_CLUSTERS: &str = "clusters = old, new\nold.bootstrap.servers = old-1:9092\nnew.bootstrap.servers = new-1:9092\nold->new.enabled = true\n";

#[test]
fn cluster_keys_are_validated_with_a_fix() {
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}old.securty.protocol = SSL\nnew.exactly.once.support = enabled\n\
         old.cluster.sasl.mechanism = PLAIN\nnew.foo = bar\nnew.offset.flush.interval.ms = 1000\n\
         old.consumer.fetch.min.bytes = 1\n"
    ));
    assert_eq!(code, 0, "warnings only: {document}");
    let (line, message, fix) = diagnostic(&document, "warnings", "old.securty.protocol").unwrap();
    assert_eq!(line, 5);
    assert!(message.contains("no effect"), "{message}");
    assert_eq!(fix, "did you mean `old.security.protocol`?");
    let (line, message, fix) =
        diagnostic(&document, "warnings", "new.exactly.once.support").unwrap();
    assert_eq!(line, 6);
    assert!(message.contains("exactly-once stays off"), "{message}");
    assert!(
        fix.contains("new.exactly.once.source.support = enabled"),
        "{fix}"
    );
    let (_, _, fix) = diagnostic(&document, "warnings", "old.cluster.sasl.mechanism").unwrap();
    assert_eq!(fix, "write `old.sasl.mechanism`");
    assert!(diagnostic(&document, "warnings", "new.foo").is_some());
    // Worker settings and client overrides are read per cluster: no word about them.
    assert!(diagnostic(&document, "warnings", "new.offset.flush.interval.ms").is_none());
    assert!(diagnostic(&document, "warnings", "old.consumer.fetch.min.bytes").is_none());
}

#[test]
fn shell_placeholders_are_errors_with_the_env_provider_fix() {
    let (code, document) = check(
        "clusters = old, new\nold.bootstrap.servers = $OLD_SERVERS\nnew.bootstrap.servers = new-1:9092\n\
         old->new.enabled = true\nnew.security.protocol = SASL_SSL\nnew.sasl.mechanism = SCRAM-SHA-512\n\
         new.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"${NEW_PASSWORD}\";\n",
    );
    assert_eq!(code, 64, "{document}");
    let (line, message, fix) = diagnostic(&document, "errors", "old.bootstrap.servers").unwrap();
    assert_eq!(line, 2);
    assert!(
        message.contains("`$OLD_SERVERS` is not expanded"),
        "{message}"
    );
    assert!(fix.contains("${env:OLD_SERVERS}"), "{fix}");
    let (line, message, fix) = diagnostic(&document, "errors", "new.sasl.jaas.config").unwrap();
    assert_eq!(line, 7);
    assert!(
        !message.contains("NEW_PASSWORD"),
        "a secret's value is not quoted: {message}"
    );
    assert!(fix.contains("${env:NEW_PASSWORD}"), "{fix}");
}

#[test]
fn sasl_without_credentials_names_the_key_to_add() {
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}old.security.protocol = SASL_PLAINTEXT\nold.sasl.mechanism = SCRAM-SHA-512\n"
    ));
    assert_eq!(code, 64, "{document}");
    let (line, message, fix) = diagnostic(&document, "errors", "old.sasl.mechanism").unwrap();
    assert_eq!(line, 6);
    assert!(message.contains("without credentials"), "{message}");
    assert!(
        fix.contains(
            "old.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule"
        ),
        "{fix}"
    );
    // Kerberos may use a ticket cache: no error.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}old.security.protocol = SASL_PLAINTEXT\nold.sasl.mechanism = GSSAPI\n"
    ));
    assert_eq!(code, 0, "{document}");
}

#[test]
fn loops_are_errors_naming_the_flows() {
    // The same cluster under two aliases: with topic names kept, records go back where they came
    // from (an error); with remote names, only a topic list can stop the copies of copies (a
    // warning).
    let same = "clusters = a, b\na.bootstrap.servers = kafka-1:9092,kafka-2:9092\nb.bootstrap.servers = kafka-2:9092\na->b.enabled = true\n";
    let (code, document) = check(&format!(
        "{same}replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n"
    ));
    assert_eq!(code, 64, "{document}");
    let (line, message, _) = diagnostic(&document, "errors", "b.bootstrap.servers").unwrap();
    assert_eq!(line, 3);
    assert!(
        message.contains("same cluster") && message.contains("a->b"),
        "{message}"
    );
    let (code, document) = check(same);
    assert_eq!(code, 0, "{document}");
    let (_, message, _) = diagnostic(&document, "warnings", "b.bootstrap.servers").unwrap();
    assert!(
        message.contains("copies of its own copies") || message.contains("copies its own copies"),
        "{message}"
    );

    let (code, document) = check(
        "clusters = a, b\na.bootstrap.servers = a:9092\nb.bootstrap.servers = b:9092\na->b.enabled = true\nb->a.enabled = true\n\
         replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n",
    );
    assert_eq!(code, 64, "{document}");
    let (line, message, fix) = diagnostic(&document, "errors", "a->b.enabled").unwrap();
    assert_eq!(line, 4);
    assert!(message.contains("a->b and b->a"), "{message}");
    assert!(fix.contains("DefaultReplicationPolicy"), "{fix}");
    // The default policy in both directions is MM2's active-active: fine.
    let (code, _) = check(
        "clusters = a, b\na.bootstrap.servers = a:9092\nb.bootstrap.servers = b:9092\na->b.enabled = true\nb->a.enabled = true\n",
    );
    assert_eq!(code, 0);
}

#[test]
fn hints_name_the_real_problem_on_the_line_as_written() {
    // Aiven's topic regex, an old `topics.blacklist`, OTC's retention keys, a policy that never
    // existed in Apache Kafka.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}old->new.topics = *\\..europe\\..*\ntopics.blacklist = (?!keep).*\n\
         heartbeats.topic.retention.ms = 86400000\n\
         replication.policy.class = org.apache.kafka.connect.mirror.LegacyReplicationPolicy\n"
    ));
    assert_eq!(code, 64, "{document}");
    let (line, message, fix) = diagnostic(&document, "errors", "old->new.topics").unwrap();
    assert_eq!(line, 5);
    assert!(message.contains("repetition"), "{message}");
    assert!(!fix.contains("look-around"), "not a look-around: {fix}");
    assert!(
        fix.contains("`.*..europe..*`") && fix.contains("backslash"),
        "{fix}"
    );
    let (line, message, _) = diagnostic(&document, "errors", "topics.blacklist").unwrap();
    assert_eq!(line, 6, "the legacy key keeps its line");
    assert!(message.contains("look-around"), "{message}");
    let (line, message, fix) =
        diagnostic(&document, "warnings", "heartbeats.topic.retention.ms").unwrap();
    assert_eq!(line, 7);
    assert!(message.contains("no retention setting"), "{message}");
    assert!(!fix.contains("alias"), "not a cluster-alias problem: {fix}");
    let (line, message, fix) = diagnostic(&document, "errors", "replication.policy.class").unwrap();
    assert_eq!(line, 8);
    assert!(
        message.contains("never existed in Apache Kafka"),
        "{message}"
    );
    assert!(fix.contains("IdentityReplicationPolicy"), "{fix}");
}

#[test]
fn a_schema_registry_store_copied_under_its_own_name_is_warned_about() {
    // Two of the guides: IdentityReplicationPolicy and every topic.
    let identity =
        "replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n";
    let (code, document) = check(&format!("{TWO_CLUSTERS}old->new.topics = .*\n{identity}"));
    assert_eq!(code, 0, "a warning, not an error: {document}");
    let (line, message, fix) = diagnostic(&document, "warnings", "old->new.topics").unwrap();
    assert_eq!(line, 5);
    assert!(
        message.contains("`_schemas`") && message.contains("corrupted"),
        "{message}"
    );
    assert!(
        fix.contains("stopped or read-only") && fix.contains("topics.exclude"),
        "{fix}"
    );
    assert!(fix.contains("docs/schema-registry.md"), "{fix}");
    // Excluded, or under the default policy (it lands in `old._schemas`): nothing to say.
    let (_, document) = check(&format!(
        "{TWO_CLUSTERS}old->new.topics = .*\nold->new.topics.exclude = __.*, _schemas, kafkasql-journal\n{identity}"
    ));
    assert!(
        diagnostic(&document, "warnings", "old->new.topics").is_none(),
        "{document}"
    );
    let (_, document) = check(&format!("{TWO_CLUSTERS}old->new.topics = .*\n"));
    assert!(
        diagnostic(&document, "warnings", "old->new.topics").is_none(),
        "{document}"
    );
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schema-registry.md")
        .is_file());
}

/// The librdkafka settings of one client of flow `old->new` in a `check --json` document.
fn client_settings(document: &Value, client: &str) -> serde_json::Map<String, Value> {
    let flows = document["flows"].as_array().cloned().unwrap_or_default();
    let flow = flows.iter().find(|flow| flow["id"] == "old->new");
    flow.and_then(|flow| flow["clients"][client]["settings"].as_object())
        .unwrap_or_else(|| panic!("no client `{client}` in {document}"))
        .clone()
}

#[test]
fn oauth_oidc_clusters_map_to_librdkafkas_oidc_login() {
    // `old` as Strimzi/Keycloak guides write it (Kafka 3.4+ handler, credentials in the JAAS line),
    // `new` with the Kafka 4.1 keys and a JWT-bearer assertion.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}old.security.protocol = SASL_SSL\nold.sasl.mechanism = OAUTHBEARER\n\
         old.sasl.login.callback.handler.class = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n\
         old.sasl.oauthbearer.token.endpoint.url = https://keycloak.example/realms/kafka/protocol/openid-connect/token\n\
         old.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"mirror\" clientSecret=\"oidc-secret-value\" scope=\"kafka\" extension_logicalCluster=\"lkc-1\";\n\
         new.security.protocol = SASL_SSL\nnew.sasl.mechanism = OAUTHBEARER\n\
         new.sasl.oauthbearer.token.endpoint.url = https://login.example/oauth2/token\n\
         new.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;\n\
         new.sasl.oauthbearer.jwt.retriever.class = org.apache.kafka.common.security.oauthbearer.JwtBearerJwtRetriever\n\
         new.sasl.oauthbearer.assertion.private.key.file = /etc/kafka-mirrord/oauth-key.pem\n\
         new.sasl.oauthbearer.assertion.claim.sub = mirror\nnew.sasl.oauthbearer.assertion.template.file = /etc/kafka-mirrord/jwt.json\n"
    ));
    assert_eq!(code, 0, "{document}");
    assert_eq!(document["warnings"], serde_json::json!([]), "{document}");
    let old = client_settings(&document, "source-consumer");
    assert_eq!(old["sasl.mechanisms"], "OAUTHBEARER");
    assert_eq!(old["sasl.oauthbearer.method"], "oidc");
    assert_eq!(
        old["sasl.oauthbearer.token.endpoint.url"],
        "https://keycloak.example/realms/kafka/protocol/openid-connect/token"
    );
    assert_eq!(old["sasl.oauthbearer.client.id"], "mirror");
    assert_eq!(old["sasl.oauthbearer.client.secret"], "********");
    assert_eq!(old["sasl.oauthbearer.scope"], "kafka");
    assert_eq!(old["sasl.oauthbearer.extensions"], "logicalCluster=lkc-1");
    assert!(!document.to_string().contains("oidc-secret-value"));
    let new = client_settings(&document, "target-producer");
    assert_eq!(new["sasl.oauthbearer.method"], "oidc");
    assert_eq!(
        new["sasl.oauthbearer.grant.type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(
        new["sasl.oauthbearer.assertion.private.key.file"],
        "********"
    );
    assert_eq!(new["sasl.oauthbearer.assertion.claim.sub"], "mirror");
    assert_eq!(
        new["sasl.oauthbearer.assertion.jwt.template.file"],
        "/etc/kafka-mirrord/jwt.json"
    );
    assert!(!new.contains_key("sasl.oauthbearer.client.id"));

    // The Kafka 4.1 keys win over the JAAS options, as in Kafka.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}old.security.protocol = SASL_SSL\nold.sasl.mechanism = OAUTHBEARER\n\
         old.sasl.oauthbearer.token.endpoint.url = https://idp.example/token\n\
         old.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"from-jaas\" clientSecret=\"s\";\n\
         old.sasl.oauthbearer.client.credentials.client.id = from-key\n"
    ));
    assert_eq!(code, 0, "{document}");
    assert_eq!(
        client_settings(&document, "source-admin")["sasl.oauthbearer.client.id"],
        "from-key"
    );
}

#[test]
fn oauth_settings_that_cannot_work_are_errors_on_their_line() {
    const OAUTH: &str = "old.security.protocol = SASL_SSL\nold.sasl.mechanism = OAUTHBEARER\n";
    // Unsecured test tokens (no endpoint): line 6 is the mechanism.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}{OAUTH}old.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"mm2\";\n"
    ));
    assert_eq!(code, 64, "{document}");
    let (line, message, fix) = diagnostic(&document, "errors", "old.sasl.mechanism").unwrap();
    assert_eq!(line, 6);
    assert!(message.contains("unsecured"), "{message}");
    assert!(
        fix.contains("old.sasl.oauthbearer.token.endpoint.url"),
        "{fix}"
    );
    // No client secret: the error names the option to add.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}{OAUTH}old.sasl.oauthbearer.token.endpoint.url = https://idp.example/token\n\
         old.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"mirror\";\n"
    ));
    assert_eq!(code, 64, "{document}");
    let (line, message, fix) = diagnostic(
        &document,
        "errors",
        "old.sasl.oauthbearer.token.endpoint.url",
    )
    .unwrap();
    assert_eq!(line, 7);
    assert!(message.contains("`clientSecret`"), "{message}");
    assert!(!message.contains("`clientId`"), "{message}");
    assert!(fix.contains("old.sasl.jaas.config"), "{fix}");
    // A token read from a file, a custom handler, a file retriever.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}{OAUTH}old.sasl.oauthbearer.token.endpoint.url = file:///var/run/token.jwt\n\
         old.sasl.login.callback.handler.class = com.example.MyHandler\n\
         new.sasl.oauthbearer.jwt.retriever.class = org.apache.kafka.common.security.oauthbearer.FileJwtRetriever\n"
    ));
    assert_eq!(code, 64, "{document}");
    let (line, message, _) = diagnostic(
        &document,
        "errors",
        "old.sasl.oauthbearer.token.endpoint.url",
    )
    .unwrap();
    assert_eq!(line, 7);
    assert!(message.contains("`file:`"), "{message}");
    let (line, _, fix) =
        diagnostic(&document, "errors", "old.sasl.login.callback.handler.class").unwrap();
    assert_eq!(line, 8);
    assert!(fix.contains("OAuthBearerLoginCallbackHandler"), "{fix}");
    let (line, message, _) = diagnostic(
        &document,
        "errors",
        "new.sasl.oauthbearer.jwt.retriever.class",
    )
    .unwrap();
    assert_eq!(line, 9);
    assert!(message.contains("FileJwtRetriever"), "{message}");
    // librdkafka's own names get MM2's name as the fix.
    let (code, document) = check(&format!(
        "{TWO_CLUSTERS}old.sasl.oauthbearer.client.secret = oidc-secret-value\n"
    ));
    assert_eq!(code, 0, "{document}");
    let (line, _, fix) =
        diagnostic(&document, "warnings", "old.sasl.oauthbearer.client.secret").unwrap();
    assert_eq!(line, 5);
    assert!(
        fix.contains("old.sasl.oauthbearer.client.credentials.client.secret"),
        "{fix}"
    );
    assert!(!document.to_string().contains("oidc-secret-value"));
}
