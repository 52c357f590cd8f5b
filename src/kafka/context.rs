//! librdkafka client callbacks: its log lines and global errors go to `tracing` with the client's
//! role, at a bounded rate, and end-of-partition events (which we ask for) are not errors.

use std::sync::atomic::{AtomicI64, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::{debug, error, info, warn};

/// Logs librdkafka events for one client, at most one global error per 10 s.
#[derive(Debug)]
pub struct LoggingContext {
    pub client: &'static str,
    last_error_s: AtomicI64,
}

impl LoggingContext {
    pub fn new(client: &'static str) -> Self {
        Self {
            client,
            last_error_s: AtomicI64::new(0),
        }
    }
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let client = self.client;
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
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        if now - self.last_error_s.swap(now, Ordering::AcqRel) >= 10 {
            warn!(client = self.client, "{error}: {reason}");
        } else {
            debug!(client = self.client, "{error}: {reason}");
        }
    }
}

impl ConsumerContext for LoggingContext {}
