//! One WebSocket connection: reads client frames, delivers its groups in sequence order without gaps or
//! duplicates, and catches up from the database whenever it resumes, falls behind, or sees a gap.
//!
//! Per group the connection remembers the last sequence number it sent. A live post with the next number
//! is sent; an older one is a duplicate and skipped; a newer one means something was missed, so the
//! missing range is read from the database first. Subscribing registers with the hub before reading the
//! backlog, so nothing committed in between can fall through.

use std::collections::HashMap;
use std::num::NonZeroU32;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use renkei_protocol::{ClientFrame, ErrorCode, MembershipChange, PostReceipt, ServerFrame, Subscription};
use uuid::Uuid;

use super::MAX_FRAME_BYTES;
use crate::auth::AnySession;
use crate::error::ApiError;
use crate::messaging::hub::{Inbox, Outbound, Registration};
use crate::policy::groups::{self as rules, GroupAction};
use crate::posting as ops;
use crate::state::AppState;

/// A ping goes out this often; a connection silent for three intervals is closed.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// Posts a connection may have waiting for the group commit at once; beyond it, reading pauses.
const MAX_IN_FLIGHT: usize = 256;
/// Posts read from the database per catch-up query.
const CATCH_UP_PAGE: i64 = 500;

type Sink = SplitSink<WebSocket, Message>;
type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = ServerFrame> + Send>>;

struct Conn {
    state: AppState,
    session: AnySession,
    /// Last post sequence number sent, per subscribed group.
    sent: HashMap<Uuid, i64>,
    sink: Sink,
}

enum Flow {
    Continue,
    Stop,
}

impl<E> From<Result<(), E>> for Flow {
    /// A failed write ends the connection.
    fn from(written: Result<(), E>) -> Self {
        if written.is_ok() { Flow::Continue } else { Flow::Stop }
    }
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(frame).expect("a server frame serialises: plain fields, string keys"),
    ))
}

/// The `id` of a client frame that was not (or will not be) parsed in full, for the error that answers it.
fn frame_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(text).ok().map(|f| f.id)
}

/// The close code and reason for a read error, from tungstenite's error text (axum hides its type):
/// 1007 for text that is not UTF-8, 1002 for a protocol violation (an oversized control frame among them),
/// 1009 for a data frame or message over [`MAX_FRAME_BYTES`]. `None` when the transport itself failed.
fn read_error_close(error: &str) -> Option<(u16, String)> {
    let message = error.to_ascii_lowercase();
    if message.contains("utf-8") || message.contains("utf8") {
        Some((1007, "text frames must be valid UTF-8".into()))
    } else if message.contains("protocol") {
        Some((1002, "protocol error".into()))
    } else if message.contains("too long") || message.contains("limit exceeded") || message.contains("too big") {
        Some((1009, format!("frames are limited to {MAX_FRAME_BYTES} bytes")))
    } else {
        None
    }
}

fn error_frame(id: Option<String>, e: &ApiError) -> ServerFrame {
    let body = e.body();
    ServerFrame::Error { id, code: body.code, message: body.message, fields: body.fields }
}

/// Everything one connection holds while it waits. The task's future is this plus the few small futures
/// it waits on: the rare, large handlers (subscribing, catching up, read marks) are boxed where they are
/// called, so an idle socket does not carry room for them.
struct Connection {
    conn: Conn,
    stream: SplitStream<WebSocket>,
    registration: Registration,
    limiter: DefaultDirectRateLimiter,
    in_flight: FuturesUnordered<Reply>,
    ping: tokio::time::Interval,
    last_heard: Instant,
}

/// Sets the connection up, then returns the future that serves it (built outside an `async fn`, so the
/// arguments are not kept twice in the task).
pub(super) fn run(state: AppState, session: AnySession, socket: WebSocket) -> impl Future<Output = ()> + Send {
    let (sink, stream) = socket.split();
    let registration = state.messaging.hub.register(session.account.id(), session.session.id);
    let per_second = NonZeroU32::new(state.config.ws_frames_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = per_second.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
    let limiter = RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst));
    let mut connection = Connection {
        conn: Conn { state, session, sent: HashMap::new(), sink },
        stream,
        registration,
        limiter,
        in_flight: FuturesUnordered::new(),
        ping: tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL),
        last_heard: Instant::now(),
    };
    async move { connection.serve().await }
}

