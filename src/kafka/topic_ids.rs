//! Topic ids (the UUID a topic gets when it is created) through librdkafka's `DescribeTopics`
//! admin call, which rust-rdkafka does not wrap. A topic deleted and created again under the same
//! name gets a new id: the lag monitor tells the operator (its offsets started over).
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

use super::native::{self, NativeError};

/// Topic name → its id (base64, as Kafka's tools print it), or the topic's own error.
pub type TopicIds = HashMap<String, Result<String, String>>;

/// Describes `topics`. Blocks up to `timeout`; call it off the async runtime.
pub fn describe_topic_ids<C: ClientContext>(
    client: &Client<C>,
    topics: &[String],
    timeout: Duration,
) -> Result<TopicIds, NativeError> {
    if topics.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<CString> = topics
        .iter()
        .map(|topic| CString::new(topic.as_str()).unwrap_or_default())
        .collect();
    let mut pointers: Vec<*const c_char> = names.iter().map(|name| name.as_ptr()).collect();
    // SAFETY: `pointers` holds NUL-terminated names that outlive the call; librdkafka copies them.
    let collection = unsafe {
        rd::rd_kafka_TopicCollection_of_topic_names(pointers.as_mut_ptr(), pointers.len())
    };
    if collection.is_null() {
        return Err(NativeError {
            code: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__FAIL,
            message: "librdkafka could not allocate a topic collection".into(),
        });
    }
    let result = native::request(
        client,
        timeout,
        |_| {},
        // SAFETY: `collection` stays alive until after the answer arrived (destroyed below).
        |rk, options, queue| unsafe { rd::rd_kafka_DescribeTopics(rk, collection, options, queue) },
    );
    // SAFETY: our collection, no longer used by librdkafka (the request copied it).
    unsafe { rd::rd_kafka_TopicCollection_destroy(collection) };
    let event = result?;
    let mut out = HashMap::with_capacity(topics.len());
    // SAFETY: reads the answer while `event` is alive; strings are copied.
    unsafe {
        let answer = rd::rd_kafka_event_DescribeTopics_result(event.0);
        if answer.is_null() {
            return Err(NativeError {
                code: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__BAD_MSG,
                message: "unexpected reply to DescribeTopics".into(),
            });
        }
        let mut count = 0usize;
        let descriptions = rd::rd_kafka_DescribeTopics_result_topics(answer, &mut count);
        for index in 0..count {
            let description = *descriptions.add(index);
            if description.is_null() {
                continue;
            }
            let name = native::string(rd::rd_kafka_TopicDescription_name(description));
            let error = rd::rd_kafka_TopicDescription_error(description);
            let value = if !error.is_null()
                && rd::rd_kafka_error_code(error)
                    != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            {
                Err(native::string(rd::rd_kafka_error_string(error)))
            } else {
                let id = rd::rd_kafka_TopicDescription_topic_id(description);
                if id.is_null() {
                    Err("no topic id".to_string())
                } else {
                    Ok(native::string(rd::rd_kafka_Uuid_base64str(id)))
                }
            };
            out.insert(name, value);
        }
    }
    Ok(out)
}
