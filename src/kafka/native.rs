//! The plumbing shared by the admin calls rust-rdkafka does not wrap (`acls.rs`, `offsets.rs`):
//! owned librdkafka handles that free themselves, and one request/answer round trip on a private
//! event queue.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};

/// An admin request that failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeError {
    pub code: rd::rd_kafka_resp_err_t,
    pub message: String,
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) struct Queue(pub *mut rd::rd_kafka_queue_t);

impl Drop for Queue {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a queue made by rd_kafka_queue_new, destroyed once.
            unsafe { rd::rd_kafka_queue_destroy(self.0) }
        }
    }
}

pub(crate) struct Options(pub *mut rd::rd_kafka_AdminOptions_t);

impl Drop for Options {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: options made by rd_kafka_AdminOptions_new, destroyed once.
            unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
        }
    }
}

/// A result event; what is read from it lives as long as it does.
pub(crate) struct Event(pub *mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: an event polled from our queue, destroyed once.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

/// Sends one admin request with `send` (after `configure` set the options) and waits for its
/// result event. Blocks up to `timeout` (plus a margin for the error event); call it off the
/// async runtime.
pub(crate) fn request<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
    configure: impl FnOnce(*mut rd::rd_kafka_AdminOptions_t),
    send: impl FnOnce(
        *mut rd::rd_kafka_t,
        *const rd::rd_kafka_AdminOptions_t,
        *mut rd::rd_kafka_queue_t,
    ),
) -> Result<Event, NativeError> {
    let mut send = Some(send);
    let mut events = requests(client, timeout, 1, configure, |_, rk, options, queue| {
        if let Some(send) = send.take() {
            send(rk, options, queue)
        }
    })?;
    events.pop().ok_or_else(|| NativeError {
        code: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__FAIL,
        message: "no answer".into(),
    })
}

/// Sends `count` admin requests at once (`send` is called with each index), then waits for all
/// their result events, in the order they arrive. Requests on one broker connection are
/// answered in order, so pipelined they wait behind a held fetch once, not once each. Blocks up
/// to `timeout` in all (plus a margin for the error events); call it off the async runtime. The
/// first request that failed as a whole fails the call.
pub(crate) fn requests<C: ClientContext>(
    client: &Client<C>,
    timeout: Duration,
    count: usize,
    configure: impl FnOnce(*mut rd::rd_kafka_AdminOptions_t),
    mut send: impl FnMut(
        usize,
        *mut rd::rd_kafka_t,
        *const rd::rd_kafka_AdminOptions_t,
        *mut rd::rd_kafka_queue_t,
    ),
) -> Result<Vec<Event>, NativeError> {
    let rk = client.native_ptr();
    let timeout_ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: `rk` is the client's live handle; the queue and options are owned by the guards.
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk) });
    let options = Options(unsafe {
        rd::rd_kafka_AdminOptions_new(rk, rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ANY)
    });
    if queue.0.is_null() || options.0.is_null() {
        return Err(NativeError {
            code: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__FAIL,
            message: "librdkafka could not allocate an admin request".into(),
        });
    }
    let mut errstr = [0 as c_char; 512];
    // SAFETY: valid options and a buffer of the stated size for the error text.
    unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
    }
    configure(options.0);
    for index in 0..count {
        // librdkafka copies the options into each request.
        send(index, rk, options.0, queue.0);
    }
    let deadline = std::time::Instant::now() + timeout + Duration::from_secs(5);
    let mut events = Vec::with_capacity(count);
    let mut failure = None;
    // Every answer is taken off the queue (a failure does not leave the others to a dropped
    // queue mid-flight), then the first failure is reported.
    while events.len() < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let left_ms = c_int::try_from(left.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: polling our own queue; each request times out on its own after `timeout`.
        let event = unsafe { rd::rd_kafka_queue_poll(queue.0, left_ms) };
        if event.is_null() {
            return Err(NativeError {
                code: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__TIMED_OUT,
                message: format!("no answer within {} ms", timeout.as_millis()),
            });
        }
        let event = Event(event);
        // SAFETY: a live event.
        let code = unsafe { rd::rd_kafka_event_error(event.0) };
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && failure.is_none() {
            failure = Some(NativeError {
                code,
                // SAFETY: a live event; the string is copied.
                message: unsafe { string(rd::rd_kafka_event_error_string(event.0)) },
            });
        }
        events.push(event);
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(events),
    }
}

/// Copies a C string owned by librdkafka (empty for NULL).
///
/// # Safety
/// `pointer` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn string(pointer: *const c_char) -> String {
    if pointer.is_null() {
        String::new()
    } else {
        CStr::from_ptr(pointer).to_string_lossy().into_owned()
    }
}
