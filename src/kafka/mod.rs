//! Everything that talks to Kafka brokers through librdkafka.

pub mod acls;
pub mod admin;
pub mod connectivity;
pub mod context;
pub mod group_listing;
pub mod group_offsets;
pub mod groups;
pub mod headers;
pub(crate) mod native;
pub mod offsets;
pub mod producer;
pub mod topic_ids;

/// Destroys a short-lived client on a thread of its own: librdkafka's destroy waits for the
/// client's threads to end (about 100 ms), which a task done with a reader need not wait for
/// (start-up time). If no thread can be started, the client is destroyed here.
pub fn destroy_in_background<T: Send + 'static>(client: T) {
    let _ = std::thread::Builder::new()
        .name("client-destroy".into())
        .spawn(move || drop(client));
}
