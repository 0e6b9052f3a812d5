//! The deployment files: the local cluster script, the systemd units, the container files.

use renkei_tests::PASSWORD;
use std::path::Path;
use std::process::Stdio;

use crate::harness::*;

/// `deploy/local-cluster.sh` starts a private PostgreSQL and two nodes; a post through one node reaches a
/// subscriber on the other; SIGTERM stops everything and removes the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_cluster_script_runs_two_nodes_on_one_postgres() {
    use renkei_protocol::{ClientFrame, ServerFrame, Subscription};
    use tokio::io::AsyncBufReadExt;
    if std::fs::read_dir("/usr/lib/postgresql").is_err() {
        assert_ne!(std::env::var("RENKEI_REQUIRE_POSTGRES").as_deref(), Ok("1"), "PostgreSQL is required");
        eprintln!("SKIPPING the local cluster test: no PostgreSQL server binaries");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("cluster");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-cluster.sh");
    let mut child = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&cluster_dir)
        .env("RENKEI_SERVER_BIN", server_binary())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut pg, mut key, mut nodes) = (String::new(), String::new(), Vec::new());
    let started = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            match line.split_once(' ') {
                Some(("postgres", url)) => pg = url.to_owned(),
                Some(("audit", path)) => key = path.trim_start_matches("key ").to_owned(),
                Some((node, url)) if node.starts_with("node") => nodes.push(url.to_owned()),
                _ if line == "ready" => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(started, Ok(true), "the cluster did not start");
    assert_eq!(nodes.len(), 2);

    let config = dir.path().join("cli");
    // The command seals its entry with the nodes' key: one key for the whole cluster.
    create_admin(&config, &[("RENKEI_DATABASE_URL", pg.as_str()), ("RENKEI_AUDIT_KEY_FILE", key.as_str())]).await;
    let mut on_1 = renkei_cli::Client::new(&nodes[0], None).unwrap();
    on_1.login("admin", &renkei_protocol::Sensitive::new(PASSWORD), None).await.unwrap();
    let city = on_1.admin_create_community_group("全体").await.unwrap();
    on_1.admin_add_community_member(city.id, "admin").await.unwrap();
    let on_2 = renkei_cli::Client::new(&nodes[1], None).unwrap().with_token(on_1.token().unwrap().clone());
    let mut live = on_2.connect_live().await.unwrap();
    live.send(&ClientFrame::Subscribe {
        id: "s".into(),
        groups: vec![Subscription { group_id: city.id, after_seq: 0 }],
    })
    .await
    .unwrap();
    let subscribed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !matches!(live.next().await, Some(Ok(ServerFrame::Subscribed { .. })) | None) {}
    })
    .await;
    assert!(subscribed.is_ok(), "no subscription within 20 s");
    on_1.post(city.id, &renkei_tests::care::update("研修会のお知らせ", "a-1")).await.unwrap();
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            if let Some(Ok(ServerFrame::Post { post })) = live.next().await {
                return post.seq;
            }
        }
    })
    .await;
    assert_eq!(delivered, Ok(1), "posted on node 1, delivered on node 2");
    let verification = on_2.admin_audit_verification(None).await.unwrap();
    assert!(verification.intact, "both nodes and the command seal with one key: {verification:?}");

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status =
        tokio::time::timeout(std::time::Duration::from_secs(60), child.wait()).await.expect("stopped").unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!cluster_dir.exists(), "the cluster directory was removed");
}

/// The systemd units parse (`systemd-analyze verify`, when the machine has it), with ExecStart pointed at
/// the built binary, and pass `systemd-analyze security` at 4.0 or better.
#[test]
fn the_systemd_units_verify() {
    if std::process::Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPING: systemd-analyze is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    for unit in ["renkei-server.service", "renkei-backup.service", "renkei-backup.timer"] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        let text = text.replace("/usr/local/bin/renkei-server", server_binary().to_str().unwrap());
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("renkei-server.service"))
        .arg(dir.path().join("renkei-backup.service"))
        .arg(dir.path().join("renkei-backup.timer"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("renkei"), "{stderr}");
    // Both services are hardened (an exposure of at most 4.0 of 10; the threshold counts in tenths) and
    // create files readable by the service alone.
    for unit in ["renkei-server.service", "renkei-backup.service"] {
        let text = std::fs::read_to_string(dir.path().join(unit)).unwrap();
        assert!(text.lines().any(|l| l.trim() == "UMask=0077"), "{unit}: no UMask=0077");
        let out = std::process::Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=40"])
            .arg(dir.path().join(unit))
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{unit}: {}", report.lines().last().unwrap_or_default());
    }
}

