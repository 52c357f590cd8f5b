//! Command line, drop-in with `connect-mirror-maker.sh [--clusters A B ...] FILE`, plus our verbs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// kafka-mirrord replicates topics, consumer-group offsets and heartbeats between Kafka clusters,
/// reading MirrorMaker 2's `connect-mirror-maker.properties`.
///
/// Exit codes: 0 success or clean stop; 64 configuration or usage error; 1 any other failure
/// (e.g. a cluster unreachable in `check --connect`); `cutover` also 2: not ready yet.
#[derive(Debug, Parser)]
#[command(
    name = "kafka-mirrord",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: Target,
}

/// The properties file and the optional `--clusters` filter, shared by every verb.
#[derive(Debug, Args, Clone, Default)]
pub struct Target {
    /// Only run flows whose target cluster is one of these aliases (as MM2's `--clusters`).
    #[arg(long, num_args = 1.., value_name = "ALIAS")]
    pub clusters: Vec<String>,

    /// The MirrorMaker 2 properties file (e.g. /etc/kafka-mirrord/connect-mirror-maker.properties).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl Target {
    /// `--clusters` takes one or more values, so in `--clusters B C FILE` clap reads FILE as an
    /// alias; MM2 users write it that way, so the last value is the file when none was given.
    pub fn normalized(mut self) -> Result<(PathBuf, Vec<String>), String> {
        if self.file.is_none() {
            self.file = self.clusters.pop().map(PathBuf::from);
        }
        match self.file {
            Some(file) => Ok((file, self.clusters)),
            None => Err("missing the properties FILE argument".to_string()),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the file and print the resolved plan of every flow (secrets masked).
    Check {
        #[command(flatten)]
        target: Target,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
        /// Also connect to every cluster and report reachability and broker count.
        #[arg(long)]
        connect: bool,
        /// Seconds to wait for each cluster with `--connect`.
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Show a running daemon's flows, state, lag and catch-up from its `/status` endpoint.
    Status {
        /// Ask this address instead of the file's `mirrord.http.listen`.
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<std::net::SocketAddr>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
        /// The properties file (to find `mirrord.http.listen`); default address 127.0.0.1:9464.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Tell whether consumers and producers may move to the target now: every gate (lag 0,
    /// source quiet, groups translated and synced, no members on the target, no foreign writes)
    /// per flow, topic and group. Exit 0 ready, 2 not yet, 64 usage error, 1 cannot tell.
    Cutover {
        /// Only this flow (`<source>-><target>`); default every replicating flow.
        #[arg(long, value_name = "A->B")]
        flow: Option<String>,
        /// Only source topics matching this regular expression (whole name).
        #[arg(long, value_name = "REGEX")]
        topics: Option<String>,
        /// Only consumer groups matching this regular expression (whole name).
        #[arg(long, value_name = "REGEX")]
        groups: Option<String>,
        /// How long no record may have been written to the selected topics.
        #[arg(long, default_value_t = 30, value_name = "N")]
        quiet_seconds: u64,
        /// First ask the daemon for one immediate checkpoint and group-offset-sync round.
        #[arg(long)]
        final_sync: bool,
        /// Judge again every 2 s until ready or `--timeout`.
        #[arg(long)]
        wait: bool,
        /// With `--wait`: give up after this many seconds.
        #[arg(long, default_value_t = 600, value_name = "S", requires = "wait")]
        timeout: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Ask this address instead of the file's `mirrord.http.listen`.
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<std::net::SocketAddr>,
        /// The MirrorMaker 2 properties file the daemon runs.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print where a consumer group resumes on the target: its committed offsets on the source,
    /// the translated offsets from the latest checkpoints, and their age (like MM2's
    /// RemoteClusterUtils.translateOffsets).
    /// Convert the configs of MirrorMaker 2's connectors on a Kafka Connect cluster (source,
    /// checkpoint, heartbeat) into a dedicated-mode properties file that takes over their progress.
    ImportConnect {
        /// The Kafka Connect cluster's offsets topic (its workers' `offset.storage.topic`), where
        /// the source connector's progress is taken over from.
        #[arg(long, default_value = "connect-offsets")]
        offsets_topic: String,
        /// The MirrorSourceConnector's name on the Connect cluster, when its config file does not
        /// say (`name`): Connect stored its progress under that name.
        #[arg(long)]
        source_connector_name: Option<String>,
        /// Write the file here (created with mode 0600, secrets included) instead of printing it
        /// with secrets masked.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The connectors' configs: JSON (as POSTed to Connect's REST API, or the bare `config`
        /// object) or properties, one file per connector of one source->target pair.
        #[arg(value_name = "CONNECTOR_CONFIG", required = true)]
        files: Vec<PathBuf>,
    },
    TranslateOffsets {
        /// The consumer group.
        #[arg(long)]
        group: String,
        /// Source cluster alias (the group's current cluster).
        #[arg(long)]
        source: String,
        /// Target cluster alias (where the group moves to).
        #[arg(long)]
        target: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The MirrorMaker 2 properties file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}
