//! Applies plans to running flows: start added flows, stop removed ones, restart changed ones,
//! keep the rest untouched. A changed flow's replacement starts only after the old instance has
//! fully stopped (drained and stored its progress), so the two never copy the same partitions at
//! once; if a stop takes longer than the drain time, the reload is reported as `failed` and the
//! replacement still waits.
//!
//! Flows are started through a [`FlowLauncher`], so the controller can be driven without brokers
//! (tests inject a launcher whose flows stop when told to).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::lifecycle::Stop;
use crate::plan::diff::PlanDiff;
use crate::plan::{FlowId, FlowPlan, Plan};

/// A running flow instance: resolves when it has stopped.
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts flows; the real one is [`crate::flow::launch`] behind `LiveFlows` in the daemon.
pub trait FlowLauncher {
    /// What the launcher needs to forget a flow once it was removed and has stopped.
    type Handle: Send;
    fn launch(&mut self, plan: Arc<FlowPlan>, stop: Stop) -> (Stopped, Self::Handle);
    /// A removed flow has stopped: drop its status and metrics.
    fn forget(&mut self, id: &FlowId, handle: Self::Handle);
}

struct Instance<H> {
    serial: u64,
    stop: Stop,
    handle: H,
    /// When a stop was requested (`None` while running).
    stopping_since: Option<Instant>,
    /// Removed by a reload: forget it once stopped (a changed flow keeps its status entry).
    removed: bool,
}

/// What happened to a flow instance that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Stopped as asked; its replacement (if any) has been started.
    Stopped {
        id: FlowId,
        replacement_started: bool,
    },
    /// Ended without being asked (its supervisor failed): started again.
    Restarted { id: FlowId },
}

pub struct Controller<L: FlowLauncher> {
    launcher: L,
    root: Stop,
    running: BTreeMap<FlowId, Instance<L::Handle>>,
    stopping: Vec<(FlowId, Instance<L::Handle>)>,
    /// Replacements of changed flows, waiting for the old instance to stop.
    waiting: BTreeMap<FlowId, Arc<FlowPlan>>,
    plans: BTreeMap<FlowId, Arc<FlowPlan>>,
    serial: u64,
    ended_tx: mpsc::UnboundedSender<(FlowId, u64)>,
    ended_rx: mpsc::UnboundedReceiver<(FlowId, u64)>,
}

impl<L: FlowLauncher> Controller<L> {
    /// `root` is the daemon's stop: every flow's stop is a child of it.
    pub fn new(launcher: L, root: Stop) -> Controller<L> {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        Controller {
            launcher,
            root,
            running: BTreeMap::new(),
            stopping: Vec::new(),
            waiting: BTreeMap::new(),
            plans: BTreeMap::new(),
            serial: 0,
            ended_tx,
            ended_rx,
        }
    }

    pub fn launcher(&self) -> &L {
        &self.launcher
    }

    /// Starts every flow of `plan` (at start-up).
    pub fn start_all(&mut self, plan: &Plan) {
        for flow in plan.flows.values() {
            self.launch(Arc::new(flow.clone()));
        }
    }

    fn launch(&mut self, plan: Arc<FlowPlan>) {
        self.serial += 1;
        let serial = self.serial;
        let stop = self.root.child();
        let id = plan.id.clone();
        let (stopped, handle) = self.launcher.launch(plan.clone(), stop.clone());
        let ended = self.ended_tx.clone();
        let watched = id.clone();
        tokio::spawn(async move {
            stopped.await;
            let _ = ended.send((watched, serial));
        });
        self.plans.insert(id.clone(), plan);
        self.running.insert(
            id,
            Instance {
                serial,
                stop,
                handle,
                stopping_since: None,
                removed: false,
            },
        );
    }

