//! Partition offsets of many partitions in one request per broker: librdkafka's `ListOffsets`
//! admin call, which rust-rdkafka does not wrap (its `fetch_watermarks` asks one partition at a
//! time, twice). With `read_committed`, "latest" is the last stable offset: what a
//! `read_committed` consumer can read, so open transactions do not count.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

use super::native::{self, NativeError};

/// Which offset of each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// The log start.
    Earliest,
    /// The end: the high watermark, or the last stable offset with `read_committed`.
    Latest,
}

/// (topic, partition) → offset, or the partition's own error.
pub type Offsets = HashMap<(String, i32), Result<i64, String>>;

/// Partitions per request. librdkafka looks each partition up in the request's list when it
/// finds leaders and merges answers (a linear search per partition), so one request costs the
/// square of its size: at 2,000 partitions a single request cost most of an idle daemon's CPU.
const PARTITIONS_PER_REQUEST: usize = 128;

/// Lists `spec` offsets of `partitions`. Blocks up to `timeout` per request of
/// [`PARTITIONS_PER_REQUEST`]; call it off the async runtime.
pub fn list_offsets<C: ClientContext>(
    client: &Client<C>,
    partitions: &[(String, i32)],
    spec: Spec,
    read_committed: bool,
    timeout: Duration,
) -> Result<Offsets, NativeError> {
    let mut out = HashMap::with_capacity(partitions.len());
    for chunk in partitions.chunks(PARTITIONS_PER_REQUEST) {
        out.extend(list_offsets_once(
            client,
            chunk,
            spec,
            read_committed,
            timeout,
        )?);
    }
    Ok(out)
}

/// One `ListOffsets` request for `partitions`.
fn list_offsets_once<C: ClientContext>(
    client: &Client<C>,
    partitions: &[(String, i32)],
    spec: Spec,
    read_committed: bool,
    timeout: Duration,
) -> Result<Offsets, NativeError> {
    if partitions.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted = match spec {
        Spec::Earliest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_EARLIEST as i64,
        Spec::Latest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_LATEST as i64,
    };
    let names: Vec<CString> = partitions
        .iter()
        .map(|(topic, _)| CString::new(topic.as_str()).unwrap_or_default())
        .collect();
    // SAFETY: a list owned here and destroyed below; librdkafka copies what it needs from it.
    let list = unsafe { rd::rd_kafka_topic_partition_list_new(partitions.len() as i32) };
    for ((_, partition), name) in partitions.iter().zip(&names) {
        // SAFETY: `list` is live; `name` is NUL-terminated and outlives the call.
        unsafe {
            let element = rd::rd_kafka_topic_partition_list_add(list, name.as_ptr(), *partition);
            (*element).offset = wanted;
        }
    }
    let result = native::request(
        client,
        timeout,
        |options| {
            let isolation = if read_committed {
                rd::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED
            } else {
                rd::rd_kafka_IsolationLevel_t::RD_KAFKA_ISOLATION_LEVEL_READ_UNCOMMITTED
            };
            // SAFETY: live options; an error here only means the default isolation applies.
            unsafe {
                let error = rd::rd_kafka_AdminOptions_set_isolation_level(options, isolation);
                if !error.is_null() {
                    rd::rd_kafka_error_destroy(error);
                }
            }
        },
        // SAFETY: `list` stays alive until after the answer arrived (destroyed below).
        |rk, options, queue| unsafe { rd::rd_kafka_ListOffsets(rk, list, options, queue) },
    );
    // SAFETY: our list, no longer used by librdkafka (the request copied it).
    unsafe { rd::rd_kafka_topic_partition_list_destroy(list) };
    let event = result?;
    let mut out = HashMap::with_capacity(partitions.len());
    // SAFETY: reads the answer while `event` is alive; strings are copied.
    unsafe {
        let answer = rd::rd_kafka_event_ListOffsets_result(event.0);
        if answer.is_null() {
            return Err(NativeError {
                code: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__BAD_MSG,
                message: "unexpected reply to ListOffsets".into(),
            });
        }
        let mut count = 0usize;
        let infos = rd::rd_kafka_ListOffsets_result_infos(answer, &mut count);
        for index in 0..count {
            let element = rd::rd_kafka_ListOffsetsResultInfo_topic_partition(*infos.add(index));
            if element.is_null() {
                continue;
            }
            let element = &*element;
            let topic = native::string(element.topic as *const c_char);
            let value = if element.err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                // With its broker gone, librdkafka answers a partition with no error and offset
                // -1001 (invalid): not an offset, and read as one it made the lag 0.
                if element.offset >= 0 {
                    Ok(element.offset)
                } else {
                    Err(format!("no offset in the answer ({})", element.offset))
                }
            } else {
                Err(native::string(rd::rd_kafka_err2str(element.err)))
            };
            out.insert((topic, element.partition), value);
        }
    }
    Ok(out)
}
