//! Byte-exact MM2 record formats (docs/mm2-behaviour.md, *Record formats*) and Connect source-offset records
//! (docs/mm2-behaviour.md, *Stored progress*).
//!
//! Encodings follow Kafka's protocol `Struct` rules: big-endian integers, strings as an INT16 length
//! and UTF-8 bytes, fields in declaration order, no framing; readers ignore trailing bytes.

use serde::Deserialize;

pub use super::offset_history::StoredProgress;

/// An offset-sync record: upstream offset `upstream` of source `topic`/`partition` was written at
/// `downstream` on the target. Key: STRING topic, INT32 partition; value: INT64 upstream, INT64
/// downstream (no version field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSync {
    pub topic: String,
    pub partition: i32,
    pub upstream: i64,
    pub downstream: i64,
}

/// A record could not be decoded (too short, bad UTF-8, or a string longer than Kafka allows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {reason}")]
pub struct DecodeError {
    pub what: &'static str,
    pub reason: String,
}

/// The longest Kafka STRING (INT16 length).
pub const MAX_STRING_BYTES: usize = i16::MAX as usize;

/// Kafka STRING: INT16 length and UTF-8 bytes. Names (topics, aliases, groups) are far below the
/// limit and callers keep longer metadata out (`checkpoints::checkpoint_metadata`); should a longer
/// text still arrive, it is cut at a character boundary rather than written with a wrong length.
pub(crate) fn put_string(out: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(MAX_STRING_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as i16).to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
}

/// Reads fields in order from a buffer, failing on short input.
pub struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < count {
            return Err(DecodeError {
                what: self.what,
                reason: format!("needs {count} more bytes, has {}", self.bytes.len()),
            });
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        Ok(self.take(1)?[0] as i8)
    }

    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        let length = self.i16()?;
        let length = usize::try_from(length).map_err(|_| DecodeError {
            what: self.what,
            reason: format!("negative string length {length}"),
        })?;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|error| DecodeError {
            what: self.what,
            reason: error.to_string(),
        })
    }
}

impl OffsetSync {
    pub fn key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.topic.len());
        put_string(&mut out, &self.topic);
        out.extend_from_slice(&self.partition.to_be_bytes());
        out
    }

    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.upstream.to_be_bytes());
        out.extend_from_slice(&self.downstream.to_be_bytes());
        out
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut key = Reader::new(key, "offset-sync key");
        let mut value = Reader::new(value, "offset-sync value");
        Ok(Self {
            topic: key.string()?,
            partition: key.i32()?,
            upstream: value.i64()?,
            downstream: value.i64()?,
        })
    }
}

/// A heartbeat (topic `heartbeats`): key STRING source alias, STRING target alias; value INT16
/// version 0, INT64 timestamp (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub source: String,
    pub target: String,
    pub timestamp: i64,
}

impl Heartbeat {
    pub fn key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.source.len() + self.target.len());
        put_string(&mut out, &self.source);
        put_string(&mut out, &self.target);
        out
    }

    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10);
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut key = Reader::new(key, "heartbeat key");
        let mut value = Reader::new(value, "heartbeat value");
        let source = key.string()?;
        let target = key.string()?;
        let _version = value.i16()?;
        Ok(Self {
            source,
            target,
            timestamp: value.i64()?,
        })
    }
}

/// A checkpoint (topic `<source>.checkpoints.internal`): key STRING group, STRING topic (the
/// target-side name), INT32 partition; value INT16 version 0, INT64 upstream offset, INT64
/// downstream offset, STRING metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub upstream: i64,
    pub downstream: i64,
    pub metadata: String,
}

impl Checkpoint {
    pub fn key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.group.len() + self.topic.len());
        put_string(&mut out, &self.group);
        put_string(&mut out, &self.topic);
        out.extend_from_slice(&self.partition.to_be_bytes());
        out
    }

    pub fn value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.metadata.len());
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&self.upstream.to_be_bytes());
        out.extend_from_slice(&self.downstream.to_be_bytes());
        put_string(&mut out, &self.metadata);
        out
    }

    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut key = Reader::new(key, "checkpoint key");
        let mut value = Reader::new(value, "checkpoint value");
        let group = key.string()?;
        let topic = key.string()?;
        let partition = key.i32()?;
        let _version = value.i16()?;
        Ok(Self {
            group,
            topic,
            partition,
            upstream: value.i64()?,
            downstream: value.i64()?,
            metadata: value.string()?,
        })
    }
}

