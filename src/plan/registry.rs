//! Schema-registry store topics a flow writes under their own name (`_schemas`, …): a registry
//! running on the target would read the copy as its own store, so `check` warns and names the two
//! safe ways (docs/schema-registry.md). Under DefaultReplicationPolicy the copy lands in
//! `<source>._schemas`, which no registry reads: harmless, no warning.

use super::filter::NameFilter;
use super::policy::PolicyKind;
use super::FlowId;

/// Store topics of the registries sites run, with the registries that use them by default.
const REGISTRY_TOPICS: &[(&str, &str)] = &[
    ("_schemas", "Confluent Schema Registry, Karapace, Redpanda"),
    ("kafkasql-journal", "Apicurio Registry"),
];

/// The (message, fix) of a warning for every registry store topic `topics` selects.
pub fn warnings(flow: &FlowId, topics: &NameFilter, policy: PolicyKind) -> Vec<(String, String)> {
    if policy != PolicyKind::Identity {
        return Vec::new();
    }
    REGISTRY_TOPICS
        .iter()
        .filter(|(topic, _)| topics.matches(topic))
        .map(|(topic, registries)| {
            (
                format!(
                    "flow {flow} selects `{topic}`, the store of a schema registry ({registries}); with IdentityReplicationPolicy it is written into `{topic}` on `{}`: a registry already running there gets its store corrupted",
                    flow.target
                ),
                format!(
                    "either keep it while the registry on `{}` is stopped or read-only until cutover (schema ids stay the same), or add `{topic}` to `{flow}.topics.exclude` and move the schemas through the registry's API; see docs/schema-registry.md",
                    flow.target
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_store_topics_written_under_their_own_name_warn() {
        let flow = FlowId {
            source: "old".into(),
            target: "new".into(),
        };
        let all = NameFilter::new(vec![".*".into()], vec!["__.*".into()]).unwrap();
        let found = warnings(&flow, &all, PolicyKind::Identity);
        assert_eq!(found.len(), 2);
        assert!(found[0].0.contains("corrupted"), "{}", found[0].0);
        assert!(
            warnings(&flow, &all, PolicyKind::Default).is_empty(),
            "lands in old._schemas"
        );
        let excluded = NameFilter::new(vec![".*".into()], vec!["_schemas".into()]).unwrap();
        let found = warnings(&flow, &excluded, PolicyKind::Identity);
        assert_eq!(found.len(), 1, "only Apicurio's journal is left");
        let orders = NameFilter::new(vec!["orders.*".into()], vec![]).unwrap();
        assert!(warnings(&flow, &orders, PolicyKind::Identity).is_empty());
    }
}
