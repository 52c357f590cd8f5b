//! Process-level machinery around the flows: the event loop ([`daemon`]) and the controller that
//! applies plan diffs to running flows ([`controller`]), signals ([`signals`]), configuration file
//! watching ([`watcher`]), the systemd notification protocol ([`notify`]) and the malloc arena
//! limit ([`allocator`]).

pub mod allocator;
pub mod controller;
pub mod daemon;
pub mod notify;
pub mod signals;
pub mod watcher;
