//! `Config` → `Plan`: every flow `A->B` fully resolved (filters, policy, intervals, internal topics,
//! client settings), comparable with `Eq` so that a reload can diff old and new plans by `FlowId`.

mod build;
pub mod clients;
pub mod diff;
pub mod filter;
pub mod librdkafka;
pub mod policy;
mod registry;
mod sasl;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use build::build;
use clients::ClientRole;
use filter::NameFilter;
use librdkafka::ClientSettings;
use policy::ReplicationPolicy;

use crate::config::diagnostics::{ConfigErrors, Diagnostic, Diagnostics};
use crate::config::{self, Config};

/// `<source>-><target>`: the stable identity of a flow across reloads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct FlowId {
    pub source: String,
    pub target: String,
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.source, self.target)
    }
}

impl From<FlowId> for String {
    fn from(id: FlowId) -> String {
        id.to_string()
    }
}

/// Whether a flow replicates or only emits heartbeats (MM2 runs a herder for both, docs/mm2-behaviour.md, *Which flows exist*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowMode {
    Replicate,
    HeartbeatsOnly,
}

/// A periodic job: on or off, and its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub enabled: bool,
    pub interval_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetSyncsLocation {
    Source,
    Target,
}

impl OffsetSyncsLocation {
    /// As written in `offset-syncs.topic.location`.
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetSyncsLocation::Source => "source",
            OffsetSyncsLocation::Target => "target",
        }
    }
}

/// Source replication settings (MirrorSourceConnector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcePlan {
    pub topics: NameFilter,
    pub refresh_topics: Interval,
    pub sync_topic_configs: Interval,
    pub sync_topic_acls: Interval,
    pub config_properties_exclude: Vec<String>,
    /// `use.defaults.from`: `source` copies default-valued source configs, anything else reverts them.
    pub use_defaults_from: String,
    /// Replication factor of created remote topics; -1 means the broker default.
    pub replication_factor: i32,
    pub offset_lag_max: i64,
    pub consumer_poll_timeout_ms: i64,
    pub heartbeats_replication_enabled: bool,
    pub tasks_max: u32,
}

/// Offset-sync emission (docs/mm2-behaviour.md, *Offset syncs*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetSyncsPlan {
    pub enabled: bool,
    pub location: OffsetSyncsLocation,
    pub topic: String,
    pub replication_factor: i16,
}

/// Checkpointing and group offset sync (MirrorCheckpointConnector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointPlan {
    pub groups: NameFilter,
    pub emit_checkpoints: Interval,
    pub refresh_groups: Interval,
    pub sync_group_offsets: Interval,
    pub topic: String,
    pub replication_factor: i16,
}

/// Heartbeat emission (MirrorHeartbeatConnector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatPlan {
    pub emit_heartbeats: Interval,
    pub topic: String,
    pub replication_factor: i16,
}

/// Where source progress is stored: the Connect offsets topic on the target
/// (docs/mm2-behaviour.md, *Stored progress*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetStoragePlan {
    pub topic: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub flush_interval_ms: i64,
    /// `mm2-mirrord-offset-history.<source>.internal` on the target: where the offset delta of
    /// each partition changes (docs/offset-translation.md).
    pub history_topic: String,
    /// MM2 on a Connect cluster stored progress there too: read for partitions with none of ours
    /// (`mirrord.takeover.connect.*`, docs/migrate-from-connect.md).
    pub takeover: Option<crate::config::ConnectTakeover>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExactlyOncePlan {
    pub enabled: bool,
    /// Which key turned it on (or why it is off), for `check`.
    pub reason: String,
    /// MM2's `<group.id>-<connector>`; the task number is appended per task.
    pub transactional_id_prefix: String,
}

/// How the processes running this flow share it: a consumer group on the target cluster whose
/// members divide the partitions of a small internal topic, one partition per task slot
/// (`docs/several-nodes.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipPlan {
    /// `<worker group.id>-mirrord` (`A-mm2-mirrord` by default).
    pub group_id: String,
    /// `mm2-mirrord-tasks.<source>.internal` on the target.
    pub topic: String,
    /// One per task slot (`tasks.max`; 1 for a heartbeats-only flow).
    pub partitions: i32,
    /// `<target>.offset.storage.replication.factor` when set; otherwise the topic gets
    /// `min(3, brokers)` (a heartbeats-only flow creates no other internal topic, so a cluster of
    /// one broker must work without settings).
    pub replication_factor: Option<i16>,
    /// Worker `session.timeout.ms` of the target (Connect's default 10 s): how long a silent
    /// member keeps its tasks.
    pub session_timeout_ms: u64,
    /// Worker `heartbeat.interval.ms` (Connect's default 3 s).
    pub heartbeat_interval_ms: u64,
}

