//! Consumer groups as librdkafka shows them, read without trusting their bytes:
//!
//! - committed offsets: the commit metadata is whatever the group's clients wrote, and
//!   rust-rdkafka's accessor panics when it is not UTF-8; here it is decoded like Java clients do
//!   (invalid bytes become U+FFFD), which is what MM2 copies into checkpoints;
//! - a member's assignment (`DescribeGroups`), in the consumer protocol's encoding;
//! - this member's generation, which librdkafka only exposes inside its group metadata.
#![allow(unsafe_code)]

use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

/// (topic, partition, offset, metadata) of every element with a valid offset.
pub fn offsets_with_metadata(list: &TopicPartitionList) -> Vec<(String, i32, i64, String)> {
    let native = list.ptr();
    let mut out = Vec::new();
    for (index, element) in list.elements().iter().enumerate() {
        let Offset::Offset(offset) = element.offset() else {
            continue;
        };
        if offset < 0 {
            continue;
        }
        // SAFETY: `native` is the list's own rd_kafka_topic_partition_list_t, alive for the borrow
        // of `list`; `index` < its `cnt` (it enumerates the same elements); `metadata` points to
        // `metadata_size` bytes owned by the element (or is null with size 0). The bytes are
        // copied before the borrow ends.
        let metadata = unsafe {
            let element = &*(*native).elems.add(index);
            if element.metadata.is_null() || element.metadata_size == 0 {
                String::new()
            } else {
                let bytes = std::slice::from_raw_parts(
                    element.metadata as *const u8,
                    element.metadata_size,
                );
                String::from_utf8_lossy(bytes).into_owned()
            }
        };
        out.push((
            element.topic().to_string(),
            element.partition(),
            offset,
            metadata,
        ));
    }
    out
}

/// The topic partitions of a consumer-protocol assignment (`ConsumerProtocolAssignment`: int16
/// version, then an array of (string topic, array of int32 partitions), then user data), as
/// `DescribeGroups` returns it per member. `None` when the bytes do not parse.
pub fn decode_assignment(bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    let mut rest = bytes;
    let mut take = |count: usize| -> Option<&[u8]> {
        if rest.len() < count {
            return None;
        }
        let (head, tail) = rest.split_at(count);
        rest = tail;
        Some(head)
    };
    let _version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let length = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let topic = String::from_utf8(take(length.max(0) as usize)?.to_vec()).ok()?;
        let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut partitions = Vec::new();
        for _ in 0..count.max(0) {
            partitions.push(i32::from_be_bytes(take(4)?.try_into().ok()?));
        }
        out.push((topic, partitions));
    }
    Some(out)
}

/// The generation this member joined the group in, or `None` when it is not (yet) a member.
/// librdkafka keeps it in its group metadata, which it serialises (for transactions) as the
/// magic `CGMDv2:` followed by the generation id in native byte order; only that prefix is read.
pub fn generation<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<i32> {
    use rdkafka::bindings as rd;
    use rdkafka::consumer::Consumer;
    const MAGIC: &[u8] = b"CGMDv2:";
    let native = consumer.client().native_ptr();
    // SAFETY: `native` is the consumer's live rd_kafka_t; the metadata object and the buffer it is
    // written to are owned here and freed below; the buffer is `size` bytes long.
    unsafe {
        let metadata = rd::rd_kafka_consumer_group_metadata(native);
        if metadata.is_null() {
            return None;
        }
        let mut buffer: *mut std::ffi::c_void = std::ptr::null_mut();
        let mut size: usize = 0;
        let error = rd::rd_kafka_consumer_group_metadata_write(metadata, &mut buffer, &mut size);
        rd::rd_kafka_consumer_group_metadata_destroy(metadata);
        if !error.is_null() {
            rd::rd_kafka_error_destroy(error);
            return None;
        }
        if buffer.is_null() {
            return None;
        }
        let bytes = std::slice::from_raw_parts(buffer as *const u8, size);
        let generation = (bytes.len() >= MAGIC.len() + 4 && bytes.starts_with(MAGIC)).then(|| {
            i32::from_ne_bytes(
                bytes[MAGIC.len()..MAGIC.len() + 4]
                    .try_into()
                    .expect("4 bytes"),
            )
        });
        rd::rd_kafka_mem_free(native, buffer);
        generation.filter(|g| *g >= 0)
    }
}

/// This client's member id in its group (empty until it joined).
pub fn member_id<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Option<String> {
    use rdkafka::bindings as rd;
    use rdkafka::consumer::Consumer;
    let native = consumer.client().native_ptr();
    // SAFETY: `native` is the consumer's live rd_kafka_t; librdkafka returns a NUL-terminated copy
    // (or null) that is ours to free with rd_kafka_mem_free, after copying it.
    unsafe {
        let id = rd::rd_kafka_memberid(native);
        if id.is_null() {
            return None;
        }
        let text = std::ffi::CStr::from_ptr(id).to_string_lossy().into_owned();
        rd::rd_kafka_mem_free(native, id as *mut std::ffi::c_void);
        (!text.is_empty()).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_decode_like_the_consumer_protocol_writes_them() {
        // version 1; one topic "t" with partitions 0 and 2; empty user data.
        let bytes = [
            0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff,
            0xff,
        ];
        assert_eq!(
            decode_assignment(&bytes),
            Some(vec![("t".to_string(), vec![0, 2])])
        );
        assert_eq!(decode_assignment(&bytes[..9]), None, "truncated");
        assert_eq!(decode_assignment(&[]), None);
    }

    #[test]
    fn metadata_that_is_not_utf8_is_decoded_like_java_does() {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("t", 0, Offset::Offset(5))
            .unwrap();
        list.add_partition_offset("t", 1, Offset::Invalid).unwrap();
        list.add_partition_offset("t", 2, Offset::Offset(7))
            .unwrap();
        // SAFETY (test): write raw metadata bytes the way a broker reply would carry them.
        unsafe {
            let native = list.ptr();
            let element = &mut *(*native).elems.add(2);
            let bytes: &[u8] = b"ok\xff\xfe";
            let copy = rdkafka::bindings::rd_kafka_mem_malloc(std::ptr::null_mut(), bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy as *mut u8, bytes.len());
            element.metadata = copy;
            element.metadata_size = bytes.len();
        }
        let offsets = offsets_with_metadata(&list);
        assert_eq!(
            offsets.len(),
            2,
            "the element without an offset is left out"
        );
        assert_eq!(offsets[0], ("t".to_string(), 0, 5, String::new()));
        assert_eq!(offsets[1].3, "ok\u{fffd}\u{fffd}");
    }
}
