//! Consumer-group offsets of many groups through one long-lived client: librdkafka's
//! `ListConsumerGroupOffsets` and `AlterConsumerGroupOffsets` admin calls, which rust-rdkafka does
//! not wrap. librdkafka takes one group per request, so the requests are pipelined on one queue
//! (up to [`IN_FLIGHT`] at a time) instead of a client per group and round.
#![allow(unsafe_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::CString;
use std::os::raw::c_void;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::{Offset, TopicPartitionList};

use super::native::{self, Options, Queue};

/// Requests in flight on the queue at once.
const IN_FLIGHT: usize = 64;

/// A group's committed offsets: (topic, partition) → (offset, metadata).
pub type Committed = BTreeMap<(String, i32), (i64, String)>;

/// Per group: its committed offsets, or why they could not be read.
pub type GroupsCommitted = HashMap<String, Result<Committed, String>>;

/// One request's parts: the request object, options carrying its index as the event opaque.
enum Request {
    List(*mut rd::rd_kafka_ListConsumerGroupOffsets_t),
    Alter(*mut rd::rd_kafka_AlterConsumerGroupOffsets_t),
}

/// Sends `count` requests (made by `make(index)`; `None`: an invalid one) on one queue,
/// `IN_FLIGHT` at a time, and reads each answer with `answer`. Requests without an answer by
/// `timeout` fail. Blocking.
fn pipeline<C: ClientContext, T>(
    client: &Client<C>,
    count: usize,
    timeout: Duration,
    op: rd::rd_kafka_admin_op_t,
    mut make: impl FnMut(usize) -> Option<Request>,
    mut answer: impl FnMut(&native::Event) -> Result<T, String>,
) -> Vec<Result<T, String>> {
    let mut results: Vec<Option<Result<T, String>>> = (0..count).map(|_| None).collect();
    let rk = client.native_ptr();
    // SAFETY: `rk` is the client's live handle; the guard destroys the queue.
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk) });
    if queue.0.is_null() {
        return (0..count)
            .map(|_| Err("cannot allocate a queue".to_string()))
            .collect();
    }
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let deadline = Instant::now() + timeout;
    let mut waiting: VecDeque<usize> = VecDeque::new();
    let mut next = 0;
    while next < count || !waiting.is_empty() {
        while next < count && waiting.len() < IN_FLIGHT {
            let index = next;
            next += 1;
            let Some(request) = make(index) else {
                results[index] = Some(Err("invalid group name or offset".into()));
                continue;
            };
            // SAFETY: options owned by the guard; librdkafka copies them into the request.
            let options = Options(unsafe { rd::rd_kafka_AdminOptions_new(rk, op) });
            if options.0.is_null() {
                results[index] = Some(Err("cannot allocate admin options".into()));
                continue;
            }
            let mut errstr = [0 as std::os::raw::c_char; 256];
            // SAFETY: live options, a buffer of the stated size, and an integer opaque (never
            // dereferenced).
            unsafe {
                rd::rd_kafka_AdminOptions_set_request_timeout(
                    options.0,
                    timeout_ms,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                );
                rd::rd_kafka_AdminOptions_set_opaque(options.0, index as *mut c_void);
            }
            // SAFETY: one live request object, sent and then destroyed (librdkafka copied it).
            unsafe {
                match request {
                    Request::List(mut one) => {
                        rd::rd_kafka_ListConsumerGroupOffsets(rk, &mut one, 1, options.0, queue.0);
                        rd::rd_kafka_ListConsumerGroupOffsets_destroy(one);
                    }
                    Request::Alter(mut one) => {
                        rd::rd_kafka_AlterConsumerGroupOffsets(rk, &mut one, 1, options.0, queue.0);
                        rd::rd_kafka_AlterConsumerGroupOffsets_destroy(one);
                    }
                }
            }
            waiting.push_back(index);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let wait_ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: polling our own queue.
        let event = unsafe { rd::rd_kafka_queue_poll(queue.0, wait_ms.min(1_000)) };
        if event.is_null() {
            continue;
        }
        let event = native::Event(event);
        // SAFETY: a live event; the opaque is the index we set.
        let index = unsafe { rd::rd_kafka_event_opaque(event.0) } as usize;
        if index < count && results[index].is_none() {
            waiting.retain(|i| *i != index);
            results[index] = Some(match event_error(&event) {
                Some(error) => Err(error),
                None => answer(&event),
            });
        }
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(format!("no answer within {} ms", timeout.as_millis())))
        })
        .collect()
}

