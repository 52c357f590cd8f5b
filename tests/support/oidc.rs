//! An OAuth 2.0 identity provider on loopback (`oidc_issuer.py`) and a single-node Apache Kafka
//! whose SASL_PLAINTEXT listener accepts only OAUTHBEARER tokens, validated by Kafka's own
//! `OAuthBearerValidatorCallbackHandler` against the issuer's JWKS: what the OIDC test
//! authenticates against. Both are killed on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, repo_root, test_kafka};

pub struct OidcIssuer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl OidcIssuer {
    /// Starts the issuer; it accepts the client credentials `client_id`/`client_secret` only.
    pub fn start(dir: &Path, client_id: &str, client_secret: &str) -> OidcIssuer {
        let log = dir.join("token-requests.log");
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/support/oidc_issuer.py"))
            .args(["--dir", &dir.display().to_string()])
            .args(["--client-id", client_id, "--client-secret", client_secret])
            .args(["--log", &log.display().to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the test identity provider");
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let port = first_line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the issuer printed no port: {first_line:?}"));
        OidcIssuer { child, port, log }
    }

    pub fn token_url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn jwks_url(&self) -> String {
        format!("http://127.0.0.1:{}/jwks", self.port)
    }

    /// Every token request so far: `{grant_type, client_id, scope, accepted}`.
    pub fn token_requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A single-node KRaft Kafka (the release of the shared test clusters) with a PLAINTEXT listener
/// for the test's own clients and a SASL_PLAINTEXT listener for OAUTHBEARER only.
pub struct OauthKafka {
    child: Child,
    pub plaintext: String,
    pub oauth: String,
    log: PathBuf,
}

impl OauthKafka {
    pub fn start(dir: &Path, issuer: &OidcIssuer) -> OauthKafka {
        let kafka = test_kafka();
        let libs = format!("{}/*", kafka.get("KAFKA_LIBS"));
        let major: u32 = kafka
            .get("KAFKA_VERSION")
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .unwrap_or(3);
        let (plain, controller, oauth) = (free_port(), free_port(), free_port());
        let data = dir.join("kafka-data");
        let properties = dir.join("server.properties");
        std::fs::write(
            &properties,
            format!(
                "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{controller}\n\
                 controller.listener.names=CONTROLLER\n\
                 listeners=PLAINTEXT://127.0.0.1:{plain},CONTROLLER://127.0.0.1:{controller},SASL_PLAINTEXT://127.0.0.1:{oauth}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{oauth}\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT\n\
                 inter.broker.listener.name=PLAINTEXT\nlog.dirs={data}\n\
                 offsets.topic.replication.factor=1\noffsets.topic.num.partitions=1\n\
                 transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\ntransaction.state.log.num.partitions=1\n\
                 share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n\
                 group.initial.rebalance.delay.ms=0\nauto.create.topics.enable=false\n\
                 sasl.enabled.mechanisms=OAUTHBEARER\n\
                 listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler\n\
                 listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;\n\
                 sasl.oauthbearer.jwks.endpoint.url={jwks}\n",
                data = data.display(),
                jwks = issuer.jwks_url(),
            ),
        )
        .unwrap();
        let state = PathBuf::from(kafka.get("KAFKA_TEST_DIR"));
        let log_config = if major >= 4 {
            format!(
                "-Dlog4j2.configurationFile={}",
                state.join("log4j2.properties").display()
            )
        } else {
            format!(
                "-Dlog4j.configuration=file:{}",
                state.join("log4j.properties").display()
            )
        };
        let logs = dir.join("kafka-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let logs_opt = format!("-Dkafka.logs.dir={}", logs.display());
        let format = Command::new("java")
            .args([
                &log_config,
                &logs_opt,
                "-cp",
                &libs,
                "kafka.tools.StorageTool",
                "format",
            ])
            .args([
                "-t",
                "b2F1dGhiZWFyZXItdGVzdA",
                "-c",
                &properties.display().to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            format.status.success(),
            "formatting the OAUTHBEARER broker failed: {}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );
        // Kafka 4 refuses token and JWKS endpoints that are not listed here.
        let allowed = format!(
            "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={},{}",
            issuer.jwks_url(),
            issuer.token_url()
        );
        let log = logs.join("stdout.log");
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                &allowed,
                &log_config,
                &logs_opt,
                "-cp",
                &libs,
                "kafka.Kafka",
            ])
            .arg(&properties)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let broker = OauthKafka {
            child,
            plaintext: format!("127.0.0.1:{plain}"),
            oauth: format!("127.0.0.1:{oauth}"),
            log: logs.join("server.log"),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !broker.answers_metadata() {
            assert!(
                Instant::now() < deadline,
                "the OAUTHBEARER broker did not start within 90 s:\n{}",
                broker.log_text()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        broker
    }

    fn answers_metadata(&self) -> bool {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.plaintext)
            .create()
            .unwrap();
        consumer
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok_and(|metadata| !metadata.brokers().is_empty())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OauthKafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
