//! librdkafka client callbacks: its log lines and global errors go to `tracing` with the client's
//! role, at a bounded rate, and end-of-partition events (which we ask for) are not errors.

use std::sync::atomic::AtomicI64;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::{debug, error, info, warn};

use crate::locks::lock;

/// Logs librdkafka events for one client: at most one warning/error line and one global error
/// per 10 s (an unreachable cluster otherwise floods the journal); the rest go to debug.
#[derive(Debug)]
pub struct LoggingContext {
    pub client: &'static str,
    last_error_s: AtomicI64,
    last_log_s: AtomicI64,
}

impl LoggingContext {
    pub fn new(client: &'static str) -> Self {
        Self {
            client,
            last_error_s: AtomicI64::new(0),
            last_log_s: AtomicI64::new(0),
        }
    }
}

/// True at most once per 10 s per limiter.
fn allowed(last: &AtomicI64) -> bool {
    crate::clock::once_per(last, 10)
}

/// librdkafka warns about settings it calls experimental; kafka-mirrord sets these on purpose
/// (documented in README "Client defaults"), so the warning goes to debug.
fn deliberate_setting_warning(facility: &str, message: &str) -> bool {
    facility == "CONFWARN" && message.contains("enable.gapless.guarantee is experimental")
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let client = self.client;
        if deliberate_setting_warning(facility, message) {
            debug!(client, facility, "librdkafka: {message}");
            return;
        }
        let severe = !matches!(
            level,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug
        );
        if severe && !allowed(&self.last_log_s) {
            debug!(client, facility, "librdkafka: {message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                error!(client, facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Warning => warn!(client, facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(client, facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => debug!(client, facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        if allowed(&self.last_error_s) {
            warn!(client = self.client, "{error}: {reason}");
        } else {
            debug!(client = self.client, "{error}: {reason}");
        }
    }
}

impl ConsumerContext for LoggingContext {}

/// The source consumer's context: logging as [`LoggingContext`], and the partitions whose fetch
/// position librdkafka reset (`auto.offset.reset` after "offset out of range"), which it only
/// reports in a log line.
pub struct SourceConsumerContext {
    logging: LoggingContext,
    /// Partitions reset since the task last looked ([`SourceConsumerContext::take_resets`]).
    resets: std::sync::Mutex<Vec<(String, i32)>>,
    /// Set with `resets`, so the task checks one atomic per record.
    pub reset_seen: std::sync::atomic::AtomicBool,
}

impl SourceConsumerContext {
    pub fn new() -> Self {
        Self {
            logging: LoggingContext::new("source-consumer"),
            resets: std::sync::Mutex::new(Vec::new()),
            reset_seen: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The partitions whose position librdkafka reset since the last call.
    pub fn take_resets(&self) -> Vec<(String, i32)> {
        self.reset_seen
            .store(false, std::sync::atomic::Ordering::Release);
        std::mem::take(&mut *lock(&self.resets))
    }
}

/// `<topic> [<partition>]: offset reset (at …` — librdkafka's only report of an automatic reset
/// (`rd_kafka_offset_reset`, facility `OFFSET`, logged at warning level when a fetch failed).
pub fn parse_offset_reset(facility: &str, message: &str) -> Option<(String, i32)> {
    if facility != "OFFSET" {
        return None;
    }
    let (head, _) = message.split_once("]: offset reset")?;
    // librdkafka prefixes its log lines with the thread: `[thrd:main]: `.
    let head = head.rsplit_once("]: ").map_or(head, |(_, rest)| rest);
    let (topic, partition) = head.rsplit_once(" [")?;
    Some((topic.to_string(), partition.parse().ok()?))
}

impl ClientContext for SourceConsumerContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if let Some(reset) = parse_offset_reset(facility, message) {
            lock(&self.resets).push(reset);
            self.reset_seen
                .store(true, std::sync::atomic::Ordering::Release);
        }
        self.logging.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error(error, reason);
    }
}

impl Default for SourceConsumerContext {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsumerContext for SourceConsumerContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_resets_are_read_from_librdkafkas_log_line() {
        // Format of rd_kafka_offset_reset() in librdkafka 2.x.
        let line = "orders.eu [3]: offset reset (at offset 1500 (leader epoch 0), broker 1) to offset BEGINNING (leader epoch -1): fetch failed due to requested offset not available on the broker: Broker: Offset out of range";
        assert_eq!(
            parse_offset_reset("OFFSET", line),
            Some(("orders.eu".to_string(), 3))
        );
        let with_thread = format!("[thrd:main]: {line}");
        assert_eq!(
            parse_offset_reset("OFFSET", &with_thread),
            Some(("orders.eu".to_string(), 3))
        );
        assert_eq!(parse_offset_reset("FETCH", line), None);
        assert_eq!(parse_offset_reset("OFFSET", "something else"), None);
    }
}
