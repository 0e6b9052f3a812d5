//! `throughput`: as many posts as the server takes, many in flight per connection.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use renkei_protocol::ServerFrame;

use crate::report::{Goal, Report, histogram};
use crate::servers::{ProcWatch, Servers};

use super::*;

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ThroughputArgs {
    /// Groups, each with one poster connection (`--concurrency` says the same).
    #[arg(long, alias = "concurrency", default_value_t = 256)]
    pub groups: usize,
    /// Posts each connection keeps in flight, pipelined, each acknowledged after its commit (`--in-flight`
    /// says the same; `--concurrency 16 --in-flight 1` is sixteen members posting one at a time).
    #[arg(long, alias = "in-flight", default_value_t = 64)]
    pub window: usize,
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
}

/// `throughput`: every poster keeps `window` posts in flight; how many are durably committed per second.
pub async fn throughput(servers: &Servers, run: &str, args: &ThroughputArgs, report: &mut Report) -> Result<()> {
    report.parameters = serde_json::to_value(args)?;
    let groups = provision_timed(servers, run, args.groups, 2, report).await?;
    let start = Instant::now() + Duration::from_secs(1);
    let measure_from = start + Duration::from_secs(args.warmup);
    let measure_to = measure_from + Duration::from_secs(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for group in &groups {
        let mut live = subscribe(servers, group, 0, 0).await?;
        let group_id = group.id;
        let window = args.window;
        tasks.spawn(async move {
            let mut h = histogram();
            let (mut acked, mut errors) = (0u64, 0u64);
            tokio::time::sleep_until(start.into()).await;
            let mut in_flight: HashMap<u64, Instant> = HashMap::new();
            let mut next = 0u64;
            let post = |i: u64| new_post(i.to_string(), group_id, body(i, 0, usize::MAX));
            for _ in 0..window {
                in_flight.insert(next, Instant::now());
                live.send(&post(next)).await?;
                next += 1;
            }
            while !in_flight.is_empty() {
                let frame = match tokio::time::timeout(Duration::from_secs(30), live.next()).await {
                    Ok(Some(Ok(frame))) => frame,
                    Ok(Some(Err(e))) => bail!("a poster's connection failed: {e}"),
                    Ok(None) => bail!("a poster's connection was closed"),
                    Err(_) => bail!(
                        "a poster's connection stalled: nothing for 30 s, {} posts unacknowledged",
                        in_flight.len()
                    ),
                };
                let now = Instant::now();
                match frame {
                    ServerFrame::Ack { id, seq: Some(_), .. } => {
                        let sent = id.parse().ok().and_then(|i| in_flight.remove(&i));
                        if let Some(sent) = sent
                            && sent >= measure_from
                            && sent < measure_to
                        {
                            acked += 1;
                            let _ = h.record(micros(now - sent).max(1));
                        }
                    }
                    ServerFrame::Error { id, .. } => {
                        errors += 1;
                        if let Some(i) = id.and_then(|i| i.parse().ok()) {
                            in_flight.remove(&i);
                        }
                    }
                    _ => continue,
                }
                if now < measure_to {
                    in_flight.insert(next, Instant::now());
                    live.send(&post(next)).await?;
                    next += 1;
                }
            }
            live.close().await;
            Ok((h, acked, errors))
        });
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let watch = ProcWatch::start(servers);
    tokio::time::sleep_until(measure_to.into()).await;
    report.processes = watch.finish();
    let (mut all, mut acked, mut errors) = (histogram(), 0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (h, a, e) = joined??;
        all.add(&h)?;
        acked += a;
        errors += e;
    }
    let rate = acked as f64 / args.duration as f64;
    report.figure("durable posts per second", rate, "posts/s", Some(Goal::AtLeast(20_000.0)));
    report.latency("post→ack (closed loop)", &all);
    report.count("posts acknowledged (measured)", acked);
    report.count("error frames", errors);
    Ok(())
}
