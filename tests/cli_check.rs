//! `kafka-mirrord check` as a user runs it: every `config/` example, `--json`, malformed files,
//! exit codes, and secrets never printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kafka-mirrord");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn check_json(file: &Path, env: &[(&str, &str)]) -> Value {
    let output = run(&["check", "--json", file.to_str().unwrap()], env);
    assert_eq!(
        output.status.code(),
        Some(0),
        "check {} failed:\n{}\n{}",
        file.display(),
        stdout(&output),
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON document")
}

/// (flow id, mode) for every flow of a `check --json` document.
fn flows(document: &Value) -> Vec<(String, String)> {
    document["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn commented_reference_file_plans_one_flow_and_its_heartbeat_pair() {
    let document = check_json(&repo("config/connect-mirror-maker.properties"), &[]);
    assert_eq!(document["valid"], true);
    assert_eq!(
        flows(&document),
        pairs(&[("A->B", "replicate"), ("B->A", "heartbeats-only")])
    );
    let flow = &document["flows"][0];
    assert_eq!(flow["source"]["replication_factor"], 3);
    assert_eq!(flow["checkpoints"]["sync_group_offsets"]["enabled"], true);
    assert_eq!(
        document["warnings"].as_array().unwrap().len(),
        0,
        "the reference file is clean: {}",
        document["warnings"]
    );
}

#[test]
fn migration_example_uses_identity_policy() {
    let document = check_json(&repo("config/examples/migration-identity.properties"), &[]);
    assert_eq!(flows(&document), pairs(&[("old->new", "replicate")]));
    let flow = &document["flows"][0];
    assert_eq!(
        flow["replication_policy"]["class"],
        "IdentityReplicationPolicy"
    );
    assert_eq!(
        flow["clients"]["source-consumer"]["settings"]["isolation.level"],
        "read_committed"
    );
    assert_eq!(
        flow["checkpoints"]["sync_group_offsets"]["interval_seconds"],
        10
    );
}

#[test]
fn active_active_example_replicates_both_ways() {
    let document = check_json(&repo("config/examples/active-active.properties"), &[]);
    assert_eq!(
        flows(&document),
        pairs(&[("east->west", "replicate"), ("west->east", "replicate")])
    );
    for flow in document["flows"].as_array().unwrap() {
        assert_eq!(
            flow["replication_policy"]["class"],
            "DefaultReplicationPolicy"
        );
        assert_eq!(flow["source"]["tasks_max"], 2);
    }
}

#[test]
fn aggregation_example_runs_only_flows_into_central() {
    let document = check_json(
        &repo("config/examples/aggregation-three-clusters.properties"),
        &[],
    );
    assert_eq!(
        flows(&document),
        pairs(&[("eu->central", "replicate"), ("us->central", "replicate")])
    );
    assert_eq!(
        document["flows"][0]["clients"]["target-producer"]["settings"]["compression.type"],
        "zstd"
    );
}

#[test]
fn sasl_scram_tls_example_resolves_secrets_from_files_and_never_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.properties");
    std::fs::write(
        &secrets,
        "onprem.password=0nPremSecret!\ncloud.password=Cl0udSecret!\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(repo("config/examples/sasl-scram-tls.properties")).unwrap();
    let file = dir.path().join("sasl.properties");
    std::fs::write(
        &file,
        text.replace(
            "/etc/kafka-mirrord/secrets.properties",
            secrets.to_str().unwrap(),
        ),
    )
    .unwrap();

    let document = check_json(&file, &[]);
    assert_eq!(flows(&document), pairs(&[("onprem->cloud", "replicate")]));
    let consumer = &document["flows"][0]["clients"]["source-consumer"]["settings"];
    assert_eq!(consumer["sasl.mechanisms"], "SCRAM-SHA-512");
    assert_eq!(consumer["sasl.username"], "mirrord");
    assert_eq!(consumer["sasl.password"], "********");
    assert_eq!(
        consumer["ssl.ca.location"],
        "/etc/kafka-mirrord/onprem-ca.pem"
    );
    assert_eq!(
        document["flows"][0]["clients"]["target-producer"]["settings"]["sasl.mechanisms"],
        "SCRAM-SHA-256"
    );

    for args in [vec!["check"], vec!["check", "--json"]] {
        let mut args = args.clone();
        args.push(file.to_str().unwrap());
        let output = run(&args, &[]);
        let all = stdout(&output) + &stderr(&output);
        assert!(
            !all.contains("0nPremSecret!") && !all.contains("Cl0udSecret!"),
            "a password leaked:\n{all}"
        );
    }
}

#[test]
fn passwords_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.properties");
    std::fs::write(
        &file,
        "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\nA->B.enabled = true\n\
         A.security.protocol = SASL_SSL\nA.sasl.mechanism = PLAIN\n\
         A.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"Hunter2-Plain\";\n\
         B.ssl.key.password = Hunter2-Key\nB.ssl.keystore.type = PEM\nB.ssl.keystore.location = /k.pem\n\
         B.ssl.truststore.password = Hunter2-Trust\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let mut outputs = vec![
        run(&["check", path], &[]),
        run(&["check", "--json", path], &[]),
    ];
    // The same secrets in an invalid file: errors and warnings must mask them too.
    let broken = dir.path().join("broken.properties");
    let text = std::fs::read_to_string(&file).unwrap().replace("PEM", "JKS") + "A.ssl.keystore.password = Hunter2-Store\nA.ssl.keystore.location = /x.jks\nmirrord.bogus = 1\n";
    std::fs::write(&broken, text).unwrap();
    outputs.push(run(&["check", broken.to_str().unwrap()], &[]));
    outputs.push(run(&["check", "--json", broken.to_str().unwrap()], &[]));
    outputs.push(run(&[broken.to_str().unwrap()], &[]));
    for output in &outputs {
        let all = stdout(output) + &stderr(output);
        for secret in [
            "Hunter2-Plain",
            "Hunter2-Key",
            "Hunter2-Trust",
            "Hunter2-Store",
        ] {
            assert!(!all.contains(secret), "`{secret}` leaked:\n{all}");
        }
    }
    assert_eq!(outputs[0].status.code(), Some(0));
    assert_eq!(outputs[2].status.code(), Some(64));
}

