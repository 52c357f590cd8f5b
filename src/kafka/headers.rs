//! Looking at record header keys as bytes. rust-rdkafka's header accessor converts every key to
//! `&str` and panics on one that is not UTF-8 — data from the clusters, which Kafka accepts — so
//! keys are read here through librdkafka's `rd_kafka_header_get_all` instead. (Headers are
//! *copied* with librdkafka's own `rd_kafka_headers_copy`, which keeps every byte.)
//!
//! A key can also contain a NUL byte (Java writes any string). librdkafka's API returns keys as
//! C strings, cut at the NUL, and offers no length; it does keep the length in the header struct,
//! just before the name. [`unusual_key`] reads it from there — only after checking, against what
//! the API returned, that the struct has the layout of librdkafka 2.x (value size and value
//! pointer at their places) — so the copy, which is byte-exact anyway, can be reported.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::c_char;

use rdkafka::bindings as rd;
use rdkafka::message::BorrowedMessage;

/// Why a record's header keys are worth reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnusualKey {
    NotUtf8,
    ContainsNul,
}

impl UnusualKey {
    pub fn describe(self) -> &'static str {
        match self {
            UnusualKey::NotUtf8 => "a header key is not valid UTF-8: copied byte for byte (Java clients read it with U+FFFD replacement characters)",
            UnusualKey::ContainsNul => "a header key contains a NUL byte: copied byte for byte (C clients such as librdkafka read the key cut at the NUL)",
        }
    }
}

/// `rd_kafka_header_t` of librdkafka 2.x (`rdkafka_header.h`): `name` is an inline array.
#[repr(C)]
struct HeaderLayout {
    ser_size: usize,
    value_size: usize,
    name_size: usize,
    value: *const c_char,
    name: [c_char; 1],
}

/// The first unusual header key of `message`, if any.
pub fn unusual_key(message: &BorrowedMessage<'_>) -> Option<UnusualKey> {
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the live rd_kafka_message_t the borrowed message wraps (valid for
    // the borrow); librdkafka stores a pointer to the message's own header list in `headers`,
    // owned by the message, or returns an error and leaves it null.
    let err = unsafe { rd::rd_kafka_message_headers(message.ptr(), &mut headers) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return None;
    }
    // SAFETY: `headers` is non-null and owned by the message, which outlives this function.
    let count = unsafe { rd::rd_kafka_header_cnt(headers) };
    (0..count).find_map(|index| {
        let mut name: *const c_char = std::ptr::null();
        let mut value: *const std::ffi::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `index < count`; librdkafka points `name` at the header's NUL-terminated key,
        // which lives as long as the header list.
        let err = unsafe {
            rd::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size)
        };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return None;
        }
        // SAFETY: `name` is non-null and NUL-terminated (see above); the bytes are only read here.
        let key = unsafe { CStr::from_ptr(name) }.to_bytes();
        if std::str::from_utf8(key).is_err() {
            return Some(UnusualKey::NotUtf8);
        }
        // SAFETY: `name` points at the `name` field of a librdkafka header struct (the pointer
        // get_all returns is `&hdr->rkhdr_name[0]`), so stepping back by that field's offset gives
        // the struct, allocated by librdkafka with the name inline. Its fields are only read, and
        // only trusted when value size and value pointer equal what get_all returned.
        let stored = unsafe {
            let start = name.byte_sub(std::mem::offset_of!(HeaderLayout, name));
            let header = &*(start as *const HeaderLayout);
            (header.value_size == size && header.value as *const std::ffi::c_void == value)
                .then_some(header.name_size)
        };
        match stored {
            Some(name_size) if name_size > key.len() => Some(UnusualKey::ContainsNul),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the NUL check relies on: a header added with an embedded NUL, read back the way
    /// `unusual_key` reads it.
    #[test]
    fn librdkafka_keeps_the_name_length_where_the_check_reads_it() {
        // SAFETY (test): a header list made and destroyed here.
        unsafe {
            let headers = rd::rd_kafka_headers_new(2);
            let name = b"ab\0cd";
            let value = b"v";
            rd::rd_kafka_header_add(
                headers,
                name.as_ptr() as *const c_char,
                name.len() as isize,
                value.as_ptr() as *const std::ffi::c_void,
                value.len() as isize,
            );
            let mut got_name: *const c_char = std::ptr::null();
            let mut got_value: *const std::ffi::c_void = std::ptr::null();
            let mut size = 0usize;
            rd::rd_kafka_header_get_all(headers, 0, &mut got_name, &mut got_value, &mut size);
            let start = got_name.byte_sub(std::mem::offset_of!(HeaderLayout, name));
            let header = &*(start as *const HeaderLayout);
            assert_eq!(header.name_size, 5);
            assert_eq!(header.value_size, 1);
            assert_eq!(header.value as *const std::ffi::c_void, got_value);
            assert_eq!(CStr::from_ptr(got_name).to_bytes(), b"ab");
            rd::rd_kafka_headers_destroy(headers);
        }
    }
}
