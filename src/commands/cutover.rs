//! `kafka-mirrord cutover`: may consumers and producers move to the target now? Asks the running
//! daemon (`/status`, and `POST /final-sync` with `--final-sync`) and the clusters (the selected
//! groups' members on both sides, read now), and prints a verdict per flow, topic and group with
//! each gate (docs/cutover.md). Changes nothing on the clusters beyond the final sync round.
//!
//! Exit codes: 0 every gate passes; 2 not yet (the output says what to wait for); 64 usage or
//! configuration error; 1 cannot tell (daemon or cluster unreachable).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;

use super::status::{daemon_address, request};
use crate::exit;
use crate::kafka::admin::Admin;
use crate::plan::clients::ClientRole;
use crate::plan::{self, FlowMode, FlowPlan, PlanOptions};
use crate::status::cutover::{judge, CutoverOptions, CutoverVerdict};
use crate::status::{FlowStatus, StatusReport};

/// Exit code for "not yet".
pub const NOT_YET: u8 = 2;

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct CutoverArgs {
    pub file: PathBuf,
    pub flow: Option<String>,
    pub topics: Option<String>,
    pub groups: Option<String>,
    pub quiet_seconds: u64,
    pub final_sync: bool,
    pub wait: bool,
    pub timeout: Duration,
    pub json: bool,
    pub address: Option<SocketAddr>,
}

#[derive(Serialize)]
struct FlowVerdict<'a> {
    flow: String,
    #[serde(flatten)]
    verdict: &'a CutoverVerdict,
}

/// Why a round could not judge.
enum CannotTell {
    Usage(String),
    Unreachable(String),
}

