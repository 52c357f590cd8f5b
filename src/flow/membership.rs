//! Several nodes, one file: the processes running a flow share it through Kafka's consumer-group
//! protocol on the flow's target cluster (librdkafka), as MM2's Connect workers do — no consensus,
//! lease or heartbeat of our own (`docs/several-nodes.md`).
//!
//! Every process joins the group `<group.id>-mirrord` subscribed to the compacted internal topic
//! `mm2-mirrord-tasks.<source>.internal`, which has one partition per task slot and no records.
//! The group's (cooperative-sticky) assignment of those partitions says which process runs which
//! source task slot; the owner of partition 0 is the flow's leader and also runs the
//! connector-level duties. A slot is released only after its task drained and stored progress
//! (the revocation callback waits for the supervisor); a process that dies loses its slots after
//! the group's session timeout.
//!
//! Members must run the same plan: each puts its plan's fingerprint and the time its flow started
//! in its client id, and checks, through `DescribeGroups`, the plan of the longest-running member.
//! A member runs nothing before that check; one whose plan differs stands by (leaves the group, so
//! its slots go to the others) until the files agree again. So two plans never run at once, and
//! the established configuration wins over a node that comes up with another file — as in MM2,
//! whose group leader (in practice the first member) decides.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::TopicPartitionList;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::kafka::admin::{Admin, Created, TopicSpec};
use crate::kafka::context::LoggingContext;
use crate::kafka::groups;
use crate::lifecycle::Stop;
use crate::locks::lock;
use crate::plan::clients::ClientRole;
use crate::plan::FlowPlan;

/// How often the members and their plans are checked besides every rebalance.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Where this process stands in the flow's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Creating the topic, joining, or waiting for the group to settle.
    Joining,
    /// A member that may run the slots it owns.
    Member,
    /// Runs a different plan than the leader: out of the group until the files agree.
    Standby,
    /// Cannot join (unreachable, not authorized): says why in `problem`.
    Unavailable,
}

/// A member of the flow's group, as `DescribeGroups` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub member_id: String,
    /// The host the broker sees the member connect from.
    pub host: String,
    /// From the member's client id (kafka-mirrord members only).
    pub node: Option<String>,
    pub pid: Option<u32>,
    pub version: Option<String>,
    pub plan: Option<String>,
    /// When its flow started (Unix ms): the longest-running member's plan is authoritative.
    pub since: Option<u64>,
    /// Task slots (partitions of the membership topic) it owns.
    pub tasks: Vec<usize>,
    pub leader: bool,
    pub this_process: bool,
}

/// What the membership tells the flow's supervisor and `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipView {
    pub state: MemberState,
    pub group: String,
    /// Slots this process may run now (assigned, and the plans agree).
    pub owned: BTreeSet<usize>,
    /// This process runs the connector-level duties.
    pub leader: bool,
    pub generation: Option<i32>,
    pub members: Vec<Member>,
    /// This process's plan fingerprint.
    pub plan: String,
    /// Set while plans disagree.
    pub conflict: Option<String>,
    /// Why this process cannot join, with the fix.
    pub problem: Option<String>,
    pub rebalances: u64,
    pub last_rebalance_unix_ms: Option<u64>,
    pub last_rebalance_ms: Option<u64>,
}

impl MembershipView {
    fn new(plan: &FlowPlan) -> MembershipView {
        MembershipView {
            state: MemberState::Joining,
            group: plan.membership.group_id.clone(),
            owned: BTreeSet::new(),
            leader: false,
            generation: None,
            members: Vec::new(),
            plan: plan.fingerprint(),
            conflict: None,
            problem: None,
            rebalances: 0,
            last_rebalance_unix_ms: None,
            last_rebalance_ms: None,
        }
    }
}

/// Slots the group takes away: the supervisor stops their tasks (drained unless `lost`) and then
/// answers on `done`, and only then does librdkafka release them to another member.
#[derive(Debug)]
pub struct Revocation {
    pub slots: BTreeSet<usize>,
    /// The session timed out (this process was frozen or cut off): another member may already
    /// run these slots, so nothing is drained or stored.
    pub lost: bool,
    pub done: std_mpsc::Sender<()>,
}

