//! Several kafka-mirrord processes on one file (issue 10), against the two local Apache Kafka
//! clusters: they share each flow through the consumer-group protocol on the target; a process
//! stopped gracefully hands its work over without duplicates, one killed or frozen loses it after
//! the session timeout; the leader's duties move with it; processes with different files never run
//! two plans at once.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

/// The session timeout the tests use (the broker's minimum is 6 s).
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// The source cluster's alias in one test: a flow's group and task topic are named after it, so
/// each test has its own (with the process id: a rerun never meets a previous run's members).
fn alias(test: &str) -> String {
    format!("{test}{}", std::process::id())
}

/// One node's copy of the file: the same flow, only `mirrord.http.listen` differs.
fn node_config(
    dir: &Path,
    node: usize,
    alias: &str,
    topics: &str,
    http: &str,
    extra: &str,
) -> PathBuf {
    let (source, target) = endpoints();
    write_properties(
        dir,
        &format!("node{node}.properties"),
        &format!(
            "clusters = {alias}, target\n{alias}.bootstrap.servers = {source}\ntarget.bootstrap.servers = {target}\n\
             {alias}->target.enabled = true\n{alias}->target.topics = {topics}\n{alias}->target.groups = {topics}-group\n\
             replication.factor = 1\noffset-syncs.topic.replication.factor = 1\ncheckpoints.topic.replication.factor = 1\n\
             heartbeats.topic.replication.factor = 1\noffset.storage.replication.factor = 1\n\
             target.offset.flush.interval.ms = 1000\nrefresh.topics.interval.seconds = 2\nrefresh.groups.interval.seconds = 1\n\
             emit.checkpoints.interval.seconds = 1\nemit.heartbeats.interval.seconds = 1\n\
             target.session.timeout.ms = {session}\ntarget.heartbeat.interval.ms = 2000\n\
             mirrord.http.listen = {http}\n{extra}",
            session = SESSION_TIMEOUT.as_millis(),
        ),
    )
}

struct Node {
    daemon: Daemon,
    http: String,
    config: PathBuf,
    /// The flow's id, `<alias>->target`.
    flow: String,
}

impl Node {
    fn start(dir: &Path, node: usize, alias: &str, topics: &str, extra: &str) -> Node {
        let http = format!("127.0.0.1:{}", free_port());
        let config = node_config(dir, node, alias, topics, &http, extra);
        Node {
            daemon: Daemon::start(&config),
            http,
            config,
            flow: format!("{alias}->target"),
        }
    }

    fn restart(&mut self) {
        self.daemon = Daemon::start(&self.config);
    }

    fn membership(&self) -> serde_json::Value {
        status_of(&self.http)
            .map(|status| flow_status(&status, &self.flow)["membership"].clone())
            .unwrap_or_default()
    }

    fn owned_tasks(&self) -> Vec<u64> {
        self.membership()["owned_tasks"]
            .as_array()
            .map(|tasks| tasks.iter().filter_map(|t| t.as_u64()).collect())
            .unwrap_or_default()
    }

    fn is_leader(&self) -> bool {
        self.membership()["leader"] == true
    }
}

/// Waits until every node of `nodes` is a member of a group of exactly that many, owning tasks.
fn wait_for_group(nodes: &[&Node], what: &str) {
    wait_until(Duration::from_secs(60), what, || {
        nodes.iter().all(|node| {
            let membership = node.membership();
            membership["state"] == "member"
                && membership["members"].as_array().map(Vec::len) == Some(nodes.len())
                && !node.owned_tasks().is_empty()
        })
    });
}

/// The source partitions a node copies, from the slot rule and its owned tasks.
fn partitions_of(node: &Node, topic: &str, partitions: i32, tasks_max: u32) -> Vec<i32> {
    let owned = node.owned_tasks();
    (0..partitions)
        .filter(|p| {
            owned.contains(&(kafka_mirrord::flow::assignment::slot_of(topic, *p, tasks_max) as u64))
        })
        .collect()
}

fn remote_high(topic: &str, partitions: &[i32]) -> i64 {
    let marks = watermarks(endpoints().1, topic);
    partitions.iter().map(|p| marks[*p as usize].1).sum()
}

