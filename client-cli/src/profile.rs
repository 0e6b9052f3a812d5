//! Per-user client state: profiles (server URL and CA certificate) in `config.toml`, and each profile's
//! session token in its own file readable by the user only (mode 0600).
//!
//! The directory is `$RENKEI_CONFIG_DIR`, or the platform's config directory plus `renkei`
//! (`~/.config/renkei` on Linux).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use renkei_protocol::Sensitive;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Base URL of the server, e.g. `https://renkei.example.jp`.
    pub server: Option<String>,
    /// PEM file of the CA to trust for this server (self-signed or private CA).
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// The client's configuration directory.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    dir: PathBuf,
}

impl ConfigDir {
    /// `$RENKEI_CONFIG_DIR`, else the platform config directory + `renkei`.
    pub fn locate() -> std::io::Result<Self> {
        if let Some(dir) = std::env::var_os("RENKEI_CONFIG_DIR").filter(|d| !d.is_empty()) {
            return Ok(Self { dir: PathBuf::from(dir) });
        }
        let base = dirs::config_dir()
            .ok_or_else(|| std::io::Error::other("no configuration directory; set RENKEI_CONFIG_DIR"))?;
        Ok(Self { dir: base.join("renkei") })
    }

    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn token_file(&self, profile: &str) -> PathBuf {
        self.dir.join(format!("token-{profile}"))
    }

    pub fn load(&self) -> std::io::Result<ProfileFile> {
        match std::fs::read_to_string(self.config_file()) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", self.config_file().display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProfileFile::default()),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, file: &ProfileFile) -> std::io::Result<()> {
        self.ensure_dir()?;
        let text = toml::to_string(file).map_err(std::io::Error::other)?;
        std::fs::write(self.config_file(), text)
    }

    fn ensure_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// Stores a profile's token in a file only its owner can read.
    pub fn save_token(&self, profile: &str, token: &Sensitive) -> std::io::Result<()> {
        self.ensure_dir()?;
        let path = self.token_file(profile);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            options.mode(0o600);
            let mut file = options.open(&path)?;
            // The mode above applies only to a new file; tighten an old one too.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(token.expose().as_bytes())
        }
        #[cfg(not(unix))]
        {
            options.open(&path)?.write_all(token.expose().as_bytes())
        }
    }

    pub fn load_token(&self, profile: &str) -> std::io::Result<Option<Sensitive>> {
        match std::fs::read_to_string(self.token_file(profile)) {
            Ok(text) if !text.trim().is_empty() => Ok(Some(Sensitive::new(text.trim()))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn delete_token(&self, profile: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.token_file(profile)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_private_and_profiles_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let config = ConfigDir::at(dir.path().join("renkei"));
        assert_eq!(config.load_token("default").unwrap(), None);
        config.save_token("default", &Sensitive::new("rks_abc")).unwrap();
        assert_eq!(config.load_token("default").unwrap(), Some(Sensitive::new("rks_abc")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(config.token_file("default")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut file = ProfileFile::default();
        file.profiles.insert(
            "default".into(),
            Profile { server: Some("https://127.0.0.1:8443".into()), ca_cert: Some("/tmp/ca.pem".into()) },
        );
        config.save(&file).unwrap();
        assert_eq!(config.load().unwrap(), file);
        config.delete_token("default").unwrap();
        assert_eq!(config.load_token("default").unwrap(), None);
    }
}
