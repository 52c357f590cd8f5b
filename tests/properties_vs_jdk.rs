//! kafka-mirrord's properties parser against the JDK's `java.util.Properties.load(InputStream)`
//! (what MM2 uses) on a file full of edge cases: both must read the same keys and values.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use kafka_mirrord::config::properties::RawProperties;

const TRICKY: &[u8] = b"# comment line\n\
! bang comment\n\
   # indented comment\n\
clusters = a, b  # not a comment\n\
colon:separated\n\
space separated value\n\
tab\tseparated\n\
trailing = spaces   \n\
empty=\n\
keyonly\n\
continued = one, \\\n    two, \\\n\tthree\n\
escaped\\ key\\=with\\:chars = v\n\
unicode = caf\\u00e9 \\u20ac\n\
latin1 = na\xefve\n\
backslashes = C:\\\\path\\\\file \\t tab \\n newline\n\
odd\\\\ = ends with escaped backslash\n\
dup = first\n\
dup = second\n\
  leading.whitespace.key = x\n\
equals==double\n\
a->b.enabled = true\n\
line.ending.cr = x\r\
after.cr = y\r\n\
last.without.newline = z";

#[test]
fn parser_matches_the_jdk() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tricky.properties");
    std::fs::write(&file, TRICKY).unwrap();
    let dumper = support::repo_root().join("tests/support/DumpProperties.java");
    let output = Command::new("java")
        .arg(&dumper)
        .arg(&file)
        .output()
        .expect("java is installed (scripts/install-deps)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let jdk: BTreeMap<String, String> = serde_json::from_slice(&output.stdout).unwrap();

    let ours: BTreeMap<String, String> = RawProperties::read(&file)
        .unwrap()
        .iter()
        .map(|property| (property.key.clone(), property.value.clone()))
        .collect();
    assert_eq!(ours, jdk);
    // The fixture really exercises the rules it is meant to.
    assert_eq!(jdk["clusters"], "a, b  # not a comment");
    assert_eq!(jdk["trailing"], "spaces   ");
    assert_eq!(jdk["continued"], "one, two, three");
    assert_eq!(jdk["dup"], "second");
}
