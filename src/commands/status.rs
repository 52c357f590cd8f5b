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
    let address = match daemon_address(address, file) {
        Ok(address) => address,
        Err(code) => return code,
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
    let (code, body) = request(address, "GET", "/status", Duration::from_secs(10))?;
    if code != 200 {
        return Err(std::io::Error::other(format!(
            "HTTP {code}: {}",
            body.trim()
        )));
    }
    Ok(body)
}

/// One HTTP/1.1 request to the daemon's endpoint: (status code, body). The endpoint answers with
/// a `Content-Length` body and closes the connection (`Connection: close`).
pub(crate) fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP answer"))?;
    Ok((code, body.to_string()))
}

/// The daemon's HTTP address: `--address`, else the file's `mirrord.http.listen` (an error text
/// when it is off or the file is invalid — printed already — with the exit code).
pub(crate) fn daemon_address(
    address: Option<SocketAddr>,
    file: Option<&Path>,
) -> Result<SocketAddr, u8> {
    match (address, file) {
        (Some(address), _) => Ok(address),
        (None, Some(file)) => match plan::load(file, &PlanOptions::default()) {
            Ok(loaded) => match loaded.config.mirrord.http_listen {
                Some(address) => Ok(reachable(address)),
                None => {
                    eprintln!(
                        "kafka-mirrord: `mirrord.http.listen` is off in {}; nothing to ask",
                        file.display()
                    );
                    Err(exit::CONFIG_ERROR)
                }
            },
            Err(errors) => {
                super::print_config_errors(&errors);
                Err(exit::CONFIG_ERROR)
            }
        },
        (None, None) => Ok(SocketAddr::from(([127, 0, 0, 1], 9464))),
    }
}

/// A wildcard listen address is asked on the loopback interface.
fn reachable(address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(loopback, address.port())
    } else {
        address
    }
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
        if let Some(membership) = &flow.membership {
            out.push_str(&format!(
                "    group {} ({}{}), generation {}, {} member(s), last rebalance {}\n",
                membership.group,
                membership.state,
                if membership.leader {
                    ", leader here"
                } else {
                    ""
                },
                membership
                    .generation
                    .map_or("-".to_string(), |g| g.to_string()),
                membership.members.len(),
                membership
                    .last_rebalance_ms
                    .map_or("-".to_string(), |ms| format!("took {ms} ms")),
            ));
            for member in &membership.members {
                out.push_str(&format!(
                    "      {}{} pid {} v{} tasks {:?} ({} partitions){}\n",
                    if member.leader { "* " } else { "  " },
                    member.node.as_deref().unwrap_or(&member.host),
                    member.pid.map_or("?".to_string(), |p| p.to_string()),
                    member.version.as_deref().unwrap_or("?"),
                    member.tasks,
                    member.partitions,
                    if member.this_process {
                        " (this process)"
                    } else {
                        ""
                    },
                ));
            }
            for note in membership.conflict.iter().chain(&membership.problem) {
                out.push_str(&format!("      ! {note}\n"));
            }
        }
        for task in flow.tasks.iter().filter(|t| t.state.as_str() != "running") {
            out.push_str(&format!(
                "    task {:<20} {} (restarts {}){}\n",
                task.name,
                task.state.as_str(),
                task.restarts,
                task.last_error
                    .as_deref()
                    .map_or(String::new(), |e| format!(": {e}"))
            ));
        }
        for topic in &flow.topics {
            for partition in &topic.partitions {
                if let Some(stall) = &partition.stalled {
                    out.push_str(&format!(
                        "    HELD {}/{} at offset {}: {}; fix: {}\n",
                        topic.name, partition.partition, stall.offset, stall.reason, stall.fix
                    ));
                }
            }
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
