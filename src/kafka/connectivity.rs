//! Reaching a cluster: a metadata request with a timeout, reporting reachability and broker count
//! (`check --connect` and the daemon's start-up).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use crate::plan::ClusterPlan;

/// What one connection attempt found.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub alias: String,
    pub bootstrap_servers: String,
    pub reachable: bool,
    pub brokers: usize,
    pub topics: usize,
    pub elapsed_ms: u64,
    /// librdkafka's error when unreachable.
    pub error: Option<String>,
}

/// Blocking: fetches cluster metadata with the cluster's admin settings.
pub fn probe(cluster: &ClusterPlan, timeout: Duration) -> ClusterReport {
    let started = Instant::now();
    let mut report = ClusterReport {
        alias: cluster.alias.clone(),
        bootstrap_servers: cluster.bootstrap_servers.clone(),
        reachable: false,
        brokers: 0,
        topics: 0,
        elapsed_ms: 0,
        error: None,
    };
    let mut config = cluster.admin.client_config();
    // A metadata probe must not wait for group coordination or spam retries in the log.
    config.set("enable.auto.commit", "false");
    config.set("log.connection.close", "false");
    let outcome = config
        .create::<BaseConsumer>()
        .and_then(|consumer| consumer.fetch_metadata(None, timeout));
    match outcome {
        Ok(metadata) => {
            report.reachable = !metadata.brokers().is_empty();
            report.brokers = metadata.brokers().len();
            report.topics = metadata.topics().len();
        }
        Err(error) => report.error = Some(error.to_string()),
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

/// Probes every cluster concurrently (one blocking thread each).
pub async fn probe_all(clusters: &[ClusterPlan], timeout: Duration) -> Vec<ClusterReport> {
    let handles: Vec<_> = clusters
        .iter()
        .cloned()
        .map(|cluster| tokio::task::spawn_blocking(move || probe(&cluster, timeout)))
        .collect();
    let mut reports = Vec::with_capacity(handles.len());
    for (handle, cluster) in handles.into_iter().zip(clusters) {
        reports.push(handle.await.unwrap_or_else(|error| ClusterReport {
            alias: cluster.alias.clone(),
            bootstrap_servers: cluster.bootstrap_servers.clone(),
            reachable: false,
            brokers: 0,
            topics: 0,
            elapsed_ms: 0,
            error: Some(format!("probe failed: {error}")),
        }));
    }
    reports
}
