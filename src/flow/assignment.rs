//! Which source partitions this process owns and how they are spread over a flow's tasks — the one
//! place that decides it (a later version shares flows between nodes through Kafka's group
//! membership; only this module will change).
//!
//! Rule: at start, partitions sorted by (topic, partition) go round-robin to `tasks.max` tasks
//! (MM2's rule, §6.6). Partitions discovered later go to the task with the fewest partitions, and a
//! partition never moves to another task while the flow runs, so adding a topic never pauses the
//! records already flowing. Deleted partitions are dropped from their task.

use std::collections::BTreeSet;

/// A source topic-partition.
pub type TopicPartition = (String, i32);

/// What one task must start or stop reading after an update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskChanges {
    pub added: Vec<TopicPartition>,
    pub removed: Vec<TopicPartition>,
}

/// The partitions of each task slot (`tasks.max` slots; a slot without partitions runs no task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    tasks: Vec<BTreeSet<TopicPartition>>,
}

/// The partitions this process owns out of all partitions of a flow. Today: all of them.
pub fn owned_partitions(all: &BTreeSet<TopicPartition>) -> BTreeSet<TopicPartition> {
    all.clone()
}

impl Assignment {
    pub fn new(tasks_max: u32, partitions: &BTreeSet<TopicPartition>) -> Self {
        let slots = tasks_max.max(1) as usize;
        let mut tasks = vec![BTreeSet::new(); slots];
        for (index, partition) in partitions.iter().enumerate() {
            tasks[index % slots].insert(partition.clone());
        }
        Self { tasks }
    }

    pub fn task(&self, index: usize) -> &BTreeSet<TopicPartition> {
        &self.tasks[index]
    }

    pub fn task_count(&self) -> usize {
        self.tasks.len()
    }

    /// Moves to the new partition set; returns the changes per task slot.
    pub fn update(&mut self, partitions: &BTreeSet<TopicPartition>) -> Vec<TaskChanges> {
        let mut changes = vec![TaskChanges::default(); self.tasks.len()];
        for (task, change) in self.tasks.iter_mut().zip(changes.iter_mut()) {
            let removed: Vec<TopicPartition> = task.difference(partitions).cloned().collect();
            for partition in &removed {
                task.remove(partition);
            }
            change.removed = removed;
        }
        let assigned: BTreeSet<TopicPartition> = self.tasks.iter().flatten().cloned().collect();
        for partition in partitions.difference(&assigned) {
            let (index, task) = self
                .tasks
                .iter_mut()
                .enumerate()
                .min_by_key(|(index, task)| (task.len(), *index))
                .expect("at least one task slot");
            task.insert(partition.clone());
            changes[index].added.push(partition.clone());
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(list: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn round_robin_at_start_like_mm2() {
        let all: Vec<(String, i32)> = (0..8)
            .map(|p| ("t0".to_string(), p))
            .chain((0..2).map(|p| ("t1".to_string(), p)))
            .chain((0..2).map(|p| ("t2".to_string(), p)))
            .collect();
        let assignment = Assignment::new(3, &all.into_iter().collect());
        let names = |index: usize| {
            assignment
                .task(index)
                .iter()
                .map(|(t, p)| format!("{t}-{p}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        // Sorted order round-robin; the same sets as MM2's testMirrorSourceConnectorTaskConfig.
        assert_eq!(names(0), "t0-0,t0-3,t0-6,t1-1");
        assert_eq!(names(1), "t0-1,t0-4,t0-7,t2-0");
        assert_eq!(names(2), "t0-2,t0-5,t1-0,t2-1");
    }

    #[test]
    fn new_partitions_go_to_the_least_loaded_task_and_nothing_moves() {
        let mut assignment = Assignment::new(2, &partitions(&[("a", 0), ("a", 1), ("a", 2)]));
        let before0 = assignment.task(0).clone();
        let changes = assignment.update(&partitions(&[("a", 0), ("a", 1), ("a", 2), ("b", 0)]));
        assert_eq!(changes[1].added, vec![("b".to_string(), 0)]);
        assert!(changes[0].added.is_empty() && changes[0].removed.is_empty());
        assert_eq!(assignment.task(0), &before0);
        let changes = assignment.update(&partitions(&[("a", 0), ("b", 0)]));
        assert_eq!(changes[0].removed, vec![("a".to_string(), 2)]);
        assert_eq!(changes[1].removed, vec![("a".to_string(), 1)]);
    }

    #[test]
    fn more_tasks_than_partitions_leaves_slots_empty() {
        let assignment = Assignment::new(4, &partitions(&[("a", 0)]));
        assert_eq!(assignment.task(0).len(), 1);
        assert!(assignment.task(3).is_empty());
    }
}
