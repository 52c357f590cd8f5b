//! Shared fixture for tests that need real Apache Kafka: starts (or reuses) the local clusters
//! of `scripts/test-kafka` once per test binary and exposes the addresses it wrote.

#![allow(dead_code)] // each test binary uses a different part of the fixture

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The env file of `scripts/test-kafka`: `SOURCE_BOOTSTRAP`, `TARGET_SASL_SSL_BOOTSTRAP`, `TEST_KAFKA_CA`, ...
pub struct TestKafka {
    pub env: BTreeMap<String, String>,
}

impl TestKafka {
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("scripts/test-kafka did not export {key}"))
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the two local clusters if they are not running (idempotent; the script locks).
pub fn test_kafka() -> &'static TestKafka {
    static KAFKA: OnceLock<TestKafka> = OnceLock::new();
    KAFKA.get_or_init(|| {
        let script = repo_root().join("scripts/test-kafka");
        let output = Command::new(&script)
            .arg("start")
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
        assert!(
            output.status.success(),
            "scripts/test-kafka start failed (is Java 17 and Maven installed? see README):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let env = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| {
                (
                    key.trim().to_string(),
                    value
                        .trim()
                        .trim_matches('\'')
                        .trim_matches('"')
                        .to_string(),
                )
            })
            .collect();
        TestKafka { env }
    })
}

/// Writes a properties file into `dir` and returns its path.
pub fn write_properties(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp dir is writable");
    path
}