    /// Applies a reload: removed and changed flows are asked to stop within `drain`; added flows
    /// start now; changed flows (and added flows whose previous instance is still stopping) start
    /// once the old instance has stopped.
    pub fn apply(&mut self, diff: &PlanDiff, new: &Plan, drain: Duration) {
        for id in &diff.removed {
            self.waiting.remove(id);
            self.plans.remove(id);
            self.request_stop(id, drain, true);
        }
        for id in &diff.changed {
            self.request_stop(id, drain, false);
            self.waiting
                .insert(id.clone(), Arc::new(new.flows[id].clone()));
        }
        for id in &diff.added {
            let plan = Arc::new(new.flows[id].clone());
            if self.is_stopping(id) {
                // Back before its old instance stopped: keep its status and metrics.
                for (stopping_id, instance) in &mut self.stopping {
                    if stopping_id == id {
                        instance.removed = false;
                    }
                }
                self.waiting.insert(id.clone(), plan);
            } else {
                self.launch(plan);
            }
        }
        // A flow still waiting for its old instance takes the newest plan.
        for id in &diff.unchanged {
            if let Some(waiting) = self.waiting.get_mut(id) {
                *waiting = Arc::new(new.flows[id].clone());
            }
        }
    }

    fn request_stop(&mut self, id: &FlowId, drain: Duration, removed: bool) {
        if let Some(mut instance) = self.running.remove(id) {
            instance.stop.request(drain);
            instance.stopping_since = Some(Instant::now());
            instance.removed = removed;
            self.stopping.push((id.clone(), instance));
        } else if removed {
            for (stopping_id, instance) in &mut self.stopping {
                if stopping_id == id {
                    instance.removed = true;
                }
            }
        }
    }

    fn is_stopping(&self, id: &FlowId) -> bool {
        self.stopping.iter().any(|(stopping, _)| stopping == id)
    }

