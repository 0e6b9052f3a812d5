//! The processes' lives: start, SIGTERM, kill -9 and restart, TLS with a dev certificate.

use renkei_tests::{PASSWORD, TestApp, both_backends};
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

use crate::harness::*;

/// The real `renkei-server serve` process: it starts from environment configuration, serves the CLI,
/// stops cleanly on SIGTERM, and even its trace-level log holds neither the password, the session token
/// nor a post's body (HTTP or WebSocket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_process_stops_on_sigterm_and_never_logs_secrets() {
    renkei_tests::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cli");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let env = [
        ("RENKEI_LISTEN", listen.as_str()),
        ("RENKEI_DATA_DIR", data.to_str().unwrap()),
        ("RENKEI_LOG_FILTER", "trace"),
    ];
    create_admin(&config, &env).await;
    let printed = run(&server_binary(), &config, "C", &["print-config"], "", &env).await;
    assert!(printed.stdout.contains(&format!("listen = \"{listen}\"")), "{}", printed.stdout);

    let log_path = dir.path().join("server.log");
    let (mut server, url) = start_server_process(port, &env[1..], &log_path).await;

    let renkei = Path::new(env!("CARGO_BIN_EXE_renkei"));
    let out = run(renkei, &config, "C", &["--server", &url, "login", "admin"], &format!("{PASSWORD}\n"), &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let token = std::fs::read_to_string(config.join("token-default")).unwrap();
    let out = run(
        renkei,
        &config,
        "C",
        &[
            "--server",
            &url,
            "--json",
            "admin",
            "user",
            "add",
            "--login",
            "ito",
            "--name",
            "伊藤",
            "--profession",
            "pharmacist",
            "--organisation",
            "薬局",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let setup = out.json()["setup_token"].as_str().unwrap().to_owned();
    let out = run(
        renkei,
        &config,
        "C",
        &["--server", &url, "--profile", "ito", "setup", "--token", &setup],
        "ito secret passphrase\n",
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    // A post over the WebSocket and one over HTTP, into a community group of the pharmacist's.
    let mut admin = renkei_cli::Client::new(&url, None).unwrap();
    admin.login("admin", &renkei_protocol::Sensitive::new(PASSWORD), None).await.unwrap();
    let community = admin.admin_create_community_group("薬剤師会").await.unwrap();
    admin.admin_add_community_member(community.id, "ito").await.unwrap();
    let mut ito = renkei_cli::Client::new(&url, None).unwrap();
    ito.login("ito", &renkei_protocol::Sensitive::new("ito secret passphrase"), None).await.unwrap();
    let mut live = ito.connect_live().await.unwrap();
    let post = renkei_tests::care::update("WS-CANARY 在庫の確認をお願いします", "ws-canary");
    live.send(&renkei_protocol::ClientFrame::Post { id: "c".into(), group_id: community.id, post }).await.unwrap();
    let ack = tokio::time::timeout(std::time::Duration::from_secs(10), live.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(ack, renkei_protocol::ServerFrame::Ack { .. }), "{ack:?}");
    ito.post(community.id, &renkei_tests::care::update("HTTP-CANARY 休薬のお知らせ", "http-canary")).await.unwrap();
    live.close().await;
    let sessions = ito.sessions().await.unwrap().sessions;
    let ito_session = sessions.iter().find(|s| s.current).expect("the current session is listed").id;

    let pid = server.id().unwrap().to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(15), server.wait())
        .await
        .expect("stopped within 15 s")
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("login"), "the log is not empty: {log}");
    assert!(log.contains("DEBUG"), "the log is not verbose");
    // The access log names the session of each signed-in request (its id, never its token).
    let access = log
        .lines()
        .find(|l| l.contains("renkei_server::access") && l.contains("route=/api/v1/groups/{id}/posts"))
        .expect("an access line for the post over HTTP");
    assert!(access.contains(&format!("session={ito_session}")), "{access}");
    assert!(access.contains("status=201") || access.contains("status=200"), "{access}");
    // tungstenite's frame traces print payloads in hex: look for that too.
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for secret in [PASSWORD, token.trim(), setup.as_str(), "ito secret passphrase", "WS-CANARY", "HTTP-CANARY"] {
        assert!(!log.contains(secret), "the log contains a secret or a post's body: {secret}");
        assert!(!log.contains(&hex(secret)), "the log contains a secret or a post's body in hex: {secret}");
    }
}

/// `--ca-cert` makes the CLI trust a self-signed server (made by `renkei-server dev-cert`); without it
/// the connection is refused and the CLI exits 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_trusts_a_dev_certificate_given_with_ca_cert() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let config = certs.path().join("cli");
    let out = run(
        &server_binary(),
        &config,
        "C",
        &["dev-cert", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap(), "--name", "127.0.0.1"],
        "",
        &[],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let app = TestApp::spawn_with(renkei_tests::Backend::Sqlite, |c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(key.clone());
    })
    .await
    .unwrap();
    let _admin = app.admin().await;
    let renkei = Path::new(env!("CARGO_BIN_EXE_renkei"));
    let untrusted =
        run(renkei, &config, "C", &["--server", &app.base_url, "login", "admin"], &format!("{PASSWORD}\n"), &[]).await;
    assert_eq!(untrusted.code, 6, "{}", untrusted.stderr);
    assert!(untrusted.stderr.contains("certificate is not trusted") && untrusted.stderr.contains("--ca-cert"));
    // Plain HTTP to this HTTPS server is told to use https://.
    let plain_url = app.base_url.replace("https://", "http://");
    let plain =
        run(renkei, &config, "C", &["--server", &plain_url, "login", "admin"], &format!("{PASSWORD}\n"), &[]).await;
    assert_eq!(plain.code, 6, "{}", plain.stderr);
    assert!(plain.stderr.contains("speaks HTTPS"), "{}", plain.stderr);
    let trusted = run(
        renkei,
        &config,
        "C",
        &["--server", &app.base_url, "--ca-cert", cert.to_str().unwrap(), "login", "admin"],
        &format!("{PASSWORD}\n"),
        &[],
    )
    .await;
    assert_eq!(trusted.code, 0, "{}", trusted.stderr);
    // The profile remembers the server and its CA.
    let me = run(renkei, &config, "C", &["--json", "whoami"], "", &[]).await;
    assert_eq!(me.json()["login"], "admin", "{}", me.stderr);
}