/// One fully resolved flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowPlan {
    pub id: FlowId,
    pub mode: FlowMode,
    pub replication_policy: ReplicationPolicy,
    pub source: SourcePlan,
    pub offset_syncs: OffsetSyncsPlan,
    pub checkpoints: CheckpointPlan,
    pub heartbeats: HeartbeatPlan,
    pub offset_storage: OffsetStoragePlan,
    pub exactly_once: ExactlyOncePlan,
    pub membership: MembershipPlan,
    pub admin_timeout_ms: i64,
    /// librdkafka settings of every client this flow uses.
    pub clients: BTreeMap<ClientRole, ClientSettings>,
}

impl FlowPlan {
    /// A short hash of what every node running this flow must agree on: which topics and groups,
    /// how they are named and where things are stored, `tasks.max`, exactly-once. Client settings
    /// (addresses, credentials, tuning) may differ between nodes and are left out, as are the
    /// process-wide `mirrord.*` settings.
    pub fn fingerprint(&self) -> String {
        #[derive(Serialize)]
        struct Agreed<'a> {
            mode: FlowMode,
            policy: &'a ReplicationPolicy,
            source: &'a SourcePlan,
            offset_syncs: &'a OffsetSyncsPlan,
            checkpoints: &'a CheckpointPlan,
            heartbeats: &'a HeartbeatPlan,
            offset_storage: &'a OffsetStoragePlan,
            exactly_once: bool,
            transactional_id_prefix: &'a str,
            group: &'a str,
            topic: &'a str,
        }
        let agreed = Agreed {
            mode: self.mode,
            policy: &self.replication_policy,
            source: &self.source,
            offset_syncs: &self.offset_syncs,
            checkpoints: &self.checkpoints,
            heartbeats: &self.heartbeats,
            offset_storage: &self.offset_storage,
            exactly_once: self.exactly_once.enabled,
            transactional_id_prefix: &self.exactly_once.transactional_id_prefix,
            group: &self.membership.group_id,
            topic: &self.membership.topic,
        };
        let text = serde_json::to_string(&agreed).unwrap_or_default();
        // FNV-1a: stable across versions and platforms (std's hasher is not).
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("{hash:016x}")
    }
}

/// A cluster the plan uses, with the settings used to reach it outside a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterPlan {
    pub alias: String,
    pub bootstrap_servers: String,
    pub admin: ClientSettings,
}

/// Everything the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub clusters: BTreeMap<String, ClusterPlan>,
    pub flows: BTreeMap<FlowId, FlowPlan>,
}

/// A valid configuration and its plan, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub plan: Plan,
    pub warnings: Vec<Diagnostic>,
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--clusters`: keep only flows whose target is listed (empty = all).
    pub target_clusters: Vec<String>,
}

/// File → `Config` → `Plan`, collecting every problem; `Err` carries all of them.
pub fn load(path: &Path, options: &PlanOptions) -> Result<Loaded, ConfigErrors> {
    let mut diagnostics = Diagnostics::new(path.to_path_buf());
    let config = config::load(path, &mut diagnostics)?;
    finish(config, options, diagnostics, path.to_path_buf())
}

/// Same as [`load`] for in-memory properties (tests); `env` answers `${env:...}`.
pub fn load_properties(
    props: config::properties::RawProperties,
    options: &PlanOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    let file = props.file.clone();
    let mut diagnostics = Diagnostics::new(file.clone());
    let config = config::from_properties(props, &mut diagnostics, env);
    finish(config, options, diagnostics, file)
}

fn finish(
    config: Config,
    options: &PlanOptions,
    mut diagnostics: Diagnostics,
    file: PathBuf,
) -> Result<Loaded, ConfigErrors> {
    let plan = build(&config, options, &mut diagnostics);
    if diagnostics.has_errors() {
        return Err(ConfigErrors {
            file,
            diagnostics: diagnostics.into_sorted(),
        });
    }
    Ok(Loaded {
        config,
        plan,
        warnings: diagnostics.into_sorted(),
    })
}