#[test]
fn three_nodes_share_a_flow_hand_over_gracefully_and_take_over_after_a_kill() {
    let (source, target) = endpoints();
    let topic = unique("nodes");
    create_topic(source, &topic, 12);
    let alias = alias("three");
    let remote = format!("{alias}.{topic}");
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{alias}->target.tasks.max = 6\n");
    let stream = SteadyStream::start(source, &topic, 12, 1200);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|n| Node::start(dir.path(), n, &alias, &topic, &extra))
        .collect();
    wait_for_group(
        &nodes.iter().collect::<Vec<_>>(),
        "three members sharing the six tasks",
    );
    // A slot given back in a rebalance is owned by nobody until its new owner started it.
    wait_until(Duration::from_secs(60), "every task slot owned", || {
        let owned: std::collections::BTreeSet<u64> =
            nodes.iter().flat_map(Node::owned_tasks).collect();
        owned.len() == 6
    });
    let owned: Vec<Vec<u64>> = nodes.iter().map(Node::owned_tasks).collect();
    let all: Vec<u64> = {
        let mut all: Vec<u64> = owned.iter().flatten().copied().collect();
        all.sort_unstable();
        all
    };
    assert_eq!(
        all,
        (0..6).collect::<Vec<_>>(),
        "each task runs on exactly one node: {owned:?}"
    );
    assert_eq!(
        nodes.iter().filter(|n| n.is_leader()).count(),
        1,
        "one leader"
    );
    // Every node copies records.
    wait_until(
        Duration::from_secs(60),
        "every node to copy records",
        || {
            nodes.iter().all(|node| {
                metric_of(
                    &node.http,
                    "kafka_mirrord_owned_partitions",
                    &[("flow", &node.flow)],
                )
                .is_some_and(|p| p > 0.0)
                    && metric_of(
                        &node.http,
                        "kafka_mirrord_records_total",
                        &[("flow", &node.flow)],
                    )
                    .is_some()
            })
        },
    );

    // Graceful handover: node 2 is stopped; its tasks drain before the others take them.
    let given_away = partitions_of(&nodes[1], &topic, 12, 6);
    assert_eq!(nodes[1].daemon.terminate(Duration::from_secs(30)), Some(0));
    wait_for_group(
        &[&nodes[0], &nodes[2]],
        "two members after the graceful stop",
    );
    let before = remote_high(&remote, &given_away);
    wait_until(
        Duration::from_secs(30),
        "its partitions to flow again",
        || remote_high(&remote, &given_away) > before + 100,
    );

    // Added back: the work spreads over three again.
    nodes[1].restart();
    wait_for_group(&nodes.iter().collect::<Vec<_>>(), "three members again");
    let graceful = stream_duplicates_so_far(&remote, 12);

    // Killed: its tasks move after the session timeout.
    let victim = nodes
        .iter()
        .position(|node| !node.is_leader() && !node.owned_tasks().is_empty())
        .expect("a non-leader with tasks");
    let lost = partitions_of(&nodes[victim], &topic, 12, 6);
    assert!(!lost.is_empty());
    let killed_at = Instant::now();
    nodes[victim].daemon.kill();
    // Requests already on their way land first.
    std::thread::sleep(Duration::from_millis(500));
    let at_kill = remote_high(&remote, &lost);
    wait_until(
        SESSION_TIMEOUT + Duration::from_secs(30),
        "the killed node's partitions to flow again",
        || remote_high(&remote, &lost) > at_kill,
    );
    let takeover = killed_at.elapsed();
    eprintln!(
        "takeover after SIGKILL: {:.1} s (session timeout {} s)",
        takeover.as_secs_f64(),
        SESSION_TIMEOUT.as_secs()
    );
    assert!(
        takeover <= SESSION_TIMEOUT + Duration::from_secs(10),
        "took {takeover:?}"
    );

    let counts = stream.finish();
    let total: usize = counts.iter().sum();
    wait_until(
        Duration::from_secs(90),
        "every record on the target",
        || record_count(target, &remote) >= total as i64,
    );
    let duplicates = assert_stream_complete(target, &remote, &counts, "read_committed");
    eprintln!(
        "three nodes: {total} records, {graceful} duplicates before the kill (graceful handovers), {duplicates} in all ({:.2} %)",
        duplicates as f64 * 100.0 / total as f64
    );
    assert_eq!(graceful, 0, "graceful handovers re-send nothing");
    // Only what the killed node copied after its last stored progress (a second's worth of its
    // share, `offset.flush.interval.ms = 1000`) is copied twice: far below a replay.
    assert!(
        duplicates * 20 <= total,
        "duplicates {duplicates} > 5 % of {total}"
    );
}

