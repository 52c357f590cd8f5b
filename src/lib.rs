//! kafka-mirrord: a drop-in replacement for Apache Kafka MirrorMaker 2 dedicated mode.
//!
//! Data flows through the modules in this order:
//! properties file → [`config`] (`RawProperties`, then a validated `Config`) → [`plan`] (one
//! resolved `FlowPlan` per `A->B`) → [`flow`] (source, checkpoint and heartbeat tasks) →
//! [`metrics`], [`status`] and [`http`]. [`kafka`] holds what talks to brokers; [`runtime`] the
//! signals, file watcher and systemd notify; [`commands`] the CLI verbs.

// `unsafe` is denied everywhere but `kafka::acls`, which calls librdkafka's ACL API directly.
#![deny(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod exit;
pub mod flow;
pub mod http;
pub mod kafka;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod runtime;
pub mod status;
