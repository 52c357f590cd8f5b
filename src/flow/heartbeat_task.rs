//! MM2's MirrorHeartbeatTask: every `emit.heartbeats.interval.seconds`, one heartbeat record
//! (source, target, now) into `heartbeats` on the target. Runs on every flow, replicating or
//! heartbeats-only, so the reverse flow's source replication proves the data path (`A.heartbeats`).
//! Record format: `docs/mm2-formats.md`.

use std::sync::Arc;
use std::time::Duration;

use crate::kafka::producer::Record;
use tracing::{info, warn};

use super::connector::until_stopped;
use super::records::Heartbeat;
use super::task::{TaskFailure, TaskReporter};
use crate::kafka::admin::Admin;
use crate::lifecycle::Stop;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// Emits heartbeats until the stop is requested.
pub async fn run(
    flow: Arc<FlowPlan>,
    stop: Stop,
    reporter: TaskReporter,
) -> Result<(), TaskFailure> {
    let timeout = Duration::from_millis(flow.admin_timeout_ms as u64);
    let admin = Admin::shared(
        &flow.clients[&ClientRole::TargetAdmin].client_config(),
        timeout,
    )
    .map_err(|error| TaskFailure::Client(error.to_string()))?;
    let producer = super::record_producer(&flow, "heartbeats-producer")
        .map_err(|error| TaskFailure::Client(error.to_string()))?;
    let topic = flow.heartbeats.topic.clone();
    let spec = super::compacted_topic(&topic, flow.heartbeats.replication_factor);
    if until_stopped(
        &stop,
        super::create_internal_topic(&flow, &admin, spec, &flow.id.target),
    )
    .await
    .is_none()
    {
        return Ok(());
    }
    reporter.running();
    let period = Duration::from_secs(flow.heartbeats.emit_heartbeats.interval_seconds.max(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.requested() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let now = crate::clock::unix_ms();
        let heartbeat = Heartbeat {
            source: flow.id.source.clone(),
            target: flow.id.target.clone(),
            timestamp: now,
        };
        let (key, value) = (heartbeat.key(), heartbeat.value());
        let record = Record {
            topic: &topic,
            partition: Some(0),
            key: &key,
            payload: Some(&value),
            timestamp: Some(now),
        };
        // The delivery wait is bounded by the period (a heartbeat that cannot be written in time
        // is superseded by the next one) and by the stop request.
        let sent = tokio::select! {
            _ = stop.requested() => return Ok(()),
            sent = tokio::time::timeout(period, producer.send(&record)) => sent,
        };
        match sent {
            Ok(Ok(_)) if failing => {
                info!(flow = %flow.id, "heartbeats flowing again");
                failing = false;
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) if !failing => {
                warn!(flow = %flow.id, "cannot emit heartbeat: {error}");
                failing = true;
            }
            Err(_) if !failing => {
                warn!(flow = %flow.id, "cannot emit heartbeat: the target did not acknowledge it within {} s", period.as_secs());
                failing = true;
            }
            _ => {}
        }
    }
}
