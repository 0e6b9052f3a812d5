//! The live connection (`/api/v1/ws`) and [`Tail`], which keeps one open across disconnects: it
//! reconnects with backoff and resumes every group from the last sequence number it saw, so the caller
//! gets each post once, in order, with no gap.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use renkei_protocol::{ClientFrame, Post, SeenMark, ServerFrame, Subscription};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::{Client, ClientError};

/// One WebSocket connection, speaking the protocol's frames.
#[derive(Debug)]
pub struct Live {
    socket: Socket,
}

impl Client {
    /// Opens the live connection with this client's token.
    pub async fn connect_live(&self) -> Result<Live, ClientError> {
        let token = self.token().ok_or_else(|| ClientError::Setup("not logged in".into()))?;
        let url = format!("{}{}/ws", self.base_url().replacen("http", "ws", 1), renkei_protocol::API_PREFIX);
        let mut request = url.into_client_request().map_err(|e| ClientError::Setup(format!("bad server URL: {e}")))?;
        let value = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| ClientError::Setup("token is not a valid header value".into()))?;
        request.headers_mut().insert("authorization", value);
        let connector =
            if url_is_tls(self.base_url()) { Some(Connector::Rustls(tls_config(self.ca_cert())?)) } else { None };
        // Small buffers: the library's defaults cost ~130 KiB per socket, which the load generator has thousands of.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0);
        let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector)
            .await
            .map_err(|e| match e {
                // The server refused the upgrade with a typed error (expired session, not allowed).
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    let status = response.status().as_u16();
                    match response.body().as_deref().and_then(|b| serde_json::from_slice(b).ok()) {
                        Some(body) => ClientError::Api { status, body },
                        None => ClientError::Unexpected { status, detail: "upgrade refused".into() },
                    }
                }
                other => ClientError::Live(other.to_string()),
            })?;
        Ok(Live { socket })
    }
}

fn url_is_tls(url: &str) -> bool {
    url.starts_with("https://")
}

fn tls_config(ca_cert: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Setup(e.to_string()))?;
    let config = match ca_cert {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| ClientError::Setup(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| ClientError::Setup(e.to_string()))?)
                    .map_err(|e| ClientError::Setup(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier().map_err(|e| ClientError::Setup(e.to_string()))?.with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

impl Live {
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        self.send_raw(encode(frame)?).await
    }

    /// Sends any message as is (tests use it for malformed frames).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.socket.send(message).await.map_err(|e| ClientError::Live(e.to_string()))
    }

    /// The next server frame; `None` when the connection ended. Pings are answered by the library.
    pub async fn next(&mut self) -> Option<Result<ServerFrame, ClientError>> {
        next_frame(&mut self.socket).await
    }

    /// Splits the connection so one task can send while another receives (`renkei chat`, the load
    /// generator). Pings are still answered, by whichever half is used next.
    pub fn split(self) -> (LiveSender, LiveReceiver) {
        let (sink, stream) = self.socket.split();
        (LiveSender { sink }, LiveReceiver { stream })
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half of a [`Live`] connection.
#[derive(Debug)]
pub struct LiveSender {
    sink: futures_util::stream::SplitSink<Socket, Message>,
}

impl LiveSender {
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        self.sink.send(encode(frame)?).await.map_err(|e| ClientError::Live(e.to_string()))
    }

    pub async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

/// The receiving half of a [`Live`] connection.
#[derive(Debug)]
pub struct LiveReceiver {
    stream: futures_util::stream::SplitStream<Socket>,
}

impl LiveReceiver {
    /// The next server frame; `None` when the connection ended.
    pub async fn next(&mut self) -> Option<Result<ServerFrame, ClientError>> {
        next_frame(&mut self.stream).await
    }
}

fn encode(frame: &ClientFrame) -> Result<Message, ClientError> {
    let text = serde_json::to_string(frame).map_err(|e| ClientError::Setup(e.to_string()))?;
    Ok(Message::Text(text.into()))
}

async fn next_frame<S>(stream: &mut S) -> Option<Result<ServerFrame, ClientError>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await? {
            Ok(Message::Text(text)) => {
                return Some(
                    serde_json::from_str(text.as_str())
                        .map_err(|e| ClientError::Unexpected { status: 101, detail: e.to_string() }),
                );
            }
            Ok(Message::Close(frame)) => {
                let reason = frame.map(|f| format!("closed {}: {}", u16::from(f.code), f.reason)).unwrap_or_default();
                return Some(Err(ClientError::Live(reason)));
            }
            Ok(_) => continue,
            Err(e) => return Some(Err(ClientError::Live(e.to_string()))),
        }
    }
}

/// What a [`Tail`] hands its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    /// A post, exactly once and in order per group.
    Post(Post),
    /// A post was edited or deleted.
    Updated(Post),
    Seen(SeenMark),
    /// Delivery of this group stopped (removed, consent withdrawn).
    Ended(Uuid),
    /// The connection was lost; reconnecting (with back-off) follows.
    Disconnected,
    /// The connection was lost and re-established; resumption follows.
    Reconnected,
    /// A group I joined while following all of mine; followed from its next post.
    Joined {
        group_id: Uuid,
        label: String,
    },
}

