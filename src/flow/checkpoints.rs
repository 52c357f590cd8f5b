//! Which checkpoints to emit and which group offsets to commit on the target (docs/mm2-behaviour.md,
//! *Checkpoints* and *Group offset sync*).
//! Pure decisions; the checkpoint task feeds them with the clusters' state.

use std::collections::{BTreeMap, HashMap};

use super::records::Checkpoint;
use super::translation::{group_translation, Translation};
use crate::plan::FlowPlan;
use crate::status::GroupTranslation;

/// A group's committed offset on the source: (topic, partition) → (offset, metadata).
pub type CommittedOffsets = BTreeMap<(String, i32), (i64, String)>;

/// The last checkpoint per (group, target topic, partition): what was emitted (or read back from
/// the checkpoints topic at start), so checkpoints never move backwards.
#[derive(Debug, Default, Clone)]
pub struct CheckpointStore {
    pub last: HashMap<String, BTreeMap<(String, i32), Checkpoint>>,
}

impl CheckpointStore {
    pub fn update(&mut self, checkpoint: &Checkpoint) {
        self.last
            .entry(checkpoint.group.clone())
            .or_default()
            .insert(
                (checkpoint.topic.clone(), checkpoint.partition),
                checkpoint.clone(),
            );
    }

    pub fn group(&self, group: &str) -> Option<&BTreeMap<(String, i32), Checkpoint>> {
        self.last.get(group)
    }
}

/// `renameTopicPartition`: the name of an upstream topic on the target. A topic that came from the
/// target goes back to its original name; any other gets the remote name.
pub fn target_topic(flow: &FlowPlan, upstream_topic: &str) -> String {
    let policy = &flow.replication_policy;
    if policy.topic_source(upstream_topic).as_deref() == Some(flow.id.target.as_str()) {
        policy.original_topic(upstream_topic)
    } else {
        policy.format_remote_topic(&flow.id.source, upstream_topic)
    }
}

/// `checkpointsForGroup` + the monotonicity filter: the checkpoints to emit for one group now,
/// and how well the group's committed offsets translate. `translate` maps an upstream (topic,
/// partition, committed offset) to the target (`translation.rs`).
pub fn checkpoints_for_group(
    flow: &FlowPlan,
    translate: &dyn Fn(&str, i32, i64) -> Option<Translation>,
    store: &CheckpointStore,
    group: &str,
    committed: &CommittedOffsets,
) -> (Vec<Checkpoint>, Option<GroupTranslation>) {
    let mut out = Vec::new();
    let mut translations = Vec::new();
    for ((topic, partition), (upstream, metadata)) in committed {
        if !flow.source.topics.matches(topic) {
            continue;
        }
        let Some(translation) = translate(topic, *partition, *upstream) else {
            continue;
        };
        let downstream = translation.downstream();
        if downstream < 0 {
            continue; // older than every retained sync
        }
        translations.push(translation);
        let checkpoint = Checkpoint {
            group: group.to_string(),
            topic: target_topic(flow, topic),
            partition: *partition,
            upstream: *upstream,
            downstream,
            metadata: checkpoint_metadata(metadata),
        };
        let previous = store
            .group(group)
            .and_then(|g| g.get(&(checkpoint.topic.clone(), checkpoint.partition)));
        let emit = match previous {
            None => true,
            // The consumer rewound: follow it.
            Some(previous) if checkpoint.upstream < previous.upstream => true,
            // Only ever move the downstream offset forward.
            Some(previous) => checkpoint.downstream > previous.downstream,
        };
        if emit {
            out.push(checkpoint);
        }
    }
    (out, group_translation(translations))
}

/// MM2's checkpoint format holds the commit metadata as a Kafka STRING (at most 32767 bytes); a
/// broker with a large `offset.metadata.max.bytes` can hold longer metadata, which MM2 fails to
/// serialise. The offset is what matters for a moved consumer: such metadata is left out.
pub fn checkpoint_metadata(metadata: &str) -> String {
    if metadata.len() > super::records::MAX_STRING_BYTES {
        tracing::warn!(
            bytes = metadata.len(),
            "commit metadata longer than 32767 bytes is left out of the checkpoint"
        );
        String::new()
    } else {
        metadata.to_string()
    }
}

/// A consumer group as the target cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetGroup {
    /// No such group on the target yet.
    Missing,
    /// No members: committed offsets (`None` = committed without an offset, e.g. reset to -1).
    Idle(BTreeMap<(String, i32), Option<i64>>),
    /// Members are consuming on the target: never touched.
    Active,
}

/// Why a group's offsets were not written this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Consumers are active in the group on the target.
    ActiveOnTarget,
    /// No checkpoint yet (no translation possible so far).
    NoTranslation,
    /// The target is past a translated offset (never rewound) and nowhere behind one.
    TargetAhead,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::ActiveOnTarget => "active_on_target",
            SkipReason::NoTranslation => "no_translation",
            SkipReason::TargetAhead => "target_ahead",
        }
    }
}

