//! The five scenarios. Each provisions what it needs through the API, measures, and fills a
//! [`Report`]. Latencies are measured from the moment a post was *due* (open loop), so a stalled
//! server cannot hide its stall by slowing the generator down (coordinated omission).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use renkei_cli::live::{Live, LiveSender};
use renkei_protocol::{ClientFrame, NewPost, PostKind, ServerFrame, Subscription};
use uuid::Uuid;

use crate::population::{Group, provision};
use crate::report::{Goal, Latency, Report, histogram};
use crate::servers::{ProcSample, ProcWatch, Servers};

/// A nurse's ordinary note; the stamp at the end is `[due µs:node:socket]`.
fn body(due_us: u64, node: usize, socket: usize) -> String {
    format!("訪問しました。血圧 124/72、体温 36.5 度、食事は8割摂取。夜間よく眠れています。[{due_us}:{node}:{socket}]")
}

fn parse_stamp(body: &str) -> Option<(u64, usize, usize)> {
    let stamp = body.rsplit_once('[')?.1.strip_suffix(']')?;
    let mut parts = stamp.split(':');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn new_post(id: String, group_id: Uuid, body: String) -> ClientFrame {
    let client_msg_id = format!("bench-{id}-{}", Uuid::new_v4().simple());
    ClientFrame::Post {
        id,
        group_id,
        post: NewPost {
            kind: PostKind::Update,
            body,
            reply_to: None,
            client_msg_id,
            confirm_not_emergency: false,
            attachments: Vec::new(),
            care_policy: None,
        },
    }
}

/// A percentile in milliseconds; NaN (never meeting a goal) when nothing was measured.
fn percentile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() { f64::NAN } else { h.value_at_quantile(q) as f64 / 1000.0 }
}

fn micros_since(base: Instant) -> u64 {
    micros(base.elapsed())
}

async fn provision_timed(
    servers: &Servers,
    run: &str,
    groups: usize,
    size: usize,
    report: &mut Report,
) -> Result<Vec<Group>> {
    let started = Instant::now();
    let made = provision(&servers.admin, run, groups, size, 16).await?;
    report.figure("provisioning (users, groups, consents, invitations)", started.elapsed().as_secs_f64(), "s", None);
    report.count("users provisioned", (groups * size) as u64);
    Ok(made)
}

/// Opens a live connection for `member` on `node` and subscribes it to `group` from the start.
async fn subscribe(servers: &Servers, group: &Group, member: usize, node: usize) -> Result<Live> {
    let client = group.members[member].client.on_node(&servers.nodes[node].url);
    let mut live = client.connect_live().await.context("connect")?;
    live.send(&ClientFrame::Subscribe {
        id: "s".into(),
        groups: vec![Subscription { group_id: group.id, after_seq: 0 }],
    })
    .await?;
    Ok(live)
}

/// What the receivers of a rate run record.
#[derive(Debug)]
struct Recorder {
    /// Posts due in [from, to) µs are measured; the rest is warm-up and drain.
    from_us: u64,
    to_us: u64,
    ack: Histogram<u64>,
    same_node: Histogram<u64>,
    other_node: Histogram<u64>,
    /// Deliveries by the second (of the measured interval) their post was due: where a tail sits in time.
    by_second: Vec<Histogram<u64>>,
    acks: u64,
    deliveries: u64,
    errors: u64,
    /// The first error frame, to say what went wrong.
    first_error: Option<String>,
    resyncs: u64,
}

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