/// Duplicates on the target so far (records copied more than once), over every partition.
fn stream_duplicates_so_far(topic: &str, partitions: i32) -> usize {
    let (_, target) = endpoints();
    (0..partitions)
        .map(|partition| {
            let all = stream_indexes(target, topic, partition, "read_committed");
            let distinct: std::collections::HashSet<usize> = all.iter().copied().collect();
            all.len() - distinct.len()
        })
        .sum()
}

#[test]
fn exactly_once_across_a_killed_and_a_frozen_member() {
    let (source, target) = endpoints();
    let topic = unique("nodes-eos");
    create_topic(source, &topic, 12);
    let alias = alias("eos");
    let remote = format!("{alias}.{topic}");
    let dir = tempfile::tempdir().unwrap();
    let extra =
        format!("{alias}->target.tasks.max = 6\ntarget.exactly.once.source.support = enabled\n");
    let stream = SteadyStream::start(source, &topic, 12, 600);
    let mut nodes: Vec<Node> = (1..=3)
        .map(|n| Node::start(dir.path(), n, &alias, &topic, &extra))
        .collect();
    wait_for_group(&nodes.iter().collect::<Vec<_>>(), "three members");

    // A member frozen past the session timeout: its tasks move; woken up, it must be fenced.
    let frozen = nodes.iter().position(|n| !n.is_leader()).unwrap();
    let lost = partitions_of(&nodes[frozen], &topic, 12, 6);
    let _revive = ContinueOnDrop(nodes[frozen].daemon.child.id());
    nodes[frozen].daemon.signal("STOP");
    std::thread::sleep(Duration::from_millis(500));
    let at_freeze = remote_high(&remote, &lost);
    wait_until(
        SESSION_TIMEOUT + Duration::from_secs(30),
        "the frozen member's partitions to move",
        || remote_high(&remote, &lost) > at_freeze + 100,
    );
    nodes[frozen].daemon.signal("CONT");
    std::thread::sleep(Duration::from_secs(3));

    // A member killed.
    let killed = nodes
        .iter()
        .position(|n| !n.is_leader() && !n.owned_tasks().is_empty())
        .unwrap();
    let lost = partitions_of(&nodes[killed], &topic, 12, 6);
    nodes[killed].daemon.kill();
    std::thread::sleep(Duration::from_millis(500));
    let at_kill = remote_high(&remote, &lost);
    wait_until(
        SESSION_TIMEOUT + Duration::from_secs(30),
        "the killed member's partitions to move",
        || remote_high(&remote, &lost) > at_kill + 100,
    );
    let counts = stream.finish();
    let total: usize = counts.iter().sum();
    wait_until(
        Duration::from_secs(120),
        "every record committed on the target",
        || {
            (0..12)
                .map(|p| stream_indexes(target, &remote, p, "read_committed").len())
                .sum::<usize>()
                >= total
        },
    );
    let duplicates = assert_stream_complete(target, &remote, &counts, "read_committed");
    eprintln!(
        "exactly once, three nodes, a freeze and a kill: {total} records, {duplicates} duplicates"
    );
    assert_eq!(
        duplicates, 0,
        "read_committed readers see every record exactly once"
    );
    drop(nodes);
}

/// SIGCONT on drop, so a failing test never leaves a process stopped.
struct ContinueOnDrop(u32);

