//! Process-level machinery around the flows: signals ([`signals`]), configuration file watching
//! ([`watcher`]) and the systemd notification protocol ([`notify`]).
//!
//! The run loop merges [`signals::Signals::recv`] (SIGHUP, SIGTERM/SIGINT/SIGQUIT) with the
//! watcher's reload requests, serializes reloads, and reports progress through [`notify`].

pub mod notify;
pub mod signals;
pub mod watcher;
