//! Which task slot copies which source partition — the one place that decides it.
//!
//! Rule: partition `p` of topic `t` belongs to slot `(murmur2(t) + p) mod tasks.max`, where
//! `murmur2` is Kafka's key hash (positive). The partitions of one topic go round-robin over the
//! slots (MM2's rule for a single topic, rotated), each topic starting at its own slot so many
//! small topics spread evenly. Unlike MM2, which re-deals every partition whenever the topic list
//! changes, the rule depends on nothing but the partition and `tasks.max`: every node of a group
//! computes the same answer at any time without talking to the others, and a partition never
//! moves while the flow runs, so adding a topic never pauses the records already flowing.
//! `docs/several-nodes.md` explains the choice.

use std::collections::BTreeSet;

/// A source topic-partition.
pub type TopicPartition = (String, i32);

/// Every selected source partition of a flow.
pub type PartitionSet = BTreeSet<TopicPartition>;

/// The slot (task index) of a source partition; `tasks_max` is at least 1.
pub fn slot_of(topic: &str, partition: i32, tasks_max: u32) -> usize {
    let tasks = u64::from(tasks_max.max(1));
    let start = u64::from(murmur2::murmur2(topic.as_bytes(), murmur2::KAFKA_SEED) & 0x7fff_ffff);
    ((start + partition.max(0) as u64) % tasks) as usize
}

/// The partitions of `all` that belong to `slot`.
pub fn partitions_of_slot(all: &PartitionSet, slot: usize, tasks_max: u32) -> PartitionSet {
    all.iter()
        .filter(|(topic, partition)| slot_of(topic, *partition, tasks_max) == slot)
        .cloned()
        .collect()
}

/// Slots that have at least one partition.
pub fn busy_slots(all: &PartitionSet, tasks_max: u32) -> BTreeSet<usize> {
    all.iter()
        .map(|(topic, partition)| slot_of(topic, *partition, tasks_max))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &[(&str, i32)]) -> PartitionSet {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn one_topic_goes_round_robin_over_the_slots() {
        let all: PartitionSet = (0..12).map(|p| ("orders".to_string(), p)).collect();
        let sizes: Vec<usize> = (0..6)
            .map(|slot| partitions_of_slot(&all, slot, 6).len())
            .collect();
        assert_eq!(sizes, vec![2; 6], "12 partitions over 6 slots: 2 each");
        // Consecutive partitions go to consecutive slots, as in MM2's round robin.
        let first = slot_of("orders", 0, 6);
        assert_eq!(slot_of("orders", 1, 6), (first + 1) % 6);
        assert_eq!(slot_of("orders", 6, 6), first);
    }

    #[test]
    fn the_rule_is_stable_and_every_partition_has_exactly_one_slot() {
        let all = set(&[("a", 0), ("a", 1), ("a", 2), ("b", 0), ("c", 0), ("c", 1)]);
        let union: PartitionSet = (0..4)
            .flat_map(|slot| partitions_of_slot(&all, slot, 4))
            .collect();
        assert_eq!(union, all);
        // Adding a topic moves nothing that was there before.
        let mut more = all.clone();
        more.insert(("d".to_string(), 0));
        for (topic, partition) in &all {
            assert_eq!(slot_of(topic, *partition, 4), slot_of(topic, *partition, 4));
        }
        let before = partitions_of_slot(&all, 0, 4);
        assert!(before.is_subset(&partitions_of_slot(&more, 0, 4)));
    }

    #[test]
    fn the_hash_is_kafkas_murmur2() {
        // Kafka's Utils.murmur2("21") = -973932308 (UtilsTest): positive 1173551340.
        assert_eq!(slot_of("21", 0, u32::MAX), 1_173_551_340);
        assert_eq!(slot_of("x", 5, 1), 0, "one slot takes everything");
    }

    #[test]
    fn many_small_topics_spread_over_the_slots() {
        let all: PartitionSet = (0..500)
            .flat_map(|t| (0..4).map(move |p| (format!("topic-{t}"), p)))
            .collect();
        let sizes: Vec<usize> = (0..8)
            .map(|slot| partitions_of_slot(&all, slot, 8).len())
            .collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max - min <= 60, "2000 partitions over 8 slots: {sizes:?}");
        assert_eq!(busy_slots(&all, 8).len(), 8);
    }
}
