//! `latency` and `multinode`: posts at a fixed rate, open loop, each delivery timed from when it was due.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use renkei_cli::live::LiveSender;
use renkei_protocol::ServerFrame;

use crate::report::{Goal, Latency, Report, histogram};
use crate::servers::{ProcWatch, Servers};

use super::*;

/// `latency` and `multinode`: every member of `groups` groups connected (member `m` on node
/// `m % nodes`), posts sent at a fixed `rate` in rotation over groups and members.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct RateArgs {
    /// Patient groups (each of --group-size distinct members, all connected).
    #[arg(long)]
    pub groups: Option<usize>,
    #[arg(long)]
    pub group_size: Option<usize>,
    /// Posts per second, sent on schedule whatever the server does.
    #[arg(long)]
    pub rate: Option<u32>,
    /// Measured seconds.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of posting before measuring.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
}

pub async fn rate(servers: &Servers, run: &str, args: &RateArgs, nodes: usize, report: &mut Report) -> Result<()> {
    let (groups_n, size, rate) = if nodes > 1 {
        (args.groups.unwrap_or(200), args.group_size.unwrap_or(2), args.rate.unwrap_or(5000))
    } else {
        (args.groups.unwrap_or(625), args.group_size.unwrap_or(8), args.rate.unwrap_or(1000))
    };
    report.parameters = serde_json::json!({
        "groups": groups_n, "group_size": size, "rate": rate, "duration_s": args.duration, "warmup_s": args.warmup,
    });
    let groups = provision_timed(servers, run, groups_n, size, report).await?;

    let base = Instant::now();
    let start_us = micros_since(base) + 1_000_000 * 600; // replaced once everyone is subscribed
    let recorder = Arc::new(Mutex::new(Recorder {
        from_us: start_us,
        to_us: start_us,
        ack: histogram(),
        same_node: histogram(),
        other_node: histogram(),
        by_second: (0..args.duration).map(|_| histogram()).collect(),
        acks: 0,
        deliveries: 0,
        errors: 0,
        first_error: None,
        resyncs: 0,
    }));
    let subscribed = Arc::new(AtomicUsize::new(0));
    let plan: Vec<(usize, usize, usize)> =
        (0..groups_n).flat_map(|g| (0..size).map(move |m| (g, m, m % nodes))).collect();
    let connected_at = Instant::now();
    let connected: Vec<Result<(usize, LiveSender)>> = futures_util::stream::iter(plan.iter().copied().enumerate())
        .map(|(socket, (g, m, node))| {
            let recorder = recorder.clone();
            let subscribed = subscribed.clone();
            let groups = &groups;
            async move {
                let live = subscribe(servers, &groups[g], m, node).await?;
                let (sender, mut receiver) = live.split();
                tokio::spawn(async move {
                    while let Some(Ok(frame)) = receiver.next().await {
                        let now = micros_since(base);
                        match frame {
                            ServerFrame::Subscribed { .. } => {
                                subscribed.fetch_add(1, Ordering::Relaxed);
                            }
                            ServerFrame::Post { post } => {
                                let Some((due, from_node, from_socket)) = post.body.as_deref().and_then(parse_stamp)
                                else {
                                    continue;
                                };
                                if from_socket == socket {
                                    continue;
                                }
                                let mut r = recorder.lock().expect("recorder");
                                if due >= r.from_us && due < r.to_us {
                                    r.deliveries += 1;
                                    let latency = now.saturating_sub(due).max(1);
                                    let h = if from_node == node { &mut r.same_node } else { &mut r.other_node };
                                    let _ = h.record(latency);
                                    let second = ((due - r.from_us) / 1_000_000) as usize;
                                    if let Some(h) = r.by_second.get_mut(second) {
                                        let _ = h.record(latency);
                                    }
                                }
                            }
                            ServerFrame::Ack { id, seq: Some(_), .. } => {
                                let Ok(due) = id.parse::<u64>() else { continue };
                                let mut r = recorder.lock().expect("recorder");
                                if due >= r.from_us && due < r.to_us {
                                    r.acks += 1;
                                    let _ = r.ack.record(now.saturating_sub(due).max(1));
                                }
                            }
                            ServerFrame::Error { code, message, .. } => {
                                let mut r = recorder.lock().expect("recorder");
                                r.errors += 1;
                                r.first_error.get_or_insert_with(|| format!("{code}: {message}"));
                            }
                            ServerFrame::Resync { .. } => recorder.lock().expect("recorder").resyncs += 1,
                            _ => {}
                        }
                    }
                });
                Ok((socket, sender))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut senders: Vec<Option<LiveSender>> = (0..plan.len()).map(|_| None).collect();
    for result in connected {
        let (socket, sender) = result?;
        senders[socket] = Some(sender);
    }
    wait_until(&subscribed, plan.len(), Duration::from_secs(300)).await?;
    report.figure("connect and subscribe all members", connected_at.elapsed().as_secs_f64(), "s", None);

    // Open loop: post i is due at start + i/rate, whenever it is actually sent.
    let start = Instant::now() + Duration::from_millis(500);
    let start_offset = micros(start.duration_since(base));
    let measure_from = start_offset + args.warmup * 1_000_000;
    let measure_to = measure_from + args.duration * 1_000_000;
    {
        let mut r = recorder.lock().expect("recorder");
        r.from_us = measure_from;
        r.to_us = measure_to;
    }
    let interval_ns = 1_000_000_000 / u64::from(rate.max(1));
    let total = (args.warmup + args.duration) * u64::from(rate);
    let mut watch = None;
    let mut sent_measured = 0u64;
    for i in 0..total {
        let due = start + Duration::from_nanos(i * interval_ns);
        tokio::time::sleep_until(due.into()).await;
        let due_us = micros(due.duration_since(base));
        if watch.is_none() && due_us >= measure_from {
            watch = Some(ProcWatch::start(servers));
        }
        let i = usize::try_from(i).unwrap_or(usize::MAX);
        let g = i % groups_n;
        let m = (i / groups_n) % size;
        let socket = g * size + m;
        let node = m % nodes;
        if due_us >= measure_from {
            sent_measured += 1;
        }
        let frame = new_post(due_us.to_string(), groups[g].id, body(due_us, node, socket));
        if let Some(sender) = senders[socket].as_mut()
            && sender.send(&frame).await.is_err()
        {
            recorder.lock().expect("recorder").errors += 1;
        }
    }
    let behind = Instant::now().saturating_duration_since(start + Duration::from_nanos(total * interval_ns));
    if let Some(watch) = &watch {
        report.processes = watch.finish();
    }
    // Let the last posts arrive: up to 10 s, or until every delivery is in.
    let expected = sent_measured * (size as u64 - 1);
    for _ in 0..100 {
        let done = {
            let r = recorder.lock().expect("recorder");
            r.deliveries >= expected && r.acks >= sent_measured
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for sender in senders.into_iter().flatten() {
        sender.close().await;
    }

    let r = recorder.lock().expect("recorder");
    let seconds = args.duration as f64;
    report.figure("posts sent (scheduled rate)", sent_measured as f64 / seconds, "posts/s", None);
    report.figure("posts acknowledged", r.acks as f64 / seconds, "posts/s", None);
    if nodes > 1 {
        report.figure("posts delivered across nodes", r.other_node.len() as f64 / seconds, "deliveries/s", None);
        report.figure(
            "post→delivery p99, other node",
            percentile_ms(&r.other_node, 0.99),
            "ms",
            Some(Goal::AtMost(50.0)),
        );
    } else {
        report.figure("post→delivery p50", percentile_ms(&r.same_node, 0.50), "ms", Some(Goal::AtMost(5.0)));
        report.figure("post→delivery p99", percentile_ms(&r.same_node, 0.99), "ms", Some(Goal::AtMost(25.0)));
    }
    report.figure("generator behind schedule at the end", behind.as_secs_f64() * 1000.0, "ms", None);
    report.latency("post→ack", &r.ack);
    report.latency("post→delivery, same node", &r.same_node);
    if nodes > 1 {
        report.latency("post→delivery, other node", &r.other_node);
    }
    report.timeline =
        r.by_second.iter().enumerate().map(|(i, h)| Latency::of(&format!("second {}", i + 1), h)).collect();
    report.count("connected members", plan.len() as u64);
    report.count("posts sent (measured)", sent_measured);
    report.count("acks (measured)", r.acks);
    report.count("deliveries expected", expected);
    report.count("deliveries received", r.deliveries);
    report.count("error frames", r.errors);
    report.count("resyncs (slow reader replays)", r.resyncs);
    if let Some(error) = &r.first_error {
        report.notes.push(format!("first error frame: {error}"));
    }
    Ok(())
}