    /// Flows still stopping after `drain` (a cluster that does not answer).
    pub fn overdue(&self, drain: Duration) -> Vec<FlowId> {
        self.stopping
            .iter()
            .filter(|(_, instance)| {
                instance
                    .stopping_since
                    .is_some_and(|since| since.elapsed() >= drain)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Flows being stopped, and flows waiting for that.
    pub fn pending(&self) -> (Vec<FlowId>, Vec<FlowId>) {
        (
            self.stopping.iter().map(|(id, _)| id.clone()).collect(),
            self.waiting.keys().cloned().collect(),
        )
    }

    pub fn running_ids(&self) -> Vec<FlowId> {
        self.running.keys().cloned().collect()
    }

    /// Waits for the next flow instance to end and handles it. Never resolves while nothing runs.
    pub async fn next_ended(&mut self) -> Ended {
        loop {
            let Some((id, serial)) = self.ended_rx.recv().await else {
                return std::future::pending().await;
            };
            if let Some(position) = self
                .stopping
                .iter()
                .position(|(stopping, instance)| *stopping == id && instance.serial == serial)
            {
                let (_, instance) = self.stopping.remove(position);
                let elapsed = instance.stopping_since.map(|since| since.elapsed());
                info!(flow = %id, stop_ms = elapsed.map(|e| e.as_millis() as u64), "flow stopped");
                if instance.removed {
                    self.launcher.forget(&id, instance.handle);
                }
                let replacement_started = match self.waiting.remove(&id) {
                    Some(plan) if !self.root.is_requested() => {
                        self.launch(plan);
                        true
                    }
                    _ => false,
                };
                return Ended::Stopped {
                    id,
                    replacement_started,
                };
            }
            if self
                .running
                .get(&id)
                .is_some_and(|instance| instance.serial == serial)
            {
                // Its supervisor ended without a stop request: a bug, but never a silent death.
                let instance = self.running.remove(&id).expect("checked");
                if self.root.is_requested() {
                    continue;
                }
                error!(flow = %id, "flow ended unexpectedly; starting it again");
                self.launcher.forget(&id, instance.handle);
                if let Some(plan) = self.plans.get(&id).cloned() {
                    // A short pause so a flow that keeps dying does not spin.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    self.launch(plan);
                }
                return Ended::Restarted { id };
            }
        }
    }

    /// Asks every flow to stop within `drain` and waits until all have stopped. The caller races
    /// this against the hard deadline and a second signal.
    pub async fn shutdown(&mut self, drain: Duration) {
        self.waiting.clear();
        self.root.request(drain);
        let ids: Vec<FlowId> = self.running.keys().cloned().collect();
        for id in ids {
            self.request_stop(&id, drain, false);
        }
        let mut reporter = tokio::time::interval(Duration::from_secs(5));
        reporter.tick().await;
        while !self.stopping.is_empty() {
            tokio::select! {
                _ = self.next_ended() => {}
                _ = reporter.tick() => {
                    let ids: Vec<String> = self.stopping.iter().map(|(id, _)| id.to_string()).collect();
                    warn!(flows = ?ids, "still draining");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use tokio::sync::watch;

    use super::*;
    use crate::config::properties::RawProperties;
    use crate::plan::{load_properties, PlanOptions};

    /// A launcher whose flows run until stopped, then wait for the test's permission to finish.
    #[derive(Clone, Default)]
    struct FakeFlows {
        log: Arc<Mutex<Vec<String>>>,
        /// While false, stopping flows hang (a cluster that does not answer).
        release: Arc<Mutex<Option<watch::Sender<bool>>>>,
        running: Arc<Mutex<BTreeSet<String>>>,
    }

    impl FakeFlows {
        fn events(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }

        fn gate(&self) -> watch::Receiver<bool> {
            let mut release = self.release.lock().unwrap();
            release
                .get_or_insert_with(|| watch::channel(true).0)
                .subscribe()
        }

        fn hold_stops(&self, hold: bool) {
            let mut release = self.release.lock().unwrap();
            release
                .get_or_insert_with(|| watch::channel(true).0)
                .send_replace(!hold);
        }
    }

    impl FlowLauncher for FakeFlows {
        type Handle = ();

        fn launch(&mut self, plan: Arc<FlowPlan>, stop: Stop) -> (Stopped, ()) {
            let id = plan.id.to_string();
            let topics = plan.source.topics.include.join(",");
            {
                let mut running = self.running.lock().unwrap();
                assert!(
                    running.insert(id.clone()),
                    "{id} started while its previous instance still runs"
                );
            }
            self.log
                .lock()
                .unwrap()
                .push(format!("start {id} {topics}"));
            let (log, running, mut gate) = (self.log.clone(), self.running.clone(), self.gate());
            let stopped = Box::pin(async move {
                stop.requested().await;
                let _ = gate.wait_for(|open| *open).await;
                running.lock().unwrap().remove(&id);
                log.lock().unwrap().push(format!("stopped {id}"));
            });
            (stopped, ())
        }

        fn forget(&mut self, id: &FlowId, _: ()) {
            self.log.lock().unwrap().push(format!("forget {id}"));
        }
    }

    fn plan(pairs: &[(&str, &str)]) -> Plan {
        let mut all = vec![
            ("clusters", "A, B, C"),
            ("A.bootstrap.servers", "a:9092"),
            ("B.bootstrap.servers", "b:9092"),
            ("C.bootstrap.servers", "c:9092"),
            ("emit.heartbeats.enabled", "false"),
        ];
        all.extend_from_slice(pairs);
        load_properties(
            RawProperties::from_pairs(all),
            &PlanOptions::default(),
            &|_| None,
        )
        .unwrap()
        .plan
    }

    async fn next(controller: &mut Controller<FakeFlows>) -> Ended {
        tokio::time::timeout(Duration::from_secs(5), controller.next_ended())
            .await
            .expect("a flow ended")
    }

    #[tokio::test]
    async fn a_changed_flow_restarts_only_after_the_old_instance_stopped() {
        let flows = FakeFlows::default();
        let mut controller = Controller::new(flows.clone(), Stop::new());
        let old = plan(&[("A->B.enabled", "true"), ("C->B.enabled", "true")]);
        controller.start_all(&old);
        let new = plan(&[
            ("A->B.enabled", "true"),
            ("A->B.topics", "orders"),
            ("C->B.enabled", "true"),
        ]);
        flows.hold_stops(true);
        controller.apply(
            &PlanDiff::between(&old, &new),
            &new,
            Duration::from_millis(50),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            controller.pending().1,
            vec![new.flows.keys().next().unwrap().clone()]
        );
        assert_eq!(
            controller.overdue(Duration::from_millis(50)).len(),
            1,
            "the old instance is past its drain time"
        );
        assert!(
            !flows.events().iter().any(|e| e == "start A->B orders"),
            "the replacement must wait: {:?}",
            flows.events()
        );
        flows.hold_stops(false);
        assert_eq!(
            next(&mut controller).await,
            Ended::Stopped {
                id: "A->B".parse_flow(),
                replacement_started: true
            }
        );
        let events = flows.events();
        let stopped = events.iter().position(|e| e == "stopped A->B").unwrap();
        let started = events
            .iter()
            .position(|e| e == "start A->B orders")
            .unwrap();
        assert!(stopped < started, "{events:?}");
        assert!(!events
            .iter()
            .any(|e| e.contains("C->B") && e.starts_with("stopped")));
        assert!(
            !events.iter().any(|e| e.starts_with("forget")),
            "a changed flow is not forgotten"
        );
    }

    #[tokio::test]
    async fn removed_flows_are_forgotten_after_they_stopped_and_shutdown_waits_for_all() {
        let flows = FakeFlows::default();
        let mut controller = Controller::new(flows.clone(), Stop::new());
        let old = plan(&[("A->B.enabled", "true"), ("C->B.enabled", "true")]);
        controller.start_all(&old);
        let new = plan(&[("A->B.enabled", "true")]);
        controller.apply(&PlanDiff::between(&old, &new), &new, Duration::from_secs(1));
        assert_eq!(
            next(&mut controller).await,
            Ended::Stopped {
                id: "C->B".parse_flow(),
                replacement_started: false
            }
        );
        assert!(flows.events().contains(&"forget C->B".to_string()));
        tokio::time::timeout(
            Duration::from_secs(5),
            controller.shutdown(Duration::from_secs(1)),
        )
        .await
        .expect("shutdown finishes once every flow stopped");
        assert!(flows.events().contains(&"stopped A->B".to_string()));
        assert!(controller.running_ids().is_empty());
    }

    #[tokio::test]
    async fn a_flow_re_added_while_its_old_instance_stops_waits_for_it() {
        let flows = FakeFlows::default();
        let mut controller = Controller::new(flows.clone(), Stop::new());
        let with = plan(&[("A->B.enabled", "true"), ("C->B.enabled", "true")]);
        let without = plan(&[("C->B.enabled", "true")]);
        controller.start_all(&with);
        flows.hold_stops(true);
        controller.apply(
            &PlanDiff::between(&with, &without),
            &without,
            Duration::from_secs(1),
        );
        controller.apply(
            &PlanDiff::between(&without, &with),
            &with,
            Duration::from_secs(1),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            flows
                .events()
                .iter()
                .filter(|e| e.starts_with("start A->B"))
                .count(),
            1
        );
        flows.hold_stops(false);
        assert_eq!(
            next(&mut controller).await,
            Ended::Stopped {
                id: "A->B".parse_flow(),
                replacement_started: true
            }
        );
        assert!(
            !flows.events().contains(&"forget A->B".to_string()),
            "re-added before it stopped: not forgotten"
        );
    }

    trait ParseFlow {
        fn parse_flow(&self) -> FlowId;
    }

    impl ParseFlow for &str {
        fn parse_flow(&self) -> FlowId {
            let (source, target) = self.split_once("->").unwrap();
            FlowId {
                source: source.into(),
                target: target.into(),
            }
        }
    }
}