/// The request-level error of an event, if any.
fn event_error(event: &native::Event) -> Option<String> {
    // SAFETY: a live event; the string is copied.
    unsafe {
        let code = rd::rd_kafka_event_error(event.0);
        (code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
            .then(|| native::string(rd::rd_kafka_event_error_string(event.0)))
    }
}

/// The first group result of an event: its error, or its partitions.
///
/// # Safety
/// `groups`/`count` come from a `*_result_groups` call on a live event.
unsafe fn first_group(
    groups: *mut *const rd::rd_kafka_group_result_t,
    count: usize,
) -> Result<*const rd::rd_kafka_topic_partition_list_t, String> {
    if count == 0 || groups.is_null() {
        return Err("empty answer".into());
    }
    let group = *groups;
    let error = rd::rd_kafka_group_result_error(group);
    if !error.is_null() {
        return Err(native::string(rd::rd_kafka_error_string(error)));
    }
    Ok(rd::rd_kafka_group_result_partitions(group))
}

/// The committed offsets of every group in `groups`. Blocking.
pub fn list<C: ClientContext>(
    client: &Client<C>,
    groups: &[String],
    timeout: Duration,
) -> GroupsCommitted {
    let names: Vec<Option<CString>> = groups
        .iter()
        .map(|g| CString::new(g.as_str()).ok())
        .collect();
    let results = pipeline(
        client,
        groups.len(),
        timeout,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        |index| {
            let name = names[index].as_ref()?;
            // SAFETY: a NUL-terminated name; NULL partitions means every committed offset.
            let request = unsafe {
                rd::rd_kafka_ListConsumerGroupOffsets_new(name.as_ptr(), std::ptr::null())
            };
            (!request.is_null()).then_some(Request::List(request))
        },
        // SAFETY: reads the answer while the event is alive; strings are copied.
        |event| unsafe {
            let answer = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.0);
            let mut count = 0usize;
            let groups = if answer.is_null() {
                std::ptr::null_mut()
            } else {
                rd::rd_kafka_ListConsumerGroupOffsets_result_groups(answer, &mut count)
            };
            first_group(groups, count).map(|list| committed_of(list))
        },
    );
    groups.iter().cloned().zip(results).collect()
}

/// Reads a result list: partitions with a committed offset.
///
/// # Safety
/// `list` is NULL or a list owned by a live event.
unsafe fn committed_of(list: *const rd::rd_kafka_topic_partition_list_t) -> Committed {
    let mut out = Committed::new();
    if list.is_null() {
        return out;
    }
    let list = &*list;
    for index in 0..list.cnt.max(0) as usize {
        let element = &*list.elems.add(index);
        if element.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || element.offset < 0
        {
            continue;
        }
        let metadata = if element.metadata.is_null() || element.metadata_size == 0 {
            String::new()
        } else {
            let bytes =
                std::slice::from_raw_parts(element.metadata as *const u8, element.metadata_size);
            String::from_utf8_lossy(bytes).into_owned()
        };
        out.insert(
            (native::string(element.topic), element.partition),
            (element.offset, metadata),
        );
    }
    out
}

/// Commits `offsets` for each group (as an admin, without joining it); the broker refuses a group
/// that has members. Per group: `Ok`, or the first error. Blocking.
pub fn alter<C: ClientContext>(
    client: &Client<C>,
    requests: &[(String, Committed)],
    timeout: Duration,
) -> HashMap<String, Result<(), String>> {
    let mut lists: Vec<Option<(CString, TopicPartitionList)>> = Vec::with_capacity(requests.len());
    for (group, offsets) in requests {
        let mut list = TopicPartitionList::new();
        let mut ok = true;
        for ((topic, partition), (offset, metadata)) in offsets {
            let mut element = list.add_partition(topic, *partition);
            ok &= element.set_offset(Offset::Offset(*offset)).is_ok();
            element.set_metadata(metadata.clone());
        }
        lists.push(
            CString::new(group.as_str())
                .ok()
                .filter(|_| ok)
                .map(|name| (name, list)),
        );
    }
    let results = pipeline(
        client,
        requests.len(),
        timeout,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
        |index| {
            let (name, list) = lists[index].as_ref()?;
            // SAFETY: a NUL-terminated name and a live list; librdkafka copies both.
            let request =
                unsafe { rd::rd_kafka_AlterConsumerGroupOffsets_new(name.as_ptr(), list.ptr()) };
            (!request.is_null()).then_some(Request::Alter(request))
        },
        // SAFETY: reads the answer while the event is alive; strings are copied.
        |event| unsafe {
            let answer = rd::rd_kafka_event_AlterConsumerGroupOffsets_result(event.0);
            let mut count = 0usize;
            let groups = if answer.is_null() {
                std::ptr::null_mut()
            } else {
                rd::rd_kafka_AlterConsumerGroupOffsets_result_groups(answer, &mut count)
            };
            first_group(groups, count).and_then(|list| first_partition_error(list))
        },
    );
    requests
        .iter()
        .map(|(group, _)| group.clone())
        .zip(results)
        .collect()
}

/// The first per-partition error of a result list.
///
/// # Safety
/// `list` is NULL or a list owned by a live event.
unsafe fn first_partition_error(
    list: *const rd::rd_kafka_topic_partition_list_t,
) -> Result<(), String> {
    if list.is_null() {
        return Ok(());
    }
    let list = &*list;
    for index in 0..list.cnt.max(0) as usize {
        let element = &*list.elems.add(index);
        if element.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(native::string(rd::rd_kafka_err2str(element.err)));
        }
    }
    Ok(())
}
