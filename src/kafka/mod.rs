//! Everything that talks to Kafka brokers through librdkafka.

pub mod admin;
pub mod connectivity;
pub mod context;