/// `syncGroupOffset` (docs/mm2-behaviour.md, *Group offset sync*): the offsets to commit for one
/// group on the target, never rewinding and never touching a group with active members. An empty
/// map: the target already holds every translated offset (in sync, nothing skipped).
pub fn group_offsets_to_write(
    checkpoints: Option<&BTreeMap<(String, i32), Checkpoint>>,
    target: &TargetGroup,
) -> Result<CommittedOffsets, SkipReason> {
    let checkpoints = match checkpoints {
        Some(checkpoints) if !checkpoints.is_empty() => checkpoints,
        _ => return Err(SkipReason::NoTranslation),
    };
    let mut write = BTreeMap::new();
    match target {
        TargetGroup::Active => return Err(SkipReason::ActiveOnTarget),
        TargetGroup::Missing => {
            for (partition, checkpoint) in checkpoints {
                write.insert(
                    partition.clone(),
                    (checkpoint.downstream, checkpoint.metadata.clone()),
                );
            }
        }
        TargetGroup::Idle(committed) => {
            let mut ahead = false;
            for (partition, checkpoint) in checkpoints {
                match committed.get(partition) {
                    Some(Some(offset)) if *offset == checkpoint.downstream => {}
                    Some(Some(offset)) if *offset > checkpoint.downstream => ahead = true,
                    _ => {
                        write.insert(
                            partition.clone(),
                            (checkpoint.downstream, checkpoint.metadata.clone()),
                        );
                    }
                }
            }
            if write.is_empty() && ahead {
                return Err(SkipReason::TargetAhead);
            }
        }
    }
    Ok(write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::properties::RawProperties;
    use crate::flow::offset_sync_store::OffsetSyncStore;
    use crate::plan::{load_properties, FlowId, PlanOptions};

    fn flow() -> FlowPlan {
        let pairs = [
            ("clusters", "source1, target2"),
            ("source1.bootstrap.servers", "s:9092"),
            ("target2.bootstrap.servers", "t:9092"),
            ("source1->target2.enabled", "true"),
        ];
        let loaded = load_properties(
            RawProperties::from_pairs(pairs),
            &PlanOptions::default(),
            &|_| None,
        )
        .unwrap();
        loaded.plan.flows[&FlowId {
            source: "source1".into(),
            target: "target2".into(),
        }]
            .clone()
    }

    /// MM2's translation alone, as in MM2's own test cases.
    fn checkpoints_for_group(
        flow: &FlowPlan,
        syncs: &OffsetSyncStore,
        store: &CheckpointStore,
        group: &str,
        committed: &CommittedOffsets,
    ) -> Vec<Checkpoint> {
        let translate = |topic: &str, partition: i32, offset: i64| {
            syncs
                .translate_bounded(topic, partition, offset)
                .map(|(downstream, max_rereads)| Translation::Approximate {
                    downstream,
                    max_rereads,
                })
        };
        super::checkpoints_for_group(flow, &translate, store, group, committed).0
    }

    fn committed(list: &[(&str, i32, i64)]) -> CommittedOffsets {
        list.iter()
            .map(|(t, p, o)| ((t.to_string(), *p), (*o, String::new())))
            .collect()
    }

    fn store_with(syncs: &[(&str, i32, i64, i64)]) -> OffsetSyncStore {
        let mut store = OffsetSyncStore::new(true);
        store.mark_read_to_end();
        for (topic, partition, upstream, downstream) in syncs {
            store.update(topic, *partition, *upstream, *downstream);
        }
        store
    }

    fn checkpoint(
        group: &str,
        topic: &str,
        partition: i32,
        upstream: i64,
        downstream: i64,
    ) -> Checkpoint {
        Checkpoint {
            group: group.into(),
            topic: topic.into(),
            partition,
            upstream,
            downstream,
            metadata: String::new(),
        }
    }

    /// MM2's MirrorCheckpointTaskTest cases.
    #[test]
    fn checkpoint_cases_from_mm2() {
        let flow = flow();
        let empty = CheckpointStore::default();
        let syncs = store_with(&[("topic1", 2, 3, 4)]);
        assert_eq!(
            checkpoints_for_group(
                &flow,
                &syncs,
                &empty,
                "group9",
                &committed(&[("topic1", 2, 10)])
            ),
            vec![checkpoint("group9", "source1.topic1", 2, 10, 5)]
        );
        let syncs = store_with(&[("target2.topic5", 6, 7, 8)]);
        assert_eq!(
            checkpoints_for_group(
                &flow,
                &syncs,
                &empty,
                "group11",
                &committed(&[("target2.topic5", 6, 12)])
            ),
            vec![checkpoint("group11", "topic5", 6, 12, 9)]
        );
        assert_eq!(
            checkpoints_for_group(
                &flow,
                &syncs,
                &empty,
                "group13",
                &committed(&[("target2.topic5", 6, 7)])
            ),
            vec![checkpoint("group13", "topic5", 6, 7, 8)]
        );
        let syncs = store_with(&[("topic1", 0, 3, 4)]);
        assert!(
            checkpoints_for_group(
                &flow,
                &syncs,
                &empty,
                "group9",
                &committed(&[("topic1", 1, 10)])
            )
            .is_empty(),
            "no syncs for that partition"
        );
        assert_eq!(
            checkpoints_for_group(
                &flow,
                &syncs,
                &empty,
                "group9",
                &committed(&[("topic1", 0, 10)])
            )
            .len(),
            1
        );
    }

    #[test]
    fn downstream_topic_renaming() {
        let flow = flow();
        assert_eq!(target_topic(&flow, "topic3"), "source1.topic3");
        assert_eq!(target_topic(&flow, "target2.topic3"), "topic3");
        assert_eq!(
            target_topic(&flow, "source6.topic7"),
            "source1.source6.topic7"
        );
    }

    #[test]
    fn checkpoints_never_move_backwards_unless_the_consumer_rewinds() {
        let flow = flow();
        let mut syncs = store_with(&[("topic1", 0, 11, 4), ("topic1", 0, 12, 5)]);
        let mut store = CheckpointStore::default();
        let first =
            checkpoints_for_group(&flow, &syncs, &store, "g", &committed(&[("topic1", 0, 13)]));
        assert_eq!(first, vec![checkpoint("g", "source1.topic1", 0, 13, 6)]);
        store.update(&first[0]);
        for upstream in 13..=17 {
            syncs.update("topic1", 0, upstream, upstream - 7);
        }
        assert!(
            checkpoints_for_group(&flow, &syncs, &store, "g", &committed(&[("topic1", 0, 13)]))
                .is_empty(),
            "13 now translates to 5 < 6"
        );
        assert_eq!(
            checkpoints_for_group(&flow, &syncs, &store, "g", &committed(&[("topic1", 0, 12)])),
            vec![checkpoint("g", "source1.topic1", 0, 12, 5)],
            "a rewound consumer is followed"
        );
    }

    #[test]
    fn restart_uses_existing_checkpoints() {
        let flow = flow();
        let mut store = CheckpointStore::default();
        store.update(&checkpoint("group1", "source1.t1", 0, 250, 201));
        let mut syncs = OffsetSyncStore::new(false);
        for offset in [175, 275, 375, 475] {
            syncs.update("t1", 0, offset, offset);
        }
        syncs.mark_read_to_end();
        assert!(checkpoints_for_group(
            &flow,
            &syncs,
            &store,
            "group1",
            &committed(&[("t1", 0, 250)])
        )
        .is_empty());
        assert!(checkpoints_for_group(
            &flow,
            &syncs,
            &store,
            "group1",
            &committed(&[("t1", 0, 370)])
        )
        .is_empty());
        assert_eq!(
            checkpoints_for_group(
                &flow,
                &syncs,
                &store,
                "group1",
                &committed(&[("t1", 0, 400)])
            ),
            vec![checkpoint("group1", "source1.t1", 0, 400, 376)]
        );
    }

    #[test]
    fn group_offset_sync_rules() {
        // MM2's MirrorCheckpointTaskTest.testSyncOffset.
        let checkpoints: BTreeMap<(String, i32), Checkpoint> = [(
            ("topic1".to_string(), 0),
            checkpoint("c1", "topic1", 0, 200, 101),
        )]
        .into();
        let idle = TargetGroup::Idle([(("topic1".to_string(), 0), Some(100))].into());
        assert_eq!(
            group_offsets_to_write(Some(&checkpoints), &idle),
            Ok([(("topic1".to_string(), 0), (101, String::new()))].into())
        );
        let null_offset = TargetGroup::Idle([(("topic1".to_string(), 0), None)].into());
        assert_eq!(
            group_offsets_to_write(Some(&checkpoints), &null_offset).unwrap()
                [&("topic1".to_string(), 0)]
                .0,
            101
        );
        let ahead = TargetGroup::Idle([(("topic1".to_string(), 0), Some(500))].into());
        assert_eq!(
            group_offsets_to_write(Some(&checkpoints), &ahead),
            Err(SkipReason::TargetAhead),
            "never rewinds"
        );
        let in_sync = TargetGroup::Idle([(("topic1".to_string(), 0), Some(101))].into());
        assert_eq!(
            group_offsets_to_write(Some(&checkpoints), &in_sync),
            Ok(BTreeMap::new()),
            "in sync: nothing to write, nothing skipped"
        );
        assert_eq!(
            group_offsets_to_write(Some(&checkpoints), &TargetGroup::Active),
            Err(SkipReason::ActiveOnTarget)
        );
        assert_eq!(
            group_offsets_to_write(None, &TargetGroup::Missing),
            Err(SkipReason::NoTranslation)
        );
        assert_eq!(
            group_offsets_to_write(Some(&checkpoints), &TargetGroup::Missing)
                .unwrap()
                .len(),
            1
        );
    }
}
