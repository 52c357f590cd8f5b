//! Replication policies (docs/mm2-behaviour.md, *Replication policies*): how remote topics are named, where a topic came from, and the
//! names of MM2's internal topics. `DefaultReplicationPolicy` (with its separator) and
//! `IdentityReplicationPolicy` are supported; custom policy classes are configuration errors.

use serde::Serialize;

use crate::config::Mm2Compatibility;

pub const DEFAULT_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.DefaultReplicationPolicy";
pub const IDENTITY_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy";
const HEARTBEATS_TOPIC: &str = "heartbeats";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PolicyKind {
    #[serde(rename = "DefaultReplicationPolicy")]
    Default,
    #[serde(rename = "IdentityReplicationPolicy")]
    Identity,
}

impl PolicyKind {
    /// Accepts the fully qualified stock class names (as MM2 does) and their simple names.
    pub fn from_class(class: &str) -> Option<Self> {
        match class {
            DEFAULT_POLICY_CLASS | "DefaultReplicationPolicy" => Some(Self::Default),
            IDENTITY_POLICY_CLASS | "IdentityReplicationPolicy" => Some(Self::Identity),
            _ => None,
        }
    }
}

/// A configured replication policy for one flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationPolicy {
    pub class: PolicyKind,
    pub separator: String,
    /// Separator used in the offset-syncs and checkpoints topic names (KIP-949).
    pub internal_separator: String,
    /// Only the identity policy reads it: the alias every non-heartbeat topic is attributed to.
    #[serde(skip)]
    pub source_alias: String,
    #[serde(skip)]
    pub compatibility: Mm2Compatibility,
}

impl ReplicationPolicy {
    pub fn default_policy(separator: &str) -> Self {
        Self {
            class: PolicyKind::Default,
            separator: separator.to_string(),
            internal_separator: separator.to_string(),
            source_alias: String::new(),
            compatibility: Mm2Compatibility::V3_9,
        }
    }

    pub fn identity(source_alias: &str) -> Self {
        Self {
            class: PolicyKind::Identity,
            source_alias: source_alias.to_string(),
            ..Self::default_policy(".")
        }
    }

    pub fn with_compatibility(mut self, compatibility: Mm2Compatibility) -> Self {
        self.compatibility = compatibility;
        self
    }

    fn looks_like_heartbeat(topic: &str) -> bool {
        topic.ends_with(HEARTBEATS_TOPIC)
    }

    /// The name of `topic` from cluster `source_alias` on the target cluster.
    pub fn format_remote_topic(&self, source_alias: &str, topic: &str) -> String {
        match self.class {
            PolicyKind::Identity if !Self::looks_like_heartbeat(topic) => topic.to_string(),
            _ => format!("{source_alias}{}{topic}", self.separator),
        }
    }

    /// The cluster a topic came from, or `None` for a local topic.
    pub fn topic_source(&self, topic: &str) -> Option<String> {
        if self.class == PolicyKind::Identity && !Self::looks_like_heartbeat(topic) {
            return (!self.source_alias.is_empty()).then(|| self.source_alias.clone());
        }
        let parts = java_split(topic, &self.separator);
        (parts.len() >= 2).then(|| parts[0].to_string())
    }

    /// The topic name on the cluster it came from, one hop up.
    pub fn upstream_topic(&self, topic: &str) -> Option<String> {
        if self.class == PolicyKind::Identity && !Self::looks_like_heartbeat(topic) {
            return Some(topic.to_string());
        }
        let source = self.topic_source(topic)?;
        Some(topic[source.len() + self.separator.len()..].to_string())
    }

    /// The topic name on the cluster where it was first written.
    pub fn original_topic(&self, topic: &str) -> String {
        let mut current = topic.to_string();
        loop {
            match self.upstream_topic(&current) {
                Some(upstream) if upstream != current => current = upstream,
                _ => return current,
            }
        }
    }

    pub fn heartbeats_topic(&self) -> &'static str {
        HEARTBEATS_TOPIC
    }

    /// `mm2-offset-syncs.<alias>.internal` (with the internal separator).
    pub fn offset_syncs_topic(&self, cluster_alias: &str) -> String {
        let sep = &self.internal_separator;
        format!("mm2-offset-syncs{sep}{cluster_alias}{sep}internal")
    }

    /// `<alias>.checkpoints.internal` (with the internal separator).
    pub fn checkpoints_topic(&self, cluster_alias: &str) -> String {
        let sep = &self.internal_separator;
        format!("{cluster_alias}{sep}checkpoints{sep}internal")
    }

    pub fn is_heartbeats_topic(&self, topic: &str) -> bool {
        self.original_topic(topic) == HEARTBEATS_TOPIC
    }

    pub fn is_checkpoints_topic(&self, topic: &str) -> bool {
        let sep = &self.internal_separator;
        topic.ends_with(&format!("{sep}checkpoints{sep}internal"))
    }

    pub fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        let internal_suffix = format!("{}internal", self.internal_separator);
        match self.compatibility {
            Mm2Compatibility::V3_9 => topic.ends_with(&internal_suffix),
            Mm2Compatibility::V4_0 => {
                (topic.starts_with("mm2") && topic.ends_with(&internal_suffix))
                    || self.is_checkpoints_topic(topic)
            }
        }
    }

    /// Internal topics are never replicated.
    pub fn is_internal_topic(&self, topic: &str) -> bool {
        let common =
            self.is_mm2_internal_topic(topic) || topic.starts_with("__") || topic.starts_with('.');
        match self.compatibility {
            Mm2Compatibility::V3_9 => {
                common || topic.ends_with("-internal") || topic.ends_with(".internal")
            }
            Mm2Compatibility::V4_0 => common,
        }
    }

    /// True when `topic` came from `target` (directly or further up), so sending it there would loop.
    pub fn is_cycle(&self, topic: &str, target_alias: &str) -> bool {
        let mut current = topic.to_string();
        loop {
            let Some(source) = self.topic_source(&current) else {
                return false;
            };
            if source == target_alias {
                return true;
            }
            match self.upstream_topic(&current) {
                Some(upstream) if upstream != current => current = upstream,
                _ => return false,
            }
        }
    }

    /// Hops from `topic` back to cluster `alias`, or -1 (MirrorClient.countHopsForTopic).
    pub fn count_hops_for_topic(&self, topic: &str, alias: &str) -> i32 {
        let mut hops = 0;
        let mut visited = std::collections::BTreeSet::new();
        let mut current = topic.to_string();
        loop {
            hops += 1;
            let Some(source) = self.topic_source(&current) else {
                return -1;
            };
            if source == alias {
                return hops;
            }
            if !visited.insert(source) {
                return -1;
            }
            match self.upstream_topic(&current) {
                Some(upstream) => current = upstream,
                None => return -1,
            }
        }
    }

    /// MirrorClient.isRemoteTopic.
    pub fn is_remote_topic(&self, topic: &str) -> bool {
        !self.is_internal_topic(topic) && self.topic_source(topic).is_some()
    }
}

/// Java `String.split` with a literal separator: trailing empty strings are removed, a leading
/// empty string is kept.
fn java_split<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    if separator.is_empty() {
        return vec![text];
    }
    let mut parts: Vec<&str> = text.split(separator).collect();
    while parts.last().is_some_and(|part| part.is_empty()) {
        parts.pop();
    }
    parts
}
