//! A Kafka Connect worker in distributed mode (`connect-distributed.sh`'s main class) from the same
//! Maven Central release as the brokers, running MirrorMaker 2's connectors the way the KubeDB and
//! Strimzi guides deploy them: created through its REST API.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_request, mm2_classpath, stop_java, unique, wait_until};

pub struct ConnectWorker {
    child: Child,
    pub rest: String,
    pub offsets_topic: String,
    pub log: PathBuf,
}

impl ConnectWorker {
    /// Starts a worker whose internal topics live on `bootstrap` (as MM2's Connect cluster on
    /// the target does) and waits for its REST API.
    pub fn start(dir: &Path, bootstrap: &str) -> Self {
        let name = unique("connect");
        let port = free_port();
        let offsets_topic = format!("{name}-offsets");
        let worker = dir.join(format!("{name}.properties"));
        std::fs::write(
            &worker,
            format!(
                "bootstrap.servers={bootstrap}\ngroup.id={name}\n\
                 key.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n\
                 value.converter=org.apache.kafka.connect.converters.ByteArrayConverter\n\
                 offset.storage.topic={offsets_topic}\nconfig.storage.topic={name}-configs\n\
                 status.storage.topic={name}-status\noffset.storage.replication.factor=1\n\
                 config.storage.replication.factor=1\nstatus.storage.replication.factor=1\n\
                 offset.flush.interval.ms=1000\nlisteners=http://127.0.0.1:{port}\n\
                 scheduled.rebalance.max.delay.ms=0\n"
            ),
        )
        .unwrap();
        let log4j = dir.join(format!("{name}.log4j.properties"));
        std::fs::write(
            &log4j,
            "log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n",
        )
        .unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = std::process::Command::new("java")
            .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
            .args(["-Xms256M", "-Xmx1G", "-cp"])
            .arg(mm2_classpath())
            .arg("org.apache.kafka.connect.cli.ConnectDistributed")
            .arg(&worker)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let worker = ConnectWorker {
            child,
            rest: format!("127.0.0.1:{port}"),
            offsets_topic,
            log,
        };
        wait_until(Duration::from_secs(120), "the Connect REST API", || {
            http_request(&worker.rest, "GET", "/connectors", None).0 == 200
        });
        worker
    }

    /// Creates (or updates) connector `name` with `config` (a JSON object) through the REST API.
    pub fn put_connector(&self, name: &str, config: &serde_json::Value) {
        let path = format!("/connectors/{name}/config");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // 409: the worker is rebalancing (it just started); try again.
            let (status, body) = http_request(&self.rest, "PUT", &path, Some(&config.to_string()));
            if status == 200 || status == 201 {
                return;
            }
            assert!(Instant::now() < deadline, "PUT {path}: {status} {body}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Deletes connector `name`: its tasks stop and Connect flushes their offsets.
    pub fn delete_connector(&self, name: &str) {
        let (status, body) =
            http_request(&self.rest, "DELETE", &format!("/connectors/{name}"), None);
        assert!(
            status == 204 || status == 200,
            "DELETE {name}: {status} {body}"
        );
    }

    /// SIGTERM and wait (a clean stop commits source offsets).
    pub fn stop(&mut self) {
        stop_java(&mut self.child, "the Connect worker");
    }
}

impl Drop for ConnectWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "---- Connect worker log, WARN/ERROR lines ({}) ----",
                self.log.display()
            );
            for line in log
                .lines()
                .filter(|line| line.contains("WARN") || line.contains("ERROR"))
                .take(100)
            {
                eprintln!("{line}");
            }
        }
    }
}