both_backends!(
    async fn a_crash_loses_no_acknowledged_post_and_retries_create_no_duplicates(app: TestApp) {
        use renkei_protocol::{ClientFrame, NewPost, PostKind, ServerFrame};
        const POSTS: usize = 400;
        let mut app = app;
        let team = app.team().await;
        let process = ServerProcess::take_over(&mut app).await;
        let (mut server, url) = process.start(free_port()).await;

        let nurse = renkei_cli::Client::new(&url, None).unwrap().with_token(team.nurse.token().unwrap().clone());
        let mut live = nurse.connect_live().await.unwrap();
        let post = |i: usize| NewPost {
            kind: PostKind::Update,
            body: format!("バイタル記録 {i}"),
            reply_to: None,
            client_msg_id: format!("crash-{i}"),
            confirm_not_emergency: false,
            attachments: Vec::new(),
            care_policy: None,
        };
        // At most WINDOW posts in flight: a server faster than this test cannot have acknowledged them all
        // before the kill lands, whatever the machine.
        const WINDOW: usize = 100;
        let mut sent = 0;
        while sent < WINDOW {
            live.send(&ClientFrame::Post { id: sent.to_string(), group_id: team.group, post: post(sent) })
                .await
                .unwrap();
            sent += 1;
        }
        // Kill -9 once some posts are acknowledged, with up to WINDOW more in flight.
        let mut acked = std::collections::BTreeMap::new();
        let collected = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while acked.len() < 50 {
                match live.next().await {
                    Some(Ok(ServerFrame::Ack { id, seq: Some(seq), .. })) => {
                        acked.insert(id.parse::<usize>().unwrap(), seq);
                        if acked.len() < 50 && sent < POSTS {
                            let frame =
                                ClientFrame::Post { id: sent.to_string(), group_id: team.group, post: post(sent) };
                            live.send(&frame).await.unwrap();
                            sent += 1;
                        }
                    }
                    Some(Ok(ServerFrame::Error { code, message, .. })) => {
                        panic!("a post was refused: {code} {message}")
                    }
                    Some(Ok(_)) => {}
                    other => panic!("stream ended early: {other:?}"),
                }
            }
        })
        .await;
        assert!(collected.is_ok(), "no 50 acknowledgements within 60 s");
        let pid = server.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
        let _ = server.wait().await;
        // Acks already on the wire before the kill still count.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(Ok(frame)) = live.next().await {
                if let ServerFrame::Ack { id, seq: Some(seq), .. } = frame {
                    acked.insert(id.parse::<usize>().unwrap(), seq);
                }
            }
        })
        .await;
        assert!(acked.len() < POSTS, "the crash came too late to prove anything");

        // After a restart, every acknowledged post is there with the sequence number it was acknowledged with.
        let (_server, url) = process.start(free_port()).await;
        let nurse = renkei_cli::Client::new(&url, None).unwrap().with_token(team.nurse.token().unwrap().clone());
        let stored = nurse.posts(team.group, Some(0), None, 500).await.unwrap().posts;
        for (i, seq) in &acked {
            let found =
                stored.iter().find(|p| p.client_msg_id == format!("crash-{i}")).expect("acknowledged post lost");
            assert_eq!(found.seq, *seq);
        }
        // Retrying everything by client message id creates no duplicates and fills the rest.
        for i in 0..POSTS {
            nurse.post(team.group, &post(i)).await.unwrap();
        }
        let all = nurse.posts(team.group, Some(0), None, 500).await.unwrap().posts;
        assert_eq!(all.len(), POSTS);
        assert_eq!(all.iter().map(|p| p.seq).collect::<Vec<_>>(), (1..=POSTS as i64).collect::<Vec<_>>(), "gap-free");
        let mut ids: Vec<_> = all.iter().map(|p| p.client_msg_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), POSTS, "no client message id twice");
    }
);

