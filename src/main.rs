//! The `kafka-mirrord` binary: parses the command line and hands over to a command.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kafka_mirrord::cli::{Cli, Command};
use kafka_mirrord::commands;
use kafka_mirrord::exit;
use kafka_mirrord::plan::PlanOptions;

fn main() -> ExitCode {
    kafka_mirrord::runtime::allocator::limit_malloc_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                exit::CONFIG_ERROR
            } else {
                exit::OK
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kafka-mirrord: cannot start the async runtime: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    if let Some(Command::Status {
        address,
        json,
        file,
    }) = &cli.command
    {
        return ExitCode::from(commands::status::run(file.as_deref(), *address, *json));
    }
    if let Some(Command::Cutover {
        flow,
        topics,
        groups,
        quiet_seconds,
        final_sync,
        wait,
        timeout,
        json,
        address,
        file,
    }) = &cli.command
    {
        let args = commands::cutover::CutoverArgs {
            file: file.clone(),
            flow: flow.clone(),
            topics: topics.clone(),
            groups: groups.clone(),
            quiet_seconds: *quiet_seconds,
            final_sync: *final_sync,
            wait: *wait,
            timeout: Duration::from_secs(*timeout),
            json: *json,
            address: *address,
        };
        return ExitCode::from(commands::cutover::run(&args));
    }
    if let Some(Command::ImportConnect {
        offsets_topic,
        source_connector_name,
        output,
        files,
    }) = &cli.command
    {
        return ExitCode::from(commands::import_connect::run(
            files,
            offsets_topic,
            source_connector_name.as_deref(),
            output.as_deref(),
        ));
    }
    if let Some(Command::TranslateOffsets {
        group,
        source,
        target,
        json,
        file,
    }) = &cli.command
    {
        let code = runtime.block_on(commands::translate::run(file, group, source, target, *json));
        return ExitCode::from(code);
    }
    let target = match &cli.command {
        Some(Command::Check { target, .. }) => target.clone(),
        _ => cli.run.clone(),
    };
    let command = cli.command;
    let (file, target_clusters) = match target.normalized() {
        Ok(parts) => parts,
        Err(message) => {
            eprintln!("kafka-mirrord: {message}\nusage: kafka-mirrord [--clusters ALIAS ...] FILE (see --help)");
            return ExitCode::from(exit::CONFIG_ERROR);
        }
    };
    let options = PlanOptions { target_clusters };
    let code = runtime.block_on(async {
        match command {
            Some(Command::Check {
                json,
                connect,
                timeout,
                ..
            }) => {
                commands::check::run(&file, &options, json, connect, Duration::from_secs(timeout))
                    .await
            }
            _ => commands::run::run(&file, &options).await,
        }
    });
    // Never wait for blocking threads still inside librdkafka (a cluster that does not answer):
    // the shutdown deadline already passed or a second signal asked to exit now.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}
