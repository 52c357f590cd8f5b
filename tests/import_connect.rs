//! `kafka-mirrord import-connect` (issue 12): the connector configs of MM2 on Kafka Connect, shaped
//! like the KubeDB guide's (properties) and the Connect REST API's (JSON), become a dedicated-mode
//! file that passes `check` and yields the same plan as the file a person would write by hand.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const JAAS_SOURCE: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="source-pass";"#;
const JAAS_TARGET: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="target-pass";"#;

fn source_connector() -> String {
    format!(
        "tasks.max=2\n\
         connector.class=org.apache.kafka.connect.mirror.MirrorSourceConnector\n\
         source.cluster.alias=source\n\
         source.cluster.bootstrap.servers=source-kafka-pods.demo.svc:9092\n\
         source.cluster.security.protocol=SASL_PLAINTEXT\n\
         source.cluster.sasl.mechanism=PLAIN\n\
         source.cluster.sasl.jaas.config={JAAS_SOURCE}\n\
         target.cluster.alias=target\n\
         target.cluster.bootstrap.servers=target-kafka-pods.demo.svc:9092\n\
         target.cluster.security.protocol=SASL_PLAINTEXT\n\
         target.cluster.sasl.mechanism=PLAIN\n\
         target.cluster.sasl.jaas.config={JAAS_TARGET}\n\
         offset.lag.max=100\n\
         replication.factor=-1\n\
         sync.topic.acls.enabled=false\n\
         sync.topic.configs.enabled=true\n\
         offset-syncs.topic.replication.factor=-1\n\
         key.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n\
         value.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n\
         replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n\
         topics.exclude=.*[\\\\-\\\\.]internal,.*\\\\.replica,__consumer_offsets,_schemas\n"
    )
}

fn connector_json(name: &str, class: &str, extra: &[(&str, &str)]) -> String {
    let mut config = serde_json::json!({
        "connector.class": format!("org.apache.kafka.connect.mirror.{class}"),
        "source.cluster.alias": "source",
        "target.cluster.alias": "target",
        "source.cluster.bootstrap.servers": "source-kafka-pods.demo.svc:9092",
        "source.cluster.security.protocol": "SASL_PLAINTEXT",
        "source.cluster.sasl.mechanism": "PLAIN",
        "source.cluster.sasl.jaas.config": JAAS_SOURCE,
        "target.cluster.bootstrap.servers": "target-kafka-pods.demo.svc:9092",
        "target.cluster.security.protocol": "SASL_PLAINTEXT",
        "target.cluster.sasl.mechanism": "PLAIN",
        "target.cluster.sasl.jaas.config": JAAS_TARGET,
        "replication.policy.class": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
    });
    for (key, value) in extra {
        config[*key] = Value::String(value.to_string());
    }
    serde_json::json!({ "name": name, "config": config }).to_string()
}

/// The same flow, written by hand for dedicated mode.
fn hand_written() -> String {
    format!(
        "clusters = source, target\n\
         source.bootstrap.servers = source-kafka-pods.demo.svc:9092\n\
         source.security.protocol = SASL_PLAINTEXT\n\
         source.sasl.mechanism = PLAIN\n\
         source.sasl.jaas.config = {JAAS_SOURCE}\n\
         target.bootstrap.servers = target-kafka-pods.demo.svc:9092\n\
         target.security.protocol = SASL_PLAINTEXT\n\
         target.sasl.mechanism = PLAIN\n\
         target.sasl.jaas.config = {JAAS_TARGET}\n\
         source->target.enabled = true\n\
         source->target.tasks.max = 2\n\
         source->target.offset.lag.max = 100\n\
         source->target.replication.factor = -1\n\
         source->target.offset-syncs.topic.replication.factor = -1\n\
         source->target.sync.topic.acls.enabled = false\n\
         source->target.sync.topic.configs.enabled = true\n\
         source->target.replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n\
         source->target.topics.exclude = .*[\\\\-\\\\.]internal,.*\\\\.replica,__consumer_offsets,_schemas\n\
         source->target.sync.group.offsets.enabled = true\n\
         source->target.emit.checkpoints.interval.seconds = 10\n\
         source->target.emit.heartbeats.interval.seconds = 5\n\
         target->source.emit.heartbeats.enabled = false\n\
         mirrord.takeover.connect.offsets.topic = connect-offsets\n\
         mirrord.takeover.connect.connectors = mirror-source-connector\n"
    )
}