/// A live view of some groups that survives disconnects.
#[derive(Debug)]
pub struct Tail {
    client: Client,
    /// Last sequence number seen, per group.
    positions: BTreeMap<Uuid, i64>,
    live: Option<Live>,
    attempts: u32,
    pending: std::collections::VecDeque<TailEvent>,
    /// When following all my groups: how often to look for groups I joined since.
    new_groups: Option<tokio::time::Interval>,
}

impl Tail {
    /// Follows `groups`, starting after the given sequence numbers.
    pub fn new(client: Client, groups: impl IntoIterator<Item = (Uuid, i64)>) -> Self {
        Self {
            client,
            positions: groups.into_iter().collect(),
            live: None,
            attempts: 0,
            pending: Default::default(),
            new_groups: None,
        }
    }

    /// Also follows every group I join from now on, looking for them every `every`.
    pub fn following_new_groups(mut self, every: Duration) -> Self {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.new_groups = Some(interval);
        self
    }

    /// Groups I am an active member of that are not followed yet: followed from their latest post.
    async fn look_for_new_groups(&mut self) -> Result<(), ClientError> {
        let mine = self.client.groups().await?.groups;
        for group in mine {
            if self.positions.contains_key(&group.id) || group.status != renkei_protocol::GroupStatus::Active {
                continue;
            }
            let after = self.client.posts(group.id, None, None, 1).await?.last_seq;
            self.positions.insert(group.id, after);
            if let Some(live) = self.live.as_mut() {
                let groups = vec![Subscription { group_id: group.id, after_seq: after }];
                live.send(&ClientFrame::Subscribe { id: "tail-new".into(), groups }).await?;
            }
            self.pending.push_back(TailEvent::Joined { group_id: group.id, label: group.label });
        }
        Ok(())
    }

    pub fn positions(&self) -> &BTreeMap<Uuid, i64> {
        &self.positions
    }

    /// Drops the connection (as a network failure would); the next call reconnects and resumes.
    pub fn disconnect(&mut self) {
        self.live = None;
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        let mut live = self.client.connect_live().await?;
        let groups = self.positions.iter().map(|(g, s)| Subscription { group_id: *g, after_seq: *s }).collect();
        live.send(&ClientFrame::Subscribe { id: "tail".into(), groups }).await?;
        self.live = Some(live);
        Ok(())
    }

    /// The next event, reconnecting (with exponential backoff, up to 30 s) as often as needed. Errors
    /// only for what reconnecting cannot fix: the session is gone.
    pub async fn next(&mut self) -> Result<TailEvent, ClientError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            if self.live.is_none() {
                if self.attempts > 0 {
                    let wait = Duration::from_millis(100 * 2u64.pow(self.attempts.min(8))).min(Duration::from_secs(30));
                    tokio::time::sleep(wait).await;
                }
                match self.connect().await {
                    Ok(()) => {
                        if self.attempts > 0 {
                            self.pending.push_back(TailEvent::Reconnected);
                        }
                        self.attempts = 0;
                    }
                    // Reconnecting cannot fix a refused session; it can fix everything else.
                    Err(e @ ClientError::Api { .. }) => return Err(e),
                    Err(_) => self.attempts += 1,
                }
                continue;
            }
            let frame = match (self.live.as_mut(), self.new_groups.as_mut()) {
                (Some(live), Some(every)) => tokio::select! {
                    frame = live.next() => frame,
                    _ = every.tick() => {
                        // A failed look is tried again at the next tick; the connection's own errors show.
                        let _ = self.look_for_new_groups().await;
                        continue;
                    }
                },
                (Some(live), None) => live.next().await,
                (None, _) => continue,
            };
            match frame {
                None | Some(Err(ClientError::Live(_))) => {
                    self.live = None;
                    self.attempts += 1;
                    return Ok(TailEvent::Disconnected);
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(frame)) => {
                    if let Some(event) = self.on_frame(frame) {
                        return Ok(event);
                    }
                }
            }
        }
    }

    fn on_frame(&mut self, frame: ServerFrame) -> Option<TailEvent> {
        match frame {
            ServerFrame::Post { post } => {
                let position = self.positions.get_mut(&post.group_id)?;
                // The server never repeats a post; this guards the guarantee on the client side too.
                if post.seq <= *position {
                    return None;
                }
                *position = post.seq;
                Some(TailEvent::Post(post))
            }
            ServerFrame::PostUpdated { post } => Some(TailEvent::Updated(post)),
            ServerFrame::Seen { mark } => Some(TailEvent::Seen(mark)),
            ServerFrame::MembershipChanged { group_id, .. } => {
                self.positions.remove(&group_id);
                Some(TailEvent::Ended(group_id))
            }
            _ => None,
        }
    }
}
