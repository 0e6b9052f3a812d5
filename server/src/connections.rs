//! What a connection may do before it is closed, so that one client cannot hold the server's file
//! descriptors and memory:
//! - a connection that says nothing is closed: its first bytes (after the TLS handshake, when there is one)
//!   must arrive within `first_bytes` (hyper's header timeout only starts once the HTTP version is known,
//!   which needs those bytes);
//! - a connection with no traffic either way for `idle` is closed: HTTP/1.1 keep-alive is closed earlier by
//!   hyper's own timer, so this is what ends an idle HTTP/2 connection (a WebSocket's pings keep it busy);
//! - each address may hold at most `per_address` connections that have not yet made an authenticated
//!   request; past it a new connection from that address is closed at once. Authenticating
//!   ([`Unauthenticated::release`]) frees the place.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub first_bytes: Duration,
    pub idle: Duration,
    /// `None`: no cap (behind a proxy every connection comes from the proxy's address).
    pub per_address: Option<u32>,
}

/// Wraps an acceptor with [`Limits`].
#[derive(Debug, Clone)]
pub struct LimitedAcceptor<A> {
    inner: A,
    limits: Limits,
    counts: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl<A> LimitedAcceptor<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        Self { inner, limits, counts: Arc::default() }
    }

    /// Takes a place for a new connection from `ip`, or `None` when the address has no place left.
    fn admit(&self, ip: IpAddr) -> Option<Unauthenticated> {
        let Some(cap) = self.limits.per_address else {
            return Some(Unauthenticated(None));
        };
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Unauthenticated(Some(Arc::new(Place {
            counts: self.counts.clone(),
            ip,
            released: AtomicBool::new(false),
        }))))
    }
}

/// A connection's place among its address's unauthenticated connections. Cloned into every request of the
/// connection (a request extension); freed by the first authenticated request, or when the connection ends.
#[derive(Debug, Clone)]
pub struct Unauthenticated(Option<Arc<Place>>);

impl Unauthenticated {
    /// The connection has authenticated: it no longer counts against its address.
    pub fn release(&self) {
        if let Some(place) = &self.0 {
            place.release();
        }
    }
}

#[derive(Debug)]
struct Place {
    counts: Arc<Mutex<HashMap<IpAddr, u32>>>,
    ip: IpAddr,
    released: AtomicBool,
}

impl Place {
    fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.release();
    }
}

impl<A, S> Accept<TcpStream, S> for LimitedAcceptor<A>
where
    A: Accept<TcpStream, axum::middleware::AddExtension<S, Unauthenticated>>,
    A::Future: Send + 'static,
{
    type Stream = Limited<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let place = stream.peer_addr().ok().map(|peer| self.admit(peer.ip()));
        let Some(Some(place)) = place else {
            // Too many unauthenticated connections from this address (or no address at all): closed now.
            drop(stream);
            return Box::pin(async { Err(io::Error::new(io::ErrorKind::ConnectionRefused, "connection cap")) });
        };
        let service = tower::Layer::layer(&axum::Extension(place.clone()), service);
        let accepted = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            let now = Instant::now();
            Ok((
                Limited {
                    inner: stream,
                    heard: false,
                    last_activity: now,
                    idle: limits.idle,
                    timer: Box::pin(tokio::time::sleep_until(now + limits.first_bytes)),
                    _place: place,
                },
                service,
            ))
        })
    }
}

/// A stream whose reads fail with `TimedOut` when its first bytes are late or it has been idle too long.
#[derive(Debug)]
pub struct Limited<S> {
    inner: S,
    /// Whether any byte has been read yet (before that, the timer is the first-bytes deadline).
    heard: bool,
    /// The last read or write; the timer is moved forward lazily, when it fires, rather than on every byte.
    last_activity: Instant,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    _place: Unauthenticated,
}

impl<S> Limited<S> {
    /// Whether the deadline has passed; re-arms the timer when there was activity since it was set.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if !self.heard {
                return true;
            }
            let due = self.last_activity + self.idle;
            if due <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    if !this.heard {
                        this.heard = true;
                        // From now on the timer is the idle limit.
                        this.timer.as_mut().reset(Instant::now() + this.idle);
                    }
                    this.last_activity = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if this.expired(cx) {
                    let what = if this.heard { "idle for too long" } else { "no request within the deadline" };
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.last_activity = Instant::now();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.last_activity = Instant::now();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
