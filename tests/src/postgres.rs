//! A private PostgreSQL cluster for the tests of one process, or the server named by `TEST_DATABASE_URL`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Superuser URL of the cluster tests create their databases in, or `None` when PostgreSQL is not
/// available (after printing why). Panics instead when `RENKEI_REQUIRE_POSTGRES=1`.
pub fn postgres_admin_url() -> Option<String> {
    static CLUSTER: OnceLock<Result<String, String>> = OnceLock::new();
    let result = CLUSTER.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_private_cluster(),
    });
    match result {
        Ok(url) => Some(url.clone()),
        Err(why) => {
            if std::env::var("RENKEI_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL is required (RENKEI_REQUIRE_POSTGRES=1) but unavailable: {why}");
            }
            eprintln!(
                "\n**********\n* SKIPPING the PostgreSQL variant of this test: {why}\n* Install postgresql \
                 or set TEST_DATABASE_URL; RENKEI_REQUIRE_POSTGRES=1 makes this a failure.\n**********\n"
            );
            None
        }
    }
}

/// Creates a fresh database for one test; returns its URL and name.
pub(crate) async fn create_database(admin_url: &str) -> (String, String) {
    let name = format!("renkei_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx_admin(admin_url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create database");
    pool.close().await;
    (replace_database(admin_url, &name), name)
}

/// Drops a test database without blocking the caller (used from `Drop`).
pub(crate) fn drop_database_in_background(name: String) {
    let Some(admin_url) = postgres_admin_url() else {
        return;
    };
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                pool.close().await;
            }
        });
    });
}

async fn sqlx_admin(admin_url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(admin_url).await.expect("connect to PostgreSQL")
}

/// `postgres://u@h:p/db?x` with `db` replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn find_bin_dir() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        candidates.insert(0, PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    candidates
        .into_iter()
        .rev()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .ok_or_else(|| "no PostgreSQL server binaries (initdb, postgres) found".to_owned())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the `postgres` user when we are root (initdb refuses root), as ourselves otherwise.
fn as_cluster_user(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

fn start_private_cluster() -> Result<String, String> {
    let bin = find_bin_dir()?;
    let root = is_root();
    let dir = tempfile::Builder::new().prefix("renkei-pg-").tempdir().map_err(|e| e.to_string())?.keep();
    if root {
        let status = Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir).status();
        if !status.is_ok_and(|s| s.success()) {
            return Err(format!("cannot hand {} to the postgres user", dir.display()));
        }
    }
    let data = dir.join("data");
    let out = as_cluster_user(&bin.join("initdb"), root)
        .arg("-D")
        .arg(&data)
        .args(["-U", "renkei", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = free_port()?;
    // The watchdog: postgres in the background, stopped (fast shutdown) and its directory deleted as soon
    // as this test process is gone. The loop is bounded by the life of both processes.
    let script = format!(
        "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off \
         -c max_connections=200 -c shared_buffers=32MB >'{dir}/log' 2>&1 & pg=$!; \
         while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 1; done; \
         kill -INT $pg 2>/dev/null; wait $pg; rm -rf '{dir}'",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    let mut sh = as_cluster_user(Path::new("/bin/sh"), root);
    sh.arg("-c").arg(script).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
    sh.spawn().map_err(|e| format!("starting postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            return Err(format!("postgres did not start within 30 s: {log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("postgres://renkei@127.0.0.1:{port}/postgres");
    // The port opens slightly before the server accepts logins; wait for a real connection.
    // On a thread of its own: the caller may be inside a test's async runtime.
    let probe_url = url.clone();
    let ready = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return false;
        };
        rt.block_on(async {
            while Instant::now() < deadline {
                if let Ok(pool) = sqlx::PgPool::connect(&probe_url).await {
                    pool.close().await;
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        })
    })
    .join()
    .unwrap_or(false);
    if ready { Ok(url) } else { Err("postgres accepted no connection within 30 s".into()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(replace_database("postgres://u@h:5/postgres", "t1"), "postgres://u@h:5/t1");
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://u@h:5", "t1"), "postgres://u@h:5/t1");
    }
}
