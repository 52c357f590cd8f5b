//! A real Prometheus server (Debian's `prometheus` package, installed by `scripts/install-deps`)
//! scraping a daemon's `/metrics` every second, and its query API: what the dashboard test
//! evaluates every panel query against.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One Prometheus process with its own data directory; killed on drop.
pub struct Prometheus {
    child: Child,
    pub address: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) as job `kafka-mirrord`, adding `labels` to
    /// every series (as a service discovery or static config would).
    pub fn start(target: &str, labels: &[(&str, &str)]) -> Prometheus {
        let binary = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_string());
        let dir = tempfile::tempdir().unwrap();
        let label_lines: String = labels
            .iter()
            .map(|(name, value)| format!("          {name}: \"{value}\"\n"))
            .collect();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: kafka-mirrord\n    static_configs:\n      - targets: ['{target}']\n        labels:\n{label_lines}"
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", super::free_port());
        let log = dir.path().join("prometheus.log");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{binary}` ({e}): install Debian's prometheus package (scripts/install-deps does)")
            });
        let prometheus = Prometheus {
            child,
            address,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while prometheus.get("/-/ready").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready after 60 s:\n{}",
                prometheus.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An instant query: the result vector (empty = "No data"), or the error Prometheus gave.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let (status, body) = self.get(&format!("/api/v1/query?query={}", url_encode(expr)));
        let document: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
        if document["status"] != "success" {
            return Err(format!("{}: {}", document["errorType"], document["error"]));
        }
        Ok(document["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// HTTP/1.0, so that the body is never chunked.
    fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut stream) = std::net::TcpStream::connect(&self.address) else {
            return (0, String::new());
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = String::new();
        if stream.read_to_string(&mut response).is_err() {
            return (0, String::new());
        }
        super::status_and_body(&response)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encoding of a query parameter (every byte but unreserved characters).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
