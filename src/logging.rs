//! Logging set-up: native journald records when stderr is connected to the journal, otherwise
//! human-readable (or JSON) lines on stderr; the level comes from `RUST_LOG`, then
//! `mirrord.log.level`, then `info`, and can be changed on reload ([`reload_level`]).
//!
//! The output is chosen once ([`choose_output`]): systemd sets `JOURNAL_STREAM=<dev>:<inode>` for
//! a service whose stderr goes to the journal; it is only trusted when it matches stderr, because
//! the variable is inherited by processes whose stderr was redirected elsewhere
//! (systemd.exec(5), `$JOURNAL_STREAM`). `mirrord.log.format = json` is an explicit choice and
//! wins over journald.
//! Journald fields: the message, `PRIORITY`, `TARGET`, `CODE_FILE`/`CODE_LINE`, and the event's
//! fields upper-cased with the `F_` prefix (`journalctl F_FLOW='A->B'`).

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::{LogFormat, MirrordSettings};

/// Where log records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Journald,
    Text,
    Json,
}

/// The output for the given `JOURNAL_STREAM` value, the (device, inode) of stderr, and the
/// configured format. Pure, for tests.
pub fn choose_output(
    journal_stream: Option<&str>,
    stderr_id: Option<(u64, u64)>,
    format: LogFormat,
) -> LogOutput {
    if format == LogFormat::Json {
        return LogOutput::Json;
    }
    let on_journal = match (journal_stream.and_then(parse_journal_stream), stderr_id) {
        (Some(expected), Some(actual)) => expected == actual,
        _ => false,
    };
    if on_journal {
        LogOutput::Journald
    } else {
        LogOutput::Text
    }
}

/// `JOURNAL_STREAM` is `<device>:<inode>`, both decimal.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (device, inode) = value.trim().split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

/// (device, inode) of this process's stderr.
fn stderr_id() -> Option<(u64, u64)> {
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let metadata = std::fs::File::from(fd).metadata().ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// The output [`init`] picks for this process.
pub fn detect_output(settings: Option<&MirrordSettings>) -> LogOutput {
    let format = settings.map_or(LogFormat::Text, |s| s.log_format);
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    choose_output(journal_stream.as_deref(), stderr_id(), format)
}

/// Changes the level filter after start-up; set by [`init`].
static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

fn filter_for(settings: Option<&MirrordSettings>) -> EnvFilter {
    let configured = settings
        .and_then(|s| s.log_level.clone())
        .unwrap_or_else(|| "info".to_string());
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&configured))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

type Output = Box<
    dyn Layer<tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>>
        + Send
        + Sync,
>;

/// Installs the global subscriber; call once, after the configuration was read.
pub fn init(settings: Option<&MirrordSettings>) {
    let (filter, handle) = reload::Layer::new(filter_for(settings));
    let mut fallback_note = None;
    let output: Output = match detect_output(settings) {
        LogOutput::Journald => match tracing_journald::layer() {
            Ok(layer) => layer
                .with_syslog_identifier("kafka-mirrord".to_string())
                .boxed(),
            Err(error) => {
                fallback_note = Some(format!(
                    "JOURNAL_STREAM is set but the journal is unusable ({error}); using stderr"
                ));
                text_layer()
            }
        },
        LogOutput::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogOutput::Text => text_layer(),
    };
    // A second call (tests) keeps the first subscriber.
    if tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
    {
        let _ = LEVEL.set(handle);
    }
    if let Some(note) = fallback_note {
        tracing::warn!("{note}");
    }
}

fn text_layer() -> Output {
    // Colours only for a person at a terminal, never in files, pipes or the journal.
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .boxed()
}

/// Applies a reloaded `mirrord.log.level`. `RUST_LOG`, when set, keeps winning. Returns whether
/// the filter was replaced.
pub fn reload_level(settings: &MirrordSettings) -> bool {
    let Some(handle) = LEVEL.get() else {
        return false;
    };
    if std::env::var_os("RUST_LOG").is_some() {
        return false;
    }
    handle.reload(filter_for(Some(settings))).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journald_only_when_journal_stream_matches_stderr() {
        let text = LogFormat::Text;
        assert_eq!(
            choose_output(Some("8:12345"), Some((8, 12345)), text),
            LogOutput::Journald
        );
        // Inherited by a process whose stderr goes elsewhere.
        assert_eq!(
            choose_output(Some("8:12345"), Some((8, 999)), text),
            LogOutput::Text
        );
        assert_eq!(choose_output(None, Some((8, 12345)), text), LogOutput::Text);
        assert_eq!(
            choose_output(Some("garbage"), Some((8, 12345)), text),
            LogOutput::Text
        );
        assert_eq!(choose_output(Some("8:12345"), None, text), LogOutput::Text);
        // An explicit JSON format wins.
        assert_eq!(
            choose_output(Some("8:12345"), Some((8, 12345)), LogFormat::Json),
            LogOutput::Json
        );
    }

    #[test]
    fn stderr_identity_is_readable() {
        // The test harness's stderr is a pipe or terminal; either has a device and inode.
        assert!(stderr_id().is_some());
    }
}
