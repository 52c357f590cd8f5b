//! Offset translation from offset syncs written by Apache MirrorMaker 2 itself (issue 4): its own
//! test binary, so the MM2 JVM never shares the 2 CPUs with the other checkpoint tests.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;

/// Checkpoints written by `source.checkpoints.internal` readers: (group, partition) → downstream.
fn checkpoints_of(group: &str) -> BTreeMap<i32, i64> {
    let (_, target) = endpoints();
    read_raw(target, "source.checkpoints.internal")
        .into_iter()
        .filter_map(|(_, key, value)| {
            kafka_mirrord::flow::records::Checkpoint::decode(&key, value.as_deref()?).ok()
        })
        .filter(|c| c.group == group)
        .map(|c| (c.partition, c.downstream))
        .collect()
}

#[test]
fn translation_from_offset_syncs_written_by_mirror_maker_2() {
    let (source, target) = endpoints();
    let topic = unique("mm2syncs");
    let remote = format!("source.{topic}");
    create_topic(source, &topic, 1);
    produce(source, &topic, 0, &numbered(2_000));
    let (by_mm2, by_us) = (format!("{topic}-java"), format!("{topic}-rust"));
    // Both groups stand at the same upstream offset; MM2 checkpoints one, kafka-mirrord the other.
    commit_group(source, &by_mm2, &[(&topic, 0, 1_234)]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_properties(
        dir.path(),
        "mm2.properties",
        &(std::fs::read_to_string(checkpointing_config(dir.path(), &topic)).unwrap()
            + "target.config.storage.replication.factor = 1\ntarget.status.storage.replication.factor = 1\nsync.topic.acls.enabled = false\n"),
    );
    let mut mm2 = MirrorMaker::start(&file);
    wait_until(Duration::from_secs(300), "MM2 to copy the topic", || {
        record_count(target, &remote) == 2_000
    });
    // Let MM2 flush its offsets and its last (delayed) offset sync, and checkpoint if it gets to it.
    std::thread::sleep(Duration::from_secs(5));
    mm2.stop();
    // MM2's own checkpoint, when it emitted one in time (its checkpoint connector is not always
    // that quick on 2 loaded CPUs): kafka-mirrord must never translate past it.
    let java = checkpoints_of(&by_mm2).get(&0).copied();

    // kafka-mirrord reads the offset syncs MM2 wrote (nothing new to replicate) and translates.
    commit_group(source, &by_us, &[(&topic, 0, 1_234)]);
    let _daemon = Daemon::start(&file);
    wait_until(
        Duration::from_secs(60),
        "kafka-mirrord's checkpoint",
        || checkpoints_of(&by_us).contains_key(&0),
    );
    let ours = checkpoints_of(&by_us)[&0];
    // The syncs MM2 wrote for this partition, in topic order, through MM2's store algorithm (ours,
    // checked against MM2's test vectors): kafka-mirrord must land exactly there. MM2's own
    // checkpoint may be nearer, because MM2 translated while its store still held the syncs that
    // later ones thinned out (a checkpoint never moves backwards, so it keeps the nearer one).
    let (source, _) = endpoints();
    let mut store = kafka_mirrord::flow::offset_sync_store::OffsetSyncStore::new(false);
    let mut sync_upstreams = Vec::new();
    for (_, key, value) in read_raw(source, "mm2-offset-syncs.target.internal") {
        let sync =
            kafka_mirrord::flow::records::OffsetSync::decode(&key, value.as_deref().unwrap())
                .unwrap();
        if sync.topic == topic {
            store.update(&sync.topic, sync.partition, sync.upstream, sync.downstream);
            sync_upstreams.push(sync.upstream);
        }
    }
    store.mark_read_to_end();
    eprintln!("offset 1234 translates to {java:?} (MM2, at its time) and {ours} (kafka-mirrord)");
    assert!(!sync_upstreams.is_empty(), "MM2 wrote offset syncs");
    assert_eq!(
        Some(ours),
        store.translate(&topic, 0, 1_234),
        "MM2's store rules applied to MM2's syncs"
    );
    assert!(ours <= 1_234, "never past the group's position");
    if let Some(java) = java {
        assert!(
            ours <= java && java <= 1_234,
            "never past what MM2 itself translated"
        );
    }
    assert!(
        sync_upstreams.contains(&(ours - 1)) || sync_upstreams.contains(&ours),
        "one past an MM2 offset sync"
    );
}
