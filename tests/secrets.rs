//! No secret value, nor any fragment of one, reaches an output: `check`, `check --json`, the
//! daemon's log at debug (and trace) level, `/status`, `/metrics`, `kafka-mirrord status`, and the error
//! messages of an invalid file (at start and on reload). Every secret setting Kafka's clients and
//! librdkafka define is set, each with a value of its own.
//!
//! The clusters are unreachable on purpose (port 1): the daemon runs, retries, and logs.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// (key, value): every secret a Java client or librdkafka takes, under MM2's prefixes. Values are
/// distinct and share no 6-character fragment with anything else printed.
const SECRETS: &[(&str, &str)] = &[
    ("A.ssl.truststore.password", "Qv3Ty8Lm2Wx7Nh"),
    ("A.ssl.keystore.password", "Rz9Kd4Pf6Bc1Js"),
    ("A.ssl.key.password", "Hu5Xe2Gq8Vn3Ma"),
    ("B.ssl.key.password", "Tb6Wr1Ly9Dk4Fz"),
    ("B.producer.librdkafka.sasl.password", "Jc2Np7Qs5Hv8Ex"),
    (
        "A->B.source.consumer.librdkafka.ssl.key.password",
        "Mw4Gt9Ud1Rb6Ky",
    ),
];

/// Secrets inside larger values.
const JAAS_PASSWORD: &str = "Yk7Cs2Vm9Ft4Bw";
const PLAIN_PASSWORD: &str = "Gx3Lh8Rp1Zd6Tn";
const PEM_KEY: &str = "Wn5Bq9Kt2Hs7Jm";
const FILE_SECRET: &str = "Dv1Mz6Pc8Xg3Ru";
/// Secrets only in the invalid file (settings this build refuses, broken JAAS).
const INVALID_SECRETS: &[(&str, &str)] = &[
    (
        "A.admin.librdkafka.sasl.oauthbearer.client.secret",
        "Pe8Zf3Xa6Nq2Lc",
    ),
    (
        "A.sasl.oauthbearer.client.credentials.client.secret",
        "Ls4Vf9Nw2Qk7Hb",
    ),
    (
        "A.sasl.oauthbearer.assertion.private.key.passphrase",
        "Ft6Jx1Ry8Mc3Pe",
    ),
    (
        "A.sasl.oauthbearer.assertion.private.key.pem",
        "Kb2Xn7Td5Gw9Zs",
    ),
    ("B.sasl.oauthbearer.client.secret", "Uh3Qm8Ce1Vy6Lt"),
];
const BROKEN_JAAS_PASSWORD: &str = "Ne9Sg4Wk7Rd2Fx Aq5Mt8Hc3Jz";
const UNTERMINATED_PASSWORD: &str = "Zr6Pk1Ly4Wb9Gd";

fn every_secret() -> Vec<&'static str> {
    SECRETS
        .iter()
        .chain(INVALID_SECRETS)
        .map(|(_, value)| *value)
        .chain([
            JAAS_PASSWORD,
            PLAIN_PASSWORD,
            PEM_KEY,
            FILE_SECRET,
            BROKEN_JAAS_PASSWORD,
            UNTERMINATED_PASSWORD,
        ])
        .collect()
}

/// Panics if `output` holds any 6-character fragment of any secret (spaces excluded).
fn assert_no_secret(what: &str, output: &str) {
    for secret in every_secret() {
        for word in secret.split(' ') {
            let chars: Vec<char> = word.chars().collect();
            for window in chars.windows(6) {
                let fragment: String = window.iter().collect();
                assert!(
                    !output.contains(&fragment),
                    "{what} shows `{fragment}` of a secret:\n{output}"
                );
            }
        }
    }
}