async fn wait_until(counter: &AtomicUsize, target: usize, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while counter.load(Ordering::Relaxed) < target {
        if Instant::now() > deadline {
            bail!("only {} of {target} subscriptions confirmed within {limit:?}", counter.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ThroughputArgs {
    /// Groups, each with one poster connection.
    #[arg(long, default_value_t = 256)]
    pub groups: usize,
    /// Posts each connection keeps in flight (pipelined, acknowledged after commit).
    #[arg(long, default_value_t = 64)]
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

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ConnectionsArgs {
    /// Idle sockets to open, each subscribed to its member's group.
    #[arg(long, default_value_t = 15_000)]
    pub sockets: usize,
    /// Groups of 8 members; sockets are spread over their members (several devices each).
    #[arg(long, default_value_t = 125)]
    pub groups: usize,
}

/// `connections`: ramps idle sockets and reports the server's memory per socket.
pub async fn connections(servers: &Servers, run: &str, args: &ConnectionsArgs, report: &mut Report) -> Result<()> {
    // This process holds one descriptor per socket, and so does the server: stay under 20,000 each.
    if args.sockets > 18_000 {
        bail!("at most 18,000 sockets per node: this machine allows 20,000 open files per process");
    }
    report.parameters = serde_json::to_value(args)?;
    let size = 8;
    let groups = provision_timed(servers, run, args.groups, size, report).await?;
    let pid = servers.nodes[0].pid;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = pid.and_then(|p| ProcSample::read(Some(p)));
    let watch = ProcWatch::start(servers);
    let subscribed = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let users = groups.len() * size;
    let started = Instant::now();
    let opened: Vec<Result<LiveSender>> = futures_util::stream::iter(0..args.sockets)
        .map(|i| {
            let (subscribed, delivered) = (subscribed.clone(), delivered.clone());
            let groups = &groups;
            async move {
                let (g, m) = ((i % users) / size, (i % users) % size);
                let live = subscribe(servers, &groups[g], m, 0).await?;
                let (sender, mut receiver) = live.split();
                tokio::spawn(async move {
                    while let Some(Ok(frame)) = receiver.next().await {
                        match frame {
                            ServerFrame::Subscribed { .. } => subscribed.fetch_add(1, Ordering::Relaxed),
                            ServerFrame::Post { .. } => delivered.fetch_add(1, Ordering::Relaxed),
                            _ => 0,
                        };
                    }
                });
                Ok(sender)
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let senders = opened.into_iter().collect::<Result<Vec<_>>>()?;
    wait_until(&subscribed, args.sockets, Duration::from_secs(600)).await?;
    let ramp = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.and_then(|p| ProcSample::read(Some(p)));
    report.processes = watch.finish();
    report.figure(
        "idle sockets held",
        subscribed.load(Ordering::Relaxed) as f64,
        "sockets",
        Some(Goal::AtLeast(15_000.0)),
    );
    report.figure("ramp (connect + subscribe)", ramp.as_secs_f64(), "s", None);
    if let (Some(before), Some(after)) = (before, after) {
        let per_socket = after.rss_kib.saturating_sub(before.rss_kib) as f64 / args.sockets as f64;
        report.figure("server memory per idle socket (RSS)", per_socket, "KiB", Some(Goal::AtMost(8.0)));
    }
    // Are they alive? One post in every group reaches every socket of its members.
    let posted = Instant::now();
    for group in &groups {
        group.members[0]
            .client
            .post(
                group.id,
                &NewPost {
                    kind: PostKind::Update,
                    body: "本日の訪問予定に変更はありません。".into(),
                    reply_to: None,
                    client_msg_id: Uuid::new_v4().to_string(),
                    confirm_not_emergency: false,
                    attachments: Vec::new(),
                    care_policy: None,
                },
            )
            .await?;
    }
    let _ = wait_until(&delivered, args.sockets, Duration::from_secs(60)).await;
    report.figure("one post per group reached every socket in", posted.elapsed().as_secs_f64() * 1000.0, "ms", None);
    report.count("sockets", args.sockets as u64);
    report.count("deliveries of the liveness posts", delivered.load(Ordering::Relaxed) as u64);
    for sender in senders {
        drop(sender);
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ResumeArgs {
    /// Posts the reader misses while away.
    #[arg(long, default_value_t = 10_000)]
    pub missed: usize,
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// `resume`: a member is away while `missed` posts arrive; how long until reconnecting has replayed
/// them all, gap-free.
pub async fn resume(servers: &Servers, run: &str, args: &ResumeArgs, report: &mut Report) -> Result<()> {
    report.parameters = serde_json::to_value(args)?;
    let size = 8;
    let groups = provision_timed(servers, run, 1, size, report).await?;
    let group = &groups[0];
    let reader = 1;
    let posters: Vec<usize> = (0..size).filter(|m| *m != reader).collect();
    let mut position = 0i64;
    let mut resume_h = histogram();
    let mut replay_h = histogram();
    let mut gaps = 0u64;
    let watch = ProcWatch::start(servers);
    for round in 0..args.rounds {
        // The others post while the reader is away, in chunks of at most 300 posts per connection:
        // within the server's per-connection burst (2 s at 200 frames/s), so filling is not throttled.
        const CHUNK: usize = 300;
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..args.missed.div_ceil(CHUNK) {
            let count = CHUNK.min(args.missed - c * CHUNK);
            let m = posters[c % posters.len()];
            // Posting needs no subscription (and so no replay of earlier rounds).
            let mut live = group.members[m].client.connect_live().await?;
            let group_id = group.id;
            tasks.spawn(async move {
                let mut outstanding = 0usize;
                let mut sent = 0usize;
                while sent < count || outstanding > 0 {
                    while sent < count && outstanding < 64 {
                        live.send(&new_post(sent.to_string(), group_id, body(round as u64, 0, m))).await?;
                        sent += 1;
                        outstanding += 1;
                    }
                    match tokio::time::timeout(Duration::from_secs(30), live.next()).await {
                        Ok(Some(Ok(ServerFrame::Ack { .. }))) => outstanding -= 1,
                        Ok(Some(Ok(ServerFrame::Error { code, message, .. }))) => bail!("refused: {code} {message}"),
                        Ok(Some(Ok(_))) => {}
                        _ => bail!("a poster's connection stalled or closed"),
                    }
                }
                live.close().await;
                Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        // The reader comes back.
        let started = Instant::now();
        let client = group.members[reader].client.clone();
        let mut live = client.connect_live().await?;
        let connected = Instant::now();
        live.send(&ClientFrame::Subscribe {
            id: "r".into(),
            groups: vec![Subscription { group_id: group.id, after_seq: position }],
        })
        .await?;
        let mut received = 0usize;
        let mut confirmed = false;
        while received < args.missed || !confirmed {
            match tokio::time::timeout(Duration::from_secs(30), live.next()).await {
                Ok(Some(Ok(ServerFrame::Post { post }))) => {
                    if post.seq != position + 1 {
                        gaps += 1;
                    }
                    position = post.seq;
                    received += 1;
                }
                Ok(Some(Ok(ServerFrame::Subscribed { .. }))) => confirmed = true,
                Ok(Some(Ok(_))) => {}
                _ => bail!("the replay stalled after {received} posts"),
            }
        }
        let done = Instant::now();
        let _ = resume_h.record(micros(done - started).max(1));
        let _ = replay_h.record(micros(done - connected).max(1));
        live.close().await;
    }
    report.processes = watch.finish();
    report.figure(
        &format!("resume with {} missed posts, slowest of {} rounds", args.missed, args.rounds),
        resume_h.max() as f64 / 1000.0,
        "ms",
        Some(Goal::AtMost(200.0)),
    );
    report.latency("reconnect + subscribe + replay", &resume_h);
    report.latency("subscribe + replay (connected)", &replay_h);
    report.count("posts replayed", (args.missed * args.rounds) as u64);
    report.count("gaps or repeats seen", gaps);
    Ok(())
}

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct AttachmentsArgs {
    /// Sequential uploads of the photo, each timed to its answer (cleaned, thumbnail made, stored).
    #[arg(long, default_value_t = 10)]
    pub uploads: usize,
    /// Uploads started at once (the server cleans `max_concurrent_uploads` at a time and answers the rest
    /// `429`, which they retry after `Retry-After`).
    #[arg(long, default_value_t = 20)]
    pub concurrent: usize,
    /// Posts in the posting mix (over one connection per 380, each within its burst allowance).
    #[arg(long, default_value_t = 20_000)]
    pub posts: usize,
    /// One post in this many shares one of the small photos uploaded before (0: none, to compare; the
    /// photos are uploaded all the same).
    #[arg(long, default_value_t = 10)]
    pub photo_every: usize,
}

/// A phone-camera-like JPEG: 4,000 × 3,000 pixels of gradients and grain, about 5 MiB at quality 92.
fn camera_photo() -> Result<Vec<u8>> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let picture = image::RgbImage::from_fn(4000, 3000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let grain = (seed % 20) as u32;
        image::Rgb([byte(x / 16 + grain), byte(y / 12 + grain), byte((x + y) / 28)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(&picture)?;
    Ok(out)
}

/// Uploads a file, retrying after `Retry-After` while the node is busy with other uploads; returns how
/// many times it was turned away.
async fn upload_until_taken(client: &renkei_cli::Client, group: Uuid, photo: &[u8]) -> Result<(Uuid, u64)> {
    let mut refused = 0u64;
    loop {
        match client.upload_attachment(group, "IMG_0001.JPG", photo.to_vec(), None).await {
            Ok(a) => return Ok((a.id, refused)),
            Err(renkei_cli::ClientError::Api { body, .. })
                if body.code == renkei_protocol::ErrorCode::TooManyUploads =>
            {
                refused += 1;
                let wait = body.fields.get("retry_after_seconds").and_then(|s| s.parse().ok()).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                if refused > 1_000 {
                    bail!("an upload was turned away 1,000 times");
                }
            }
            Err(e) => bail!("upload failed: {e}"),
        }
    }
}

/// `attachments`: a 5 MiB photo's upload, one at a time and many at once (throughput, the server's peak
/// memory), and posting with a photo in one post of ten.
pub async fn attachments(servers: &Servers, run: &str, args: &AttachmentsArgs, report: &mut Report) -> Result<()> {
    report.parameters = serde_json::to_value(args)?;
    let groups = provision_timed(servers, run, 1, 8, report).await?;
    let group = &groups[0];
    let photo = tokio::task::spawn_blocking(camera_photo).await??;
    report.figure("photo size", photo.len() as f64 / f64::from(1 << 20), "MiB", None);

    let watch = ProcWatch::start(servers);
    let mut one = histogram();
    for _ in 0..args.uploads {
        let started = Instant::now();
        upload_until_taken(&group.members[1].client, group.id, &photo).await?;
        let _ = one.record(micros(started.elapsed()).max(1));
    }
    report.latency("one photo: upload → stored, cleaned, thumbnail made", &one);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.concurrent {
        let client = group.members[1 + i % 7].client.clone();
        let (group_id, photo) = (group.id, photo.clone());
        tasks.spawn(async move { upload_until_taken(&client, group_id, &photo).await });
    }
    let mut turned_away = 0;
    while let Some(joined) = tasks.join_next().await {
        turned_away += joined??.1;
    }
    let wall = started.elapsed().as_secs_f64();
    report.figure(&format!("{} photos uploaded at once: all stored after", args.concurrent), wall, "s", None);
    report.figure(
        "upload throughput (many at once)",
        (args.concurrent * photo.len()) as f64 / f64::from(1 << 20) / wall,
        "MiB/s",
        None,
    );
    report.count("uploads turned away with 429 (then retried)", turned_away);
    report.processes = watch.finish();

    // Posting with a small photo in one post of ten: the photos are uploaded first, as a phone does.
    let small = {
        let picture = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([byte(x), byte(y), 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&picture)?;
        out
    };
    // Seven posters with several connections each, every connection within its burst allowance (400
    // frames), each sharing photos its member uploaded.
    let connections = args.posts.div_ceil(380).max(7);
    let per_poster = args.posts.div_ceil(connections);
    let mut prepared = Vec::new();
    for c in 0..connections {
        let client = group.members[1 + c % 7].client.clone();
        let mut files = Vec::new();
        // The same photos are uploaded whatever `--photo-every` (writing them costs the database the
        // same), so runs that share none differ from the others only in the posts.
        for _ in 0..per_poster.div_ceil(10) {
            files.push(upload_until_taken(&client, group.id, &small).await?.0);
        }
        prepared.push((client.connect_live().await?, files));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let every = args.photo_every;
    for (m, (mut live, files)) in prepared.into_iter().enumerate() {
        let group_id = group.id;
        tasks.spawn(async move {
            let (mut outstanding, mut sent, mut acked) = (0usize, 0usize, 0usize);
            while acked < per_poster {
                while sent < per_poster && outstanding < 64 {
                    let ClientFrame::Post { id, group_id, mut post } =
                        new_post(sent.to_string(), group_id, body(sent as u64, 0, m))
                    else {
                        unreachable!("new_post makes a post frame")
                    };
                    if every > 0 && sent % every == 0 && sent / every < files.len() {
                        post.attachments = vec![files[sent / every]];
                    }
                    live.send(&ClientFrame::Post { id, group_id, post }).await?;
                    sent += 1;
                    outstanding += 1;
                }
                match tokio::time::timeout(Duration::from_secs(30), live.next()).await {
                    Ok(Some(Ok(ServerFrame::Ack { .. }))) => {
                        outstanding -= 1;
                        acked += 1;
                    }
                    Ok(Some(Ok(ServerFrame::Error { code, message, .. }))) => bail!("refused: {code} {message}"),
                    Ok(Some(Ok(_))) => {}
                    _ => bail!("a poster's connection stalled or closed"),
                }
            }
            live.close().await;
            Ok(acked)
        });
    }
    let mut acked = 0;
    while let Some(joined) = tasks.join_next().await {
        acked += joined??;
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    report.figure("posts per second, 64 in flight per connection (see --photo-every)", rate, "posts/s", None);
    report.count("posts acknowledged", acked as u64);
    Ok(())
}

/// A duration in whole microseconds (saturating: no run lasts 584,000 years).
fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The low byte of a pixel coordinate: a picture's pattern.
fn byte(v: u32) -> u8 {
    u8::try_from(v % 256).unwrap_or(0)
}