impl Drop for ContinueOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[test]
fn the_leaders_duties_move_when_it_dies() {
    let (source, target) = endpoints();
    let prefix = unique("nodes-leader");
    let first = format!("{prefix}-a");
    create_topic(source, &first, 2);
    let dir = tempfile::tempdir().unwrap();
    let topics = format!("{prefix}-.*");
    let alias = alias("leader");
    let extra = format!("{alias}->target.tasks.max = 2\n");
    let mut nodes: Vec<Node> = (1..=2)
        .map(|n| Node::start(dir.path(), n, &alias, &topics, &extra))
        .collect();
    wait_for_group(&nodes.iter().collect::<Vec<_>>(), "two members");
    let leader = nodes.iter().position(Node::is_leader).unwrap();
    let survivor = 1 - leader;
    nodes[leader].daemon.kill();
    wait_until(
        SESSION_TIMEOUT + Duration::from_secs(30),
        "the survivor to lead",
        || nodes[survivor].is_leader(),
    );
    // A topic created after the leader died is created on the target and copied.
    let second = format!("{prefix}-b");
    create_topic(source, &second, 2);
    produce(source, &second, 0, &numbered(50));
    wait_until(
        Duration::from_secs(60),
        "the new topic on the target",
        || record_count(target, &format!("{alias}.{second}")) == 50,
    );
    // Heartbeats and checkpoints continue.
    let heartbeats_before = record_count(target, "heartbeats");
    let group = format!("{topics}-group").replace(".*", "x");
    produce(source, &first, 0, &numbered(20));
    wait_until(
        Duration::from_secs(60),
        "the records of the first topic",
        || record_count(target, &format!("{alias}.{first}")) >= 20,
    );
    commit_group(source, &group, &[(&first, 0, 10)]);
    wait_until(
        Duration::from_secs(60),
        "heartbeats and a checkpoint from the new leader",
        || {
            record_count(target, "heartbeats") > heartbeats_before
                && status_of(&nodes[survivor].http).is_some_and(|status| {
                    flow_status(&status, &nodes[survivor].flow)["groups"]
                        .as_array()
                        .is_some_and(|groups| {
                            groups
                                .iter()
                                .any(|g| g["group"] == group.as_str() && g["checkpointed"] == true)
                        })
                })
        },
    );
    drop(nodes);
}

#[test]
fn members_with_different_files_never_run_two_plans() {
    let (source, target) = endpoints();
    let topic = unique("nodes-conflict");
    create_topic(source, &topic, 6);
    let alias = alias("conflict");
    let remote = format!("{alias}.{topic}");
    let dir = tempfile::tempdir().unwrap();
    let stream = SteadyStream::start(source, &topic, 6, 600);
    let first = Node::start(
        dir.path(),
        1,
        &alias,
        &topic,
        &format!("{alias}->target.tasks.max = 3\n"),
    );
    wait_for_group(&[&first], "the first member");
    // The second file differs in tasks.max: a different plan.
    let second = Node::start(
        dir.path(),
        2,
        &alias,
        &topic,
        &format!("{alias}->target.tasks.max = 2\n"),
    );
    let mut membership = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(60),
        "the conflict to be reported",
        || {
            membership = second.membership();
            membership["state"] == "standby" && membership["conflict"].is_string()
        },
    );
    assert!(
        membership["conflict"].as_str().unwrap().contains("differ"),
        "{membership}"
    );
    assert_eq!(
        metric_of(
            &second.http,
            "kafka_mirrord_plan_conflict",
            &[("flow", &second.flow)]
        ),
        Some(1.0)
    );
    assert_eq!(
        flow_status(&status_of(&second.http).unwrap(), &second.flow)["state"],
        "standby"
    );
    assert_eq!(
        first.owned_tasks(),
        vec![0, 1, 2],
        "the first keeps all the work"
    );
    std::thread::sleep(Duration::from_secs(3));
    let counts = stream.finish();
    let total: usize = counts.iter().sum();
    wait_until(
        Duration::from_secs(60),
        "every record on the target",
        || record_count(target, &remote) >= total as i64,
    );
    let duplicates = assert_stream_complete(target, &remote, &counts, "read_committed");
    assert_eq!(duplicates, 0, "nothing copied twice");
    drop((first, second));
}
