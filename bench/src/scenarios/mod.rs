//! The scenarios. Each provisions what it needs through the API, measures, and fills a
//! [`Report`]. Latencies are measured from the moment a post was *due* (open loop), so a stalled
//! server cannot hide its stall by slowing the generator down (coordinated omission).

mod attachments;
mod connections;
mod history;
mod rate;
mod resume;
mod throughput;

pub use attachments::{AttachmentsArgs, attachments};
pub use connections::{ConnectionsArgs, connections};
pub use history::{HistoryArgs, history};
pub use rate::{FanoutArgs, RateArgs, fanout, rate};
pub use resume::{ResumeArgs, resume};
pub use throughput::{ThroughputArgs, throughput};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use renkei_cli::live::Live;
use renkei_protocol::{ClientFrame, NewPost, PostKind, Subscription};
use uuid::Uuid;

use crate::population::{Group, Member, provision};
use crate::report::Report;
use crate::servers::Servers;

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
    subscribe_all(servers, &group.members[member], &[group.id], node).await
}

/// Opens a live connection for `member` on `node`, subscribed to `groups` from the start.
async fn subscribe_all(servers: &Servers, member: &Member, groups: &[Uuid], node: usize) -> Result<Live> {
    let client = member.client.on_node(&servers.nodes[node].url);
    let mut live = client.connect_live().await.context("connect")?;
    let groups = groups.iter().map(|&group_id| Subscription { group_id, after_seq: 0 }).collect();
    live.send(&ClientFrame::Subscribe { id: "s".into(), groups }).await?;
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
    /// Deliveries of community-group posts (`fanout`).
    community: Histogram<u64>,
}

/// A duration in whole microseconds (saturating: no run lasts 584,000 years).
fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The low byte of a pixel coordinate: a picture's pattern.
fn byte(v: u32) -> u8 {
    u8::try_from(v % 256).unwrap_or(0)
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
