//! Sends a source task's offset syncs (to the source or the target cluster, per
//! `offset-syncs.topic.location`) with a budget of sends in flight. Which syncs are due is decided
//! by [`OffsetSyncQueue`] (MM2's rules); this module only sends them.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig};

use crate::kafka::producer::QuietProducer;
use tracing::{debug, warn};

use crate::flow::offset_syncs::{OffsetSyncQueue, MAX_IN_FLIGHT_SYNCS};
use crate::kafka::context::LoggingContext;

/// The offset-sync producer of one source task and its queue.
pub struct SyncSender {
    queue: Mutex<OffsetSyncQueue>,
    producer: QuietProducer<SyncContext>,
    topic: String,
}

pub struct SyncContext {
    logging: LoggingContext,
    in_flight: AtomicUsize,
    last_failure_warning: AtomicI64,
    /// The sender owning this producer, to send pending syncs as soon as a permit frees up.
    sender: OnceLock<Weak<SyncSender>>,
}

impl ClientContext for SyncContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.logging.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl ProducerContext for SyncContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Err((error, _)) = result {
            if crate::clock::once_per(&self.last_failure_warning, 10) {
                warn!("failure sending offset sync: {error}");
            } else {
                debug!("failure sending offset sync: {error}");
            }
        }
        // MM2 only fires pending syncs on the next acknowledged record or offset flush, so a burst
        // on one partition can starve another's syncs (KAFKA-14610/KAFKA-12558); we send them as
        // soon as a permit is free. Which syncs are pending is unchanged.
        if let Some(sender) = self.sender.get().and_then(Weak::upgrade) {
            let mut queue = sender.lock_queue();
            sender.fire(&mut queue);
        }
    }
}

impl SyncSender {
    /// A sender writing to partition 0 of `topic` with a producer made from `config`.
    pub fn new(
        config: &ClientConfig,
        topic: &str,
        offset_lag_max: i64,
    ) -> Result<Arc<SyncSender>, KafkaError> {
        let context = SyncContext {
            logging: LoggingContext::new("offset-syncs-producer"),
            in_flight: AtomicUsize::new(0),
            last_failure_warning: AtomicI64::new(0),
            sender: OnceLock::new(),
        };
        let producer = QuietProducer::create(config, context)?;
        let sender = Arc::new(SyncSender {
            queue: Mutex::new(OffsetSyncQueue::new(offset_lag_max)),
            producer,
            topic: topic.to_string(),
        });
        let _ = sender
            .producer
            .context()
            .sender
            .set(Arc::downgrade(&sender));
        Ok(sender)
    }

    /// A poisoned queue only means a panic elsewhere mid-update; syncs are advisory, keep going.
    fn lock_queue(&self) -> MutexGuard<'_, OffsetSyncQueue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An acknowledged (or committed) record: queues a sync when MM2's rules call for one.
    pub fn queue(&self, slot: usize, topic: &str, partition: i32, upstream: i64, downstream: i64) {
        let mut queue = self.lock_queue();
        queue.maybe_queue(slot, topic, partition, upstream, downstream);
        self.fire(&mut queue);
    }

    /// MM2's `commit()`: delayed syncs become pending and are sent.
    pub fn promote_and_fire(&self) {
        let mut queue = self.lock_queue();
        queue.promote_delayed();
        self.fire(&mut queue);
    }

    /// A partition the task no longer copies.
    pub fn forget(&self, slot: usize) {
        self.lock_queue().forget(slot);
    }

    fn fire(&self, queue: &mut OffsetSyncQueue) {
        let context = self.producer.context();
        let in_flight = context.in_flight.load(Ordering::Acquire);
        for sync in queue.take_sendable(MAX_IN_FLIGHT_SYNCS.saturating_sub(in_flight)) {
            let key = sync.key();
            let value = sync.value();
            context.in_flight.fetch_add(1, Ordering::AcqRel);
            let record = BaseRecord::to(&self.topic)
                .partition(0)
                .key(&key)
                .payload(&value);
            if let Err((error, _)) = self.producer.send(record) {
                context.in_flight.fetch_sub(1, Ordering::AcqRel);
                debug!("cannot queue an offset sync: {error}");
            }
        }
    }

    /// Sends what is queued within `timeout`, then drops what is left (syncs are advisory: the
    /// next run emits a fresh one for every partition).
    pub fn finish(&self, timeout: Duration) {
        if self.producer.flush(timeout).is_err() {
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
        }
    }
}
