//! Operator commands that work on the database directly, without a running server: creating the first
//! administrator and generating a development certificate.

use std::path::Path;

use anyhow::{Context, bail};
use renkei_protocol::{Profession, Role, Sensitive, User};

use crate::audit::action;
use crate::auth::password;
use crate::config::Config;
use crate::domain::{self, DisplayName, Login, Organisation};
use crate::policy;
use crate::store::{Conflict, NewAuditEntry, NewUser, Store, StoreError};

/// Creates an administrator account directly in the configured database — how an operator bootstraps a
/// fresh install. There is no default account or password.
pub async fn create_admin(
    config: &Config,
    login: &str,
    display_name: &str,
    organisation: &str,
    password: &Sensitive,
) -> anyhow::Result<User> {
    let login = Login::parse(login).map_err(|e| anyhow::anyhow!("login: {}", e.problem))?;
    let display_name = DisplayName::parse(display_name).map_err(|e| anyhow::anyhow!("display name: {}", e.problem))?;
    let organisation = Organisation::parse(organisation).map_err(|e| anyhow::anyhow!("organisation: {}", e.problem))?;
    if let Err(problem) = policy::check_new_password(password.expose(), false) {
        bail!("password rejected by the policy: {problem} (at least 13 characters)");
    }
    let store = Store::connect(&config.effective_database_url(), 2).await.context("connecting to the database")?;
    store.migrate().await.context("applying migrations")?;
    let store = keyed(config, store).await?;
    let hash = password::hash(password).await?;
    let created = store
        .create_user(
            NewUser {
                login,
                display_name,
                kana: None,
                profession: Profession::Other,
                organisation,
                phone: None,
                role: Role::Admin,
                password_hash: Some(hash),
                must_change_password: false,
                setup_token: None,
            },
            operator_act(
                action::ACCOUNT_CREATED,
                None,
                serde_json::json!({ "role": "admin", "via": "renkei-server create-admin" }),
            ),
            domain::now(),
        )
        .await;
    store.close().await;
    match created {
        Ok(account) => Ok(account.user),
        Err(StoreError::Conflict(Conflict::LoginTaken)) => bail!("login is already taken"),
        Err(e) => Err(e).context("creating the administrator"),
    }
}

/// The audit entry of an act of the operator at the server's command line: no actor account (the database
/// was used directly), the command and what was done in the details.
fn operator_act(act: &'static str, target: Option<uuid::Uuid>, details: serde_json::Value) -> NewAuditEntry {
    NewAuditEntry {
        action: act,
        actor_id: None,
        group_id: None,
        target_user_id: target,
        client_addr: None,
        session_id: None,
        details,
    }
}

/// An act of the operator at the server's command line, in the audit log: no actor account (the database
/// was used directly), what was done in the details.
async fn record_operator_act(
    store: &Store,
    act: &'static str,
    target: Option<uuid::Uuid>,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let entry = operator_act(act, target, details);
    store
        .append_audit(&entry, domain::now())
        .await
        .map(|_| ())
        .with_context(|| format!("recording {act} in the audit log"))
}

/// `store`, appending with the audit key (made on first use, like the server does).
async fn keyed(config: &Config, store: Store) -> anyhow::Result<Store> {
    let key = crate::audit::load_or_create_key(config, &store).await?;
    Ok(store.with_audit_key(key))
}

/// `renkei-server purge`: the housekeeping sweep's purge, run now (see [`crate::housekeeping::purge_due`]).
pub async fn purge(
    config: &Config,
    dry_run: bool,
) -> anyhow::Result<Vec<(crate::domain::GroupRecord, Option<crate::store::Purged>)>> {
    let store = Store::connect(&config.effective_database_url(), 1).await.context("connecting to the database")?;
    store.migrate().await?;
    let store = keyed(config, store).await?;
    let done = crate::housekeeping::purge_due(&store, domain::now(), config.purge_archived_after_days, dry_run).await;
    store.close().await;
    done
}

