//! Configuration problems: every error and warning found in one pass, each naming file, line, key,
//! the offending value (masked when secret) and the fix.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::properties::Property;
use super::secrets::mask_if_secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// Line of the offending key; `None` for problems about a missing key.
    pub line: Option<usize>,
    pub key: Option<String>,
    /// The offending value, already masked when the key holds a secret.
    pub value: Option<String>,
    pub message: String,
    /// What to do about it.
    pub fix: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {label}: ")?;
        match (&self.key, &self.value) {
            (Some(key), Some(value)) => write!(f, "`{key}` = `{value}`: ")?,
            (Some(key), None) => write!(f, "`{key}`: ")?,
            _ => {}
        }
        write!(f, "{}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics while a configuration is validated, so that every problem is reported at once.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    file: PathBuf,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: PathBuf) -> Self {
        Self {
            file,
            items: Vec::new(),
        }
    }

    /// An error about a key that is present in the file.
    pub fn error(&mut self, property: &Property, message: impl Into<String>, fix: Option<String>) {
        self.push(Severity::Error, Some(property), None, message.into(), fix);
    }

    /// A warning about a key that is present in the file.
    pub fn warn(&mut self, property: &Property, message: impl Into<String>, fix: Option<String>) {
        self.push(Severity::Warning, Some(property), None, message.into(), fix);
    }

    /// An error that is not tied to one line (a missing key, a whole-file problem).
    pub fn error_without_line(
        &mut self,
        key: Option<&str>,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.push(Severity::Error, None, key, message.into(), fix);
    }

    /// A warning that is not tied to one line.
    pub fn warn_without_line(
        &mut self,
        key: Option<&str>,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.push(Severity::Warning, None, key, message.into(), fix);
    }

    fn push(
        &mut self,
        severity: Severity,
        property: Option<&Property>,
        key: Option<&str>,
        message: String,
        fix: Option<String>,
    ) {
        // The most common properties-file mistake deserves its own hint.
        let inline_comment =
            property.is_some_and(|p| p.value.contains(" #") || p.value.contains("\t#"));
        let fix = match (fix, inline_comment) {
            (fix, false) => fix,
            (Some(fix), true) => Some(format!("{fix} (properties files have no inline comments: the `# ...` is part of the value)")),
            (None, true) => Some("properties files have no inline comments: move the `# ...` to its own line".to_string()),
        };
        let diagnostic = Diagnostic {
            severity,
            file: self.file.clone(),
            line: property.map(|p| p.line),
            key: property.map(|p| p.key.clone()).or(key.map(str::to_string)),
            value: property.map(|p| mask_if_secret(&p.key, &p.value)),
            message,
            fix,
        };
        // The same key can be checked from several flows; report each problem once.
        if !self.items.contains(&diagnostic) {
            self.items.push(diagnostic);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Errors and warnings sorted by line, for stable output.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by_key(|d| (d.line.unwrap_or(0), d.severity == Severity::Warning));
        self.items
    }
}

/// The configuration is invalid; carries every problem found (errors and warnings).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} configuration error(s) in `{}`", self.errors().count(), self.file.display())]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// A single error about the file as a whole (unreadable, bad syntax).
    pub fn whole_file(file: PathBuf, line: Option<usize>, message: String) -> Self {
        Self {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                file: file.clone(),
                line,
                key: None,
                value: None,
                message,
                fix: None,
            }],
            file,
        }
    }
}
