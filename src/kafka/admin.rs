//! Admin operations a flow needs, bounded by `admin.timeout.ms`: listing topics with their
//! partition counts, creating topics and partitions, reading/writing topic configs and topic ACLs;
//! and the pool that lets tasks with the same settings share one admin client.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaErrorCode;

use super::acls::{self, AclError, TopicAcl};

/// One cluster's admin client.
pub struct Admin {
    client: AdminClient<DefaultClientContext>,
    timeout: Duration,
}

/// A topic config entry as MM2's config sync sees it (docs/mm2-behaviour.md, *Topic config sync*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// The value comes from the broker's hard-coded default (`DEFAULT_CONFIG`).
    pub is_default: bool,
    pub is_read_only: bool,
    pub is_sensitive: bool,
    pub is_static_broker: bool,
}

/// A consumer group as the group coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    /// `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Dead`, ...
    pub state: String,
    pub members: usize,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// -1 means the broker default.
    pub replication_factor: i32,
    pub configs: Vec<(String, String)>,
}

/// Outcome of creating one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    AlreadyExists,
    Failed(String),
}

/// The admin clients in use, by their exact settings and timeout: tasks asking for the same
/// cluster with the same settings share one.
type AdminPool = HashMap<(Vec<(String, String)>, Duration), Weak<Admin>>;

impl Admin {
    pub fn new(config: &ClientConfig, timeout: Duration) -> KafkaResult<Self> {
        Ok(Self {
            client: config.create()?,
            timeout,
        })
    }

