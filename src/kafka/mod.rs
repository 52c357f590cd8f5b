//! Everything that talks to Kafka brokers through librdkafka.

pub mod acls;
pub mod admin;
pub mod connectivity;
pub mod context;
pub mod groups;
pub mod headers;
