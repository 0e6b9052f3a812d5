//! `renkei-bench`: the load generator, on the same client library as `renkei` (as pgbench ships with
//! PostgreSQL). It starts its own servers (or drives running ones), provisions a realistic population
//! through the API, runs one scenario and prints its figures beside the goals; `--json` writes them.
//!
//!     renkei-bench throughput
//!     renkei-bench latency
//!     renkei-bench connections
//!     renkei-bench resume
//!     renkei-bench --database-url postgres://... multinode
//!     renkei-bench fanout
//!     renkei-bench history

// No `unwrap` outside tests (clippy.toml allows it there), and a cast that may cut a number says so
// (`try_from`); the test crates are exempt.
#![warn(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod plot;
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
    /// A city-wide community group of 450 members, all connected, at 100 posts/s (45,000 deliveries a
    /// second), beside the patient groups they belong to.
    Fanout(scenarios::FanoutArgs),
    /// Throughput, latency, resume and history pages again as a bulk loader fills the database (default
    /// 0, 1 million and 10 million posts over 5,000 groups).
    History(scenarios::HistoryArgs),
    /// The cost curve from saved `history` and `fanout` reports: an SVG and Markdown tables (starts no
    /// server).
    Plot(plot::PlotArgs),
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
            Self::Fanout(_) => "fanout",
            Self::History(_) => "history",
            Self::Plot(_) => "plot",
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Scenario::Plot(a) = &args.scenario {
        return plot::plot(a);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nodes = match &args.scenario {
        Scenario::Multinode(_) => 2,
        Scenario::Fanout(a) => a.nodes.max(1),
        _ => 1,
    };
    // Each run provisions its own users and groups, so runs can share a database.
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let servers = Servers::start(&args.servers, nodes, &run_id).await?;
    let mut report = Report::new(args.scenario.name(), &servers.backend, nodes, serde_json::Value::Null);
    let outcome = match &args.scenario {
        Scenario::Throughput(a) => scenarios::throughput(&servers, &run_id, a, &mut report).await,
        Scenario::Latency(a) | Scenario::Multinode(a) => {
            scenarios::rate(&servers, &run_id, a, nodes, &mut report).await
        }
        Scenario::Fanout(a) => scenarios::fanout(&servers, &run_id, a, nodes, &mut report).await,
        Scenario::History(a) => scenarios::history(&servers, &run_id, a, &mut report).await,
        Scenario::Plot(a) => plot::plot(a),
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
