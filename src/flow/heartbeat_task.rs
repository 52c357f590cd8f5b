//! MM2's MirrorHeartbeatTask (mm2.md §8): every `emit.heartbeats.interval.seconds`, one heartbeat
//! record (source, target, now) into `heartbeats` on the target. Runs on every flow, replicating or
//! heartbeats-only, so the reverse flow's source replication proves the data path (`A.heartbeats`).

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;
use tracing::{info, warn};

use super::records::Heartbeat;
use crate::kafka::admin::Admin;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// Emits heartbeats until `shutdown` turns true.
pub async fn run(flow: Arc<FlowPlan>, mut shutdown: watch::Receiver<bool>) {
    if !flow.heartbeats.emit_heartbeats.enabled {
        return;
    }
    let timeout = Duration::from_millis(flow.admin_timeout_ms as u64);
    let (admin, producer) = match (
        Admin::new(
            &flow.clients[&ClientRole::TargetAdmin].client_config(),
            timeout,
        ),
        flow.clients[&ClientRole::TargetProducer]
            .client_config()
            .create::<FutureProducer>(),
    ) {
        (Ok(admin), Ok(producer)) => (admin, producer),
        (Err(error), _) | (_, Err(error)) => {
            warn!(flow = %flow.id, "heartbeats disabled: cannot create clients: {error}");
            return;
        }
    };
    let topic = flow.heartbeats.topic.clone();
    let spec = super::compacted_topic(&topic, flow.heartbeats.replication_factor);
    super::create_internal_topic(&flow, &admin, spec, &flow.id.target).await;
    let period = Duration::from_secs(flow.heartbeats.emit_heartbeats.interval_seconds.max(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = super::until_shutdown(&mut shutdown) => return,
            _ = ticker.tick() => {}
        }
        let now = crate::clock::unix_ms();
        let heartbeat = Heartbeat {
            source: flow.id.source.clone(),
            target: flow.id.target.clone(),
            timestamp: now,
        };
        let (key, value) = (heartbeat.key(), heartbeat.value());
        let record = FutureRecord::to(&topic)
            .partition(0)
            .key(&key)
            .payload(&value)
            .timestamp(now);
        match producer.send(record, period).await {
            Ok(_) if failing => {
                info!(flow = %flow.id, "heartbeats flowing again");
                failing = false;
            }
            Ok(_) => {}
            Err((error, _)) if !failing => {
                warn!(flow = %flow.id, "cannot emit heartbeat: {error}");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
