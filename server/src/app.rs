//! Building and running the server: `Application::build` binds (port 0 works, for tests) and migrates;
//! `run_until_stopped` serves until the shutdown future completes, then drains in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;
use crate::connections::{LimitedAcceptor, Limits};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::Store;

/// A bound, migrated, not yet serving server.
#[derive(Debug)]
pub struct Application {
    /// For SQLite: an exclusive lock on `<database>.lock`, held while this server runs, so that a restore
    /// (or a second server) cannot replace the file under it.
    _lock: Option<std::fs::File>,
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    /// `metrics_listen`'s socket, when configured.
    metrics_listener: Option<std::net::TcpListener>,
    tls: Option<RustlsConfig>,
    state: AppState,
}

/// How long in-flight requests may run after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Application {
    /// Connects to the configured database, applies migrations, loads TLS material and binds the socket.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let url = config.effective_database_url();
        // renkei's own data directory (SQLite's file, the audit anchor): never open to other users.
        if Store::sqlite_path(&url).is_some() || config.data_dir.exists() {
            crate::private_files::private_dir(&config.data_dir)
                .with_context(|| format!("securing the data directory {}", config.data_dir.display()))?;
        }
        let lock = match Store::sqlite_path(&url) {
            Some(path) => Some(lock_database(path)?),
            None => None,
        };
        let store =
            Store::connect(&url, config.database_max_connections).await.context("connecting to the database")?;
        store.migrate().await.context("applying migrations")?;
        if !store.has_active_admin().await.context("looking for an administrator")? {
            tracing::warn!(
                "no administrator yet: create the first one with `renkei-server create-admin --login admin \
                 --display-name \"医師会 ICT 窓口\"` (same --config and RENKEI_* settings as this server; the \
                 password is asked for), then sign in at this server's address"
            );
        }
        let mut app = Self::build_with_store(config, store).await?;
        app._lock = lock;
        Ok(app)
    }

    /// Like [`Application::build`] with a store the caller already connected and migrated.
    pub async fn build_with_store(config: Config, store: Store) -> anyhow::Result<Self> {
        // Every entry this node appends carries its MAC under the audit key.
        let store = match store.audit_key() {
            Some(_) => store,
            None => {
                let key = crate::audit::load_or_create_key(&config, &store).await.context("loading the audit key")?;
                store.with_audit_key(key)
            }
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            _ => None,
        };
        let listener =
            std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr).with_context(|| format!("binding metrics_listen {addr}"))?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        crate::auth::password::warm_up();
        let lexicon = match &config.emergency_lexicon_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading the emergency lexicon {}", path.display()))?,
            None => crate::policy::content::DEFAULT_LEXICON.to_owned(),
        };
        let lexicon = crate::policy::content::Lexicon::parse(&lexicon);
        anyhow::ensure!(!lexicon.is_empty(), "the emergency lexicon is empty");
        let metrics = Arc::new(Metrics::default());
        let messaging = crate::messaging::Messaging::start(store.clone(), config.ws_queue_frames, &metrics).await?;
        let config = Arc::new(config);
        let notifier = Arc::new(
            crate::notifications::Notifier::new(store.clone(), config.clone(), metrics.clone())
                .await
                .context("preparing notifications")?,
        );
        let state = AppState {
            notifier,
            audit: Arc::new(crate::audit::Audit::new(store.clone())),
            store,
            messaging,
            lexicon: Arc::new(lexicon),
            uploads: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_uploads)),
            config,
            metrics,
        };
        Ok(Self { _lock: None, listener, local_addr, metrics_listener, tls, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL clients use, e.g. `https://127.0.0.1:8443`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` completes, then stops accepting and drains in-flight requests.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        // The database lock lives as long as the server serves.
        let Self { listener, tls, state, _lock: lock, metrics_listener, .. } = self;
        let store = state.store.clone();
        let metrics_server = match metrics_listener {
            Some(l) => {
                let l = tokio::net::TcpListener::from_std(l)?;
                let app = crate::http::ops::metrics_router(state.clone());
                Some(tokio::spawn(async move { axum::serve(l, app).await }))
            }
            None => None,
        };
        let housekeeping = crate::housekeeping::start(state.clone());
        let notifications = crate::notifications::start(state.notifier.clone());
        let header_timeout = Duration::from_secs(u64::from(state.config.http_header_timeout_seconds));
        let limits = Limits {
            first_bytes: header_timeout,
            idle: Duration::from_secs(u64::from(state.config.connection_idle_seconds)),
            per_address: Some(state.config.max_unauthenticated_connections_per_address)
                .filter(|&cap| cap > 0 && !state.config.behind_tls_proxy),
        };
        let app = crate::http::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight requests");
            stopper.graceful_shutdown(Some(DRAIN_TIMEOUT));
        });
        // TCP_NODELAY: frames are small and written at once. With Nagle's algorithm a frame written while
        // the previous one is unacknowledged waits for the client's delayed ACK (40 ms on Linux; see
        // docs/decisions/0004-the-post-path.md, "Small frames and Nagle").
        let mut server = axum_server::from_tcp(listener)?.handle(handle);
        // A connection must send a request's headers within the timeout, and is closed when idle that long
        // between requests: without a timer hyper waits forever, and half-open connections (5,000 of them,
        // ~26 KiB each, in #21's test) held memory and file descriptors. An upgraded WebSocket is no longer
        // an HTTP/1.1 connection and keeps its own ping timeout.
        server.http_builder().http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
        match tls {
            Some(tls) => {
                let tls = RustlsAcceptor::new(tls).acceptor(NoDelayAcceptor::new());
                server.acceptor(LimitedAcceptor::new(tls, limits)).serve(app).await?
            }
            None => server.acceptor(LimitedAcceptor::new(NoDelayAcceptor::new(), limits)).serve(app).await?,
        }
        housekeeping.abort();
        notifications.abort();
        if let Some(m) = metrics_server {
            m.abort();
        }
        store.close().await;
        drop(lock);
        Ok(())
    }
}

/// Takes the exclusive lock on `<database>.lock`; fails when another process holds it.
pub fn lock_database(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        crate::private_files::create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let lock_path = path.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    file.try_lock().map_err(|_| anyhow::anyhow!("{} is in use by a running renkei-server", path.display()))?;
    Ok(file)
}

/// rustls with TLS 1.3 and 1.2 only, the server's cipher-suite order, and HTTP/2 and HTTP/1.1 by ALPN.
fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<RustlsConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing TLS certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")?;
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
