//! The Grafana dashboards against a real Prometheus (Debian's package) scraping a daemon that
//! replicates between the two local Apache Kafka clusters (issue 12): every query of our own
//! dashboard (`packaging/grafana/kafka-mirrord.json`) returns data, and so does every panel of
//! Strimzi's MM2 dashboard whose facts kafka-mirrord has, with the scrape labels
//! docs/operations.md gives. The test prints a report of every panel.
//!
//! Strimzi's dashboard itself is not in this repository: the test evaluates the series its panels
//! read (metric, label matchers, grouping; written here from its panel list). Given the real file
//! (`STRIMZI_MM2_DASHBOARD=/path/strimzi-kafka-mirror-maker-2.json`), it also evaluates that
//! file's exact queries and reports them.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::prometheus::Prometheus;
use support::*;

/// The labels Strimzi's scrape configuration adds and its dashboard filters and groups on; on VMs
/// they come from the Prometheus scrape config (docs/operations.md).
const STRIMZI_CLUSTER: &str = "my-mirror";
const STRIMZI_NAMESPACE: &str = "mirroring";

/// How Strimzi's panels select a MirrorMaker 2 cluster.
const STRIMZI_SELECTOR: &str =
    r#"strimzi_io_kind=~"KafkaMirrorMaker2",strimzi_io_cluster="my-mirror""#;

/// One panel of Strimzi's MM2 dashboard: its title, the series it reads, and whether
/// kafka-mirrord has the facts (if not, why not and what to use instead).
struct StrimziPanel {
    title: &'static str,
    query: String,
    unsupported: Option<&'static str>,
}

fn strimzi_panels() -> Vec<StrimziPanel> {
    let s = STRIMZI_SELECTOR;
    let supported = |title, query: String| StrimziPanel {
        title,
        query,
        unsupported: None,
    };
    let without = |title, query: String, why| StrimziPanel {
        title,
        query,
        unsupported: Some(why),
    };
    let source = "kafka_connect_mirror_mirrorsourceconnector";
    let mut panels = vec![
        supported("Total Number of Running Connectors", format!("sum(kafka_connect_worker_connector_count{{{s}}})")),
        supported("Total record rate", format!("sum({source}_record_rate{{{s}}})")),
        supported("Total Number of Running Tasks", format!("sum(kafka_connect_worker_task_count{{{s}}})")),
        supported("Total byte rate", format!("sum({source}_byte_rate{{{s}}})")),
        supported("Consumer Lag", format!("sum by (topic, partition) (kafka_consumer_fetch_manager_records_lag{{{s},clientid=~\".*replication-consumer\\\"\"}})")),
        supported("Incoming Bytes per Second", format!("sum by (kubernetes_pod_name) (rate(kafka_consumer_incoming_byte_total{{{s}}}[5m]))")),
        supported("Outgoing Bytes per Second", format!("sum by (kubernetes_pod_name) (rate(kafka_producer_outgoing_byte_total{{{s}}}[5m]))")),
        supported("Consumer Group Offset Sync Latency", format!("sum by (source, target, topic, partition, group) (kafka_connect_mirror_mirrorcheckpointconnector_checkpoint_latency_ms{{{s}}})")),
        supported("Source Connector - Connect Outstanding Messages Queue", "sum(kafka_connect_source_task_source_record_active_count{connector=~\"\\\".*SourceConnector\\\"\"})".to_string()),
        supported("Assigned Connectors per Worker", format!("sum by (kubernetes_pod_name) (kafka_connect_coordinator_assigned_connectors{{{s}}})")),
        supported("Rebalancing", format!("sum(kafka_connect_worker_rebalance_rebalancing{{{s}}})")),
        supported("Assigned Tasks per Worker", format!("sum by (kubernetes_pod_name) (kafka_connect_coordinator_assigned_tasks{{{s}}})")),
        without("Source Connector - Producer Available Buffer", "sum(kafka_producer_buffer_available_bytes{clientid=~\"\\\".*SourceConnector-[0-9]+\\\"\"})".to_string(), "librdkafka reports no free-buffer figure; the producer queue is bounded by `queue.buffering.max.kbytes`"),
        without("Source Connector - Average Offset Commit Time", "sum(kafka_connect_connector_task_offset_commit_avg_time_ms{connector=~\"\\\".*SourceConnector\\\"\"})".to_string(), "not measured; stored progress shows in /status (`replicated`) and kafka_mirrord_errors_total{kind=\"offsets_store\"}"),
        without("CPU Usage", format!("sum by (pod) (rate(container_cpu_usage_seconds_total{{namespace=\"{STRIMZI_NAMESPACE}\"}}[5m]))"), "a Kubernetes (cAdvisor) series; use process_cpu_seconds_total"),
        without("JVM Memory", format!("sum by (kubernetes_pod_name) (jvm_memory_used_bytes{{{s}}})"), "no JVM; use process_resident_memory_bytes"),
        without("Time Spent in GC", format!("sum by (kubernetes_pod_name) (rate(jvm_gc_collection_seconds_sum{{{s}}}[5m]))"), "no JVM, no garbage collector"),
        without("JVM Thread Count", format!("sum by (kubernetes_pod_name) (jvm_threads_current{{{s}}})"), "no JVM; use process_threads"),
    ];
    for suffix in ["", "_avg", "_min", "_max"] {
        panels.push(supported(
            "Record Age",
            format!("sum by (partition, topic) ({source}_record_age_ms{suffix}{{{s}}})"),
        ));
        panels.push(supported(
            "Replication Latency",
            format!("sum by (partition, topic) ({source}_replication_latency_ms{suffix}{{{s}}})"),
        ));
    }
    panels
}

