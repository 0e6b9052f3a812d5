//! `latency`, `multinode` and `fanout`: posts at a fixed rate, open loop, each delivery timed from when it
//! was due.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
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

/// `fanout`: a city-wide community group whose members are all connected, posted to at a fixed rate,
/// beside the patient groups its members also belong to, with their own traffic.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct FanoutArgs {
    /// Members of the community group (Musashino registers 453 professionals), each with one connection
    /// subscribed to the community group and to their patient group.
    #[arg(long, default_value_t = 450)]
    pub members: usize,
    /// Posts per second into the community group.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Posts per second into the patient groups, beside it.
    #[arg(long, default_value_t = 100)]
    pub patient_rate: u32,
    /// Members of each patient group.
    #[arg(long, default_value_t = 8)]
    pub group_size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of posting before measuring.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Server nodes the members are spread over (more than one needs `--database-url`, PostgreSQL).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

/// What a rate run posts: patient groups, and perhaps a community group over their first members.
#[derive(Debug)]
struct Plan {
    groups: usize,
    size: usize,
    rate: u32,
    /// Community group members (the first sockets) and its posts per second.
    community: Option<(usize, u32)>,
    duration: u64,
    warmup: u64,
}

/// Notices for the community group: rule 4 keeps patients out of it.
fn community_body(due_us: u64, node: usize, socket: usize) -> String {
    format!("研修会のお知らせ：多職種連携研修は第3木曜19時から市民会館で行います。[{due_us}:{node}:{socket}]")
}

pub async fn rate(servers: &Servers, run: &str, args: &RateArgs, nodes: usize, report: &mut Report) -> Result<()> {
    let (groups, size, rate) = if nodes > 1 {
        (args.groups.unwrap_or(200), args.group_size.unwrap_or(2), args.rate.unwrap_or(5000))
    } else {
        (args.groups.unwrap_or(625), args.group_size.unwrap_or(8), args.rate.unwrap_or(1000))
    };
    report.parameters = serde_json::json!({
        "groups": groups, "group_size": size, "rate": rate, "duration_s": args.duration, "warmup_s": args.warmup,
    });
    let plan = Plan { groups, size, rate, community: None, duration: args.duration, warmup: args.warmup };
    run_plan(servers, run, &plan, nodes, report).await
}

pub async fn fanout(servers: &Servers, run: &str, args: &FanoutArgs, nodes: usize, report: &mut Report) -> Result<()> {
    report.parameters = serde_json::to_value(args)?;
    let size = args.group_size.max(2);
    let plan = Plan {
        groups: args.members.div_ceil(size),
        size,
        rate: args.patient_rate,
        community: Some((args.members.max(2), args.rate)),
        duration: args.duration,
        warmup: args.warmup,
    };
    run_plan(servers, run, &plan, nodes, report).await
}

