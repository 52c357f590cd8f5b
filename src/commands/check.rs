//! `kafka-mirrord check [--clusters ...] [--json] [--connect] FILE`: validate, then print the
//! resolved plan (text for people, one JSON document for scripts; secrets masked in both).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::config::diagnostics::Diagnostic;
use crate::exit;
use crate::kafka::connectivity::{self, ClusterReport};
use crate::plan::{self, FlowMode, FlowPlan, Interval, Loaded, PlanOptions};

/// Runs the check and returns the process exit code.
pub async fn run(
    file: &Path,
    options: &PlanOptions,
    json: bool,
    connect: bool,
    timeout: Duration,
) -> u8 {
    let loaded = match plan::load(file, options) {
        Ok(loaded) => loaded,
        Err(errors) => {
            if json {
                let errors_only: Vec<&Diagnostic> = errors.errors().collect();
                let warnings: Vec<&Diagnostic> = errors
                    .diagnostics
                    .iter()
                    .filter(|d| !errors_only.contains(d))
                    .collect();
                let document = json!({ "file": file, "valid": false, "errors": errors_only, "warnings": warnings });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&document).expect("plain data serializes")
                );
            } else {
                super::print_config_errors(&errors);
            }
            return exit::CONFIG_ERROR;
        }
    };
    let reports = if connect {
        let clusters: Vec<_> = loaded.plan.clusters.values().cloned().collect();
        Some(connectivity::probe_all(&clusters, timeout).await)
    } else {
        None
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_document(&loaded, reports.as_deref()))
                .expect("plain data serializes")
        );
    } else {
        print!("{}", render_text(&loaded, reports.as_deref()));
    }
    match reports {
        Some(reports) if reports.iter().any(|r| !r.reachable) => exit::FAILURE,
        _ => exit::OK,
    }
}

/// The `--json` document (shape documented in the README).
pub fn json_document(loaded: &Loaded, reports: Option<&[ClusterReport]>) -> serde_json::Value {
    let flows: Vec<&FlowPlan> = loaded.plan.flows.values().collect();
    let mut document = json!({
        "file": loaded.config.file,
        "valid": true,
        "errors": [],
        "warnings": loaded.warnings,
        "mirrord": loaded.config.mirrord,
        "clusters": loaded.plan.clusters,
        "flows": flows,
    });
    if let Some(reports) = reports {
        document["connectivity"] = json!(reports);
    }
    document
}

fn interval(interval: &Interval) -> String {
    if interval.enabled {
        format!("every {}s", interval.interval_seconds)
    } else {
        format!("off ({}s)", interval.interval_seconds)
    }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("`{item}`")).collect();
    if quoted.is_empty() {
        "(none)".to_string()
    } else {
        quoted.join(", ")
    }
}

/// The human-readable plan.
pub fn render_text(loaded: &Loaded, reports: Option<&[ClusterReport]>) -> String {
    let plan = &loaded.plan;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "configuration OK: {} ({} clusters, {} flows)",
        loaded.config.file.display(),
        plan.clusters.len(),
        plan.flows.len()
    );
    for cluster in plan.clusters.values() {
        let _ = writeln!(
            out,
            "cluster {}: bootstrap.servers = {}",
            cluster.alias, cluster.bootstrap_servers
        );
    }
    for flow in plan.flows.values() {
        out.push('\n');
        render_flow(&mut out, flow);
    }
    if let Some(reports) = reports {
        out.push_str("\nconnectivity:\n");
        for report in reports {
            if report.reachable {
                let _ = writeln!(
                    out,
                    "  {}: reachable, {} broker(s), {} topic(s), {} ms",
                    report.alias, report.brokers, report.topics, report.elapsed_ms
                );
            } else {
                let _ = writeln!(
                    out,
                    "  {}: UNREACHABLE ({}): {}",
                    report.alias,
                    report.bootstrap_servers,
                    report.error.as_deref().unwrap_or("no brokers")
                );
            }
        }
    }
    if !loaded.warnings.is_empty() {
        out.push_str("\nwarnings:\n");
        for warning in &loaded.warnings {
            let _ = writeln!(out, "  {warning}");
        }
    }
    out
}

