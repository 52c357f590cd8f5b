//! Against the two local Apache Kafka clusters over TCP: `check --connect` reports reachability
//! (plain, SASL/SCRAM over TLS, and failures), and the run command connects and stops on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{test_kafka, write_properties};

const BIN: &str = env!("CARGO_BIN_EXE_kafka-mirrord");

fn plain_config(source: &str, target: &str) -> String {
    format!(
        "clusters = source, target\nsource.bootstrap.servers = {source}\ntarget.bootstrap.servers = {target}\n\
         source->target.enabled = true\nreplication.factor = 1\nmirrord.http.listen = off\n"
    )
}

fn check_connect(file: &std::path::Path) -> (Option<i32>, Value) {
    let output = Command::new(BIN)
        .args([
            "check",
            "--json",
            "--connect",
            "--timeout",
            "5",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let document: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), document)
}

fn report<'a>(document: &'a Value, alias: &str) -> &'a Value {
    document["connectivity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("no report for {alias}: {document}"))
}

#[test]
fn check_connect_reports_both_local_clusters_reachable() {
    let kafka = test_kafka();
    let dir = tempfile::tempdir().unwrap();
    let file = write_properties(
        dir.path(),
        "mm2.properties",
        &plain_config(kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP")),
    );
    let (code, document) = check_connect(&file);
    assert_eq!(code, Some(0), "{document}");
    for alias in ["source", "target"] {
        let report = report(&document, alias);
        assert_eq!(report["reachable"], true, "{report}");
        assert_eq!(report["brokers"], 1, "single-node test clusters: {report}");
    }

    let text = Command::new(BIN)
        .args(["check", "--connect", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("source: reachable, 1 broker(s)")
            && stdout.contains("target: reachable, 1 broker(s)"),
        "{stdout}"
    );
}

#[test]
fn check_connect_uses_translated_sasl_scram_and_tls_settings() {
    let kafka = test_kafka();
    let dir = tempfile::tempdir().unwrap();
    let secrets = write_properties(
        dir.path(),
        "secrets.properties",
        &format!("password={}\n", kafka.get("TEST_KAFKA_SCRAM_PASSWORD")),
    );
    let jaas = |password: &str| {
        format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{}\" password=\"{password}\";",
            kafka.get("TEST_KAFKA_SCRAM_USER")
        )
    };
    let config = format!(
        "clusters = source, target\n\
         config.providers = file\n\
         config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
         source.bootstrap.servers = {source}\n\
         target.bootstrap.servers = {target}\n\
         security.protocol = SASL_SSL\n\
         sasl.mechanism = SCRAM-SHA-512\n\
         sasl.jaas.config = {jaas}\n\
         ssl.truststore.type = PEM\n\
         ssl.truststore.location = {ca}\n\
         target.sasl.jaas.config = {wrong}\n\
         source->target.enabled = true\n",
        source = kafka.get("SOURCE_SASL_SSL_BOOTSTRAP"),
        target = kafka.get("TARGET_SASL_SSL_BOOTSTRAP"),
        jaas = jaas(&format!("${{file:{}:password}}", secrets.display())),
        ca = kafka.get("TEST_KAFKA_CA"),
        wrong = jaas("not-the-password"),
    );
    let file = write_properties(dir.path(), "mm2.properties", &config);
    let (code, document) = check_connect(&file);
    assert_eq!(
        report(&document, "source")["reachable"],
        true,
        "SCRAM-SHA-512 over TLS with a PEM CA: {document}"
    );
    let target = report(&document, "target");
    assert_eq!(
        target["reachable"], false,
        "a wrong password must not connect: {target}"
    );
    assert_eq!(
        code,
        Some(1),
        "an unreachable cluster makes `check --connect` fail"
    );
    let shown = document.to_string();
    assert!(
        !shown.contains(kafka.get("TEST_KAFKA_SCRAM_PASSWORD"))
            && !shown.contains("not-the-password"),
        "secrets leaked: {shown}"
    );
}

#[test]
fn check_connect_reports_an_unreachable_cluster() {
    let kafka = test_kafka();
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let file = write_properties(
        dir.path(),
        "mm2.properties",
        &plain_config(kafka.get("SOURCE_BOOTSTRAP"), "127.0.0.1:1"),
    );
    let started = Instant::now();
    let (code, document) = check_connect(&file);
    assert_eq!(code, Some(1));
    assert_eq!(report(&document, "source")["reachable"], true);
    let target = report(&document, "target");
    assert_eq!(target["reachable"], false);
    assert!(
        target["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{target}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the timeout bounds the probe"
    );
}

#[test]
fn run_command_connects_to_every_cluster_and_exits_0_on_sigterm() {
    let kafka = test_kafka();
    let dir = tempfile::tempdir().unwrap();
    let file = write_properties(
        dir.path(),
        "mm2.properties",
        &plain_config(kafka.get("SOURCE_BOOTSTRAP"), kafka.get("TARGET_BOOTSTRAP")),
    );
    let mut child = Command::new(BIN)
        .arg(&file)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut connected = std::collections::BTreeSet::new();
    let mut log = Vec::new();
    while connected.len() < 2 && Instant::now() < deadline {
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(200)) {
            if line.contains("connected to cluster") {
                for alias in ["source", "target"] {
                    if line.contains(&format!("cluster={alias}")) {
                        connected.insert(alias);
                    }
                }
            }
            log.push(line);
        }
    }
    assert_eq!(
        connected.len(),
        2,
        "both clusters should be connected; log:\n{}",
        log.join("\n")
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stop_deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < stop_deadline,
            "did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0), "SIGTERM is a clean stop");
}

/// OAUTHBEARER/OIDC end to end: a cluster that accepts only tokens from an identity provider (Kafka's
/// own validator against the provider's JWKS), configured as a Java client would be
/// (`OAuthBearerLoginCallbackHandler`, token endpoint, client credentials in the JAAS line from a
/// secrets file). `check --connect` logs in, the daemon copies every record from it, the provider saw
/// client-credentials requests with the mapped client id and scope; a wrong secret does not connect
/// and is never shown.
#[test]
fn an_oauthbearer_oidc_cluster_is_mirrored_with_tokens_from_its_identity_provider() {
    use support::oidc::{OauthKafka, OidcIssuer};
    let dir = tempfile::tempdir().unwrap();
    let issuer = OidcIssuer::start(dir.path(), "mirrord-client", "oidc-client-secret");
    let broker = OauthKafka::start(dir.path(), &issuer);
    let topic = support::unique("oidc");
    support::create_topic(&broker.plaintext, &topic, 2);
    for partition in 0..2 {
        support::produce(&broker.plaintext, &topic, partition, &support::numbered(50));
    }
    let secrets = dir.path().join("secrets.properties");
    std::fs::write(
        &secrets,
        "secret = oidc-client-secret\nwrong = not-the-secret\n",
    )
    .unwrap();
    let config = |secret_key: &str| {
        format!(
            "clusters = idp, target\nconfig.providers = file\n\
             config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
             idp.bootstrap.servers = {oauth}\nidp.security.protocol = SASL_PLAINTEXT\nidp.sasl.mechanism = OAUTHBEARER\n\
             idp.sasl.login.callback.handler.class = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n\
             idp.sasl.oauthbearer.token.endpoint.url = {token}\n\
             idp.sasl.jaas.config = org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             clientId=\"mirrord-client\" clientSecret=\"${{file:{secrets}:{secret_key}}}\" scope=\"kafka\";\n\
             target.bootstrap.servers = {target}\n\
             idp->target.enabled = true\nidp->target.topics = {topic}\nemit.heartbeats.enabled = false\n\
             replication.factor = 1\noffset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             target.offset.storage.replication.factor = 1\nmirrord.http.listen = off\n",
            oauth = broker.oauth,
            token = issuer.token_url(),
            secrets = secrets.display(),
            target = test_kafka().get("TARGET_BOOTSTRAP"),
        )
    };

    let wrong = write_properties(dir.path(), "wrong.properties", &config("wrong"));
    let (code, document) = check_connect(&wrong);
    assert_eq!(
        code,
        Some(1),
        "a wrong client secret must not connect: {document}"
    );
    assert_eq!(report(&document, "idp")["reachable"], false, "{document}");
    assert!(
        !document.to_string().contains("not-the-secret"),
        "{document}"
    );

    let file = write_properties(dir.path(), "mm2.properties", &config("secret"));
    let (code, document) = check_connect(&file);
    assert_eq!(
        report(&document, "idp")["reachable"],
        true,
        "OIDC login: {document}\nbroker log:\n{}",
        broker.log_text()
    );
    assert_eq!(code, Some(0), "{document}");

    let daemon = support::Daemon::start(&file);
    let remote = format!("idp.{topic}");
    support::wait_until(
        Duration::from_secs(60),
        "every record on the target",
        || support::try_record_count(test_kafka().get("TARGET_BOOTSTRAP"), &remote) == Some(100),
    );
    drop(daemon);
    let requests = issuer.token_requests();
    let accepted: Vec<&Value> = requests.iter().filter(|r| r["accepted"] == true).collect();
    assert!(!accepted.is_empty(), "no token was issued: {requests:?}");
    for request in &accepted {
        assert_eq!(request["grant_type"], "client_credentials", "{request}");
        assert_eq!(request["client_id"], "mirrord-client", "{request}");
        assert_eq!(request["scope"], "kafka", "{request}");
    }
}