fn valid_config(dir: &Path, http: &str) -> String {
    let secrets_file =
        write_properties(dir, "secrets.properties", &format!("pw = {FILE_SECRET}\n"));
    let mut text = format!(
        "clusters = A, B\nA.bootstrap.servers = 127.0.0.1:1\nB.bootstrap.servers = 127.0.0.1:1\n\
         A->B.enabled = true\nreplication.factor = 1\nmirrord.http.listen = {http}\n\
         A.librdkafka.debug = conf,security\nB.librdkafka.debug = conf,security\n\
         config.providers = file\n\
         config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
         A.security.protocol = SASL_SSL\nA.sasl.mechanism = SCRAM-SHA-512\n\
         A.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"{JAAS_PASSWORD}\";\n\
         A.ssl.truststore.type = PEM\nA.ssl.truststore.location = {dir}/ca.pem\n\
         A.ssl.keystore.type = PKCS12\nA.ssl.keystore.location = {dir}/client.p12\n\
         B.security.protocol = SASL_SSL\nB.sasl.mechanism = PLAIN\n\
         B.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"bob\" password=\"{PLAIN_PASSWORD}\";\n\
         B.ssl.keystore.type = PEM\n\
         B.ssl.keystore.key = -----BEGIN PRIVATE KEY-----\\n{PEM_KEY}\\n-----END PRIVATE KEY-----\n\
         B.ssl.keystore.certificate.chain = -----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\n\
         A->B.target.admin.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"bob\" password=\"${{file:{file}:pw}}\";\n",
        dir = dir.display(),
        file = secrets_file.display(),
    );
    for (key, value) in SECRETS {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text
}

fn invalid_config(valid: &str) -> String {
    let mut text = valid.to_string();
    for (key, value) in INVALID_SECRETS {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text.push_str(&format!(
        "A->B.source.admin.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password={BROKEN_JAAS_PASSWORD};\n\
         A->B.source.consumer.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"{UNTERMINATED_PASSWORD};\n"
    ));
    text
}

fn run(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn no_secret_reaches_check_status_metrics_logs_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let valid = valid_config(dir.path(), &http);
    let file = write_properties(dir.path(), "mm2.properties", &valid);
    let path = file.to_str().unwrap();

    let check = run(&["check", path]);
    assert!(check.contains("configuration OK"), "{check}");
    assert_no_secret("check", &check);
    let json = run(&["check", "--json", path]);
    assert!(json.contains("\"valid\": true"), "{json}");
    assert_no_secret("check --json", &json);

    let invalid_file = write_properties(dir.path(), "invalid.properties", &invalid_config(&valid));
    let invalid = run(&["check", invalid_file.to_str().unwrap()]);
    assert!(
        invalid.contains("error"),
        "the invalid file is refused: {invalid}"
    );
    assert_no_secret("check of an invalid file", &invalid);
    let invalid_json = run(&["check", "--json", invalid_file.to_str().unwrap()]);
    assert_no_secret("check --json of an invalid file", &invalid_json);
    let refused_start = run(&[invalid_file.to_str().unwrap()]);
    assert_no_secret("the daemon refusing to start", &refused_start);

    // trace: everything debug shows and more (librdkafka's own debug output, enabled above, is
    // redacted by librdkafka itself).
    let mut daemon = Daemon::start_with_env(&file, &[("RUST_LOG", "trace")]);
    wait_until(Duration::from_secs(30), "the daemon to answer", || {
        status_of(&http).is_some()
    });
    std::thread::sleep(Duration::from_secs(3));
    // A reload with the invalid file: its errors go to the log and to /status.
    std::fs::write(&file, invalid_config(&valid)).unwrap();
    daemon.signal("HUP");
    wait_until(
        Duration::from_secs(30),
        "the refused reload in /status",
        || status_of(&http).is_some_and(|s| s["last_reload"]["result"] == "invalid_config"),
    );
    let (_, status) = http_get(&http, "/status");
    assert_no_secret("/status", &status);
    let (_, metrics) = http_get(&http, "/metrics");
    assert_no_secret("/metrics", &metrics);
    let table = run(&["status", "--address", &http]);
    assert!(table.contains("A->B"), "{table}");
    assert_no_secret("kafka-mirrord status", &table);
    assert_no_secret(
        "kafka-mirrord status --json",
        &run(&["status", "--json", "--address", &http]),
    );
    assert_eq!(daemon.terminate(Duration::from_secs(40)), Some(0));
    let log = daemon.log_text();
    assert!(log.contains("TRACE"), "the log is at trace level:\n{log}");
    assert_no_secret("the daemon's log at debug level", &log);
}
