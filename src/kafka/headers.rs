//! Reading record header keys as bytes. rust-rdkafka's header accessor converts every key to
//! `&str` and panics on one that is not UTF-8 — data from the clusters, which Kafka accepts — so
//! the keys are read here through librdkafka's `rd_kafka_header_get_all` instead. (Headers are
//! *copied* with librdkafka's own `rd_kafka_headers_copy`, which keeps every byte.)
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::c_char;

use rdkafka::bindings as rd;
use rdkafka::message::BorrowedMessage;

/// True when a header key of `message` is not valid UTF-8.
pub fn has_non_utf8_key(message: &BorrowedMessage<'_>) -> bool {
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the live rd_kafka_message_t the borrowed message wraps (valid for
    // the borrow); librdkafka stores a pointer to the message's own header list in `headers`,
    // owned by the message, or returns an error and leaves it null.
    let err = unsafe { rd::rd_kafka_message_headers(message.ptr(), &mut headers) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return false;
    }
    // SAFETY: `headers` is non-null and owned by the message, which outlives this function.
    let count = unsafe { rd::rd_kafka_header_cnt(headers) };
    (0..count).any(|index| {
        let mut name: *const c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `index < count`; librdkafka points `name` at the header's NUL-terminated key,
        // which lives as long as the header list.
        let err = unsafe {
            rd::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size)
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return false;
        }
        // SAFETY: `name` is non-null and NUL-terminated (see above); the bytes are only read here.
        let key = unsafe { CStr::from_ptr(name) };
        std::str::from_utf8(key.to_bytes()).is_err()
    })
}
