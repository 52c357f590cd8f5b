//! Every consumer group of a cluster with its state, in one `ListGroups` per broker: librdkafka's
//! `ListConsumerGroups` admin call, which rust-rdkafka does not wrap. rust-rdkafka's group list
//! also describes every group (`DescribeGroups`) to count its members; a listing of idle groups
//! needs no description, since a group with members is never `Empty`.
#![allow(unsafe_code)]

use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

use super::native::{self, NativeError};

/// (group, state) of every group on the cluster. The state is the broker's name for it (`Empty`,
/// `Stable`, `Dead`, ..., `Unknown` when the broker does not say). A broker that did not answer
/// fails the whole listing: a group missing from a partial one would look absent. Blocking.
pub fn list<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
) -> Result<Vec<(String, String)>, NativeError> {
    let event = native::request(
        client,
        timeout,
        |_| {},
        |rk, options, queue| {
            // SAFETY: live handle, options and queue (owned by `native::request` until the
            // answer is read); librdkafka copies the options.
            unsafe { rd::rd_kafka_ListConsumerGroups(rk, options, queue) }
        },
    )?;
    // SAFETY: reads the answer while `event` is alive; every string is copied before it is
    // dropped, and the counts bound the arrays librdkafka returns.
    unsafe {
        let answer = rd::rd_kafka_event_ListConsumerGroups_result(event.0);
        if answer.is_null() {
            return Err(NativeError {
                code: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__BAD_MSG,
                message: "unexpected reply to ListConsumerGroups".into(),
            });
        }
        let mut error_count = 0usize;
        let errors = rd::rd_kafka_ListConsumerGroups_result_errors(answer, &mut error_count);
        if error_count > 0 && !errors.is_null() {
            let error = *errors;
            return Err(NativeError {
                code: rd::rd_kafka_error_code(error),
                message: native::string(rd::rd_kafka_error_string(error)),
            });
        }
        let mut count = 0usize;
        let listed = rd::rd_kafka_ListConsumerGroups_result_valid(answer, &mut count);
        let mut groups = Vec::with_capacity(count);
        for index in 0..count {
            let listing = *listed.add(index);
            if listing.is_null() {
                continue;
            }
            let name = native::string(rd::rd_kafka_ConsumerGroupListing_group_id(listing));
            let state = native::string(rd::rd_kafka_consumer_group_state_name(
                rd::rd_kafka_ConsumerGroupListing_state(listing),
            ));
            groups.push((name, state));
        }
        Ok(groups)
    }
}
