//! Web Push (RFC 8030) with the message encrypted for the browser (RFC 8291) and the server identified by
//! VAPID (RFC 8292), both by the `web-push-native` crate; sent with reqwest.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renkei_protocol::NotificationPayload;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::p256;

use super::Sent;
use crate::config::Config;
use crate::store::Store;

/// The server's VAPID key pair.
pub struct VapidKey {
    pair: ES256KeyPair,
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey").field("public", &self.public).finish_non_exhaustive()
    }
}

impl VapidKey {
    /// Reads the key file (base64url of the 32-byte secret), or makes it on first start; registers the
    /// public key in the database so that a node with another key file is refused.
    pub async fn load_or_create(config: &Config, store: &Store) -> anyhow::Result<Self> {
        let path = config.effective_vapid_key_file();
        let pair = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let raw = URL_SAFE_NO_PAD
                    .decode(text.trim())
                    .with_context(|| format!("{}: not base64url", path.display()))?;
                ES256KeyPair::from_bytes(&raw).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pair = ES256KeyPair::generate();
                if let Some(dir) = path.parent() {
                    crate::private_files::create_private_dir(dir)?;
                }
                crate::private_files::write_private(&path, URL_SAFE_NO_PAD.encode(pair.to_bytes()).as_bytes())
                    .with_context(|| format!("writing the VAPID key {}", path.display()))?;
                tracing::info!(path = %path.display(), "made the Web Push (VAPID) key; back it up with the database");
                pair
            }
            Err(e) => return Err(e).with_context(|| format!("reading the VAPID key {}", path.display())),
        };
        let public = URL_SAFE_NO_PAD.encode(pair.public_key().public_key().to_bytes_uncompressed());
        let registered = store.register_vapid_key(&public).await?;
        anyhow::ensure!(
            registered == public,
            "members' browsers subscribed to push with another VAPID key than {}: every node needs the same key \
             file — copy it from the node that made it, or restore it with the database (set vapid_key_file if it \
             lives elsewhere)",
            path.display()
        );
        Ok(Self { pair, public })
    }

    pub fn public_key(&self) -> &str {
        &self.public
    }
}

/// Checks a browser's keys: `p256dh` a P-256 point, `auth` 16 bytes.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), &'static str> {
    let point = URL_SAFE_NO_PAD.decode(p256dh.trim_end_matches('=')).map_err(|_| "p256dh")?;
    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| "p256dh")?;
    let auth = URL_SAFE_NO_PAD.decode(auth.trim_end_matches('=')).map_err(|_| "auth")?;
    if auth.len() != 16 {
        return Err("auth");
    }
    Ok(())
}

pub(super) async fn send(
    http: &reqwest::Client,
    vapid: &VapidKey,
    subject: &str,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    payload: &NotificationPayload,
) -> Sent {
    let request = match build(vapid, subject, endpoint, p256dh, auth, payload) {
        Ok(r) => r,
        Err(e) => return Sent::Failed(format!("building the push message: {e}")),
    };
    let request = match reqwest::Request::try_from(request) {
        Ok(r) => r,
        Err(e) => return Sent::Failed(format!("push request: {e}")),
    };
    match http.execute(request).await {
        Ok(r) if r.status().is_success() => Sent::Delivered,
        Ok(r) if matches!(r.status().as_u16(), 404 | 410) => Sent::Gone,
        Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
            Sent::Retry(format!("push service answered {}", r.status()))
        }
        Ok(r) => Sent::Failed(format!("push service answered {}", r.status())),
        Err(e) => Sent::Retry(format!("push service unreachable: {e}")),
    }
}

fn build(
    vapid: &VapidKey,
    subject: &str,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    payload: &NotificationPayload,
) -> anyhow::Result<axum::http::Request<Vec<u8>>> {
    let point = URL_SAFE_NO_PAD.decode(p256dh.trim_end_matches('='))?;
    let auth: [u8; 16] = URL_SAFE_NO_PAD
        .decode(auth.trim_end_matches('='))?
        .try_into()
        .map_err(|_| anyhow::anyhow!("auth is not 16 bytes"))?;
    let builder = web_push_native::WebPushBuilder::new(
        endpoint.parse()?,
        p256::PublicKey::from_sec1_bytes(&point)?,
        web_push_native::Auth::from(auth),
    )
    .with_valid_duration(std::time::Duration::from_secs(12 * 3600))
    .with_vapid(&vapid.pair, subject);
    let body = serde_json::to_vec(payload).expect("a payload of numbers and strings serialises");
    Ok(builder.build(body)?)
}