both_backends!(
    async fn a_crash_between_an_act_and_its_audit_entry_leaves_neither(app: TestApp) {
        use renkei_protocol::{CreateUserRequest, Profession, Role};
        let mut app = app;
        let team = app.team().await;
        let admin_token = team.admin.token().unwrap().clone();
        let mut process = ServerProcess::take_over(&mut app).await;
        let request = CreateUserRequest {
            login: "ph-ito".into(),
            display_name: "伊藤 薬剤師".into(),
            kana: None,
            profession: Profession::Pharmacist,
            organisation: "むさしの薬局".into(),
            phone: None,
            role: Role::Member,
            initial_password: None,
        };
        let created_entries = |store: renkei_server::store::Store| async move {
            let filter = renkei_server::store::AuditFilter {
                action: Some("account_created".into()),
                limit: 1000,
                ..Default::default()
            };
            let entries = store.audit_entries(&filter).await.unwrap();
            let account = store.account_by_login("ph-ito").await.unwrap();
            let chain = renkei_server::audit::verify(&store, None).await.unwrap();
            store.close().await;
            (entries.len(), account.is_some(), chain.is_ok())
        };
        let (entries_before, ..) = created_entries(app.store().await).await;

        // The process dies after the act's own statements, as its audit entry is about to be written.
        process.env.push((renkei_server::config::FAILPOINT_ENV, "audit_append:account_created".into()));
        let (mut server, url) = process.start(free_port()).await;
        let admin = renkei_cli::Client::new(&url, None).unwrap().with_token(admin_token.clone());
        let answer = admin.admin_create_user(&request).await;
        assert!(matches!(answer, Err(renkei_cli::ClientError::Transport(_))), "{answer:?}");
        let exit = tokio::time::timeout(std::time::Duration::from_secs(10), server.wait()).await.unwrap().unwrap();
        assert!(!exit.success(), "the failpoint ended the process");
        let (entries, account, chain) = created_entries(app.store().await).await;
        assert_eq!((entries, account), (entries_before, false), "neither the account nor its entry");
        assert!(chain, "the chain is intact");

        // Without the failpoint the same act leaves both.
        process.env.pop();
        let (_server, url) = process.start(free_port()).await;
        let admin = renkei_cli::Client::new(&url, None).unwrap().with_token(admin_token);
        admin.admin_create_user(&request).await.unwrap();
        let (entries, account, chain) = created_entries(app.store().await).await;
        assert_eq!((entries, account, chain), (entries_before + 1, true, true), "both the account and its entry");
    }
);