async fn run_plan(servers: &Servers, run: &str, plan: &Plan, nodes: usize, report: &mut Report) -> Result<()> {
    let (groups_n, size, rate) = (plan.groups, plan.size, plan.rate);
    let groups = provision_timed(servers, run, groups_n, size, report).await?;
    let community = match plan.community {
        Some((members, _)) => Some(community_group(servers, run, &groups, members, report).await?),
        None => None,
    };
    let community_members = plan.community.map_or(0, |(m, _)| m);
    let community_id = community.as_ref().map(|c| c.id);

    let base = Instant::now();
    let start_us = micros_since(base) + 1_000_000 * 600; // replaced once everyone is subscribed
    let recorder = Arc::new(Mutex::new(Recorder {
        from_us: start_us,
        to_us: start_us,
        ack: histogram(),
        same_node: histogram(),
        other_node: histogram(),
        by_second: (0..plan.duration).map(|_| histogram()).collect(),
        acks: 0,
        deliveries: 0,
        errors: 0,
        first_error: None,
        resyncs: 0,
        community: histogram(),
    }));
    let subscribed = Arc::new(AtomicUsize::new(0));
    let sockets: Vec<(usize, usize, usize)> =
        (0..groups_n).flat_map(|g| (0..size).map(move |m| (g, m, m % nodes))).collect();
    let connected_at = Instant::now();
    let connected: Vec<Result<(usize, LiveSender)>> = futures_util::stream::iter(sockets.iter().copied().enumerate())
        .map(|(socket, (g, m, node))| {
            let recorder = recorder.clone();
            let subscribed = subscribed.clone();
            let groups = &groups;
            async move {
                let mut ids = vec![groups[g].id];
                ids.extend(community_id.filter(|_| socket < community_members));
                let live = subscribe_all(servers, &groups[g].members[m], &ids, node).await?;
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
                                    let h = if Some(post.group_id) == community_id {
                                        &mut r.community
                                    } else if from_node == node {
                                        &mut r.same_node
                                    } else {
                                        &mut r.other_node
                                    };
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
    let mut senders: Vec<Option<LiveSender>> = (0..sockets.len()).map(|_| None).collect();
    for result in connected {
        let (socket, sender) = result?;
        senders[socket] = Some(sender);
    }
    wait_until(&subscribed, sockets.len(), Duration::from_secs(300)).await?;
    report.figure("connect and subscribe all members", connected_at.elapsed().as_secs_f64(), "s", None);

    // Open loop: post i is due at start + i/rate, whenever it is actually sent.
    let start = Instant::now() + Duration::from_millis(500);
    let start_offset = micros(start.duration_since(base));
    let measure_from = start_offset + plan.warmup * 1_000_000;
    let measure_to = measure_from + plan.duration * 1_000_000;
    {
        let mut r = recorder.lock().expect("recorder");
        r.from_us = measure_from;
        r.to_us = measure_to;
    }
    // Two streams merged by due time: the patient groups' posts and the community group's.
    let seconds_total = plan.warmup + plan.duration;
    let patient = Stream::new(rate, seconds_total);
    let notices = plan.community.map_or_else(|| Stream::new(0, 0), |(_, r)| Stream::new(r, seconds_total));
    let mut streams = [patient, notices];
    let mut watch = None;
    let (mut sent_measured, mut notices_measured) = (0u64, 0u64);
    while let Some(which) = Stream::next_of(&streams) {
        let i = streams[which].sent;
        streams[which].sent += 1;
        let due = start + Duration::from_nanos(i * streams[which].interval_ns);
        tokio::time::sleep_until(due.into()).await;
        let due_us = micros(due.duration_since(base));
        if watch.is_none() && due_us >= measure_from {
            watch = Some(ProcWatch::start(servers));
        }
        let i = usize::try_from(i).unwrap_or(usize::MAX);
        let (socket, group, text) = if which == 0 {
            let g = i % groups_n;
            let m = (i / groups_n) % size;
            (g * size + m, groups[g].id, body as fn(u64, usize, usize) -> String)
        } else {
            let id = community_id.context("a community post without the group")?;
            (i % community_members, id, community_body as fn(u64, usize, usize) -> String)
        };
        let node = (socket % size) % nodes;
        if due_us >= measure_from {
            if which == 0 { sent_measured += 1 } else { notices_measured += 1 }
        }
        let frame = new_post(due_us.to_string(), group, text(due_us, node, socket));
        if let Some(sender) = senders[socket].as_mut()
            && sender.send(&frame).await.is_err()
        {
            recorder.lock().expect("recorder").errors += 1;
        }
    }
    let scheduled_end = streams.iter().map(Stream::end).max().unwrap_or(Duration::ZERO);
    let behind = Instant::now().saturating_duration_since(start + scheduled_end);
    if let Some(watch) = &watch {
        report.processes = watch.finish();
    }
    // Let the last posts arrive: up to 10 s, or until every delivery is in.
    let expected = sent_measured * (size as u64 - 1) + notices_measured * (community_members as u64).saturating_sub(1);
    let posts_measured = sent_measured + notices_measured;
    for _ in 0..100 {
        let done = {
            let r = recorder.lock().expect("recorder");
            r.deliveries >= expected && r.acks >= posts_measured
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lagged = servers.lagged_connections().await;
    for sender in senders.into_iter().flatten() {
        sender.close().await;
    }

    let r = recorder.lock().expect("recorder");
    let seconds = plan.duration as f64;
    report.figure("posts sent (scheduled rate)", posts_measured as f64 / seconds, "posts/s", None);
    report.figure("posts acknowledged", r.acks as f64 / seconds, "posts/s", None);
    if community.is_some() {
        report.figure("community deliveries", r.community.len() as f64 / seconds, "deliveries/s", None);
        report.figure("community post→delivery p50", percentile_ms(&r.community, 0.50), "ms", None);
        report.figure("community post→delivery p99", percentile_ms(&r.community, 0.99), "ms", Some(Goal::AtMost(25.0)));
        let cpu: f64 = report.processes.iter().filter(|p| p.process.starts_with("server")).map(|p| p.cpu_seconds).sum();
        let delivered = r.deliveries.max(1) as f64;
        report.figure("server CPU per delivery", cpu * 1e6 / delivered, "µs", None);
        report.figure("patient post→delivery p99", percentile_ms(&r.same_node, 0.99), "ms", Some(Goal::AtMost(25.0)));
    } else if nodes > 1 {
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
    if community.is_some() {
        report.latency("community post→delivery", &r.community);
    }
    report.latency("post→delivery, same node", &r.same_node);
    if nodes > 1 {
        report.latency("post→delivery, other node", &r.other_node);
    }
    report.timeline =
        r.by_second.iter().enumerate().map(|(i, h)| Latency::of(&format!("second {}", i + 1), h)).collect();
    report.count("connected members", sockets.len() as u64);
    report.count("posts sent (measured)", posts_measured);
    report.count("community posts sent (measured)", notices_measured);
    report.count("acks (measured)", r.acks);
    report.count("deliveries expected", expected);
    report.count("deliveries received", r.deliveries);
    report.count("error frames", r.errors);
    report.count("resyncs (slow reader replays)", r.resyncs);
    if let Some(lagged) = lagged {
        report.count("lagged connections (server, whole run)", lagged);
    }
    if let Some(error) = &r.first_error {
        report.notes.push(format!("first error frame: {error}"));
    }
    Ok(())
}

/// One stream of posts at a fixed rate: post `i` is due `i` intervals after the start.
#[derive(Debug, Clone, Copy)]
struct Stream {
    interval_ns: u64,
    total: u64,
    sent: u64,
}

impl Stream {
    fn new(rate: u32, seconds: u64) -> Self {
        Self { interval_ns: 1_000_000_000 / u64::from(rate.max(1)), total: seconds * u64::from(rate), sent: 0 }
    }

    fn end(&self) -> Duration {
        Duration::from_nanos(self.total * self.interval_ns)
    }

    /// The stream whose next post is due first, if any has posts left.
    fn next_of(streams: &[Self]) -> Option<usize> {
        (0..streams.len())
            .filter(|&i| streams[i].sent < streams[i].total)
            .min_by_key(|&i| streams[i].sent * streams[i].interval_ns)
    }
}

/// The city-wide group: created by the administrator, with the first `members` provisioned users added.
async fn community_group(
    servers: &Servers,
    run: &str,
    groups: &[Group],
    members: usize,
    report: &mut Report,
) -> Result<Group> {
    let started = Instant::now();
    let created = servers.admin.admin_create_community_group(&format!("ベンチ市 多職種連携 {run}")).await?;
    let chosen: Vec<_> = groups.iter().flat_map(|g| g.members.iter()).take(members).cloned().collect();
    let added: Vec<Result<()>> = futures_util::stream::iter(&chosen)
        .map(|m| async { Ok(servers.admin.admin_add_community_member(created.id, &m.login).await?) })
        .buffer_unordered(16)
        .collect()
        .await;
    added.into_iter().collect::<Result<Vec<()>>>()?;
    report.figure("community group of all members", started.elapsed().as_secs_f64(), "s", None);
    Ok(Group { id: created.id, members: chosen })
}

#[cfg(test)]
mod tests {
    use super::Stream;

    #[test]
    fn two_streams_are_merged_in_due_order() {
        // 4 posts/s and 1 post/s over 2 s: each post in the order it is due, the earlier stream first on a tie.
        let mut streams = [Stream::new(4, 2), Stream::new(1, 2)];
        let mut order = Vec::new();
        while let Some(which) = Stream::next_of(&streams) {
            let due_ms = streams[which].sent * streams[which].interval_ns / 1_000_000;
            streams[which].sent += 1;
            order.push((which, due_ms));
        }
        let expected =
            [(0, 0), (1, 0), (0, 250), (0, 500), (0, 750), (0, 1000), (1, 1000), (0, 1250), (0, 1500), (0, 1750)];
        assert_eq!(order, expected);
        assert_eq!(streams[0].end().as_millis(), 2000);
    }

    #[test]
    fn a_stream_at_rate_zero_posts_nothing() {
        let streams = [Stream::new(0, 10)];
        assert_eq!(Stream::next_of(&streams), None);
    }
}
