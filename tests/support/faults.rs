//! Faults injected into the real test brokers (freeze, crash and restart on the same log
//! directory), records with header keys no safe API can write, and reading them back byte for
//! byte. Every fault is undone by a guard, also when the test panics, so later tests find the
//! clusters healthy.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{repo_root, test_kafka};

/// The broker process of a test cluster (`source` or `target`).
pub fn broker_pid(cluster: &str) -> u32 {
    let dir = PathBuf::from(test_kafka().get("KAFKA_TEST_DIR")).join(cluster);
    std::fs::read_to_string(dir.join("pid"))
        .unwrap_or_else(|error| panic!("no pid file for cluster {cluster}: {error}"))
        .trim()
        .parse()
        .unwrap()
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// A broker stopped with SIGSTOP (connections stay open, nothing answers); SIGCONT on drop.
pub struct Frozen {
    pid: u32,
    thawed: bool,
}

impl Frozen {
    pub fn broker(cluster: &str) -> Frozen {
        let pid = broker_pid(cluster);
        signal(pid, "STOP");
        Frozen { pid, thawed: false }
    }

    pub fn thaw(mut self) {
        signal(self.pid, "CONT");
        self.thawed = true;
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &self.pid.to_string()])
                .status();
        }
    }
}

/// SIGKILLs the broker of `cluster`, then starts it again on the same state (ports, log
/// directory) and waits until it answers.
pub fn crash_and_restart(cluster: &str, down_for: Duration) {
    signal(broker_pid(cluster), "KILL");
    std::thread::sleep(down_for);
    relaunch(cluster);
}

pub fn relaunch(cluster: &str) {
    let output = std::process::Command::new(repo_root().join("scripts/test-kafka"))
        .args(["relaunch", cluster])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "relaunch {cluster} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Restarts the broker if a test left it dead (a panic between kill and relaunch).
pub struct Revive(pub &'static str);

impl Drop for Revive {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/test-kafka"))
            .args(["relaunch", self.0])
            .output();
    }
}

/// Produces one record whose headers are given as raw bytes (keys may hold NUL or be invalid
/// UTF-8, which the safe rust-rdkafka API cannot express).
pub fn produce_with_raw_headers(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    value: &[u8],
    headers: &[(&[u8], &[u8])],
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let topic_c = std::ffi::CString::new(topic).unwrap();
    // SAFETY (test): a header list handed to librdkafka, which owns it once produced; the vu
    // array and the buffers it points to outlive the call.
    unsafe {
        let list = rd::rd_kafka_headers_new(headers.len());
        for (name, header_value) in headers {
            rd::rd_kafka_header_add(
                list,
                name.as_ptr() as *const c_char,
                name.len() as isize,
                header_value.as_ptr() as *const c_void,
                header_value.len() as isize,
            );
        }
        let mut vus: [rd::rd_kafka_vu_t; 5] = std::mem::zeroed();
        vus[0].vtype = rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TOPIC;
        vus[0].u.cstr = topic_c.as_ptr();
        vus[1].vtype = rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_PARTITION;
        vus[1].u.i32_ = partition;
        vus[2].vtype = rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE;
        vus[2].u.mem.ptr = value.as_ptr() as *mut c_void;
        vus[2].u.mem.size = value.len();
        vus[3].vtype = rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS;
        vus[3].u.i = rd::RD_KAFKA_MSG_F_COPY;
        vus[4].vtype = rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADERS;
        vus[4].u.headers = list;
        let error = rd::rd_kafka_produceva(producer.client().native_ptr(), vus.as_ptr(), vus.len());
        assert!(error.is_null(), "produceva failed");
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Header keys (raw bytes, up to the first NUL as librdkafka returns them) of every record of a
/// partition, in order.
pub fn header_keys(bootstrap: &str, topic: &str, partition: i32) -> Vec<Vec<Vec<u8>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-mirrord-tests")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let mut keys = Vec::new();
                let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
                // SAFETY (test): reads the message's own header list while it is borrowed.
                unsafe {
                    if rd::rd_kafka_message_headers(message.ptr(), &mut headers)
                        == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    {
                        for index in 0..rd::rd_kafka_header_cnt(headers) {
                            let mut name: *const c_char = std::ptr::null();
                            let mut value: *const c_void = std::ptr::null();
                            let mut size = 0usize;
                            rd::rd_kafka_header_get_all(
                                headers, index, &mut name, &mut value, &mut size,
                            );
                            keys.push(CStr::from_ptr(name).to_bytes().to_vec());
                        }
                    }
                }
                let _ = message.offset();
                records.push(keys);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return records,
            Some(Err(error)) => panic!("reading {topic}/{partition}: {error}"),
            None => {}
        }
    }
    panic!("reading {topic}/{partition} did not reach the end");
}

/// The headers of a consumed record with keys decoded leniently (rust-rdkafka's own accessor
/// panics on a key that is not UTF-8).
pub fn lenient_headers(
    message: &rdkafka::message::BorrowedMessage<'_>,
) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY (test): reads the message's own header list while it is borrowed; names are
    // NUL-terminated, values `size` bytes long (or null).
    unsafe {
        if rd::rd_kafka_message_headers(message.ptr(), &mut headers)
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            return out;
        }
        for index in 0..rd::rd_kafka_header_cnt(headers) {
            let mut name: *const c_char = std::ptr::null();
            let mut value: *const c_void = std::ptr::null();
            let mut size = 0usize;
            rd::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size);
            let key = String::from_utf8_lossy(CStr::from_ptr(name).to_bytes()).into_owned();
            let value = (!value.is_null())
                .then(|| std::slice::from_raw_parts(value as *const u8, size).to_vec());
            out.push((key, value));
        }
    }
    out
}
