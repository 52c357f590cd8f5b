//! `kafka-mirrord status [--address HOST:PORT] [FILE]`: a readable table of a running daemon's
//! `/status` — flows, state, lag and whether each has caught up — for the sysadmin deciding whether
//! it is safe to cut over.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::exit;
use crate::plan::{self, PlanOptions};
use crate::status::StatusReport;

pub fn run(file: Option<&Path>, address: Option<SocketAddr>, json: bool) -> u8 {
    let address = match (address, file) {
        (Some(address), _) => address,
        (None, Some(file)) => match plan::load(file, &PlanOptions::default()) {
            Ok(loaded) => match loaded.config.mirrord.http_listen {
                Some(address) => address,
                None => {
                    eprintln!(
                        "kafka-mirrord: `mirrord.http.listen` is off in {}; nothing to ask",
                        file.display()
                    );
                    return exit::CONFIG_ERROR;
                }
            },
            Err(errors) => {
                super::print_config_errors(&errors);
                return exit::CONFIG_ERROR;
            }
        },
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 9464)),
    };
    let body = match fetch(address) {
        Ok(body) => body,
        Err(error) => {
            eprintln!("kafka-mirrord: cannot reach the daemon at http://{address}/status: {error}");
            return exit::FAILURE;
        }
    };
    if json {
        println!("{body}");
        return exit::OK;
    }
    match serde_json::from_str::<StatusReport>(&body) {
        Ok(report) => {
            print!("{}", render(&report));
            exit::OK
        }
        Err(error) => {
            eprintln!("kafka-mirrord: unexpected /status answer: {error}");
            exit::FAILURE
        }
    }
}

fn fetch(address: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /status HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(
            head.lines().next().unwrap_or("no answer").to_string(),
        ));
    }
    Ok(body.to_string())
}

/// The table: one line per flow, then its topics.
pub fn render(report: &StatusReport) -> String {
    let mut out = format!("{}\n\n", crate::status::summary_line(&report.summary));
    out.push_str(&format!(
        "{:<32} {:<10} {:>12} {:<10} {}\n",
        "FLOW", "STATE", "LAG", "CAUGHT UP", "LAST ERROR"
    ));
    for flow in &report.flows {
        out.push_str(&format!(
            "{:<32} {:<10} {:>12} {:<10} {}\n",
            flow.id,
            flow.state.as_str(),
            flow.lag,
            if flow.caught_up { "yes" } else { "no" },
            flow.last_error.as_deref().unwrap_or("-")
        ));
        for topic in &flow.topics {
            out.push_str(&format!(
                "    {:<40} lag {:>10} ({} partitions)\n",
                topic.name,
                topic.lag,
                topic.partitions.len()
            ));
        }
        for group in &flow.groups {
            let reason = group
                .skipped_reason
                .as_deref()
                .unwrap_or(if group.checkpointed {
                    "checkpointed"
                } else {
                    "-"
                });
            out.push_str(&format!("    group {:<34} {reason}\n", group.group));
        }
    }
    out
}
