//! Operator commands that work on the database directly, without a running server: creating the first
//! administrator and generating a development certificate.

use std::path::Path;

use anyhow::{Context, bail};
use renkei_protocol::{Profession, Role, Sensitive, User};

use crate::auth::password;
use crate::config::Config;
use crate::domain::{self, DisplayName, Login, Organisation};
use crate::policy;
use crate::store::{Conflict, NewUser, Store, StoreError};

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
    let hash = password::hash(password).await?;
    let created = store
        .create_user(
            NewUser {
                login,
                display_name,
                profession: Profession::Other,
                organisation,
                phone: None,
                role: Role::Admin,
                password_hash: Some(hash),
                must_change_password: false,
                setup_token: None,
            },
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