    /// The admin client of these settings that another task holds, or a new one. rust-rdkafka's
    /// admin client keeps a thread that wakes ten times a second even when idle (about 0.05 % of
    /// a core each, four times an idle consumer): a flow's connector, checkpoint and heartbeat
    /// tasks share theirs (docs/operations.md, *Idle cost*). librdkafka reconnects a
    /// client by itself, so a task restarted after a failure loses nothing by sharing; the client
    /// is destroyed with its last holder.
    pub fn shared(config: &ClientConfig, timeout: Duration) -> KafkaResult<Arc<Self>> {
        static POOL: OnceLock<Mutex<AdminPool>> = OnceLock::new();
        let key = (
            config
                .config_map()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
            timeout,
        );
        let mut pool = crate::locks::lock(POOL.get_or_init(Default::default));
        if let Some(admin) = pool.get(&key).and_then(Weak::upgrade) {
            return Ok(admin);
        }
        let admin = Arc::new(Self::new(config, timeout)?);
        pool.retain(|_, held| held.strong_count() > 0);
        pool.insert(key, Arc::downgrade(&admin));
        Ok(admin)
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Consumer groups (all, or one) with their state (blocking; call off the async runtime).
    pub fn groups(&self, group: Option<&str>) -> KafkaResult<Vec<GroupInfo>> {
        let list = self.client.inner().fetch_group_list(group, self.timeout)?;
        Ok(list
            .groups()
            .iter()
            .map(|g| GroupInfo {
                name: g.name().to_string(),
                state: g.state().to_string(),
                members: g.members().len(),
            })
            .collect())
    }

    /// The groups `wanted` accepts, with their state and members (blocking; call off the async
    /// runtime). Their states are listed first (one request per broker); members are counted
    /// (every group described, as [`Admin::groups`] does) only when a wanted group is neither
    /// `Empty` nor `Dead` — or when the listing fails, e.g. on a broker too old for it. Describing
    /// 1,000 idle groups at every round was most of an idle checkpoint task's work.
    pub fn wanted_groups(&self, wanted: impl Fn(&str) -> bool) -> KafkaResult<Vec<GroupInfo>> {
        match super::group_listing::list(self.client.inner(), self.timeout) {
            Ok(listed) => {
                let listed: Vec<(String, String)> = listed
                    .into_iter()
                    .filter(|(name, _)| wanted(name))
                    .collect();
                if listed
                    .iter()
                    .all(|(_, state)| state == "Empty" || state == "Dead")
                {
                    return Ok(listed
                        .into_iter()
                        .map(|(name, state)| GroupInfo {
                            name,
                            state,
                            members: 0,
                        })
                        .collect());
                }
            }
            Err(error) => {
                tracing::debug!("cannot list the groups' states ({error}); describing them all")
            }
        }
        Ok(self
            .groups(None)?
            .into_iter()
            .filter(|group| wanted(&group.name))
            .collect())
    }

    /// Every ACL on a topic resource (blocking; call off the async runtime).
    pub fn topic_acls(&self) -> Result<Vec<TopicAcl>, AclError> {
        acls::describe_topic_acls(self.client.inner(), self.timeout)
    }

    /// Creates topic ACLs; per binding `Ok` or the broker's error (blocking; call off the async
    /// runtime).
    pub fn create_topic_acls(
        &self,
        new_acls: &[TopicAcl],
    ) -> Result<Vec<Result<(), String>>, AclError> {
        acls::create_topic_acls(self.client.inner(), new_acls, self.timeout)
    }

    /// The committed offsets of each of `groups`, through this client (pipelined admin requests;
    /// blocking).
    pub fn list_group_offsets(&self, groups: &[String]) -> super::group_offsets::GroupsCommitted {
        super::group_offsets::list(self.client.inner(), groups, self.timeout)
    }

    /// Commits offsets for each group without joining it (refused for a group with members;
    /// blocking).
    pub fn alter_group_offsets(
        &self,
        requests: &[(String, super::group_offsets::Committed)],
    ) -> std::collections::HashMap<String, Result<(), String>> {
        super::group_offsets::alter(self.client.inner(), requests, self.timeout)
    }

    /// Brokers of the cluster, from a metadata request (blocking).
    pub fn broker_count(&self) -> KafkaResult<usize> {
        let metadata = self.client.inner().fetch_metadata(None, self.timeout)?;
        Ok(metadata.brokers().len())
    }

    /// Topic name → partition count, from a metadata request (blocking; call off the async runtime).
    pub fn list_topics(&self) -> KafkaResult<BTreeMap<String, i32>> {
        let metadata = self.client.inner().fetch_metadata(None, self.timeout)?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none())
            .map(|topic| (topic.name().to_string(), topic.partitions().len() as i32))
            .collect())
    }

    /// Creates topics; per-topic outcomes (creation is not atomic across topics).
    pub async fn create_topics(
        &self,
        topics: &[TopicSpec],
    ) -> KafkaResult<BTreeMap<String, Created>> {
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|spec| {
                let topic = NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication_factor),
                );
                spec.configs
                    .iter()
                    .fold(topic, |topic, (key, value)| topic.set(key, value))
            })
            .collect();
        let results = self
            .client
            .create_topics(new_topics.iter(), &self.options())
            .await?;
        Ok(results
            .into_iter()
            .map(|result| match result {
                Ok(name) => (name, Created::Created),
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => (name, Created::AlreadyExists),
                Err((name, code)) => (name, Created::Failed(code.to_string())),
            })
            .collect())
    }

    /// Raises partition counts; `InvalidPartitions` (already that many) is not an error (docs/mm2-behaviour.md, *Remote topics*).
    pub async fn create_partitions(
        &self,
        topics: &[(String, i32)],
    ) -> KafkaResult<Vec<(String, Result<(), String>)>> {
        let requests: Vec<NewPartitions<'_>> = topics
            .iter()
            .map(|(name, count)| NewPartitions::new(name, *count as usize))
            .collect();
        let results = self
            .client
            .create_partitions(requests.iter(), &self.options())
            .await?;
        Ok(results
            .into_iter()
            .map(|result| match result {
                Ok(name) => (name, Ok(())),
                Err((name, RDKafkaErrorCode::InvalidPartitions)) => (name, Ok(())),
                Err((name, code)) => (name, Err(code.to_string())),
            })
            .collect())
    }

    /// The configs of each topic; topics that could not be described are left out.
    pub async fn describe_topic_configs(
        &self,
        topics: &[String],
    ) -> KafkaResult<BTreeMap<String, Vec<TopicConfigEntry>>> {
        let specifiers: Vec<ResourceSpecifier<'_>> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let results = self
            .client
            .describe_configs(specifiers.iter(), &self.options())
            .await?;
        let mut out = BTreeMap::new();
        for (topic, result) in topics.iter().zip(results) {
            if let Ok(resource) = result {
                let entries = resource
                    .entries
                    .into_iter()
                    .map(|entry| TopicConfigEntry {
                        is_default: entry.source == ConfigSource::Default,
                        is_static_broker: entry.source == ConfigSource::StaticBroker,
                        name: entry.name,
                        value: entry.value,
                        is_read_only: entry.is_read_only,
                        is_sensitive: entry.is_sensitive,
                    })
                    .collect();
                out.insert(topic.clone(), entries);
            }
        }
        Ok(out)
    }

    /// Replaces each topic's dynamic config with the given set (legacy `AlterConfigs`, what MM2 does
    /// with `use.incremental.alter.configs=never`).
    pub async fn alter_topic_configs(
        &self,
        configs: &BTreeMap<String, Vec<(String, String)>>,
    ) -> KafkaResult<Vec<(String, Result<(), String>)>> {
        let alters: Vec<AlterConfig<'_>> = configs
            .iter()
            .map(|(topic, entries)| {
                entries.iter().fold(
                    AlterConfig::new(ResourceSpecifier::Topic(topic)),
                    |alter, (key, value)| alter.set(key, value),
                )
            })
            .collect();
        let results = self
            .client
            .alter_configs(alters.iter(), &self.options())
            .await?;
        Ok(configs
            .keys()
            .zip(results)
            .map(|(topic, result)| {
                (
                    topic.clone(),
                    result.map(|_| ()).map_err(|(_, code)| code.to_string()),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(servers: &str) -> ClientConfig {
        // librdkafka connects lazily: no broker is needed to create a client.
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", servers);
        config
    }

    #[test]
    fn tasks_with_the_same_settings_share_one_admin_client_while_one_holds_it() {
        let timeout = Duration::from_secs(5);
        let first = Admin::shared(&config("127.0.0.1:1"), timeout).unwrap();
        let same = Admin::shared(&config("127.0.0.1:1"), timeout).unwrap();
        assert!(Arc::ptr_eq(&first, &same));
        let other_cluster = Admin::shared(&config("127.0.0.1:2"), timeout).unwrap();
        assert!(!Arc::ptr_eq(&first, &other_cluster));
        let other_timeout = Admin::shared(&config("127.0.0.1:1"), Duration::from_secs(6)).unwrap();
        assert!(!Arc::ptr_eq(&first, &other_timeout));
        // Once nobody holds it, the next task gets a client of its own.
        let gone = Arc::downgrade(&first);
        drop((first, same));
        assert!(gone.upgrade().is_none());
        let fresh = Admin::shared(&config("127.0.0.1:1"), timeout).unwrap();
        assert_eq!(Arc::strong_count(&fresh), 1);
    }
}
