//! Logging set-up: human-readable (or JSON) lines on stderr; the level comes from `RUST_LOG`, then
//! `mirrord.log.level`, then `info`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, MirrordSettings};

/// Installs the global subscriber; call once, after the configuration was read.
pub fn init(settings: Option<&MirrordSettings>) {
    let configured = settings
        .and_then(|s| s.log_level.clone())
        .unwrap_or_else(|| "info".to_string());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(configured));
    // Colours only for a person at a terminal, never in files, pipes or the journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match settings.map(|s| s.log_format) {
        Some(LogFormat::Json) => builder.json().try_init(),
        _ => builder.try_init(),
    };
    // A second call (tests) keeps the first subscriber.
    let _ = result;
}
