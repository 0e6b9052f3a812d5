//! `renkei-bench`: the load generator, on the same client library as `renkei` (as pgbench ships with
//! PostgreSQL). It starts its own servers (or drives running ones), provisions a realistic population
//! through the API, runs one scenario and prints its figures beside the goals; `--json` writes them.
//!
//!     renkei-bench throughput
//!     renkei-bench latency
//!     renkei-bench connections
//!     renkei-bench resume
//!     renkei-bench --database-url postgres://... multinode

// No `unwrap` outside tests (clippy.toml allows it there), and a cast that may cut a number says so
// (`try_from`); the test crates are exempt.
#![warn(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod population;
mod report;
mod scenarios;
mod servers;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::report::Report;
use crate::servers::{ServerArgs, Servers};

#[derive(Debug, Parser)]
#[command(name = "renkei-bench", version, about = "Load generator and benchmarks for renkei")]
struct Args {
    #[command(flatten)]
    servers: ServerArgs,
    /// Also write the report as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Maximum durable posts per second (pipelined posters, acknowledged after commit).
    Throughput(scenarios::ThroughputArgs),
    /// Post→delivery latency at a fixed rate with every member connected (default 1,000 posts/s,
    /// 5,000 members in groups of 8).
    Latency(scenarios::RateArgs),
    /// Idle sockets held and server memory per socket.
    Connections(scenarios::ConnectionsArgs),
    /// Time to replay posts missed while away (default 10,000).
    Resume(scenarios::ResumeArgs),
    /// Two nodes on one PostgreSQL: posts through one node delivered on the other (default 5,000 posts/s).
    Multinode(scenarios::RateArgs),
    /// 5 MiB photos: one upload's time, many at once (throughput, peak memory), and posting with photos.
    Attachments(scenarios::AttachmentsArgs),
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Self::Throughput(_) => "throughput",
            Self::Latency(_) => "latency",
            Self::Connections(_) => "connections",
            Self::Resume(_) => "resume",
            Self::Multinode(_) => "multinode",
            Self::Attachments(_) => "attachments",
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nodes = if matches!(args.scenario, Scenario::Multinode(_)) { 2 } else { 1 };
    // Each run provisions its own users and groups, so runs can share a database.
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let servers = Servers::start(&args.servers, nodes, &run_id).await?;
    let mut report = Report::new(args.scenario.name(), &servers.backend, nodes, serde_json::Value::Null);
    let outcome = match &args.scenario {
        Scenario::Throughput(a) => scenarios::throughput(&servers, &run_id, a, &mut report).await,
        Scenario::Latency(a) | Scenario::Multinode(a) => {
            scenarios::rate(&servers, &run_id, a, nodes, &mut report).await
        }
        Scenario::Connections(a) => scenarios::connections(&servers, &run_id, a, &mut report).await,
        Scenario::Resume(a) => scenarios::resume(&servers, &run_id, a, &mut report).await,
        Scenario::Attachments(a) => scenarios::attachments(&servers, &run_id, a, &mut report).await,
    };
    if let Err(e) = outcome {
        if let Some(dir) = servers.dir() {
            eprintln!("renkei-bench: server logs in {} (kept with --keep)", dir.display());
        }
        return Err(e);
    }
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}