/// The running membership of one flow in this process.
pub struct Membership {
    leave: Stop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Membership {
    /// Joins the flow's group on its own thread. `drain` bounds how long a revocation waits for
    /// the supervisor.
    pub fn start(
        plan: Arc<FlowPlan>,
        drain: Duration,
    ) -> (
        Membership,
        watch::Receiver<MembershipView>,
        mpsc::UnboundedReceiver<Revocation>,
    ) {
        let (view_tx, view_rx) = watch::channel(MembershipView::new(&plan));
        let (revocations_tx, revocations_rx) = mpsc::unbounded_channel();
        let leave = Stop::new();
        let runtime = tokio::runtime::Handle::current();
        let thread = {
            let leave = leave.clone();
            std::thread::Builder::new()
                .name("membership".into())
                .spawn(move || {
                    run(&Shared {
                        since: crate::clock::unix_ms().max(0) as u64,
                        plan,
                        view: view_tx,
                        revocations: revocations_tx,
                        leave,
                        drain,
                        runtime,
                    })
                })
                .expect("a thread can be spawned")
        };
        (
            Membership {
                leave,
                thread: Some(thread),
            },
            view_rx,
            revocations_rx,
        )
    }

    /// Leaves the group (call once this process's tasks of the flow have stopped) and waits at
    /// most `within` for it.
    pub async fn leave(mut self, within: Duration) {
        self.leave.request(within);
        if let Some(thread) = self.thread.take() {
            let _ =
                tokio::time::timeout(within, tokio::task::spawn_blocking(move || thread.join()))
                    .await;
        }
    }
}

struct Shared {
    plan: Arc<FlowPlan>,
    /// When this flow instance started (Unix ms), published in the client id.
    since: u64,
    view: watch::Sender<MembershipView>,
    revocations: mpsc::UnboundedSender<Revocation>,
    leave: Stop,
    drain: Duration,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn publish(&self, update: impl FnOnce(&mut MembershipView)) {
        self.view.send_if_modified(|view| {
            let before = view.clone();
            update(view);
            *view != before
        });
    }
}

fn run(shared: &Shared) {
    let mut backoff = Duration::from_secs(1);
    while !shared.leave.is_requested() {
        match session(shared) {
            Ok(()) => return,
            Err(problem) => {
                warn!(flow = %shared.plan.id, group = %shared.plan.membership.group_id, retry_in_s = backoff.as_secs(), "cannot take part in the flow's group: {problem}");
                shared.publish(|view| {
                    view.state = MemberState::Unavailable;
                    view.owned.clear();
                    view.leader = false;
                    view.problem = Some(problem);
                });
                if shared.leave.sleep_blocking(backoff) {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// The ACLs a member needs, for error messages.
fn acl_fix(plan: &FlowPlan) -> String {
    format!(
        "allow this principal on cluster `{target}`: READ on group `{group}`; READ, DESCRIBE and CREATE on topic `{topic}` (or create it yourself: {partitions} partitions, cleanup.policy=compact)",
        target = plan.id.target,
        group = plan.membership.group_id,
        topic = plan.membership.topic,
        partitions = plan.membership.partitions,
    )
}

fn authorization_error(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    )
}

/// Creates the membership topic, or grows it to one partition per slot.
fn ensure_topic(shared: &Shared) -> Result<(), String> {
    let plan = &shared.plan;
    let membership = &plan.membership;
    let timeout = Duration::from_millis(plan.admin_timeout_ms as u64);
    let admin = Admin::shared(
        &plan.clients[&ClientRole::TargetAdmin].client_config(),
        timeout,
    )
    .map_err(|e| e.to_string())?;
    let topics = admin.list_topics().map_err(|e| e.to_string())?;
    match topics.get(&membership.topic) {
        None => {
            let replication_factor = match membership.replication_factor {
                Some(factor) => i32::from(factor),
                None => admin.broker_count().map_err(|e| e.to_string())?.clamp(1, 3) as i32,
            };
            let spec = TopicSpec {
                name: membership.topic.clone(),
                partitions: membership.partitions,
                replication_factor,
                configs: vec![("cleanup.policy".into(), "compact".into())],
            };
            let created = shared
                .runtime
                .block_on(admin.create_topics(&[spec]))
                .map_err(|e| e.to_string())?;
            match created.get(&membership.topic) {
                Some(Created::Created) => {
                    info!(flow = %plan.id, topic = %membership.topic, "created the group's task topic");
                    // Subscribed before the broker's metadata shows it, librdkafka reports the
                    // topic unavailable and joins only after its next metadata refresh, a
                    // second later (start-up time). Past the wait, joining goes ahead anyway.
                    let _ = super::stored_offsets::require_topic(
                        &plan.clients[&ClientRole::TargetConsumer].client_config(),
                        &membership.topic,
                        timeout,
                        &shared.leave,
                    );
                }
                Some(Created::Failed(reason)) => {
                    let fix = if reason.contains("eplication factor") {
                        format!(
                            "set `{}.offset.storage.replication.factor` to at most the number of brokers of `{}`",
                            plan.id.target, plan.id.target
                        )
                    } else {
                        acl_fix(plan)
                    };
                    return Err(format!(
                        "cannot create topic `{}`: {reason}; fix: {fix}",
                        membership.topic
                    ));
                }
                _ => {}
            }
        }
        Some(existing) if *existing < membership.partitions => {
            let grown = shared
                .runtime
                .block_on(
                    admin.create_partitions(&[(membership.topic.clone(), membership.partitions)]),
                )
                .map_err(|e| e.to_string())?;
            if let Some((_, Err(reason))) = grown.first() {
                return Err(format!(
                    "cannot add partitions to `{}` for tasks.max = {}: {reason}",
                    membership.topic, membership.partitions
                ));
            }
        }
        Some(existing) if *existing > membership.partitions => {
            warn!(flow = %plan.id, topic = %membership.topic, partitions = existing, tasks_max = membership.partitions,
                "the task topic has more partitions than tasks.max: the extra ones stay unused (members holding them run fewer tasks); delete the topic while every member is stopped to rebalance evenly");
        }
        Some(_) => {}
    }
    crate::kafka::destroy_in_background(admin);
    Ok(())
}

/// What the consumer context records for the session loop.
struct Tracker {
    /// Slots librdkafka assigned to this member (not yet checked against the leader's plan).
    assigned: Mutex<BTreeSet<usize>>,
    changed: AtomicBool,
    /// When the current rebalance began (first callback).
    rebalance_began: Mutex<Option<Instant>>,
    /// (when it ended, how long it took), taken by the session loop.
    rebalance_done: Mutex<Option<(u64, u64)>>,
}

struct MemberContext {
    logging: LoggingContext,
    topic: String,
    view: watch::Sender<MembershipView>,
    revocations: mpsc::UnboundedSender<Revocation>,
    drain: Duration,
    tracker: Arc<Tracker>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.logging.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl MemberContext {
    fn slots(&self, list: &TopicPartitionList) -> BTreeSet<usize> {
        list.elements()
            .iter()
            .filter(|element| element.topic() == self.topic && element.partition() >= 0)
            .map(|element| element.partition() as usize)
            .collect()
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        lock(&self.tracker.rebalance_began).get_or_insert_with(Instant::now);
        if let Rebalance::Revoke(list) = rebalance {
            let slots = self.slots(list);
            lock(&self.tracker.assigned).retain(|slot| !slots.contains(slot));
            self.tracker.changed.store(true, Ordering::Release);
            if slots.is_empty() {
                return;
            }
            // First no longer owned (the supervisor only ever reads the newest view), then released
            // once their tasks drained and stored progress (or, when lost, stopped).
            self.view.send_modify(|view| {
                view.owned.retain(|slot| !slots.contains(slot));
                if slots.contains(&0) {
                    view.leader = false;
                }
            });
            let (done, wait) = std_mpsc::channel();
            let lost = consumer.assignment_lost();
            let sent = self.revocations.send(Revocation { slots, lost, done });
            if sent.is_ok()
                && wait
                    .recv_timeout(self.drain + Duration::from_secs(5))
                    .is_err()
            {
                warn!(topic = %self.topic, "tasks did not stop in time; releasing their slots anyway");
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            lock(&self.tracker.assigned).extend(self.slots(list));
            // Nothing is ever read from the task topic: no fetch requests while idle.
            let _ = consumer.pause(list);
        }
        self.tracker.changed.store(true, Ordering::Release);
        if let Some(began) = lock(&self.tracker.rebalance_began).take() {
            *lock(&self.tracker.rebalance_done) = Some((
                crate::clock::unix_ms().max(0) as u64,
                began.elapsed().as_millis() as u64,
            ));
        }
    }
}

/// One membership session: join, follow the group, leave when asked. `Err` when the group cannot
/// be joined (retried by `run`).
fn session(shared: &Shared) -> Result<(), String> {
    let plan = &shared.plan;
    let membership = &plan.membership;
    let tracker = Arc::new(Tracker {
        assigned: Mutex::new(BTreeSet::new()),
        changed: AtomicBool::new(true),
        rebalance_began: Mutex::new(None),
        rebalance_done: Mutex::new(None),
    });
    let mut config = plan.clients[&ClientRole::TargetConsumer].client_config();
    config
        .set("group.id", &membership.group_id)
        .set("client.id", client_id(plan, shared.since))
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set(
            "session.timeout.ms",
            membership.session_timeout_ms.to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            membership.heartbeat_interval_ms.to_string(),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    let context = MemberContext {
        logging: LoggingContext::new("membership"),
        topic: membership.topic.clone(),
        view: shared.view.clone(),
        revocations: shared.revocations.clone(),
        drain: shared.drain,
        tracker: tracker.clone(),
    };
    // Created before the task topic is checked: it connects meanwhile, and the group
    // coordinator is found sooner (start-up time).
    let consumer: BaseConsumer<MemberContext> = config
        .create_with_context(context)
        .map_err(|e| e.to_string())?;
    ensure_topic(shared)?;
    consumer
        .subscribe(&[&membership.topic])
        .map_err(|e| e.to_string())?;
    info!(flow = %plan.id, group = %membership.group_id, plan = %plan.fingerprint(), "joining the flow's group");
    let mut standby = false;
    let mut next_check = Instant::now();
    loop {
        if shared.leave.is_requested() {
            consumer.unsubscribe();
            // Serve the revocation (the tasks are stopped already), then close, which leaves the
            // group at once instead of after the session timeout.
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until && !lock(&tracker.assigned).is_empty() {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            drop(consumer);
            info!(flow = %plan.id, group = %membership.group_id, "left the flow's group");
            return Ok(());
        }
        match consumer.poll(Duration::from_millis(250)) {
            Some(Err(error)) if authorization_error(&error) => {
                return Err(format!("{error}; fix: {}", acl_fix(plan)));
            }
            Some(Err(error)) => tracing::debug!(flow = %plan.id, "membership consumer: {error}"),
            _ => {}
        }
        if let Some((at, took)) = lock(&tracker.rebalance_done).take() {
            shared.publish(|view| {
                view.rebalances += 1;
                view.last_rebalance_unix_ms = Some(at);
                view.last_rebalance_ms = Some(took);
            });
        }
        if tracker.changed.swap(false, Ordering::AcqRel) || Instant::now() >= next_check {
            next_check = Instant::now()
                + match check(shared, &consumer, &tracker, &mut standby) {
                    Ok(settled) if settled => CHECK_EVERY,
                    Ok(_) => Duration::from_millis(500),
                    Err(error) => {
                        tracing::debug!(flow = %plan.id, "cannot describe the group: {error}");
                        Duration::from_secs(1)
                    }
                };
        }
    }
}

/// `<flow>|mirrord|v<version>|plan=<fingerprint>|since=<ms>|node=<hostname>|pid=<pid>`: what other
/// members read from `DescribeGroups`.
fn client_id(plan: &FlowPlan, since: u64) -> String {
    format!(
        "{}|mirrord|v{}|plan={}|since={since}|node={}|pid={}",
        plan.id,
        env!("CARGO_PKG_VERSION"),
        plan.fingerprint(),
        hostname(),
        std::process::id()
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The `key=value` fields of a member's client id written by [`client_id`].
fn client_field<'a>(client_id: &'a str, key: &str) -> Option<&'a str> {
    client_id
        .split('|')
        .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
}

/// Looks at the group and decides what this member may run. Returns whether the group looked
/// settled.
fn check(
    shared: &Shared,
    consumer: &BaseConsumer<MemberContext>,
    tracker: &Tracker,
    standby: &mut bool,
) -> Result<bool, KafkaError> {
    let plan = &shared.plan;
    let membership = &plan.membership;
    let mine = plan.fingerprint();
    let me = groups::member_id(consumer);
    let list = consumer.fetch_group_list(Some(&membership.group_id), Duration::from_secs(5))?;
    let mut members: Vec<Member> = list
        .groups()
        .iter()
        .filter(|group| group.name() == membership.group_id)
        .flat_map(|group| group.members())
        .map(|member| describe(member, &membership.topic, me.as_deref()))
        .collect();
    members.sort_by(|a, b| (!a.leader, &a.member_id).cmp(&(!b.leader, &b.member_id)));
    // A member with this process's node and pid but another member id is this flow's previous
    // instance (a reload replaces a changed flow only after the old one stopped) whose leave the
    // coordinator has not processed yet: not another node, and its plan is not a conflict.
    let (node, pid) = (hostname(), std::process::id());
    let others: Vec<&Member> = members
        .iter()
        .filter(|m| !m.this_process)
        .filter(|m| !(m.pid == Some(pid) && m.node.as_deref() == Some(node.as_str())))
        .collect();
    // The plan that counts: the longest-running member's (this process included).
    let authority = others
        .iter()
        .copied()
        .filter(|m| m.since.is_some_and(|since| since < shared.since))
        .min_by_key(|m| (m.since, m.member_id.clone()));

    if *standby {
        // Out of the group: back once the longest-running member runs this plan, or nobody is
        // left in the group.
        let oldest = others.iter().min_by_key(|m| (m.since, m.member_id.clone()));
        let agree = match oldest {
            None => true,
            Some(member) => member.plan.as_deref() == Some(mine.as_str()),
        };
        if agree {
            info!(flow = %plan.id, "the flow's plans agree again: rejoining the group");
            consumer
                .subscribe(&[&membership.topic])
                .map_err(|e| KafkaError::Subscription(e.to_string()))?;
            *standby = false;
        }
        shared.publish(|view| view.members = members);
        return Ok(true);
    }

    if let Some(authority) = authority.filter(|a| a.plan.as_deref() != Some(mine.as_str())) {
        let conflict = format!(
            "this process runs plan {mine}, the longest-running member ({} pid {}) runs plan {}: the properties files differ; standing by (out of the group) until they agree",
            authority.node.as_deref().unwrap_or(&authority.host),
            authority.pid.map_or("?".to_string(), |p| p.to_string()),
            authority.plan.as_deref().unwrap_or("unknown (not kafka-mirrord)"),
        );
        warn!(flow = %plan.id, "{conflict}");
        shared.publish(|view| {
            view.state = MemberState::Standby;
            view.owned.clear();
            view.leader = false;
            view.members = members.clone();
            view.conflict = Some(conflict);
            view.problem = None;
            view.generation = None;
        });
        // Leaving triggers the revocation: the supervisor drains the slots first.
        consumer.unsubscribe();
        *standby = true;
        return Ok(true);
    }
    let younger_disagreeing: Vec<String> = others
        .iter()
        .filter(|m| m.plan.as_deref() != Some(mine.as_str()))
        .map(|m| {
            format!(
                "{} pid {} (plan {})",
                m.node.as_deref().unwrap_or(&m.host),
                m.pid.map_or("?".to_string(), |p| p.to_string()),
                m.plan.as_deref().unwrap_or("unknown")
            )
        })
        .collect();
    let assigned = lock(&tracker.assigned).clone();
    let generation = groups::generation(consumer);
    let joined = me.is_some() && generation.is_some();
    shared.publish(|view| {
        view.state = if joined {
            MemberState::Member
        } else {
            MemberState::Joining
        };
        view.leader = assigned.contains(&0);
        view.owned = assigned;
        view.members = members;
        // Members that came up with another file stand down by themselves; say so meanwhile.
        view.conflict = (!younger_disagreeing.is_empty()).then(|| {
            format!(
                "members with another plan joined and stand by: {}",
                younger_disagreeing.join(", ")
            )
        });
        view.problem = None;
        view.generation = generation;
    });
    Ok(joined)
}

/// A member as `DescribeGroups` shows it, with what its client id says.
fn describe(member: &rdkafka::groups::GroupMemberInfo, topic: &str, me: Option<&str>) -> Member {
    let mut tasks: Vec<usize> = member
        .assignment()
        .and_then(groups::decode_assignment)
        .unwrap_or_default()
        .into_iter()
        .filter(|(assigned, _)| assigned == topic)
        .flat_map(|(_, partitions)| partitions)
        .filter(|p| *p >= 0)
        .map(|p| p as usize)
        .collect();
    tasks.sort_unstable();
    let client = member.client_id();
    let ours = client.contains("|mirrord|");
    Member {
        member_id: member.id().to_string(),
        host: member.client_host().trim_start_matches('/').to_string(),
        node: client_field(client, "node").map(str::to_string),
        pid: client_field(client, "pid").and_then(|pid| pid.parse().ok()),
        version: client
            .split('|')
            .find(|field| field.starts_with('v'))
            .map(|v| v[1..].to_string())
            .filter(|_| ours),
        plan: client_field(client, "plan").map(str::to_string),
        since: client_field(client, "since").and_then(|since| since.parse().ok()),
        leader: tasks.first() == Some(&0),
        this_process: me == Some(member.id()),
        tasks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_carry_what_other_members_check() {
        let id = "A->B|mirrord|v0.2.0|plan=00ff00ff00ff00ff|since=1700000000000|node=vm-1|pid=4242";
        assert_eq!(client_field(id, "since"), Some("1700000000000"));
        assert_eq!(client_field(id, "plan"), Some("00ff00ff00ff00ff"));
        assert_eq!(client_field(id, "node"), Some("vm-1"));
        assert_eq!(client_field(id, "pid"), Some("4242"));
        assert_eq!(client_field("rdkafka", "plan"), None);
    }
}
