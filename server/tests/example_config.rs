//! The example configuration in `deploy/` parses, and shows exactly the defaults.

use renkei_server::Config;

#[test]
fn the_example_configuration_is_valid_and_shows_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/renkei.example.toml");
    let config = Config::load_from(Some(&path), Vec::new()).expect("example parses");
    assert_eq!(config, Config::default());
}

/// Every setting of `Config` is in the example, set or commented out, so an operator finds each one there.
/// The settings are read from the struct's own source, so a new one cannot be missed.
#[test]
fn the_example_configuration_lists_every_setting() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("../deploy/renkei.example.toml")).unwrap();
    let source = std::fs::read_to_string(root.join("src/config.rs")).unwrap();
    let body = source.split("pub struct Config {").nth(1).and_then(|b| b.split("\n}").next()).expect("struct Config");
    let keys: Vec<&str> = body.lines().filter_map(|l| l.trim().strip_prefix("pub ")?.split(':').next()).collect();
    assert!(keys.len() > 25 && keys.contains(&"time_zone"), "{keys:?}");
    for key in keys {
        let listed = text.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        assert!(listed, "deploy/renkei.example.toml does not list {key}");
    }
}

/// A configuration error is said once, with the key it concerns.
#[test]
fn a_configuration_error_is_printed_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_renkei-server"))
        .arg("print-config")
        .env_clear()
        .env("RENKEI_LISTEN", "not an address")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("invalid socket address").count(), 1, "{stderr}");
    assert!(stderr.contains("listen"), "{stderr}");
}

/// A server started before any administrator exists says how to create the first one.
#[test]
fn a_new_server_says_how_to_create_the_first_administrator() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_renkei-server"))
        .env_clear()
        .env("RENKEI_LISTEN", "127.0.0.1:0")
        .env("RENKEI_DATA_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stderr.take().unwrap();
    // Read the log on a thread, so the wait below is bounded.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("url=") {
                break;
            }
        }
        let _ = tx.send(seen);
    });
    let log = rx.recv_timeout(std::time::Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    let log = log.expect("the server started within 30 s");
    assert!(log.contains("no administrator yet") && log.contains("renkei-server create-admin --login admin"), "{log}");
}