/// The file name of a backup, for the audit log (never the directory it sits in).
fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Copies the live SQLite database into `dest` as `renkei-YYYYMMDD-HHMMSS-mmm.sqlite3` (consistent while
/// the server runs), checks the copy and its audit chain, and keeps the newest `keep` generations there.
pub async fn backup(config: &Config, dest: &Path, keep: usize) -> anyhow::Result<std::path::PathBuf> {
    let url = config.effective_database_url();
    if Store::sqlite_path(&url).is_none() {
        bail!(
            "backup is for SQLite; back PostgreSQL up with pg_dump or base backups + WAL archiving (deploy/README.md)"
        );
    }
    crate::private_files::private_dir(dest).with_context(|| format!("creating {}", dest.display()))?;
    let stamp = domain::now()
        .format(time::macros::format_description!("[year][month][day]-[hour][minute][second]-[subsecond digits:3]"))
        .unwrap_or_default();
    let file = dest.join(format!("renkei-{stamp}.sqlite3"));
    let store = keyed(config, Store::connect(&url, 1).await.context("connecting to the database")?).await?;
    // VACUUM INTO writes into an empty file, which keeps the permissions it was created with: 0600.
    crate::private_files::private_file(&file).with_context(|| format!("creating {}", file.display()))?;
    let copied = store.backup_into(&file).await.context("copying the database");
    let checked = match copied {
        Ok(()) => check_copy(&file).await,
        Err(e) => Err(e),
    };
    let recorded = match &checked {
        Ok(entries) => {
            let details = serde_json::json!({ "file": file_name(&file), "entries": entries });
            record_operator_act(&store, action::BACKUP_CREATED, None, details).await
        }
        Err(_) => Ok(()),
    };
    store.close().await;
    checked?;
    recorded?;
    let mut generations: Vec<_> = std::fs::read_dir(dest)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("renkei-") && n.ends_with(".sqlite3"))
        })
        .collect();
    generations.sort();
    let excess = generations.len().saturating_sub(keep.max(1));
    for old in &generations[..excess] {
        std::fs::remove_file(old).with_context(|| format!("removing old backup {}", old.display()))?;
    }
    Ok(file)
}

/// A copy must pass SQLite's integrity check and have an intact audit chain; returns its audit entries.
async fn check_copy(file: &Path) -> anyhow::Result<i64> {
    let store = Store::connect(&format!("sqlite://{}", file.display()), 1).await?;
    let sound = store.integrity_ok().await?;
    let chain = crate::audit::verify(&store, None).await?;
    store.close().await;
    anyhow::ensure!(sound, "{} fails SQLite's integrity check", file.display());
    chain.map_err(|broken| anyhow::anyhow!("{}: audit log {broken}", file.display()))
}

/// Replaces the configured SQLite database with a backup, after checking the backup. Refuses while a
/// server is using the database.
pub async fn restore(config: &Config, backup: &Path) -> anyhow::Result<i64> {
    let url = config.effective_database_url();
    let Some(target) = Store::sqlite_path(&url) else {
        bail!("restore is for SQLite; restore PostgreSQL with pg_restore (deploy/README.md)");
    };
    let entries = check_copy(backup).await?;
    let _lock = crate::app::lock_database(target)?;
    for suffix in ["-wal", "-shm"] {
        let side = std::path::PathBuf::from(format!("{}{suffix}", target.display()));
        if side.exists() {
            std::fs::remove_file(&side).with_context(|| format!("removing {}", side.display()))?;
        }
    }
    std::fs::copy(backup, target).with_context(|| format!("copying {} to {}", backup.display(), target.display()))?;
    crate::private_files::private_file(target).with_context(|| format!("securing {}", target.display()))?;
    // The restored database's log says it was restored, and from what.
    let store = keyed(config, Store::connect(&url, 1).await.context("opening the restored database")?).await?;
    let details = serde_json::json!({ "from": file_name(backup), "entries": entries });
    let recorded = record_operator_act(&store, action::DATABASE_RESTORED, None, details).await;
    store.close().await;
    recorded?;
    Ok(entries)
}

/// Writes a self-signed certificate and key for `names` (for development and tests; use a real
/// certificate in production). `renkei --ca-cert CERT` trusts it.
pub fn dev_cert(cert_path: &Path, key_path: &Path, names: Vec<String>) -> anyhow::Result<()> {
    let certified = rcgen::generate_simple_self_signed(names).context("generating the certificate")?;
    std::fs::write(cert_path, certified.cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// Asks the server this configuration describes, on this machine, for `/healthz`: HTTPS when it has a
/// certificate (any certificate: the probe sends nothing and only asks whether the process answers),
/// plain HTTP otherwise; five seconds at most.
pub async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    crate::install_crypto_provider();
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .tls_danger_accept_invalid_certs(true)
        .build()?;
    let url = format!("{scheme}://{addr}/healthz");
    let response = client.get(&url).send().await.with_context(|| format!("{url} does not answer"))?;
    anyhow::ensure!(response.status().is_success(), "{url} answered {}", response.status());
    Ok(())
}
