//! Topic and group filters (MM2's `DefaultTopicFilter`/`DefaultGroupFilter`, docs/mm2-behaviour.md, *Connector settings and defaults*): comma-separated
//! regex lists, each joined with `|`, that must match the **whole** name; exclude beats include, and
//! an empty list matches nothing.

use regex::Regex;
use serde::Serialize;

/// An include/exclude pair of compiled regex lists.
#[derive(Debug, Clone, Serialize)]
pub struct NameFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    #[serde(skip)]
    include_regex: Option<Regex>,
    #[serde(skip)]
    exclude_regex: Option<Regex>,
}

/// Two filters are the same when their patterns are (compiled regexes are derived from them).
impl PartialEq for NameFilter {
    fn eq(&self, other: &Self) -> bool {
        self.include == other.include && self.exclude == other.exclude
    }
}

impl Eq for NameFilter {}

/// A pattern list that the `regex` crate cannot compile.
#[derive(Debug, Clone)]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl PatternError {
    /// How to write the pattern so it compiles, for the cause at hand.
    pub fn fix(&self) -> String {
        if self.reason.contains("look-around") {
            "write a regex without look-around (e.g. list what to keep, and move what to drop into `topics.exclude`/`groups.exclude`)".to_string()
        } else if self.pattern.starts_with('*') || self.reason.contains("repetition operator") {
            // A glob habit: Java's regex refuses a leading `*` as well, so MM2 would not start.
            let suggestion = format!(".*{}", self.pattern.trim_start_matches('*'));
            format!(
                "`*` repeats what comes before it, so it cannot start a pattern (MM2 refuses it too): \
                 for \"anything\" write `.*`, e.g. `{suggestion}`; in a properties file a single backslash \
                 is dropped (`\\.` reads as `.`), so write `\\\\.` for a literal dot"
            )
        } else {
            "write a regex both Java and kafka-mirrord accept (they agree on classes, groups, \
             alternation and repetition)"
                .to_string()
        }
    }
}

impl NameFilter {
    /// Compiles both lists; `Err` names the offending pattern of whichever list failed first.
    pub fn new(include: Vec<String>, exclude: Vec<String>) -> Result<Self, (bool, PatternError)> {
        let include_regex = compile(&include).map_err(|error| (true, error))?;
        let exclude_regex = compile(&exclude).map_err(|error| (false, error))?;
        Ok(Self {
            include,
            exclude,
            include_regex,
            exclude_regex,
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        let included = self
            .include_regex
            .as_ref()
            .is_some_and(|r| r.is_match(name));
        let excluded = self
            .exclude_regex
            .as_ref()
            .is_some_and(|r| r.is_match(name));
        included && !excluded
    }
}

/// Joins a list like Java does (`a|b`) and anchors it so only whole names match.
fn compile(patterns: &[String]) -> Result<Option<Regex>, PatternError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    // Compile each element alone first so the error can name the one that is wrong.
    for pattern in patterns {
        if let Err(error) = Regex::new(&format!("^(?:{pattern})$")) {
            return Err(PatternError {
                pattern: pattern.clone(),
                reason: describe(&error),
            });
        }
    }
    let joined = patterns.join("|");
    Regex::new(&format!("^(?:{joined})$"))
        .map(Some)
        .map_err(|error| PatternError {
            pattern: joined,
            reason: describe(&error),
        })
}

fn describe(error: &regex::Error) -> String {
    let text = error.to_string();
    if text.contains("look-around") || text.contains("backreferences") {
        "uses look-around or back-references, which kafka-mirrord's regex engine does not support"
            .to_string()
    } else {
        // The regex crate's message spans several lines; keep one line per problem.
        text.lines()
            .filter(|line| line.starts_with("error:"))
            .map(|line| line.trim_start_matches("error:").trim().to_string())
            .next()
            .unwrap_or_else(|| text.replace('\n', " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> NameFilter {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        NameFilter::new(owned(include), owned(exclude)).unwrap()
    }

    #[test]
    fn whole_name_must_match_and_exclude_wins() {
        let topics = filter(&["topic1"], &[]);
        assert!(topics.matches("topic1"));
        assert!(!topics.matches("topic2"));
        assert!(!topics.matches("topic10"), "partial matches do not count");
        let topics = filter(&["topic1", "topic2"], &[]);
        assert!(topics.matches("topic1") && topics.matches("topic2") && !topics.matches("topic3"));
        let topics = filter(&[".*"], &["__.*", ".*[\\-\\.]internal"]);
        assert!(topics.matches("orders"));
        assert!(!topics.matches("__consumer_offsets"));
        assert!(!topics.matches("a.internal"));
    }

    #[test]
    fn empty_include_matches_nothing_and_empty_exclude_excludes_nothing() {
        let topics = filter(&[], &[]);
        for name in ["topic1", "topic2", ""] {
            assert!(!topics.matches(name));
        }
        assert!(filter(&[".*"], &[]).matches("anything"));
    }

    #[test]
    fn look_arounds_are_reported() {
        let (is_include, error) =
            NameFilter::new(vec!["ok".into(), "(?!internal).*".into()], vec![]).unwrap_err();
        assert!(is_include);
        assert_eq!(error.pattern, "(?!internal).*");
        assert!(error.reason.contains("look-around"), "{}", error.reason);
        assert!(
            error.fix().contains("without look-around"),
            "{}",
            error.fix()
        );
    }

    #[test]
    fn a_leading_star_gets_the_glob_hint() {
        // Aiven's `*\..europe\..*` as a properties file reads it.
        let (_, error) = NameFilter::new(vec!["*..europe..*".into()], vec![]).unwrap_err();
        let fix = error.fix();
        assert!(!fix.contains("look-around"), "{fix}");
        assert!(
            fix.contains("`.*..europe..*`") && fix.contains("\\\\."),
            "{fix}"
        );
    }
}