/// The queries of a Grafana dashboard: (panel title, query), template variables included.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_string()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut queries = Vec::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = match &variable["query"] {
            Value::String(text) => text.clone(),
            other => other["query"].as_str().unwrap_or_default().to_string(),
        };
        if variable["type"] == "query" {
            queries.push((
                format!("variable ${}", variable["name"].as_str().unwrap_or("?")),
                query,
            ));
        }
    }
    walk(&dashboard["panels"], &mut queries);
    queries
}

/// A dashboard query as Prometheus can run it: Grafana's variables replaced by what the
/// dashboard would select, `label_values(q, l)` / `query_result(q)` by `q`.
fn runnable(query: &str) -> String {
    let mut query = query
        .replace("$__rate_interval", "1m")
        .replace("$strimzi_mirror_maker_cluster_name", STRIMZI_CLUSTER)
        .replace("$kubernetes_namespace", STRIMZI_NAMESPACE)
        .replace("$job", ".*")
        .replace("$instance", ".*")
        .replace("$flow", ".*");
    for function in ["label_values(", "query_result("] {
        if let Some(inner) = query.strip_prefix(function) {
            let inner = inner.trim_end_matches(')');
            // label_values(selector, label): the selector, up to its last top-level comma.
            query = match (function, inner.rfind(", ")) {
                ("label_values(", Some(comma)) if inner[comma..].chars().all(|c| c != '}') => {
                    inner[..comma].to_string()
                }
                _ => inner.to_string(),
            };
        }
    }
    query
}

