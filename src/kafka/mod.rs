//! Everything that talks to Kafka brokers through librdkafka.

pub mod acls;
pub mod admin;
pub mod connectivity;
pub mod context;
pub mod group_offsets;
pub mod groups;
pub mod headers;
pub(crate) mod native;
pub mod offsets;
pub mod producer;
pub mod topic_ids;