impl Connection {
    async fn serve(&mut self) {
        let inbox = self.registration.inbox.clone();
        let conn_id = self.registration.id;
        loop {
            let flow = tokio::select! {
                () = inbox.notify.notified() => self.conn.on_inbox(&inbox, conn_id).await,
                Some(reply) = self.in_flight.next(), if !self.in_flight.is_empty() => self.acknowledge(reply).await,
                incoming = self.stream.next(), if self.in_flight.len() < MAX_IN_FLIGHT => {
                    self.last_heard = Instant::now();
                    match incoming {
                        None => Flow::Stop,
                        Some(Err(e)) => self.conn.on_read_error(e).await,
                        Some(Ok(Message::Text(t))) => {
                            if self.limiter.check().is_err() {
                                // Names the refused frame when it has an id, so the client knows which post to send again.
                                let id = frame_id(t.as_str());
                                let e = ServerFrame::Error { id, code: ErrorCode::RateLimited, message: "too many frames".into(), fields: Default::default() };
                                self.conn.send(&e).await
                            } else {
                                self.conn.on_text(t.as_str(), conn_id, &mut self.in_flight).await
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let e = ServerFrame::Error { id: None, code: ErrorCode::MalformedRequest, message: "binary frames are not accepted; send JSON text".into(), fields: Default::default() };
                            self.conn.send(&e).await
                        }
                        // After a Close, keep reading until the peer ends the stream (tungstenite answers it).
                        Some(Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    }
                }
                _ = self.ping.tick() => {
                    if self.last_heard.elapsed() > PING_INTERVAL * 3 {
                        Flow::Stop
                    } else {
                        self.conn.sink.send(Message::Ping(Default::default())).await.into()
                    }
                }
            };
            if matches!(flow, Flow::Stop) {
                break;
            }
        }
        // Posts still waiting for the group commit finish without an acknowledgement; clients retry them by
        // client message id, which never creates a second post.
        let _ = self.conn.sink.close().await;
        tracing::debug!(user = %self.conn.session.account.id(), "websocket closed");
    }

    /// Sends a post's answer with every other one already decided: a group commit answers a connection's
    /// posts together, and each written alone was a system call and a packet of its own (a tenth of the
    /// server's CPU at maximum throughput).
    async fn acknowledge(&mut self, reply: ServerFrame) -> Flow {
        let mut reply = Some(reply);
        while let Some(frame) = reply {
            if let Flow::Stop = self.conn.feed(text(&frame)).await {
                return Flow::Stop;
            }
            reply = self.in_flight.next().now_or_never().flatten();
        }
        self.conn.flush().await
    }
}

impl Conn {
    async fn send(&mut self, frame: &ServerFrame) -> Flow {
        self.sink.send(text(frame)).await.into()
    }

    /// Queues a frame; it is written once the queue reaches the write buffer size, or at [`Conn::flush`].
    async fn feed(&mut self, message: Message) -> Flow {
        self.sink.feed(message).await.into()
    }

    async fn flush(&mut self) -> Flow {
        self.sink.flush().await.into()
    }

    /// A frame could not be read: the close code says why, as RFC 6455 section 7.4.1 defines them.
    async fn on_read_error(&mut self, e: axum::Error) -> Flow {
        if let Some((code, reason)) = read_error_close(&e.to_string()) {
            let _ = self.sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
        }
        Flow::Stop
    }

    /// The hub woke this connection: close, catch up after a lag, or deliver what waits, in order.
    async fn on_inbox(&mut self, inbox: &Inbox, conn_id: u64) -> Flow {
        if let Some(reason) = inbox.close_reason() {
            let frame = CloseFrame { code: 1008, reason: reason.as_str().into() };
            let _ = self.sink.send(Message::Close(Some(frame))).await;
            return Flow::Stop;
        }
        for out in inbox.take() {
            if let Flow::Stop = self.deliver(out, conn_id).await {
                return Flow::Stop;
            }
        }
        if let Flow::Stop = self.flush().await {
            return Flow::Stop;
        }
        if inbox.lagged.swap(false, Ordering::AcqRel) {
            self.state.metrics.lagged_connections.inc();
            return Box::pin(self.resync(conn_id)).await;
        }
        Flow::Continue
    }

    /// Frames were dropped for this connection: every group is read again from where it was.
    async fn resync(&mut self, conn_id: u64) -> Flow {
        let groups: Vec<Uuid> = self.sent.keys().copied().collect();
        for group in groups {
            self.state.metrics.resyncs.inc();
            if let Flow::Stop = self.send(&ServerFrame::Resync { group_id: group }).await {
                return Flow::Stop;
            }
            let after = self.sent.get(&group).copied().unwrap_or(0);
            if let Flow::Stop = self.catch_up(group, after, conn_id).await {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Sends every post of `group` after `after` from the database, re-checking membership first.
    async fn catch_up(&mut self, group: Uuid, after: i64, conn_id: u64) -> Flow {
        if !self.may_read(group).await {
            return self.end_membership(group, conn_id).await;
        }
        let mut after = after;
        loop {
            let posts = match self.state.store.posts_page(group, Some(after), None, CATCH_UP_PAGE).await {
                Ok(posts) => posts,
                Err(e) => {
                    let frame = error_frame(None, &ApiError::from(e));
                    return self.send(&frame).await;
                }
            };
            let full = posts.len() as i64 == CATCH_UP_PAGE;
            // Queued, then written a few KiB at a time: with TCP_NODELAY each frame written alone would be
            // a packet of its own (10,000 missed posts took 250 ms to replay instead of 100).
            for post in posts {
                after = post.seq;
                self.sent.insert(group, post.seq);
                if let Flow::Stop = self.feed(text(&ServerFrame::Post { post })).await {
                    return Flow::Stop;
                }
            }
            if let Flow::Stop = self.flush().await {
                return Flow::Stop;
            }
            if !full {
                return Flow::Continue;
            }
        }
    }

    async fn may_read(&self, group: Uuid) -> bool {
        let Ok(Some(record)) = self.state.store.group(group).await else { return false };
        let Ok(membership) = self.state.store.current_membership(group, self.session.account.id()).await else {
            return false;
        };
        rules::authorize(&record, membership.as_ref(), GroupAction::View).is_ok()
    }

    async fn end_membership(&mut self, group: Uuid, conn_id: u64) -> Flow {
        self.state.messaging.hub.unsubscribe(conn_id, group);
        if self.sent.remove(&group).is_some() {
            return self
                .send(&ServerFrame::MembershipChanged { group_id: group, change: MembershipChange::Ended })
                .await;
        }
        Flow::Continue
    }

    /// Queues one frame from the hub ([`Conn::on_inbox`] flushes after the last).
    async fn deliver(&mut self, out: Outbound, conn_id: u64) -> Flow {
        match out {
            Outbound::MembershipEnded(group) => Box::pin(self.end_membership(group, conn_id)).await,
            Outbound::Frame { group, seq, json } => {
                let Some(&last) = self.sent.get(&group) else { return Flow::Continue };
                if let Some(seq) = seq {
                    if seq <= last {
                        return Flow::Continue;
                    }
                    if seq > last + 1 {
                        return Box::pin(self.catch_up(group, last, conn_id)).await;
                    }
                    self.sent.insert(group, seq);
                }
                self.feed(Message::Text(Utf8Bytes::from(json.as_ref()))).await
            }
        }
    }

    async fn on_text(&mut self, text: &str, conn_id: u64, in_flight: &mut FuturesUnordered<Reply>) -> Flow {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let id = frame_id(text);
                let reply = ServerFrame::Error {
                    id,
                    code: ErrorCode::MalformedRequest,
                    message: format!("invalid frame: {e}"),
                    fields: Default::default(),
                };
                return self.send(&reply).await;
            }
        };
        match frame {
            ClientFrame::Ping { id } => self.send(&ServerFrame::Pong { id }).await,
            ClientFrame::Subscribe { id, groups } => Box::pin(self.subscribe(id, groups, conn_id)).await,
            ClientFrame::Post { id, group_id, post } => {
                let state = self.state.clone();
                let account = self.session.account.clone();
                in_flight.push(Box::pin(async move {
                    match ops::submit_post(&state, &account, group_id, post).await {
                        Ok((PostReceipt { post, off_hours }, _)) => ServerFrame::Ack {
                            id,
                            group_id: Some(group_id),
                            seq: Some(post.seq),
                            post_id: Some(post.id),
                            off_hours,
                        },
                        Err(e) => error_frame(Some(id), &e),
                    }
                }));
                Flow::Continue
            }
            ClientFrame::MarkSeen { id, group_id, seq } => {
                let reply = match Box::pin(ops::mark_seen(&self.state, &self.session.account, group_id, seq)).await {
                    Ok(_) => ServerFrame::Ack {
                        id,
                        group_id: Some(group_id),
                        seq: Some(seq),
                        post_id: None,
                        off_hours: Vec::new(),
                    },
                    Err(e) => error_frame(Some(id), &e),
                };
                self.send(&reply).await
            }
            ClientFrame::MarkRead { id, group_id, seq } => {
                let reply = match Box::pin(ops::mark_read(&self.state, &self.session.account, group_id, seq)).await {
                    Ok(kept) => ServerFrame::Ack {
                        id,
                        group_id: Some(group_id),
                        seq: Some(kept),
                        post_id: None,
                        off_hours: Vec::new(),
                    },
                    Err(e) => error_frame(Some(id), &e),
                };
                self.send(&reply).await
            }
        }
    }

    async fn subscribe(&mut self, id: String, groups: Vec<Subscription>, conn_id: u64) -> Flow {
        for Subscription { group_id, after_seq } in groups {
            if !self.may_read(group_id).await {
                let frame = error_frame(Some(id.clone()), &ApiError::NotFound);
                if let Flow::Stop = self.send(&frame).await {
                    return Flow::Stop;
                }
                continue;
            }
            let last_seq = match self.state.store.last_seq(group_id).await {
                Ok(seq) => seq,
                Err(e) => return self.send(&error_frame(Some(id.clone()), &ApiError::from(e))).await,
            };
            if after_seq < 0 || after_seq > last_seq {
                let e = ApiError::field("after_seq", "out_of_range");
                if let Flow::Stop = self.send(&error_frame(Some(id.clone()), &e)).await {
                    return Flow::Stop;
                }
                continue;
            }
            // Reading a patient's timeline is audited (who, which group, from where on), never its content.
            // A read that cannot be recorded is refused.
            let recorded = match self.state.store.group(group_id).await {
                Ok(Some(record)) if record.kind == renkei_protocol::GroupKind::Patient => {
                    let actor = crate::audit::Actor::from(&self.session);
                    let details = serde_json::json!({ "from": after_seq + 1, "live": true });
                    self.state
                        .audit
                        .record(crate::audit::action::POSTS_READ, &actor, Some(group_id), None, details)
                        .await
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = recorded {
                if let Flow::Stop = self.send(&error_frame(Some(id.clone()), &ApiError::from(e))).await {
                    return Flow::Stop;
                }
                continue;
            }
            // Register first, then read the backlog: whatever commits in between is queued, and the
            // sequence check drops what the backlog already sent.
            self.state.messaging.hub.subscribe(conn_id, group_id);
            self.sent.insert(group_id, after_seq);
            if let Flow::Stop = self.catch_up(group_id, after_seq, conn_id).await {
                return Flow::Stop;
            }
            let sent = self.sent.get(&group_id).copied().unwrap_or(after_seq);
            if let Flow::Stop = self.send(&ServerFrame::Subscribed { id: id.clone(), group_id, last_seq: sent }).await {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}
