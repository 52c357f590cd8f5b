//! Gauge families whose series share one label set (MM2's twelve per-partition source gauges,
//! its four checkpoint gauges), kept as one row of atomics per label set and encoded when
//! `/metrics` is scraped.
//!
//! The `prometheus` crate's `GaugeVec` gives every child its own descriptor (name, help and label
//! pairs copied), about half a kilobyte per series: at 2,000 partitions and 1,000 groups those
//! children were 31 MiB of the daemon's peak heap. A row here holds the label values once and a
//! word per gauge (docs/operations.md, *Memory*).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// One label set's gauges: the values of a row, by column (f64 bits).
pub(super) struct Row {
    values: Box<[AtomicU64]>,
}

impl Row {
    pub(super) fn set(&self, column: usize, value: f64) {
        self.values[column].store(value.to_bits(), Ordering::Relaxed);
    }

    pub(super) fn get(&self, column: usize) -> f64 {
        f64::from_bits(self.values[column].load(Ordering::Relaxed))
    }
}

/// One gauge of a row: what a `Gauge` child was.
#[derive(Clone)]
pub(super) struct Cell {
    row: Arc<Row>,
    column: usize,
}

impl Cell {
    pub(super) fn new(row: &Arc<Row>, column: usize) -> Cell {
        Cell {
            row: row.clone(),
            column,
        }
    }

    pub(super) fn set(&self, value: f64) {
        self.row.set(self.column, value);
    }
}

/// Several gauge families (the columns) over the same label names; clone freely.
#[derive(Clone)]
pub(super) struct GaugeTable {
    inner: Arc<TableInner>,
}

struct TableInner {
    /// (name, help) per column.
    columns: Vec<(String, String)>,
    label_names: Vec<String>,
    /// Label positions in name order: label pairs are encoded sorted by name, as `GaugeVec` does.
    sorted: Vec<usize>,
    descs: Vec<Desc>,
    rows: Mutex<BTreeMap<Vec<String>, Arc<Row>>>,
}

impl GaugeTable {
    /// Registers one gauge family per `(name, help)` column in `registry`.
    pub(super) fn register(
        registry: &prometheus::Registry,
        columns: Vec<(String, String)>,
        label_names: &[&str],
    ) -> prometheus::Result<GaugeTable> {
        let label_names: Vec<String> = label_names.iter().map(|l| l.to_string()).collect();
        let descs = columns
            .iter()
            .map(|(name, help)| {
                Desc::new(
                    name.clone(),
                    help.clone(),
                    label_names.clone(),
                    Default::default(),
                )
            })
            .collect::<prometheus::Result<Vec<Desc>>>()?;
        let mut sorted: Vec<usize> = (0..label_names.len()).collect();
        sorted.sort_by(|a, b| label_names[*a].cmp(&label_names[*b]));
        let table = GaugeTable {
            inner: Arc::new(TableInner {
                columns,
                label_names,
                sorted,
                descs,
                rows: Mutex::new(BTreeMap::new()),
            }),
        };
        registry.register(Box::new(table.clone()))?;
        Ok(table)
    }

    fn rows(&self) -> MutexGuard<'_, BTreeMap<Vec<String>, Arc<Row>>> {
        self.inner
            .rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The row of `label_values` (one per label name), created with every gauge at `initial`.
    pub(super) fn row(&self, label_values: &[&str], initial: f64) -> Arc<Row> {
        debug_assert_eq!(label_values.len(), self.inner.label_names.len());
        let key: Vec<String> = label_values.iter().map(|v| v.to_string()).collect();
        self.rows()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Row {
                    values: (0..self.inner.columns.len())
                        .map(|_| AtomicU64::new(initial.to_bits()))
                        .collect(),
                })
            })
            .clone()
    }

    /// Drops the row of `label_values`: its series disappear from `/metrics`.
    pub(super) fn remove(&self, label_values: &[&str]) {
        let key: Vec<String> = label_values.iter().map(|v| v.to_string()).collect();
        self.rows().remove(&key);
    }
}

impl Collector for GaugeTable {
    fn desc(&self) -> Vec<&Desc> {
        self.inner.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let rows: Vec<(Vec<String>, Arc<Row>)> = self
            .rows()
            .iter()
            .map(|(labels, row)| (labels.clone(), row.clone()))
            .collect();
        let label_pairs: Vec<Vec<LabelPair>> = rows
            .iter()
            .map(|(values, _)| {
                self.inner
                    .sorted
                    .iter()
                    .map(|index| {
                        let mut pair = LabelPair::default();
                        pair.set_name(self.inner.label_names[*index].clone());
                        pair.set_value(values[*index].clone());
                        pair
                    })
                    .collect()
            })
            .collect();
        self.inner
            .columns
            .iter()
            .enumerate()
            .map(|(column, (name, help))| {
                let mut family = MetricFamily::default();
                family.set_name(name.clone());
                family.set_help(help.clone());
                family.set_field_type(MetricType::GAUGE);
                let metrics = rows
                    .iter()
                    .zip(&label_pairs)
                    .map(|((_, row), pairs)| {
                        let mut gauge = Gauge::default();
                        gauge.set_value(row.get(column));
                        let mut metric = Metric::default();
                        metric.set_label(pairs.clone());
                        metric.set_gauge(gauge);
                        metric
                    })
                    .collect();
                family.set_metric(metrics);
                family
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_encode_as_one_series_per_column_and_leave_when_removed() {
        let registry = prometheus::Registry::new();
        let table = GaugeTable::register(
            &registry,
            vec![
                ("t_first".into(), "first".into()),
                ("t_second".into(), "second".into()),
            ],
            &["flow", "partition"],
        )
        .unwrap();
        let row = table.row(&["A->B", "0"], f64::NAN);
        row.set(1, 2.5);
        let text = |registry: &prometheus::Registry| {
            let mut buffer = Vec::new();
            prometheus::Encoder::encode(
                &prometheus::TextEncoder::new(),
                &registry.gather(),
                &mut buffer,
            )
            .unwrap();
            String::from_utf8(buffer).unwrap()
        };
        let encoded = text(&registry);
        assert!(encoded.contains("# TYPE t_first gauge"), "{encoded}");
        assert!(
            encoded.contains(r#"t_first{flow="A->B",partition="0"} NaN"#),
            "{encoded}"
        );
        assert!(
            encoded.contains(r#"t_second{flow="A->B",partition="0"} 2.5"#),
            "{encoded}"
        );
        table.remove(&["A->B", "0"]);
        assert!(!text(&registry).contains("A->B"));
    }
}
