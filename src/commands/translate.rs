//! `kafka-mirrord translate-offsets --group G --source A --target B FILE`: like MM2's
//! `RemoteClusterUtils.translateOffsets`, prints per partition the group's committed offset on the
//! source, the translated offset on the target (from the latest checkpoint in
//! `<A>.checkpoints.internal` on B) and that checkpoint's age.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::exit;
use crate::flow::records::Checkpoint;
use crate::kafka::admin::Admin;
use crate::plan::clients::ClientRole;
use crate::plan::{self, FlowId, FlowMode, PlanOptions};

/// One row of the output.
#[derive(Debug, Serialize)]
pub struct Translation {
    pub source_topic: String,
    pub partition: i32,
    /// The group's committed offset on the source (`None` if it has none).
    pub upstream_committed: Option<i64>,
    pub target_topic: String,
    /// Where the group resumes on the target (the checkpoint's downstream offset).
    pub translated: i64,
    /// The upstream offset the checkpoint was made for.
    pub checkpoint_upstream: i64,
    pub checkpoint_age_ms: Option<i64>,
}

pub async fn run(file: &Path, group: &str, source: &str, target: &str, json: bool) -> u8 {
    let loaded = match plan::load(file, &PlanOptions::default()) {
        Ok(loaded) => loaded,
        Err(errors) => {
            super::print_config_errors(&errors);
            return exit::CONFIG_ERROR;
        }
    };
    let id = FlowId {
        source: source.to_string(),
        target: target.to_string(),
    };
    let Some(flow) = loaded
        .plan
        .flows
        .get(&id)
        .filter(|f| f.mode == FlowMode::Replicate)
        .cloned()
    else {
        eprintln!(
            "kafka-mirrord: `{id}` is not a replicating flow of {}",
            file.display()
        );
        return exit::CONFIG_ERROR;
    };
    let group = group.to_string();
    let result = tokio::task::spawn_blocking(move || translate(&flow, &group)).await;
    match result {
        Ok(Ok(rows)) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("plain data serializes")
                );
            } else {
                print_table(&rows);
            }
            exit::OK
        }
        Ok(Err(error)) => {
            eprintln!("kafka-mirrord: {error}");
            exit::FAILURE
        }
        Err(error) => {
            eprintln!("kafka-mirrord: {error}");
            exit::FAILURE
        }
    }
}

fn translate(flow: &plan::FlowPlan, group: &str) -> Result<Vec<Translation>, String> {
    // The latest checkpoint per target partition for the group, with its record timestamp.
    let mut config = flow.clients[&ClientRole::TargetConsumer].client_config();
    config.set("enable.partition.eof", "true");
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&flow.checkpoints.topic, 0, Offset::Beginning)
        .map_err(|e| e.to_string())?;
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let mut latest: BTreeMap<(String, i32), (Checkpoint, Option<i64>)> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "reading `{}` did not reach its end",
                flow.checkpoints.topic
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let (Some(key), Some(value)) = (message.key(), message.payload()) else {
                    continue;
                };
                if let Ok(checkpoint) = Checkpoint::decode(key, value) {
                    if checkpoint.group == group {
                        let timestamp = match message.timestamp() {
                            Timestamp::NotAvailable => None,
                            other => other.to_millis(),
                        };
                        latest.insert(
                            (checkpoint.topic.clone(), checkpoint.partition),
                            (checkpoint, timestamp),
                        );
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) => {
                return Err(format!("cannot read `{}`: {error}", flow.checkpoints.topic))
            }
            None => {}
        }
    }

    // The group's committed offsets on the source, for the same partitions.
    let admin = Admin::new(
        &flow.clients[&ClientRole::SourceAdmin].client_config(),
        Duration::from_secs(30),
    )
    .map_err(|e| e.to_string())?;
    let topics = admin.list_topics().map_err(|e| e.to_string())?;
    let source_of: BTreeMap<String, String> = topics
        .keys()
        .map(|topic| {
            (
                crate::flow::checkpoints::target_topic(flow, topic),
                topic.clone(),
            )
        })
        .collect();
    let committed = admin
        .list_group_offsets(&[group.to_string()])
        .remove(group)
        .unwrap_or_else(|| Ok(Default::default()))
        .map_err(|e| format!("cannot list the group's committed offsets: {e}"))?;
    let now = crate::clock::unix_ms();
    Ok(latest
        .into_iter()
        .map(|((target_topic, partition), (checkpoint, timestamp))| {
            let source_topic = source_of.get(&target_topic).cloned().unwrap_or_default();
            Translation {
                upstream_committed: committed
                    .get(&(source_topic.clone(), partition))
                    .map(|(offset, _)| *offset),
                source_topic,
                partition,
                target_topic,
                translated: checkpoint.downstream,
                checkpoint_upstream: checkpoint.upstream,
                checkpoint_age_ms: timestamp.map(|t| now - t),
            }
        })
        .collect())
}

fn print_table(rows: &[Translation]) {
    if rows.is_empty() {
        println!("no checkpoints for this group yet");
        return;
    }
    println!(
        "{:<30} {:>9} {:>18} {:<32} {:>12} {:>16} {:>10}",
        "SOURCE TOPIC",
        "PARTITION",
        "SOURCE COMMITTED",
        "TARGET TOPIC",
        "TRANSLATED",
        "CHECKPOINT FOR",
        "AGE (s)"
    );
    for row in rows {
        let committed = row
            .upstream_committed
            .map(|o| o.to_string())
            .unwrap_or_else(|| "-".into());
        let age = row
            .checkpoint_age_ms
            .map(|ms| format!("{:.1}", ms as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<30} {:>9} {:>18} {:<32} {:>12} {:>16} {:>10}",
            row.source_topic,
            row.partition,
            committed,
            row.target_topic,
            row.translated,
            row.checkpoint_upstream,
            age
        );
    }
}
