//! The README's walk-through runs as written: every command of "A first walk-through" is run, in order, in
//! a shell, against a fresh `renkei-server`, and must succeed. Only what cannot run unattended is left out
//! (each with its reason below), the server's address is the test's, and a setup token the README writes
//! as `rku_...` is the one the command before it printed. The photo it attaches, `wound.jpg`, is in the
//! working directory, as on a nurse's own computer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

const README_URL: &str = "http://127.0.0.1:8443";
const PASSWORD: &str = "a walk through the readme";

/// Commands the test does not run, and why.
const LEFT_OUT: &[(&str, &str)] = &[
    ("cargo build", "the test runs the binaries cargo built for it"),
    ("alias renkei=", "`renkei` is on the test's PATH"),
    (" tail ", "runs until Ctrl-C; `members_post_read_and_follow_a_group_from_the_terminal` runs it"),
    (" chat ", "interactive; `chat_and_tail_through_the_binary_survive_a_server_restart` runs it"),
    (" totp enroll", "asks for a code from the phone; `totp` tests in tests/tests/accounts.rs enrol"),
];

fn binaries() -> (PathBuf, PathBuf) {
    let renkei = PathBuf::from(env!("CARGO_BIN_EXE_renkei"));
    let server = renkei.with_file_name("renkei-server");
    (renkei, server)
}

/// The walk-through's commands: indented lines from "A first walk-through" to "The web client", with
/// continuation lines joined. Lines of a transcript (what one types into `chat`) are not commands.
fn walkthrough_commands(readme: &str) -> Vec<String> {
    let start = readme.find("## A first walk-through").expect("the README has a walk-through");
    let end = readme[start..].find("## The web client").map_or(readme.len(), |i| start + i);
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in readme[start..end].lines() {
        let Some(code) = line.strip_prefix("    ") else { continue };
        if !pending.is_empty() {
            pending.push(' ');
            pending.push_str(code.trim());
        } else if ["renkei ", "renkei-server ", "echo ", "cargo ", "alias "].iter().any(|p| code.starts_with(p)) {
            pending.push_str(code.trim());
        } else {
            continue;
        }
        match pending.strip_suffix('\\') {
            Some(joined) => pending = joined.trim_end().to_owned(),
            None => commands.push(std::mem::take(&mut pending)),
        }
    }
    commands
}

/// The first `rku_…` setup token in a command's output.
fn setup_token_in(text: &str) -> Option<String> {
    let start = text.find("rku_")?;
    let token: String =
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect();
    Some(token)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Shell {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Shell {
    /// Runs one line in bash, with the password on stdin for whatever asks for it.
    async fn run(&self, line: &str) -> (bool, String, String) {
        let mut child = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; {line}"))
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes()).await;
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("`{line}` did not finish within 60 s"))
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let commands = walkthrough_commands(&readme);
    assert!(commands.len() >= 40, "the walk-through was found: {commands:#?}");

    let (renkei, server) = binaries();
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    let home = root.path().join("home");
    let data = root.path().join("data");
    for dir in [&bin, &home] {
        std::fs::create_dir_all(dir).unwrap();
    }
    image::RgbImage::from_pixel(64, 48, image::Rgb([190, 90, 80])).save(home.join("wound.jpg")).unwrap();
    std::os::unix::fs::symlink(&renkei, bin.join("renkei")).unwrap();
    std::os::unix::fs::symlink(&server, bin.join("renkei-server")).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let env: Vec<(String, String)> = [
        ("PATH", path.as_str()),
        ("HOME", home.to_str().unwrap()),
        ("LANG", "C"),
        // The server's configuration, for `renkei-server` commands as for the server itself.
        ("RENKEI_LISTEN", &format!("127.0.0.1:{port}")),
        ("RENKEI_DATA_DIR", data.to_str().unwrap()),
        ("RENKEI_LOG_FILTER", "warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    let log = std::fs::File::create(root.path().join("server.log")).unwrap();
    let mut serving = tokio::process::Command::new(&server)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    renkei_tests::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..200 {
        if http.get(format!("{url}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "server did not start: {}", std::fs::read_to_string(root.path().join("server.log")).unwrap());

    let shell = Shell { dir: home.clone(), env };
    let mut last_token: Option<String> = None;
    let (mut ran, mut failures) = (0, Vec::new());
    for command in &commands {
        let without_comment = command.split(" #").next().unwrap_or(command);
        if let Some((_, why)) = LEFT_OUT.iter().find(|(pattern, _)| without_comment.contains(pattern)) {
            eprintln!("left out: {command}\n  ({why})");
            continue;
        }
        let mut line = command.replace(README_URL, &url);
        if let Some(rest) = line.strip_prefix("cargo run --release --bin renkei-server -- ") {
            line = format!("renkei-server {rest}");
        }
        if line.contains("rku_...") {
            let Some(t) = &last_token else { panic!("`{command}` needs a setup token no command printed") };
            line = line.replace("rku_...", t);
        }
        let (ok, stdout, stderr) = shell.run(&line).await;
        ran += 1;
        if let Some(found) = setup_token_in(&stdout) {
            last_token = Some(found);
        }
        if !ok {
            failures.push(format!("`{command}`\n  stdout: {stdout}\n  stderr: {stderr}"));
        }
    }
    assert!(ran >= 40, "only {ran} commands ran");
    let pid = serving.id().unwrap().to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let _ = tokio::time::timeout(Duration::from_secs(15), serving.wait()).await;
    assert!(failures.is_empty(), "{} of {ran} README commands failed:\n{}", failures.len(), failures.join("\n"));
}