#[test]
fn malformed_file_exits_64_with_one_line_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.properties");
    std::fs::write(
        &file,
        "# a broken file\nclusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\n\
         A->B.enabled = true\nA->B.refresh.topics.interval.seconds = ten\nA->B.topics = (?<=x)y\n\
         mirrord.log.levl = debug\nreplication.factor = 3   # three copies\n",
    )
    .unwrap();
    let output = run(&["check", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(64));
    let errors = stderr(&output);
    let lines: Vec<&str> = errors.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(lines.len(), 4, "one line per problem:\n{errors}");
    for (line_number, key) in [
        (6, "A->B.refresh.topics.interval.seconds"),
        (7, "A->B.topics"),
        (8, "mirrord.log.levl"),
        (9, "replication.factor"),
    ] {
        let expected = format!("bad.properties:{line_number}: error: `{key}`");
        assert!(
            lines.iter().any(|l| l.contains(&expected)),
            "missing `{expected}` in:\n{errors}"
        );
    }
    assert!(
        errors.contains("did you mean `mirrord.log.level`"),
        "{errors}"
    );
    assert!(errors.contains("no inline comments"), "{errors}");
    assert!(
        stdout(&output).is_empty(),
        "nothing on stdout for an invalid file"
    );

    let json = run(&["check", "--json", file.to_str().unwrap()], &[]);
    assert_eq!(json.status.code(), Some(64));
    let document: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["valid"], false);
    assert_eq!(document["errors"].as_array().unwrap().len(), 4);
    assert_eq!(document["errors"][0]["line"], 6);
    assert_eq!(
        document["errors"][0]["key"],
        "A->B.refresh.topics.interval.seconds"
    );
}

#[test]
fn run_command_rejects_a_bad_file_with_64_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.properties");
    std::fs::write(&file, "A.bootstrap.servers = a:9092\n").unwrap();
    let output = run(&[file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(64));
    assert!(
        stderr(&output).contains("missing required key `clusters`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn command_line_errors_and_mm2_argument_order() {
    assert_eq!(
        run(&["check", "/nonexistent/mm2.properties"], &[])
            .status
            .code(),
        Some(64)
    );
    assert_eq!(run(&[], &[]).status.code(), Some(64));
    assert_eq!(run(&["--bogus"], &[]).status.code(), Some(64));
    let help = run(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit codes"));

    // `--clusters B FILE` (MM2's order) and `FILE --clusters B` both work.
    let file = repo("config/examples/active-active.properties");
    let path = file.to_str().unwrap();
    for args in [
        vec!["check", "--json", "--clusters", "west", path],
        vec!["check", "--json", path, "--clusters", "west"],
    ] {
        let output = run(&args, &[]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        let document: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            flows(&document),
            pairs(&[("east->west", "replicate")]),
            "{args:?}"
        );
    }
}
