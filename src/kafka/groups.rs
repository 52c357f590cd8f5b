//! Consumer-group offsets as librdkafka returns them, read without trusting their bytes: the
//! commit metadata of a group is whatever its clients wrote, and rust-rdkafka's accessor panics
//! when it is not UTF-8. Here it is decoded like Java clients decode it (invalid bytes become
//! U+FFFD), which is what MM2 copies into checkpoints.
#![allow(unsafe_code)]

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

#[cfg(test)]
mod tests {
    use super::*;

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
