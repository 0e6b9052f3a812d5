//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, so an acknowledged write survives a
//! power cut, and foreign keys enforced.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

pub(super) async fn connect(path: &Path, max_connections: u32) -> Result<SqlitePool, StoreError> {
    // Patient data: a new directory 0700, the database and its journal files 0600 (SQLite gives the -wal
    // and -shm files the database file's permissions when it creates them). The data directory itself is
    // tightened at start (`Application::build`).
    let io = |e| StoreError::Unavailable(sqlx::Error::Io(e));
    if let Some(dir) = path.parent() {
        crate::private_files::create_private_dir(dir).map_err(io)?;
    }
    crate::private_files::private_file(path).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        crate::private_files::tighten_if_present(Path::new(&format!("{}{suffix}", path.display()))).map_err(io)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    Ok(SqlitePoolOptions::new().max_connections(max_connections.max(1)).connect_with(options).await?)
}