/// Connect's name for MM2's source connector, part of every source-offset key.
pub const SOURCE_CONNECTOR_NAME: &str = "MirrorSourceConnector";

/// The Connect offsets-topic key of a source partition, byte for byte as Java Connect writes it
/// (`JsonConverter`, schemas off, `HashMap` order `cluster`, `partition`, `topic`).
pub fn source_offset_key(cluster: &str, topic: &str, partition: i32) -> Vec<u8> {
    let quote = |text: &str| serde_json::to_string(text).expect("strings serialize");
    format!(
        "[{},{{\"cluster\":{},\"partition\":{partition},\"topic\":{}}}]",
        quote(SOURCE_CONNECTOR_NAME),
        quote(cluster),
        quote(topic)
    )
    .into_bytes()
}

/// The Connect offsets-topic value: `{"offset":<last replicated upstream offset>}`, as MM2 writes
/// it, plus — when known — `"next_downstream"`: the target offset the next record goes to, which
/// tells a later reader that kafka-mirrord's offset history covers this progress
/// (docs/offset-translation.md). MM2 reads only `offset` and ignores other fields.
pub fn source_offset_value(offset: i64, next_downstream: Option<i64>) -> Vec<u8> {
    match next_downstream {
        Some(next) => format!("{{\"offset\":{offset},\"next_downstream\":{next}}}").into_bytes(),
        None => format!("{{\"offset\":{offset}}}").into_bytes(),
    }
}

#[derive(Deserialize)]
struct SourcePartitionKey {
    cluster: String,
    partition: i64,
    topic: String,
}

#[derive(Deserialize)]
struct SourceOffsetValue {
    offset: i64,
    #[serde(default)]
    next_downstream: Option<i64>,
}

/// A decoded MirrorSourceConnector entry of the offsets topic; other connectors' keys yield `None`.
/// The progress is `None` for a tombstone (the partition was reset).
pub fn decode_source_offset(
    key: &[u8],
    value: Option<&[u8]>,
) -> Option<(String, String, i32, Option<StoredProgress>)> {
    decode_source_offset_of(key, value, &[SOURCE_CONNECTOR_NAME])
}