pub fn run(args: &CutoverArgs) -> u8 {
    let compile = |what: &str, pattern: &Option<String>| -> Result<Option<Regex>, String> {
        pattern
            .as_deref()
            .map(|p| Regex::new(&format!("^(?:{p})$")).map_err(|e| format!("--{what} `{p}`: {e}")))
            .transpose()
    };
    let options = match (
        compile("topics", &args.topics),
        compile("groups", &args.groups),
    ) {
        (Ok(topics), Ok(groups)) => CutoverOptions {
            topics,
            groups,
            quiet_seconds: args.quiet_seconds,
        },
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("kafka-mirrord cutover: {error}");
            return exit::CONFIG_ERROR;
        }
    };
    let loaded = match plan::load(&args.file, &PlanOptions::default()) {
        Ok(loaded) => loaded,
        Err(errors) => {
            super::print_config_errors(&errors);
            return exit::CONFIG_ERROR;
        }
    };
    let flows: Vec<FlowPlan> = loaded
        .plan
        .flows
        .values()
        .filter(|flow| flow.mode == FlowMode::Replicate)
        .filter(|flow| {
            args.flow
                .as_deref()
                .map_or(true, |wanted| wanted == flow.id.to_string())
        })
        .cloned()
        .collect();
    if flows.is_empty() {
        eprintln!(
            "kafka-mirrord cutover: {} has no replicating flow{}",
            args.file.display(),
            args.flow
                .as_deref()
                .map(|f| format!(" `{f}` (flows are named `<source>-><target>`)"))
                .unwrap_or_default()
        );
        return exit::CONFIG_ERROR;
    }
    let address = match daemon_address(args.address, Some(&args.file)) {
        Ok(address) => address,
        Err(code) => return code,
    };
    let deadline = Instant::now() + args.timeout;
    loop {
        let verdicts = match evaluate(args, &options, &flows, address) {
            Ok(verdicts) => verdicts,
            Err(CannotTell::Usage(message)) => {
                eprintln!("kafka-mirrord cutover: {message}");
                return exit::CONFIG_ERROR;
            }
            Err(CannotTell::Unreachable(message)) => {
                eprintln!("kafka-mirrord cutover: cannot tell: {message}");
                return exit::FAILURE;
            }
        };
        let ready = verdicts.iter().all(|(_, verdict)| verdict.ready);
        if ready || !args.wait || Instant::now() >= deadline {
            print_verdicts(&verdicts, args.json);
            if !ready && args.wait {
                eprintln!(
                    "kafka-mirrord cutover: not ready after {} s",
                    args.timeout.as_secs()
                );
            }
            return if ready { exit::OK } else { NOT_YET };
        }
        eprintln!("waiting: {}", progress_line(&verdicts));
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// One look: the daemon's status and the groups' members now. With `--final-sync`, once the
/// records are all copied and stored and the source is quiet, one immediate checkpoint and sync
/// round first, then a second look: its translations then start from the final stored progress.
fn evaluate(
    args: &CutoverArgs,
    options: &CutoverOptions,
    flows: &[FlowPlan],
    address: SocketAddr,
) -> Result<Vec<(String, CutoverVerdict)>, CannotTell> {
    let verdicts = look(options, flows, address)?;
    if !args.final_sync {
        return Ok(verdicts);
    }
    let settled = |verdict: &CutoverVerdict| {
        verdict
            .gates
            .iter()
            .filter(|gate| gate.gate == "lag" || gate.gate == "quiet")
            .all(|gate| gate.passed)
    };
    if !verdicts.iter().all(|(_, verdict)| settled(verdict)) {
        return Ok(verdicts);
    }
    for flow in flows {
        let path = format!(
            "/final-sync?flow={}",
            flow.id.to_string().replace('>', "%3E")
        );
        let (code, body) = request(address, "POST", &path, Duration::from_secs(60))
            .map_err(|e| CannotTell::Unreachable(format!("the daemon at http://{address}: {e}")))?;
        if code != 200 {
            return Err(CannotTell::Unreachable(format!(
                "the final sync of {} did not run (HTTP {code}): {}",
                flow.id,
                body.trim()
            )));
        }
    }
    look(options, flows, address)
}

fn look(
    options: &CutoverOptions,
    flows: &[FlowPlan],
    address: SocketAddr,
) -> Result<Vec<(String, CutoverVerdict)>, CannotTell> {
    let unreachable = |what: String| CannotTell::Unreachable(what);
    let (code, body) = request(address, "GET", "/status", Duration::from_secs(10))
        .map_err(|e| unreachable(format!("the daemon at http://{address}: {e}")))?;
    if code != 200 {
        return Err(unreachable(format!(
            "the daemon answered HTTP {code} to /status"
        )));
    }
    let report: StatusReport = serde_json::from_str(&body)
        .map_err(|e| unreachable(format!("unexpected /status answer: {e}")))?;
    let now = crate::status::unix_ms_now();
    let mut out = Vec::new();
    for flow in flows {
        let id = flow.id.to_string();
        let Some(status) = report.flows.iter().find(|f| f.id == id) else {
            return Err(CannotTell::Usage(format!(
                "the daemon at http://{address} does not run flow {id} (another file?)"
            )));
        };
        let mut status = status.clone();
        refresh_group_members(flow, &mut status, options)?;
        out.push((id, judge(&status, options, now)));
    }
    Ok(out)
}

/// Reads the selected groups' members on both clusters now (the daemon looks only every
/// `refresh.groups.interval.seconds`).
fn refresh_group_members(
    flow: &FlowPlan,
    status: &mut FlowStatus,
    options: &CutoverOptions,
) -> Result<(), CannotTell> {
    let timeout = Duration::from_secs(15);
    let admin = |role: ClientRole| {
        Admin::new(&flow.clients[&role].client_config(), timeout)
            .map_err(|e| CannotTell::Unreachable(format!("cannot create a client: {e}")))
    };
    let (source, target) = (
        admin(ClientRole::SourceAdmin)?,
        admin(ClientRole::TargetAdmin)?,
    );
    for group in &mut status.groups {
        if !options
            .groups
            .as_ref()
            .map_or(true, |r| r.is_match(&group.group))
        {
            continue;
        }
        let members = |admin: &Admin, cluster: &str| {
            admin
                .groups(Some(&group.group))
                .map(|found| found.first().map_or(0, |g| g.members))
                .map_err(|e| {
                    CannotTell::Unreachable(format!(
                        "cannot describe group `{}` on `{cluster}`: {e}",
                        group.group
                    ))
                })
        };
        let on_source = members(&source, &flow.id.source)?;
        let on_target = members(&target, &flow.id.target)?;
        group.source_members = Some(on_source);
        group.target_members = Some(on_target);
    }
    Ok(())
}

/// What is not ready yet, in one line.
fn progress_line(verdicts: &[(String, CutoverVerdict)]) -> String {
    verdicts
        .iter()
        .filter(|(_, verdict)| !verdict.ready)
        .map(|(flow, verdict)| {
            let gates: Vec<String> = verdict
                .gates
                .iter()
                .filter(|gate| !gate.passed)
                .map(|gate| format!("{} ({})", gate.gate, gate.detail))
                .collect();
            format!("{flow}: {}", gates.join("; "))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn print_verdicts(verdicts: &[(String, CutoverVerdict)], json: bool) {
    if json {
        let list: Vec<FlowVerdict> = verdicts
            .iter()
            .map(|(flow, verdict)| FlowVerdict {
                flow: flow.clone(),
                verdict,
            })
            .collect();
        let ready = verdicts.iter().all(|(_, verdict)| verdict.ready);
        let document = serde_json::json!({ "ready": ready, "flows": list });
        println!(
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
        return;
    }
    for (flow, verdict) in verdicts {
        print!("{}", render(flow, verdict));
    }
}

/// The text verdict of one flow.
pub fn render(flow: &str, verdict: &CutoverVerdict) -> String {
    let mut out = format!(
        "flow {flow}: {}\n",
        if verdict.ready {
            "READY to cut over"
        } else {
            "NOT READY"
        }
    );
    for gate in &verdict.gates {
        let mark = if gate.passed { "ok  " } else { "WAIT" };
        out.push_str(&format!("  [{mark}] {:<20} {}\n", gate.gate, gate.detail));
    }
    if !verdict.topics.is_empty() {
        out.push_str("  topics:\n");
        for topic in &verdict.topics {
            out.push_str(&format!(
                "    {:<40} lag {:>8}  quiet {:>5} s{}{}\n",
                topic.topic,
                topic
                    .lag
                    .map_or_else(|| "?".to_string(), |lag| lag.to_string()),
                topic.quiet_seconds,
                if topic.foreign_writes {
                    "  FOREIGN WRITES"
                } else {
                    ""
                },
                if topic.ready { "  ready" } else { "" },
            ));
        }
    }
    if !verdict.groups.is_empty() {
        out.push_str("  groups:\n");
        for group in &verdict.groups {
            let state = if group.ready {
                "ready".to_string()
            } else {
                format!("waiting for: {}", group.waiting_for.join(", "))
            };
            out.push_str(&format!(
                "    {:<40} {:<36} {state}\n",
                group.group,
                group.translation.as_deref().unwrap_or("not translated")
            ));
        }
    }
    for warning in &verdict.warnings {
        out.push_str(&format!("  warning: {warning}\n"));
    }
    out
}
