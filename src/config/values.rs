//! Typed value parsers with Kafka `ConfigDef` semantics (booleans, numbers, lists as Java reads them).

/// ConfigDef LIST: trim the whole value; empty → empty list; else split on `\s*,\s*`.
pub fn parse_list(value: &str) -> Vec<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split(',')
        .map(|item| item.trim().to_string())
        .collect()
}

/// ConfigDef BOOLEAN: trimmed, case-insensitive `true`/`false`; anything else is an error.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("expected `true` or `false`".to_string())
    }
}

/// Java `Boolean.parseBoolean`: true iff the string equals `true` ignoring case, without trimming.
pub fn java_parse_boolean(value: &str) -> bool {
    value.eq_ignore_ascii_case("true")
}

/// ConfigDef LONG/INT/SHORT: a trimmed decimal integer that fits `T`, at least `min`.
pub fn parse_integer<T>(value: &str, min: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let parsed: T = value
        .trim()
        .parse()
        .map_err(|_| "expected a whole number in range".to_string())?;
    if parsed < min {
        return Err(format!("must be at least {min}"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_with_optional_spaces() {
        assert_eq!(parse_list("  a , b,c  "), vec!["a", "b", "c"]);
        assert!(parse_list("   ").is_empty());
        assert_eq!(parse_list("a,,b"), vec!["a", "", "b"]);
    }

    #[test]
    fn booleans_follow_configdef_and_java_rules() {
        assert_eq!(parse_bool(" TRUE "), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("yes").is_err());
        assert!(java_parse_boolean("True"));
        assert!(!java_parse_boolean("true "));
        assert!(!java_parse_boolean("yes"));
    }

    #[test]
    fn integers_are_trimmed_and_bounded() {
        assert_eq!(parse_integer::<i64>(" 600 ", 0), Ok(600));
        assert!(parse_integer::<i32>("1", 2).is_err());
        assert!(parse_integer::<i16>("40000", 0).is_err());
        assert!(parse_integer::<i64>("10s", 0).is_err());
    }
}