/// Evaluates `queries` until each returns data or `deadline` passes: (title, query, series or error).
fn evaluate(
    prometheus: &Prometheus,
    queries: &[(String, String)],
    deadline: Instant,
) -> Vec<(String, String, Result<usize, String>)> {
    let mut results: Vec<Option<Result<usize, String>>> = vec![None; queries.len()];
    loop {
        for (index, (_, query)) in queries.iter().enumerate() {
            if matches!(results[index], Some(Ok(series)) if series > 0) {
                continue;
            }
            results[index] = Some(prometheus.query(&runnable(query)).map(|r| r.len()));
        }
        let all = results
            .iter()
            .all(|r| matches!(r, Some(Ok(series)) if *series > 0));
        if all || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    queries
        .iter()
        .zip(results)
        .map(|((title, query), result)| (title.clone(), query.clone(), result.unwrap()))
        .collect()
}

fn report(name: &str, results: &[(String, String, Result<usize, String>)]) {
    let with_data = results
        .iter()
        .filter(|(_, _, r)| matches!(r, Ok(n) if *n > 0))
        .count();
    eprintln!(
        "== {name}: {with_data} of {} queries return data",
        results.len()
    );
    for (title, query, result) in results {
        let outcome = match result {
            Ok(0) => "NO DATA".to_string(),
            Ok(series) => format!("{series} series"),
            Err(error) => format!("ERROR {error}"),
        };
        eprintln!("  {outcome:>10}  {title}  |  {}", runnable(query));
    }
}

#[test]
fn every_query_of_our_dashboard_and_strimzis_supported_panels_return_data() {
    let (source, _) = endpoints();
    let topic = unique("dash");
    create_topic(source, &topic, 3);
    for partition in 0..3 {
        produce(source, &topic, partition, &numbered(200));
    }
    let group = format!("{topic}-app");
    commit_group(
        source,
        &group,
        &[(&topic, 0, 100), (&topic, 1, 150), (&topic, 2, 200)],
    );

    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let config = checkpointing_config(dir.path(), &topic);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "mirrord.http.listen = off",
        &format!("mirrord.http.listen = {http}"),
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(&config);
    wait_until(
        Duration::from_secs(90),
        "the flow caught up and the group in sync",
        || {
            metric_of(
                &http,
                "kafka_mirrord_caught_up",
                &[("flow", "source->target")],
            ) == Some(1.0)
                && metric_of(
                    &http,
                    "kafka_mirrord_group_sync_state",
                    &[("group", &group), ("state", "in_sync")],
                ) == Some(1.0)
        },
    );

    let prometheus = Prometheus::start(
        &http,
        &[
            ("strimzi_io_kind", "KafkaMirrorMaker2"),
            ("strimzi_io_cluster", STRIMZI_CLUSTER),
            ("namespace", STRIMZI_NAMESPACE),
            ("kubernetes_pod_name", "mirror-1"),
        ],
    );
    // Rates need two samples; windowed gauges appear at the daemon's first statistics tick.
    let deadline = Instant::now() + Duration::from_secs(60);

    let ours: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("packaging/grafana/kafka-mirrord.json")).unwrap(),
    )
    .unwrap();
    let our_queries = dashboard_queries(&ours);
    assert!(our_queries.len() >= 25, "{our_queries:?}");
    let our_results = evaluate(&prometheus, &our_queries, deadline);
    report("packaging/grafana/kafka-mirrord.json", &our_results);

    let panels = strimzi_panels();
    let strimzi_queries: Vec<(String, String)> = panels
        .iter()
        .map(|panel| (panel.title.to_string(), panel.query.clone()))
        .collect();
    let strimzi_results = evaluate(&prometheus, &strimzi_queries, Instant::now());
    report(
        "Strimzi's MM2 dashboard (the series its panels read)",
        &strimzi_results,
    );
    for panel in panels.iter().filter(|panel| panel.unsupported.is_some()) {
        eprintln!(
            "  not exported: {}: {}",
            panel.title,
            panel.unsupported.unwrap()
        );
    }

    if let Ok(path) = std::env::var("STRIMZI_MM2_DASHBOARD") {
        let strimzi: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let results = evaluate(&prometheus, &dashboard_queries(&strimzi), Instant::now());
        report(&format!("{path} (its own queries)"), &results);
    }

    let failed: Vec<_> = our_results
        .iter()
        .filter(|(_, _, result)| !matches!(result, Ok(series) if *series > 0))
        .collect();
    assert!(
        failed.is_empty(),
        "our dashboard's queries without data: {failed:#?}\n{}",
        daemon.log_text()
    );
    for (panel, (_, query, result)) in panels.iter().zip(&strimzi_results) {
        let has_data = matches!(result, Ok(series) if *series > 0);
        assert_eq!(
            has_data,
            panel.unsupported.is_none(),
            "Strimzi panel `{}` ({query}): {result:?}",
            panel.title
        );
    }
}