/// The container files agree with each other and with the binaries (no Docker engine runs here): the
/// compose file parses; every named volume is declared, every file setting lies in a mounted directory,
/// the TLS files are those `dev-cert` writes; nothing needs a database password outside the `region`
/// profile; the image makes and hands its volumes to the service user; `.dockerignore` keeps `target/` out;
/// and the image's health-check command reports a TLS server up, then down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_files_agree() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let text = std::fs::read_to_string(deploy.join("compose.yaml")).unwrap();
    let compose: serde_json::Value =
        serde_json::to_value(serde_norway::from_str::<serde_norway::Value>(&text).expect("compose.yaml parses"))
            .unwrap();
    assert!(!text.contains(":?"), "compose interpolates every profile: a required variable breaks `single`");
    let declared: Vec<&str> = compose["volumes"].as_object().expect("volumes").keys().map(String::as_str).collect();
    let services = compose["services"].as_object().expect("services");
    for (name, service) in services {
        let mounts: Vec<(&str, &str)> = service["volumes"]
            .as_array()
            .map(|v| v.iter().filter_map(|m| m.as_str()?.split_once(':')).collect())
            .unwrap_or_default();
        for (source, _) in &mounts {
            assert!(source.starts_with("./") || declared.contains(source), "{name}: volume {source} is not declared");
        }
        let env = service["environment"].as_object().cloned().unwrap_or_default();
        for (key, value) in &env {
            let Some(path) = value.as_str().filter(|_| key.ends_with("_FILE") || key.starts_with("RENKEI_TLS_")) else {
                continue;
            };
            let dst = |m: &&(&str, &str)| m.1.split(':').next().unwrap_or_default().to_owned();
            assert!(
                mounts.iter().map(|m| dst(&m)).any(|d| path.starts_with(&format!("{d}/"))),
                "{name}: {key}={path} is in no volume"
            );
        }
        if name.starts_with("node") {
            assert!(
                env.contains_key("RENKEI_AUDIT_KEY_FILE") && env.contains_key("RENKEI_VAPID_KEY_FILE"),
                "{name}: nodes share their keys"
            );
        }
    }
    let single = &services["single"]["environment"];
    assert!(single["RENKEI_TLS_CERT"].as_str().unwrap().ends_with("/renkei-dev-cert.pem"), "dev-cert's default name");
    assert!(single["RENKEI_TLS_KEY"].as_str().unwrap().ends_with("/renkei-dev-key.pem"), "dev-cert's default name");

    let dockerfile = std::fs::read_to_string(deploy.join("Dockerfile")).unwrap();
    let user_at = dockerfile.find("\nUSER renkei").expect("the image runs as renkei");
    let volumes = dockerfile.lines().find_map(|l| l.strip_prefix("VOLUME ")).expect("VOLUME");
    let volumes: Vec<String> = serde_json::from_str(volumes).unwrap();
    for v in &volumes {
        let made = dockerfile[..user_at].contains("mkdir -p") && dockerfile[..user_at].contains(v.as_str());
        assert!(
            made && dockerfile[..user_at].contains("chown -R renkei:renkei /var/lib/renkei"),
            "{v} is made and owned before USER"
        );
    }
    let ignore = std::fs::read_to_string(deploy.join("../.dockerignore")).expect(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"), ".dockerignore keeps target/ out");
    let check = dockerfile
        .lines()
        .find_map(|l| l.split_once(" CMD ").filter(|_| l.starts_with("HEALTHCHECK")))
        .expect("HEALTHCHECK")
        .1;
    let mut check: Vec<String> = serde_json::from_str(check).expect("the health check is an exec array");
    assert_eq!(check[0], "/usr/local/bin/renkei-server");
    check[0] = server_binary().to_string_lossy().into_owned();
    let config_at = check.iter().position(|a| a == "--config").unwrap() + 1;
    assert_eq!(check[config_at], "/etc/renkei/renkei.toml");
    check[config_at] = deploy.join("renkei.example.toml").to_string_lossy().into_owned();

    // The image's health check against a server with TLS on, as the `single` profile runs it.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("renkei-dev-cert.pem"), dir.path().join("renkei-dev-key.pem"));
    let out = run(
        &server_binary(),
        dir.path(),
        "C",
        &["dev-cert", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()],
        "",
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let port = free_port();
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("RENKEI_LISTEN", listen.as_str()),
        ("RENKEI_DATA_DIR", data.to_str().unwrap()),
        ("RENKEI_TLS_CERT", cert.to_str().unwrap()),
        ("RENKEI_TLS_KEY", key.to_str().unwrap()),
    ];
    let health = async || {
        let args: Vec<&str> = check[1..].iter().map(String::as_str).collect();
        run(Path::new(&check[0]), dir.path(), "C", &args, "", &env).await
    };
    let mut server = tokio::process::Command::new(server_binary())
        .args(["--config", check[config_at].as_str()])
        .env_clear()
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if health().await.code == 0 {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healthy, "the health check never saw the TLS server up: {}", health().await.stderr);
    server.kill().await.unwrap();
    let down = health().await;
    assert_ne!(down.code, 0, "a stopped server is unhealthy");
    assert!(down.stderr.contains("does not answer"), "{}", down.stderr);
}
