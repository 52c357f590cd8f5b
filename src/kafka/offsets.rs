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

/// Lists `spec` offsets of `partitions`, in requests of [`PARTITIONS_PER_REQUEST`] sent at once
/// (so on a consumer's connection they wait behind its held fetch once, not once each). Blocks
/// up to `timeout`; call it off the async runtime.
pub fn list_offsets<C: ClientContext>(
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
    let lists: Vec<PartitionList> = partitions
        .chunks(PARTITIONS_PER_REQUEST)
        .zip(names.chunks(PARTITIONS_PER_REQUEST))
        .map(|(chunk, chunk_names)| {
            // SAFETY: a new list, owned by the guard.
            let list =
                PartitionList(unsafe { rd::rd_kafka_topic_partition_list_new(chunk.len() as i32) });
            for ((_, partition), name) in chunk.iter().zip(chunk_names) {
                // SAFETY: `list` is live; `name` is NUL-terminated and outlives the call.
                unsafe {
                    let element =
                        rd::rd_kafka_topic_partition_list_add(list.0, name.as_ptr(), *partition);
                    (*element).offset = wanted;
                }
            }
            list
        })
        .collect();
    let events = native::requests(
        client,
        timeout,
        lists.len(),
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
        // SAFETY: each list stays alive until every answer arrived (the guards drop below).
        |index, rk, options, queue| unsafe {
            rd::rd_kafka_ListOffsets(rk, lists[index].0, options, queue)
        },
    )?;
    drop(lists);
    let mut out = HashMap::with_capacity(partitions.len());
    for event in &events {
        read_answer(event, &mut out)?;
    }
    Ok(out)
}

/// A partition list made here, destroyed once.
struct PartitionList(*mut rd::rd_kafka_topic_partition_list_t);

impl Drop for PartitionList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: our list, no longer used by librdkafka (each request copied it).
            unsafe { rd::rd_kafka_topic_partition_list_destroy(self.0) }
        }
    }
}

/// Adds one `ListOffsets` answer's partitions to `out`.
fn read_answer(event: &native::Event, out: &mut Offsets) -> Result<(), NativeError> {
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
    Ok(())
}
