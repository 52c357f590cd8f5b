//! Java `.properties` reading: the file's bytes become `RawProperties` (key → value and line number).
//!
//! Parsing follows `java.util.Properties.load(InputStream)` exactly, because MM2 reads its file that
//! way: ISO-8859-1 text, `\` continuations, `\uXXXX` escapes, `#`/`!` comment lines only at the start
//! of a line (no inline comments), the first unescaped `=`, `:` or whitespace separates key from
//! value, leading value whitespace is dropped and trailing whitespace is kept. The `java-properties`
//! crate implements that grammar; this module adds line numbers and "last duplicate wins".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use java_properties::{LineContent, PropertiesIter};

/// One `key=value` line of the file, after escapes and continuations were applied.
#[derive(Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    /// 1-based line where the logical line starts (continuations report their first line).
    pub line: usize,
}

/// Debug output masks secret values, so a stray `{:?}` cannot leak a password into a log.
impl std::fmt::Debug for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Property")
            .field("key", &self.key)
            .field(
                "value",
                &super::secrets::mask_if_secret(&self.key, &self.value),
            )
            .field("line", &self.line)
            .finish()
    }
}

/// Every key of one properties file, last duplicate winning as in `java.util.Properties`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawProperties {
    /// Path shown in diagnostics.
    pub file: PathBuf,
    entries: BTreeMap<String, Property>,
}

/// The file could not be read or is not a valid properties file.
#[derive(Debug, thiserror::Error)]
pub enum PropertiesError {
    #[error("cannot read `{file}`: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

impl RawProperties {
    /// Reads and parses a properties file from disk.
    pub fn read(path: &Path) -> Result<Self, PropertiesError> {
        let bytes =
            super::files::read_regular(path, super::files::MAX_FILE_BYTES).map_err(|source| {
                PropertiesError::Io {
                    file: path.to_path_buf(),
                    source,
                }
            })?;
        Self::parse(&bytes, path)
    }

    /// Parses properties text; `file` is only used for messages.
    pub fn parse(bytes: &[u8], file: &Path) -> Result<Self, PropertiesError> {
        let mut entries = BTreeMap::new();
        // `PropertiesIter::new` decodes as windows-1252, the WHATWG name for ISO-8859-1 (what Java uses).
        for line in PropertiesIter::new(bytes) {
            let line = line.map_err(|error| PropertiesError::Syntax {
                file: file.to_path_buf(),
                line: error.line_number().unwrap_or(0),
                message: error.to_string(),
            })?;
            let number = line.line_number();
            if let LineContent::KVPair(key, value) = line.consume_content() {
                entries.insert(
                    key.clone(),
                    Property {
                        key,
                        value,
                        line: number,
                    },
                );
            }
        }
        Ok(Self {
            file: file.to_path_buf(),
            entries,
        })
    }

    /// Builds properties from in-memory pairs (tests, generated configs); lines are numbered 1..n.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut entries = BTreeMap::new();
        for (index, (key, value)) in pairs.into_iter().enumerate() {
            entries.insert(
                key.to_string(),
                Property {
                    key: key.to_string(),
                    value: value.to_string(),
                    line: index + 1,
                },
            );
        }
        Self {
            file: PathBuf::from("<memory>"),
            entries,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Property> {
        self.entries.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Property> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries whose key starts with `prefix` (and is longer than it), with the prefix stripped.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &str,
    ) -> impl Iterator<Item = (&'a str, &'a Property)> + 'a {
        let prefix = prefix.to_string();
        let length = prefix.len();
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .filter(move |(key, _)| key.len() > length)
            .map(move |(key, property)| (&key[length..], property))
    }

    /// Replaces the value of every entry through `resolve` (used for `${...}` providers).
    pub fn map_values(&mut self, mut resolve: impl FnMut(&Property) -> String) {
        for property in self.entries.values_mut() {
            property.value = resolve(property);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RawProperties {
        RawProperties::parse(text.as_bytes(), Path::new("test.properties")).unwrap()
    }

    fn value<'a>(props: &'a RawProperties, key: &str) -> &'a str {
        &props.get(key).unwrap().value
    }

    #[test]
    fn separators_comments_and_whitespace_follow_java() {
        let props = parse(
            "# comment\n! also a comment\nclusters = a, b  # x\nkey2:value2\nkey3 value3\n  \
             A->B.enabled = true   \nempty=\n",
        );
        // No inline comments: the `# x` is part of the value.
        assert_eq!(value(&props, "clusters"), "a, b  # x");
        assert_eq!(value(&props, "key2"), "value2");
        assert_eq!(value(&props, "key3"), "value3");
        // Trailing whitespace is kept, as the JDK does.
        assert_eq!(value(&props, "A->B.enabled"), "true   ");
        assert_eq!(value(&props, "empty"), "");
        assert_eq!(props.get("clusters").unwrap().line, 3);
        assert_eq!(props.len(), 5);
    }

    #[test]
    fn continuations_escapes_and_duplicates() {
        let props = parse(
            "topics = a, \\\n    b, \\\n    c\nkey\\ with\\ spaces = v\\u00e9\\t!\ndup=1\ndup=2\n",
        );
        assert_eq!(value(&props, "topics"), "a, b, c");
        assert_eq!(props.get("topics").unwrap().line, 1);
        assert_eq!(value(&props, "key with spaces"), "v\u{e9}\t!");
        assert_eq!(value(&props, "dup"), "2");
        assert_eq!(props.get("dup").unwrap().line, 6);
    }

    #[test]
    fn bytes_are_iso_8859_1() {
        let props = RawProperties::parse(b"name=caf\xe9\n", Path::new("x")).unwrap();
        assert_eq!(value(&props, "name"), "caf\u{e9}");
    }

    #[test]
    fn prefix_iteration_strips_the_prefix() {
        let props = parse("a.x=1\na.y.z=2\na=3\nab.c=4\na.=5\n");
        let found: Vec<(&str, &str)> = props
            .with_prefix("a.")
            .map(|(key, property)| (key, property.value.as_str()))
            .collect();
        assert_eq!(found, vec![("x", "1"), ("y.z", "2")]);
    }
}
