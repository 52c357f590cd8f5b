//! The daemon's cancellation tree: the process owns one [`Stop`] per flow, a flow one per task.
//! A stop request carries a deadline — by when the work must have drained and stored its
//! progress — so code that drains knows how much time it has, and every wait (a full producer
//! queue, a delivery, a flush, an admin call) checks the request instead of blocking past it.
//!
//! Built on `tokio_util`'s `CancellationToken`: cancelling a node cancels its subtree. A node
//! without a deadline of its own uses the nearest ancestor's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// One node of the cancellation tree. Cheap to clone; clones are the same node.
#[derive(Debug, Clone)]
pub struct Stop {
    token: CancellationToken,
    node: Arc<Node>,
}

#[derive(Debug)]
struct Node {
    deadline: Mutex<Option<Instant>>,
    parent: Option<Arc<Node>>,
}

impl Node {
    fn deadline(&self) -> Option<Instant> {
        let own = *self
            .deadline
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        own.or_else(|| self.parent.as_ref().and_then(|parent| parent.deadline()))
    }
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    /// A root: nothing stops it but [`Stop::request`].
    pub fn new() -> Stop {
        Stop {
            token: CancellationToken::new(),
            node: Arc::new(Node {
                deadline: Mutex::new(None),
                parent: None,
            }),
        }
    }

    /// A node stopped by this one (with this one's deadline) or on its own.
    pub fn child(&self) -> Stop {
        Stop {
            token: self.token.child_token(),
            node: Arc::new(Node {
                deadline: Mutex::new(None),
                parent: Some(self.node.clone()),
            }),
        }
    }

    /// Asks this node and its subtree to stop, draining within `within`. A second request never
    /// extends the first one's deadline.
    pub fn request(&self, within: Duration) {
        let deadline = Instant::now() + within;
        {
            let mut own = self
                .node
                .deadline
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *own = Some(own.map_or(deadline, |earlier| earlier.min(deadline)));
        }
        self.token.cancel();
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once a stop was requested (here or above).
    pub async fn requested(&self) {
        self.token.cancelled().await
    }

    /// When the work must be done: this node's deadline, or the nearest ancestor's. `None` while
    /// no stop was requested with one.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }

    /// Time left until the deadline; `fallback` when no deadline was set (a stop requested by a
    /// cancelled ancestor token without one, which the daemon never does).
    pub fn time_left(&self, fallback: Duration) -> Duration {
        match self.deadline() {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => fallback,
        }
    }

    /// Sleeps for `duration`; returns true early if a stop was requested.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            _ = self.requested() => true,
            _ = tokio::time::sleep(duration) => false,
        }
    }

    /// Blocking version of [`Stop::sleep`] for threads outside the async runtime: sleeps in short
    /// steps and returns true as soon as a stop was requested.
    pub fn sleep_blocking(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        loop {
            if self.is_requested() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_reaches_the_subtree_with_its_deadline() {
        let root = Stop::new();
        let flow = root.child();
        let task = flow.child();
        assert!(!task.is_requested());
        assert_eq!(task.deadline(), None);
        root.request(Duration::from_secs(10));
        assert!(flow.is_requested() && task.is_requested());
        let left = task.time_left(Duration::ZERO);
        assert!(left > Duration::from_secs(9) && left <= Duration::from_secs(10));
        tokio::time::timeout(Duration::from_secs(1), task.requested())
            .await
            .expect("the child sees the request");
    }

    #[test]
    fn a_child_can_stop_alone_and_a_later_request_never_extends_the_deadline() {
        let root = Stop::new();
        let task = root.child();
        task.request(Duration::from_secs(1));
        assert!(task.is_requested());
        assert!(
            !root.is_requested(),
            "a child's stop does not reach its parent"
        );
        task.request(Duration::from_secs(100));
        assert!(task.time_left(Duration::ZERO) <= Duration::from_secs(1));
        assert!(
            task.sleep_blocking(Duration::from_secs(5)),
            "returns at once"
        );
    }
}
