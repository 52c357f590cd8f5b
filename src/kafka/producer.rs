//! A librdkafka producer whose delivery reports are served by a thread that sleeps until there is
//! something to serve — a replacement for rust-rdkafka's `ThreadedProducer`, whose polling thread
//! spins through the last millisecond of every 100 ms wait (its `poll` hands librdkafka the
//! remaining wait in whole milliseconds, 0 for the last fraction, and loops until the deadline):
//! about 1 % of a core per idle producer (docs/operations.md, *Idle cost*).
//!
//! librdkafka calls back when its reply queue goes from empty to non-empty
//! (`rd_kafka_queue_cb_event_enable`); the callback only wakes our thread, which then serves the
//! queue without waiting (`poll(0)`) until it is empty again. The callback type is the only
//! librdkafka call here that rust-rdkafka does not wrap.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::os::raw::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tokio::sync::oneshot;

use super::context::LoggingContext;
use crate::locks::lock;

/// The serving thread wakes at least this often even without a signal (a safety net; the stop
/// flag is also checked then).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// What the librdkafka callback and the serving thread share.
#[derive(Default)]
struct Wake {
    /// (something was enqueued, stop requested)
    state: Mutex<(bool, bool)>,
    signal: Condvar,
}

impl Wake {
    fn notify(&self) {
        let mut state = lock(&self.state);
        state.0 = true;
        self.signal.notify_one();
    }

    fn stop(&self) {
        let mut state = lock(&self.state);
        state.1 = true;
        self.signal.notify_one();
    }

    /// Waits for a notification (or `IDLE_WAKE`); false once a stop was requested.
    fn wait(&self) -> bool {
        let mut state = lock(&self.state);
        if !state.0 && !state.1 {
            state = self
                .signal
                .wait_timeout(state, IDLE_WAKE)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        state.0 = false;
        !state.1
    }
}

/// How many times the serving thread emptied the reply queue, for a sender waiting for room: a
/// message counts against `queue.buffering.max.messages`/`.kbytes` until its delivery report is
/// served, so a full queue has room again right after a pass.
///
/// The count is read before every send (an atomic load, no lock on the record path); the lock is
/// only for the wait.
#[derive(Default)]
struct Served {
    passes: AtomicU64,
    lock: Mutex<()>,
    signal: Condvar,
}

impl Served {
    fn passes(&self) -> u64 {
        self.passes.load(Ordering::Acquire)
    }

    fn bump(&self) {
        let _guard = lock(&self.lock);
        self.passes.fetch_add(1, Ordering::AcqRel);
        self.signal.notify_all();
    }

