//! What every CLI test uses: running `renkei` and `renkei-server` as processes in a clean locale and a
//! private config directory, and `renkei-server serve` processes a test can kill and start again.

use renkei_tests::{PASSWORD, TestApp};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

pub(crate) fn server_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_renkei")).with_file_name("renkei-server");
    assert!(path.is_file(), "{} is not built; run `cargo test --workspace`", path.display());
    path
}

pub(crate) struct Output {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `program` with `args`, feeding `stdin`, in a clean locale and a private config directory.
pub(crate) async fn run(
    program: &Path,
    config_dir: &Path,
    lang: &str,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> Output {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RENKEI_CONFIG_DIR", config_dir)
        .env("LANG", lang)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("write stdin");
    drop(input);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("command finished within 60 s")
        .expect("wait");
    Output {
        code: out
            .status
            .code()
            .unwrap_or_else(|| -100 - std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) struct Cli<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) dir: PathBuf,
}

impl Cli<'_> {
    pub(crate) async fn renkei(&self, args: &[&str], stdin: &str) -> Output {
        self.renkei_lang("C", args, stdin).await
    }

    pub(crate) async fn renkei_lang(&self, lang: &str, args: &[&str], stdin: &str) -> Output {
        let mut full = vec!["--server", self.app.base_url.as_str()];
        full.extend_from_slice(args);
        run(Path::new(env!("CARGO_BIN_EXE_renkei")), &self.dir, lang, &full, stdin, &[]).await
    }

    /// `renkei --profile WHO ARGS…`.
    pub(crate) async fn as_user(&self, who: &str, args: &[&str]) -> Output {
        let mut full = vec!["--profile", who];
        full.extend_from_slice(args);
        self.renkei(&full, "").await
    }

    pub(crate) async fn server(&self, args: &[&str], stdin: &str) -> Output {
        let data_dir = self.app.dir.path().to_string_lossy().into_owned();
        let env = [("RENKEI_DATABASE_URL", self.app.database_url.as_str()), ("RENKEI_DATA_DIR", data_dir.as_str())];
        run(&server_binary(), &self.dir, "C", args, stdin, &env).await
    }
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `renkei-server serve` on `port` with exactly `env` (plus `RENKEI_LISTEN`), its stderr appended to
/// `log`, and waits until it is ready; returns the child and its URL.
pub(crate) async fn start_server_process(
    port: u16,
    env: &[(&str, &str)],
    log: &Path,
) -> (tokio::process::Child, String) {
    let url = format!("http://127.0.0.1:{port}");
    let child = tokio::process::Command::new(server_binary())
        .env_clear()
        .env("RENKEI_LISTEN", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{url}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return (child, url);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("server did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// The test app's database served by `renkei-server` processes the test can kill -9 and start again.
pub(crate) struct ServerProcess {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) env: Vec<(&'static str, String)>,
}

impl ServerProcess {
    /// Stops the app's in-process server first: a process server is the only one on the database (SQLite
    /// allows one).
    pub(crate) async fn take_over(app: &mut TestApp) -> Self {
        app.stop_server().await;
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_string_lossy().into_owned();
        // The database's audit and Web Push keys go with it (a node with other keys is refused).
        let key = app.config.effective_audit_key_file().to_string_lossy().into_owned();
        let vapid = app.config.effective_vapid_key_file().to_string_lossy().into_owned();
        let env = vec![
            ("RENKEI_DATABASE_URL", app.database_url.clone()),
            ("RENKEI_DATA_DIR", data_dir),
            ("RENKEI_AUDIT_KEY_FILE", key),
            ("RENKEI_VAPID_KEY_FILE", vapid),
        ];
        Self { env, dir }
    }

    /// Starts one on `port`, logging to `server.log` in its directory.
    pub(crate) async fn start(&self, port: u16) -> (tokio::process::Child, String) {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start_server_process(port, &env, &self.dir.path().join("server.log")).await
    }
}

/// `renkei-server create-admin` for the login `admin` with the test password, in `env`.
pub(crate) async fn create_admin(config: &Path, env: &[(&str, &str)]) {
    let args = ["create-admin", "--login", "admin", "--display-name", "A"];
    let out = run(&server_binary(), config, "C", &args, &format!("{PASSWORD}\n"), env).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Reads `lines` into `seen` until `done(seen)` holds; panics after 30 s with what was read.
pub(crate) async fn read_until<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
    seen: &mut String,
    done: impl Fn(&str) -> bool,
) {
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !done(seen) {
            match lines.next_line().await.unwrap() {
                Some(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                }
                None => return,
            }
        }
    })
    .await;
    assert!(found.is_ok() && done(seen), "not found in:\n{seen}");
}
