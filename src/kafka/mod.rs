//! Everything that talks to Kafka brokers through librdkafka.

pub mod connectivity;