    /// Waits until a pass after `seen` ended, or `timeout`.
    fn wait_after(&self, seen: u64, timeout: Duration) {
        let guard = lock(&self.lock);
        let _ = self
            .signal
            .wait_timeout_while(guard, timeout, |_| self.passes() == seen);
    }
}

/// The reply queue of a client, held for as long as the callback may fire.
struct ReplyQueue(*mut rd::rd_kafka_queue_t);

// SAFETY: librdkafka queues are thread-safe; the handle is moved once, into the serving thread.
unsafe impl Send for ReplyQueue {}

impl ReplyQueue {
    fn len(&self) -> usize {
        // SAFETY: a live queue handle (destroyed only in Drop).
        unsafe { rd::rd_kafka_queue_length(self.0) }
    }
}

impl Drop for ReplyQueue {
    fn drop(&mut self) {
        // SAFETY: the handle came from rd_kafka_queue_get_main and is destroyed once, after the
        // callback was disabled (so librdkafka never calls it with a freed opaque).
        unsafe {
            rd::rd_kafka_queue_cb_event_enable(self.0, None, std::ptr::null_mut());
            rd::rd_kafka_queue_destroy(self.0);
        }
    }
}

/// Called by librdkafka (on one of its threads, with the queue's lock held) when the reply queue
/// was empty and an event arrived. Must not call librdkafka: it only wakes the serving thread.
unsafe extern "C" fn queue_became_non_empty(_rk: *mut rd::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Wake` of a `QuietProducer`, kept alive (an Arc held by the
    // producer) until the callback is disabled in `ReplyQueue::drop`.
    let wake = unsafe { &*(opaque as *const Wake) };
    wake.notify();
}

/// A producer with a sleeping delivery-report thread. Derefs to `BaseProducer` (send, flush,
/// transactions, context). Dropping it stops the thread; what is still queued is then purged as
/// `ThreadedProducer` does (flush first to keep it).
pub struct QuietProducer<C: ProducerContext + 'static> {
    producer: Arc<BaseProducer<C>>,
    wake: Arc<Wake>,
    served: Arc<Served>,
    thread: Option<JoinHandle<()>>,
}

impl<C: ProducerContext + 'static> QuietProducer<C> {
    pub fn create(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let producer = Arc::new(BaseProducer::from_config_and_context(config, context)?);
        let wake = Arc::new(Wake::default());
        // SAFETY: the client is alive. The handle lives in the serving thread, which `Drop` joins
        // while this struct still holds the producer and `wake`: the callback is disabled and the
        // handle released before either can go.
        let queue =
            ReplyQueue(unsafe { rd::rd_kafka_queue_get_main(producer.client().native_ptr()) });
        // SAFETY: the opaque points into `wake`, an Arc this struct keeps until after the
        // callback is disabled.
        unsafe {
            rd::rd_kafka_queue_cb_event_enable(
                queue.0,
                Some(queue_became_non_empty),
                Arc::as_ptr(&wake) as *mut c_void,
            );
        }
        let served = Arc::new(Served::default());
        let thread = {
            let (producer, wake, served) = (producer.clone(), wake.clone(), served.clone());
            std::thread::Builder::new()
                .name("producer-reports".into())
                .spawn(move || loop {
                    // Serve everything queued; each poll(0) serves at most one event (a delivery
                    // report event carries a batch of messages).
                    loop {
                        producer.poll(Duration::ZERO);
                        if queue.len() == 0 {
                            break;
                        }
                    }
                    served.bump();
                    if !wake.wait() {
                        break;
                    }
                })
                .map_err(|error| {
                    rdkafka::error::KafkaError::ClientCreation(format!(
                        "cannot start the delivery-report thread: {error}"
                    ))
                })?
        };
        Ok(QuietProducer {
            producer,
            wake,
            served,
            thread: Some(thread),
        })
    }

    /// A mark to wait for room with: take it before a `send` that may find the queue full.
    pub fn reports_served(&self) -> u64 {
        self.served.passes()
    }

    /// After a `send` found the queue full: waits until delivery reports were served since
    /// `mark` (room was made), or `timeout`. A fixed 1 ms sleep instead could oversleep the
    /// room by up to a millisecond, several hundred times per 100-byte catch-up (an A/B showed
    /// no difference beyond this machine's noise; README, *Notes*).
    pub fn wait_for_room(&self, mark: u64, timeout: Duration) {
        self.served.wait_after(mark, timeout);
    }
}

impl<C: ProducerContext + 'static> Deref for QuietProducer<C> {
    type Target = BaseProducer<C>;
    fn deref(&self) -> &BaseProducer<C> {
        &self.producer
    }
}

impl<C: ProducerContext + 'static> Drop for QuietProducer<C> {
    fn drop(&mut self) {
        self.wake.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The target's answer for one record of a [`RecordProducer`]: `Err` when the producer went away
/// before answering.
pub type Acknowledgement = oneshot::Receiver<KafkaResult<()>>;

/// Hands each record's delivery report to whoever queued it.
pub struct AcknowledgingContext {
    logging: LoggingContext,
}

impl ClientContext for AcknowledgingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.logging.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl ProducerContext for AcknowledgingContext {
    type DeliveryOpaque = Box<oneshot::Sender<KafkaResult<()>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, answer: Self::DeliveryOpaque) {
        let _ = answer.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
    }
}

/// A producer of single records whose acknowledgements are awaited (heartbeats, checkpoints,
/// offset-history deletions): what rust-rdkafka's `FutureProducer` does, on a [`QuietProducer`].
pub struct RecordProducer {
    producer: QuietProducer<AcknowledgingContext>,
}

/// One record for a [`RecordProducer`]: `payload: None` is a tombstone.
pub struct Record<'a> {
    pub topic: &'a str,
    pub partition: Option<i32>,
    pub key: &'a [u8],
    pub payload: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
}

impl RecordProducer {
    pub fn create(config: &ClientConfig, logging: LoggingContext) -> KafkaResult<Self> {
        Ok(RecordProducer {
            producer: QuietProducer::create(config, AcknowledgingContext { logging })?,
        })
    }

    /// Queues a record without waiting; the answer comes through the returned receiver.
    pub fn enqueue(&self, record: &Record<'_>) -> KafkaResult<Acknowledgement> {
        let (answer, acknowledgement) = oneshot::channel();
        let mut base = BaseRecord::with_opaque_to(record.topic, Box::new(answer)).key(record.key);
        if let Some(payload) = record.payload {
            base = base.payload(payload);
        }
        if let Some(partition) = record.partition {
            base = base.partition(partition);
        }
        if let Some(timestamp) = record.timestamp {
            base = base.timestamp(timestamp);
        }
        self.producer
            .send(base)
            .map(|()| acknowledgement)
            .map_err(|(error, _)| error)
    }

    /// Queues a record and waits for the target's answer (bound the wait with a timeout).
    pub async fn send(&self, record: &Record<'_>) -> KafkaResult<()> {
        match self.enqueue(record)?.await {
            Ok(answer) => answer,
            Err(_) => Err(KafkaError::Canceled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_before_the_wait_is_not_lost() {
        let wake = Wake::default();
        wake.notify();
        let started = std::time::Instant::now();
        assert!(wake.wait());
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn a_stop_ends_the_wait_at_once() {
        let wake = Arc::new(Wake::default());
        let waiter = {
            let wake = wake.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                (wake.wait(), started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        wake.stop();
        let (going_on, waited) = waiter.join().unwrap();
        assert!(!going_on);
        assert!(waited < Duration::from_millis(900));
    }

    #[test]
    fn a_sender_waiting_for_room_wakes_at_the_next_pass_and_not_before() {
        let served = Arc::new(Served::default());
        // A pass that ended after the mark was taken: no wait at all.
        let mark = served.passes();
        served.bump();
        let started = std::time::Instant::now();
        served.wait_after(mark, Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(1));
        // No pass: the wait lasts its timeout.
        let mark = served.passes();
        let started = std::time::Instant::now();
        served.wait_after(mark, Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(100));
        // A pass while waiting ends the wait long before the timeout.
        let waiter = {
            let served = served.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                served.wait_after(mark, Duration::from_secs(5));
                started.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        served.bump();
        assert!(waiter.join().unwrap() < Duration::from_secs(4));
    }
}