/// As [`decode_source_offset`], for a connector named one of `connectors` (on a Kafka Connect
/// cluster the MirrorSourceConnector has the name its creator gave it).
pub fn decode_source_offset_of(
    key: &[u8],
    value: Option<&[u8]>,
    connectors: &[&str],
) -> Option<(String, String, i32, Option<StoredProgress>)> {
    let (name, partition): (String, serde_json::Value) = serde_json::from_slice(key).ok()?;
    if !connectors.contains(&name.as_str()) {
        return None;
    }
    let partition: SourcePartitionKey = serde_json::from_value(partition).ok()?;
    let partition_number = i32::try_from(partition.partition).ok()?;
    let progress = match value {
        None => None,
        Some(bytes) => {
            let value = serde_json::from_slice::<SourceOffsetValue>(bytes).ok()?;
            Some(StoredProgress {
                offset: value.offset,
                next_downstream: value.next_downstream.filter(|next| *next >= 0),
            })
        }
    };
    Some((
        partition.cluster,
        partition.topic,
        partition_number,
        progress,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn offset_sync_vectors_from_mm2() {
        let sync = OffsetSync {
            topic: "foo".into(),
            partition: 0,
            upstream: 100,
            downstream: 90,
        };
        assert_eq!(hex(&sync.key()), "00 03 66 6f 6f 00 00 00 00");
        assert_eq!(
            hex(&sync.value()),
            "00 00 00 00 00 00 00 64 00 00 00 00 00 00 00 5a"
        );
        let sync = OffsetSync {
            topic: "topic-1".into(),
            partition: 2,
            upstream: 3,
            downstream: 4,
        };
        assert_eq!(hex(&sync.key()), "00 07 74 6f 70 69 63 2d 31 00 00 00 02");
        assert_eq!(
            hex(&sync.value()),
            "00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 04"
        );
        assert_eq!(
            OffsetSync::decode(&sync.key(), &sync.value()).unwrap(),
            sync
        );
        assert!(OffsetSync::decode(&sync.key()[..5], &sync.value()).is_err());
    }

    #[test]
    fn heartbeat_vectors_from_mm2() {
        let heartbeat = Heartbeat {
            source: "A".into(),
            target: "B".into(),
            timestamp: 1_700_000_000_000,
        };
        assert_eq!(hex(&heartbeat.key()), "00 01 41 00 01 42");
        assert_eq!(hex(&heartbeat.value()), "00 00 00 00 01 8b cf e5 68 00");
        let heartbeat = Heartbeat {
            source: "source-1".into(),
            target: "target-2".into(),
            timestamp: 1_234_567_890,
        };
        assert_eq!(
            hex(&heartbeat.key()),
            "00 08 73 6f 75 72 63 65 2d 31 00 08 74 61 72 67 65 74 2d 32"
        );
        assert_eq!(hex(&heartbeat.value()), "00 00 00 00 00 00 49 96 02 d2");
        assert_eq!(
            Heartbeat::decode(&heartbeat.key(), &heartbeat.value()).unwrap(),
            heartbeat
        );
    }

    #[test]
    fn checkpoint_vectors_from_mm2() {
        let checkpoint = Checkpoint {
            group: "g1".into(),
            topic: "foo".into(),
            partition: 0,
            upstream: 100,
            downstream: 90,
            metadata: String::new(),
        };
        assert_eq!(
            hex(&checkpoint.key()),
            "00 02 67 31 00 03 66 6f 6f 00 00 00 00"
        );
        assert_eq!(
            hex(&checkpoint.value()),
            "00 00 00 00 00 00 00 00 00 64 00 00 00 00 00 00 00 5a 00 00"
        );
        let checkpoint = Checkpoint {
            group: "group-1".into(),
            topic: "topic-2".into(),
            partition: 3,
            upstream: 4,
            downstream: 5,
            metadata: "metadata-6".into(),
        };
        assert_eq!(
            hex(&checkpoint.key()),
            "00 07 67 72 6f 75 70 2d 31 00 07 74 6f 70 69 63 2d 32 00 00 00 03"
        );
        assert_eq!(
            hex(&checkpoint.value()),
            "00 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 05 00 0a 6d 65 74 61 64 61 74 61 2d 36"
        );
        assert_eq!(
            Checkpoint::decode(&checkpoint.key(), &checkpoint.value()).unwrap(),
            checkpoint
        );
        assert!(
            Checkpoint::decode(b"", b"").is_err(),
            "short records are rejected, not misread"
        );
    }

    #[test]
    fn connect_source_offset_bytes() {
        assert_eq!(
            String::from_utf8(source_offset_key("A", "foo", 0)).unwrap(),
            r#"["MirrorSourceConnector",{"cluster":"A","partition":0,"topic":"foo"}]"#
        );
        assert_eq!(source_offset_value(1234, None), br#"{"offset":1234}"#);
        assert_eq!(
            source_offset_value(1234, Some(1300)),
            br#"{"offset":1234,"next_downstream":1300}"#
        );
        let decoded =
            decode_source_offset(&source_offset_key("A", "foo", 3), Some(br#"{"offset":7}"#));
        let mm2 = StoredProgress {
            offset: 7,
            next_downstream: None,
        };
        assert_eq!(decoded, Some(("A".into(), "foo".into(), 3, Some(mm2))));
        let ours = decode_source_offset(
            &source_offset_key("A", "foo", 3),
            Some(br#"{"offset":7,"next_downstream":9}"#),
        );
        assert_eq!(ours.unwrap().3.unwrap().next_downstream, Some(9));
        assert_eq!(
            decode_source_offset(&source_offset_key("A", "foo", 3), None),
            Some(("A".into(), "foo".into(), 3, None))
        );
        let checkpoint_key =
            br#"["MirrorCheckpointConnector",{"partition":0,"topic":"A.foo","group":"g1"}]"#;
        assert_eq!(
            decode_source_offset(checkpoint_key, Some(br#"{"offset":0}"#)),
            None
        );
        assert_eq!(decode_source_offset(b"garbage", None), None);
    }
}