both_backends!(
    async fn chat_and_tail_through_the_binary_survive_a_server_restart(app: TestApp) {
        use tokio::io::AsyncBufReadExt;
        let mut app = app;
        let team = app.team().await;
        // A server process this test can kill -9 and start again on the same port.
        let process = ServerProcess::take_over(&mut app).await;
        let port = free_port();
        let (mut server, url) = process.start(port).await;
        let doctor = team.doctor.on_node(&url);

        let config = process.dir.path().join("renkei");
        let renkei = Path::new(env!("CARGO_BIN_EXE_renkei"));
        for who in ["ns-sato", "cm-kato"] {
            let out = crate::harness::run(
                renkei,
                &config,
                "C",
                &["--server", &url, "--profile", who, "login", who],
                &format!("{PASSWORD}\n"),
                &[],
            )
            .await;
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        let spawn = |args: &[&str]| {
            tokio::process::Command::new(renkei)
                .args(args)
                .env_clear()
                .env("RENKEI_CONFIG_DIR", &config)
                .env("LANG", "C")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        };
        let tail = spawn(&["--profile", "cm-kato", "--json", "tail", "山田", "--from-start", "--count", "4"]);
        let mut chat = spawn(&["--profile", "ns-sato", "chat", "山田"]);
        let mut input = chat.stdin.take().unwrap();
        let mut shown = tokio::io::BufReader::new(chat.stdout.take().unwrap()).lines();
        let mut errors = tokio::io::BufReader::new(chat.stderr.take().unwrap()).lines();
        let mut screen = String::new();
        let mut said = String::new();
        read_until(&mut errors, &mut said, |s| s.contains("/confirm")).await;

        // A typed line is posted and comes back; the doctor's post arrives live.
        input.write_all("訪問しました。血圧 120/70\n".as_bytes()).await.unwrap();
        read_until(&mut shown, &mut screen, |s| s.contains("#1 ") && s.contains("血圧 120/70")).await;
        doctor.post(team.group, &renkei_tests::care::update("明日の午後に往診します", "d-1")).await.unwrap();
        read_until(&mut shown, &mut screen, |s| s.contains("明日の午後に往診します")).await;

        // The server dies and comes back on the same address; both clients carry on.
        let pid = server.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
        let _ = server.wait().await;
        let (_server, _) = process.start(port).await;

        // Reads like an emergency: refused in place, with what to do; /confirm sends it, recorded.
        input.write_all("昨夜の急変はその後落ち着いています\n".as_bytes()).await.unwrap();
        read_until(&mut errors, &mut said, |s| s.contains("emergency_use_prohibited") && s.contains("call now")).await;
        input.write_all(b"/confirm\n").await.unwrap();
        read_until(&mut shown, &mut screen, |s| s.contains("#3 ") && s.contains("落ち着いています")).await;
        doctor.post(team.group, &renkei_tests::care::update("承知しました", "d-2")).await.unwrap();
        read_until(&mut shown, &mut screen, |s| s.contains("#4 ") && s.contains("承知しました")).await;
        assert!(screen.contains("看護") || screen.contains("nurse"), "profession shown: {screen}");

        // End of input ends the chat cleanly.
        drop(input);
        let status = tokio::time::timeout(std::time::Duration::from_secs(30), chat.wait()).await.unwrap().unwrap();
        assert!(status.success());

        // The tail saw every post once, in order, across the restart.
        let followed = tokio::time::timeout(std::time::Duration::from_secs(60), tail.wait_with_output())
            .await
            .expect("tail ended")
            .unwrap();
        let seqs: Vec<i64> = String::from_utf8_lossy(&followed.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4], "{}", String::from_utf8_lossy(&followed.stderr));
        let said = String::from_utf8_lossy(&followed.stderr);
        assert!(said.contains("Disconnected; reconnecting") && said.contains("Reconnected"), "{said}");
    }
);