fn render_flow(out: &mut String, flow: &FlowPlan) {
    let (source, target) = (&flow.id.source, &flow.id.target);
    let mode = match flow.mode {
        FlowMode::Replicate => "replicate",
        FlowMode::HeartbeatsOnly => "heartbeats only",
    };
    let _ = writeln!(out, "flow {}: {mode}", flow.id);
    let row = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "  {label:<22}{value}");
    };
    let heartbeats = &flow.heartbeats;
    if flow.mode == FlowMode::Replicate {
        let source_plan = &flow.source;
        let policy = &flow.replication_policy;
        row(
            out,
            "topics:",
            format!(
                "include {} exclude {}",
                list(&source_plan.topics.include),
                list(&source_plan.topics.exclude)
            ),
        );
        row(
            out,
            "groups:",
            format!(
                "include {} exclude {}",
                list(&flow.checkpoints.groups.include),
                list(&flow.checkpoints.groups.exclude)
            ),
        );
        row(
            out,
            "replication policy:",
            format!(
                "{:?}ReplicationPolicy, separator `{}` (internal topics `{}`); `orders` on {source} becomes `{}` on {target}",
                policy.class,
                policy.separator,
                policy.internal_separator,
                policy.format_remote_topic(source, "orders")
            ),
        );
        let offset_syncs_cluster = match flow.offset_syncs.location {
            plan::OffsetSyncsLocation::Source => source,
            plan::OffsetSyncsLocation::Target => target,
        };
        row(
            out,
            "offset syncs:",
            if flow.offset_syncs.enabled {
                format!(
                    "`{}` on {offset_syncs_cluster} (location {}), offset.lag.max {}",
                    flow.offset_syncs.topic,
                    flow.offset_syncs.location.as_str(),
                    source_plan.offset_lag_max
                )
            } else {
                "off (emit.offset-syncs.enabled=false)".to_string()
            },
        );
        row(
            out,
            "checkpoints:",
            format!(
                "`{}` on {target}, {}",
                flow.checkpoints.topic,
                interval(&flow.checkpoints.emit_checkpoints)
            ),
        );
        row(
            out,
            "group offset sync:",
            interval(&flow.checkpoints.sync_group_offsets),
        );
        row(
            out,
            "source offsets:",
            format!(
                "`{}` on {target} ({} partitions), flush every {} ms",
                flow.offset_storage.topic,
                flow.offset_storage.partitions,
                flow.offset_storage.flush_interval_ms
            ),
        );
        row(
            out,
            "intervals:",
            format!(
                "refresh.topics {}, sync.topic.configs {}, sync.topic.acls {}, refresh.groups {}",
                interval(&source_plan.refresh_topics),
                interval(&source_plan.sync_topic_configs),
                interval(&source_plan.sync_topic_acls),
                interval(&flow.checkpoints.refresh_groups)
            ),
        );
        row(
            out,
            "replication factors:",
            format!(
                "remote topics {}, offset-syncs {}, checkpoints {}, heartbeats {}, source offsets {}",
                source_plan.replication_factor,
                flow.offset_syncs.replication_factor,
                flow.checkpoints.replication_factor,
                heartbeats.replication_factor,
                flow.offset_storage.replication_factor
            ),
        );
        row(
            out,
            "exactly once:",
            if flow.exactly_once.enabled {
                format!(
                    "on ({}), transactional ids `{}-<task>`",
                    flow.exactly_once.reason, flow.exactly_once.transactional_id_prefix
                )
            } else {
                flow.exactly_once.reason.clone()
            },
        );
        row(out, "tasks.max:", source_plan.tasks_max.to_string());
        row(
            out,
            "timeouts:",
            format!(
                "admin.timeout.ms {}, consumer.poll.timeout.ms {}",
                flow.admin_timeout_ms, source_plan.consumer_poll_timeout_ms
            ),
        );
    }
    row(
        out,
        "heartbeats:",
        format!(
            "`{}` on {target}, {}, replication factor {}",
            heartbeats.topic,
            interval(&heartbeats.emit_heartbeats),
            heartbeats.replication_factor
        ),
    );
    let _ = writeln!(out, "  clients (librdkafka settings):");
    for (role, client) in &flow.clients {
        let _ = writeln!(out, "    {}:", role.name());
        let masked = serde_json::to_value(client).expect("plain data serializes");
        if let Some(settings) = masked["settings"].as_object() {
            for (key, value) in settings {
                let _ = writeln!(out, "      {key} = {}", value.as_str().unwrap_or_default());
            }
        }
        for note in &client.notes {
            let _ = writeln!(out, "      note: {note}");
        }
    }
}