fn kafka_mirrord(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafka-mirrord"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn check_json(dir: &Path, file: &str) -> Value {
    let output = kafka_mirrord(&["check", "--json", file], dir);
    assert_eq!(
        output.status.code(),
        Some(0),
        "check {file}: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn write_trio(dir: &Path) {
    std::fs::write(dir.join("source.properties"), source_connector()).unwrap();
    std::fs::write(
        dir.join("checkpoint.json"),
        connector_json(
            "mirror-checkpoint-connector",
            "MirrorCheckpointConnector",
            &[
                ("sync.group.offsets.enabled", "true"),
                ("emit.checkpoints.interval.seconds", "10"),
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("heartbeat.json"),
        connector_json(
            "mirror-heartbeat-connector",
            "MirrorHeartbeatConnector",
            &[("emit.heartbeats.interval.seconds", "5")],
        ),
    )
    .unwrap();
}

#[test]
fn the_kubedb_connectors_become_the_same_plan_as_a_hand_written_file() {
    let dir = tempfile::tempdir().unwrap();
    write_trio(dir.path());
    std::fs::write(dir.path().join("hand.properties"), hand_written()).unwrap();
    let output = kafka_mirrord(
        &[
            "import-connect",
            "--source-connector-name",
            "mirror-source-connector",
            "-o",
            "imported.properties",
            "source.properties",
            "checkpoint.json",
            "heartbeat.json",
        ],
        dir.path(),
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let imported = check_json(dir.path(), "imported.properties");
    let hand = check_json(dir.path(), "hand.properties");
    assert_eq!(imported["errors"], Value::Array(vec![]), "{imported}");
    assert_eq!(imported["flows"][0]["id"], "source->target", "{imported}");
    for part in ["flows", "clusters", "mirrord"] {
        assert_eq!(imported[part], hand[part], "{part} differs");
    }
    assert_eq!(
        imported["mirrord"]["takeover"]["connectors"],
        serde_json::json!(["mirror-source-connector"])
    );
    // The written file holds the credentials, readable by its owner only.
    let written = std::fs::read_to_string(dir.path().join("imported.properties")).unwrap();
    assert!(written.contains("source-pass"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("imported.properties"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn printed_output_masks_secrets_and_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    write_trio(dir.path());
    let output = kafka_mirrord(
        &["import-connect", "source.properties", "checkpoint.json"],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(!stdout.contains("source-pass") && !stderr.contains("source-pass"));
    assert!(
        stdout.contains("source.sasl.jaas.config = ********"),
        "{stdout}"
    );
    // No heartbeat connector was given: none ran, none will.
    assert!(
        stdout.contains("source->target.emit.heartbeats.enabled = false"),
        "{stdout}"
    );
    // The properties file has no `name`: the takeover needs it.
    assert!(stderr.contains("--source-connector-name"), "{stderr}");
}

#[test]
fn configs_that_cannot_be_converted_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("source.properties"), source_connector()).unwrap();
    std::fs::write(
        dir.path().join("other.json"),
        r#"{"name":"jdbc","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSourceConnector"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("checkpoint.json"),
        connector_json("cp", "MirrorCheckpointConnector", &[("tasks.max", "7")]),
    )
    .unwrap();
    let output = kafka_mirrord(
        &["import-connect", "source.properties", "other.json"],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JdbcSourceConnector"), "{stderr}");
    let output = kafka_mirrord(
        &["import-connect", "source.properties", "checkpoint.json"],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("source->target.tasks.max") && stderr.contains("disagree"),
        "{stderr}"
    );
}

#[test]
fn takeover_connector_names_without_the_offsets_topic_are_an_error_on_their_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mm2.properties"),
        "clusters = a, b\na.bootstrap.servers = a:9092\nb.bootstrap.servers = b:9092\n\
         a->b.enabled = true\nmirrord.takeover.connect.connectors = mirror-source\n",
    )
    .unwrap();
    let output = kafka_mirrord(&["check", "--json", "mm2.properties"], dir.path());
    assert_eq!(output.status.code(), Some(64));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = &document["errors"][0];
    assert_eq!(error["key"], "mirrord.takeover.connect.connectors");
    assert_eq!(error["line"], 5);
    assert!(
        error["fix"]
            .as_str()
            .unwrap()
            .contains("mirrord.takeover.connect.offsets.topic"),
        "{error}"
    );
}
