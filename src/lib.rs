//! kafka-mirrord: a drop-in replacement for Apache Kafka MirrorMaker 2 dedicated mode.
//!
//! Data flows through the modules in this order:
//! properties file → [`config`] (`RawProperties`, then a validated `Config`) → [`plan`] (one
//! resolved `FlowPlan` per `A->B`) → [`flow`] (source, checkpoint and heartbeat tasks) →
//! [`metrics`], [`status`] and [`http`]. [`kafka`] holds what talks to brokers; [`runtime`] the
//! signals, file watcher, systemd notify and the controller that applies plans to flows;
//! [`lifecycle`] the cancellation tree; [`locks`] the poison-tolerant lock; [`commands`] the CLI verbs.

// `unsafe` is denied everywhere but in `kafka::{acls, headers, groups}`, which call librdkafka's C
// API where rust-rdkafka has no (or a panicking) wrapper.
#![deny(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod exit;
pub mod flow;
pub mod http;
pub mod kafka;
pub mod lifecycle;
pub mod locks;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod runtime;
pub mod status;
