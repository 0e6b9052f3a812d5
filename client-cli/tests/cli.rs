//! The `renkei` and `renkei-server` binaries, end to end: an operator bootstraps an administrator, who
//! registers a care manager; she sets her password, enrols TOTP and logs in with a code; every failure
//! exits with its documented code and explains itself in the user's language. On SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use renkei_tests::{PASSWORD, TestApp, both_backends, totp_code};
use tokio::io::AsyncWriteExt;

fn server_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_renkei")).with_file_name("renkei-server");
    assert!(path.is_file(), "{} is not built; run `cargo test --workspace`", path.display());
    path
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `program` with `args`, feeding `stdin`, in a clean locale and a private config directory.
async fn run(
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

struct Cli<'a> {
    app: &'a TestApp,
    dir: PathBuf,
}

impl Cli<'_> {
    async fn renkei(&self, args: &[&str], stdin: &str) -> Output {
        self.renkei_lang("C", args, stdin).await
    }

    async fn renkei_lang(&self, lang: &str, args: &[&str], stdin: &str) -> Output {
        let mut full = vec!["--server", self.app.base_url.as_str()];
        full.extend_from_slice(args);
        run(Path::new(env!("CARGO_BIN_EXE_renkei")), &self.dir, lang, &full, stdin, &[]).await
    }

    /// `renkei --profile WHO ARGS…`.
    async fn as_user(&self, who: &str, args: &[&str]) -> Output {
        let mut full = vec!["--profile", who];
        full.extend_from_slice(args);
        self.renkei(&full, "").await
    }

    async fn server(&self, args: &[&str], stdin: &str) -> Output {
        let data_dir = self.app.dir.path().to_string_lossy().into_owned();
        let env = [("RENKEI_DATABASE_URL", self.app.database_url.as_str()), ("RENKEI_DATA_DIR", data_dir.as_str())];
        run(&server_binary(), &self.dir, "C", args, stdin, &env).await
    }
}

both_backends!(
    async fn an_administrator_and_a_care_manager_do_their_first_day_from_the_terminal(app: TestApp) {
        let config = tempfile::tempdir().unwrap();
        let cli = Cli { app: &app, dir: config.path().join("renkei") };

        // The operator bootstraps the first administrator; a weak password is refused.
        let weak = cli.server(&["create-admin", "--login", "admin", "--display-name", "管理者"], "short\n").await;
        assert_eq!(weak.code, 1, "{}", weak.stderr);
        let out = cli
            .server(&["create-admin", "--login", "admin", "--display-name", "管理者"], &format!("{PASSWORD}\n"))
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let again =
            cli.server(&["create-admin", "--login", "admin", "--display-name", "x"], &format!("{PASSWORD}\n")).await;
        assert!(again.code != 0 && again.stderr.contains("already taken"), "{}", again.stderr);

        // Not logged in yet: exit 3.
        assert_eq!(cli.renkei(&["whoami"], "").await.code, 3);
        let out = cli.renkei(&["login", "admin"], &format!("{PASSWORD}\n")).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stdout.contains("rks_"), "the token is never printed");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cli.dir.join("token-default")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(cli.renkei(&["--json", "whoami"], "").await.json()["role"], "admin");

        // The administrator registers a care manager and gets a setup token to hand over.
        let out = cli
            .renkei(
                &[
                    "--json",
                    "admin",
                    "user",
                    "add",
                    "--login",
                    "kato",
                    "--name",
                    "加藤 ケア",
                    "--profession",
                    "care-manager",
                    "--organisation",
                    "むさしの居宅介護支援",
                    "--phone",
                    "0422-00-1234",
                ],
                "",
            )
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let created = out.json();
        assert_eq!(created["user"]["profession"], "care_manager");
        let setup = created["setup_token"].as_str().unwrap().to_owned();
        // --json carries times as RFC 3339 text, as the API does.
        let expires = created["setup_token_expires_at"].as_str().expect("an RFC 3339 string");
        assert!(
            time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).is_ok(),
            "{expires}"
        );
        // The link the member opens on her phone: the web client's setup page with the token filled in.
        assert_eq!(created["setup_link"].as_str(), Some(format!("{}/#/setup/{setup}", app.base_url).as_str()));
        let table = cli.renkei(&["admin", "user", "list"], "").await;
        assert!(table.stdout.contains("加藤 ケア") && table.stdout.contains("care manager"), "{}", table.stdout);
        let table_ja = cli.renkei_lang("ja_JP.UTF-8", &["admin", "user", "list"], "").await;
        assert!(table_ja.stdout.contains("ケアマネジャー"), "{}", table_ja.stdout);

        // She sets her password on her own profile and logs in.
        let out = cli.renkei(&["--profile", "kato", "setup", "--token", &setup], "a long passphrase for kato\n").await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = cli.renkei(&["--profile", "kato", "login", "kato"], "a long passphrase for kato\n").await;
        assert_eq!(out.code, 0, "{}", out.stderr);

        // Refusals exit with their documented codes, explained in the user's language.
        let forbidden = cli.renkei(&["--profile", "kato", "admin", "user", "list"], "").await;
        assert_eq!(forbidden.code, 5, "{}", forbidden.stderr);
        let missing = cli.renkei_lang("ja_JP.UTF-8", &["admin", "user", "show", "nobody"], "").await;
        assert_eq!(missing.code, 4);
        assert!(missing.stderr.contains("利用者はいません") && missing.stderr.contains("nobody"), "{}", missing.stderr);
        let wrong = cli.renkei_lang("ja_JP.UTF-8", &["--profile", "x", "login", "kato"], "wrong password here\n").await;
        assert_eq!(wrong.code, 3);
        assert!(wrong.stderr.contains("パスワードが違います"), "{}", wrong.stderr);
        let wrong_en = cli.renkei(&["--profile", "x", "login", "kato"], "wrong password here\n").await;
        assert!(wrong_en.stderr.contains("Wrong login or password"), "{}", wrong_en.stderr);
        assert_eq!(cli.renkei(&["admin", "user", "add", "--login", "x"], "").await.code, 2);

        // TOTP: enrol, confirm, then login asks for a code.
        let out = cli.renkei(&["--profile", "kato", "--json", "totp", "enroll", "--no-confirm"], "").await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let secret = out.json()["secret"].as_str().unwrap().to_owned();
        let out = cli.renkei(&["--profile", "kato", "totp", "confirm", &totp_code(&secret, 0)], "").await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(cli.renkei(&["--profile", "kato", "logout"], "").await.code, 0);
        assert_eq!(cli.renkei(&["--profile", "kato", "whoami"], "").await.code, 3);
        let code = totp_code(&secret, 1);
        let out =
            cli.renkei(&["--profile", "kato", "login", "kato"], &format!("a long passphrase for kato\n{code}\n")).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let me = cli.renkei(&["--profile", "kato", "--json", "whoami"], "").await.json();
        assert_eq!(me["totp_enabled"], true);

        // Logging out ended the first session; only the TOTP login remains.
        let sessions = cli.renkei(&["--profile", "kato", "--json", "sessions", "list"], "").await.json();
        assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);

        // Disabling her ends her session at once.
        assert_eq!(cli.renkei(&["admin", "user", "disable", "kato"], "").await.code, 0);
        assert_eq!(cli.renkei(&["--profile", "kato", "whoami"], "").await.code, 3);
        assert_eq!(cli.renkei(&["admin", "user", "enable", "kato"], "").await.code, 0);

        let config_show = cli.renkei(&["--json", "config", "show"], "").await.json();
        assert_eq!(config_show["logged_in"], true);
        let completions = cli.renkei(&["completions", "bash"], "").await;
        assert!(completions.code == 0 && completions.stdout.contains("renkei"));
    }
);

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

both_backends!(
    async fn a_physician_runs_a_care_team_from_the_terminal(app: TestApp) {
        let config = tempfile::tempdir().unwrap();
        let cli = Cli { app: &app, dir: config.path().join("renkei") };
        let admin = app.admin().await;
        app.member_at(&admin, "dr-suzuki", renkei_protocol::Profession::Physician, "鈴木内科クリニック").await;
        app.member_at(&admin, "ns-sato", renkei_protocol::Profession::Nurse, "むさしの訪問看護").await;
        app.member_at(&admin, "cm-kato", renkei_protocol::Profession::CareManager, "むさしの居宅介護支援").await;
        app.member_at(&admin, "ph-abe", renkei_protocol::Profession::Pharmacist, "あべ薬局").await;
        for who in ["dr-suzuki", "ns-sato", "cm-kato", "ph-abe", "admin"] {
            let out = cli.renkei(&["--profile", who, "login", who], &format!("{PASSWORD}\n")).await;
            assert_eq!(out.code, 0, "{}", out.stderr);
        }

        let out = cli
            .as_user(
                "dr-suzuki",
                &["group", "open", "--label", "山田 花子 様", "--patient-name", "山田 花子", "--kana", "やまだ はなこ"],
            )
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("山田 花子 様"), "{}", out.stdout);
        // Inviting before consent: refused by a rule, exit 5, explained.
        let refused =
            cli.renkei_lang("ja_JP.UTF-8", &["--profile", "dr-suzuki", "invite", "山田", "ns-sato"], "").await;
        assert_eq!(refused.code, 5, "{}", refused.stderr);
        assert!(refused.stderr.contains("同意を記録してください"), "{}", refused.stderr);

        let out = cli
            .as_user(
                "dr-suzuki",
                &[
                    "consent",
                    "record",
                    "山田",
                    "--consenter",
                    "family",
                    "--name",
                    "山田 一郎",
                    "--relationship",
                    "長男",
                    "--date",
                    "2026-11-20",
                    "--scope",
                    "organisation=むさしの訪問看護,profession=nurse",
                    "--scope",
                    "profession=care-manager",
                    "--scope",
                    "user=ph-abe",
                ],
            )
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("v1"), "{}", out.stdout);
        for who in ["ns-sato", "cm-kato", "ph-abe"] {
            let out = cli.as_user("dr-suzuki", &["invite", "山田 花子 様", who]).await;
            assert_eq!(out.code, 0, "{who}: {}", out.stderr);
        }
        let pending = cli.renkei(&["--profile", "ns-sato", "invitations"], "").await;
        assert!(pending.stdout.contains("山田 花子 様"), "{}", pending.stdout);
        for who in ["ns-sato", "cm-kato", "ph-abe"] {
            let out = cli.renkei(&["--profile", who, "accept"], "").await;
            assert_eq!(out.code, 0, "{who}: {}", out.stderr);
        }
        let members = cli.renkei(&["--profile", "ns-sato", "--json", "group", "members", "山田"], "").await.json();
        assert_eq!(members["members"].as_array().unwrap().len(), 4);
        let table = cli.renkei_lang("ja_JP.UTF-8", &["--profile", "ns-sato", "group", "members", "山田"], "").await;
        assert!(table.stdout.contains("主治医") && table.stdout.contains("薬剤師"), "{}", table.stdout);

        // The family narrows the consent: the pharmacist is removed at once.
        let out = cli
            .as_user(
                "dr-suzuki",
                &[
                    "consent",
                    "amend",
                    "山田",
                    "--consenter",
                    "family",
                    "--name",
                    "山田 一郎",
                    "--date",
                    "2026-11-21",
                    "--scope",
                    "profession=nurse",
                    "--scope",
                    "profession=care_manager",
                ],
            )
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("ph-abe さん"), "the removal is reported: {}", out.stdout);
        let gone = cli.renkei(&["--profile", "ph-abe", "group", "show", "山田"], "").await;
        assert_eq!(gone.code, 4, "{}", gone.stderr);
        let history = cli.renkei(&["--profile", "cm-kato", "--json", "consent", "history", "山田"], "").await.json();
        assert_eq!(history["consents"].as_array().unwrap().len(), 2);

        // The care manager leaves; the physician removes the nurse; the administrator audits.
        assert_eq!(cli.renkei(&["--profile", "cm-kato", "leave", "山田"], "").await.code, 0);
        assert_eq!(cli.as_user("dr-suzuki", &["remove", "山田", "ns-sato"]).await.code, 0);
        let audit = cli.renkei(&["--profile", "admin", "--json", "admin", "groups"], "").await;
        assert_eq!(audit.code, 0, "{}", audit.stderr);
        assert!(!audit.stdout.contains("山田 一郎") && !audit.stdout.contains("やまだ"), "{}", audit.stdout);
        let group_id = audit.json()["groups"][0]["id"].as_str().unwrap().to_owned();
        let detail = cli.renkei(&["--profile", "admin", "admin", "groups", &group_id], "").await;
        assert!(detail.stdout.contains("removed") && detail.stdout.contains("left"), "{}", detail.stdout);
        assert_eq!(cli.renkei(&["--profile", "ns-sato", "admin", "groups"], "").await.code, 5);

        // Community groups.
        let city = cli
            .renkei(&["--profile", "admin", "--json", "admin", "community", "create", "武蔵野市 全体"], "")
            .await
            .json();
        let city_id = city["id"].as_str().unwrap().to_owned();
        assert_eq!(
            cli.renkei(&["--profile", "admin", "admin", "community", "add", &city_id, "ns-sato"], "").await.code,
            0
        );
        let mine = cli.renkei(&["--profile", "ns-sato", "group", "list"], "").await;
        assert!(mine.stdout.contains("武蔵野市 全体") && !mine.stdout.contains("山田"), "{}", mine.stdout);

        // Archive when care ends.
        let out = cli.as_user("dr-suzuki", &["group", "archive", "山田"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(cli.as_user("dr-suzuki", &["invite", "山田", "ns-sato"]).await.code, 5);
    }
);

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

/// A connection that fails says why, and what to do, in the user's language: nobody listening, HTTPS to a
/// plain server (the other way round and an untrusted certificate: the dev-certificate test); input the
/// server refuses as invalid is a usage error (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_problems_and_invalid_input_say_what_to_do() {
    let app = TestApp::spawn(renkei_tests::Backend::Sqlite).await.unwrap();
    let _admin = app.admin().await;
    let config = tempfile::tempdir().unwrap();
    let renkei = Path::new(env!("CARGO_BIN_EXE_renkei"));
    let login = |server: String, lang: &'static str| {
        let config = config.path().to_owned();
        async move {
            run(renkei, &config, lang, &["--server", &server, "login", "admin"], &format!("{PASSWORD}\n"), &[]).await
        }
    };
    let nobody = login(format!("http://127.0.0.1:{}", free_port()), "C").await;
    assert_eq!(nobody.code, 6, "{}", nobody.stderr);
    assert!(nobody.stderr.contains("Cannot reach the server"), "{}", nobody.stderr);
    let nobody_ja = login(format!("http://127.0.0.1:{}", free_port()), "ja_JP.UTF-8").await;
    assert!(nobody_ja.stderr.contains("サーバに接続できません"), "{}", nobody_ja.stderr);
    let tls_to_plain = login(app.base_url.replace("http://", "https://"), "C").await;
    assert_eq!(tls_to_plain.code, 6, "{}", tls_to_plain.stderr);
    assert!(tls_to_plain.stderr.contains("speaks plain HTTP"), "{}", tls_to_plain.stderr);

    // With --json, an error is JSON on stderr too, with a stable code.
    let not_logged_in = run(renkei, config.path(), "C", &["--json", "whoami"], "", &[]).await;
    assert_eq!(not_logged_in.code, 3, "{}", not_logged_in.stderr);
    let error: serde_json::Value = serde_json::from_str(not_logged_in.stderr.trim()).unwrap();
    assert_eq!(error["code"], "not_logged_in", "{error}");
    let ok = login(app.base_url.clone(), "C").await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let args = ["admin", "user", "add", "--login", "x", "--name", "X", "--profession", "nurse", "--organisation", "O"];
    let invalid = run(renkei, config.path(), "C", &args, "", &[]).await;
    assert_eq!(invalid.code, 2, "validation_failed is a usage error: {}", invalid.stderr);
    assert!(invalid.stderr.contains("login: too_short"), "{}", invalid.stderr);
    let nobody = run(renkei, config.path(), "C", &["admin", "user", "show", "nobody-here"], "", &[]).await;
    assert_eq!(nobody.code, 4, "{}", nobody.stderr);
    assert!(
        nobody.stderr.contains("no user with that login") && nobody.stderr.contains("nobody-here"),
        "{}",
        nobody.stderr
    );
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `renkei-server serve` on `port` with exactly `env` (plus `RENKEI_LISTEN`), its stderr appended to
/// `log`, and waits until it is ready; returns the child and its URL.
async fn start_server_process(port: u16, env: &[(&str, &str)], log: &Path) -> (tokio::process::Child, String) {
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
struct ServerProcess {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl ServerProcess {
    /// Stops the app's in-process server first: a process server is the only one on the database (SQLite
    /// allows one).
    async fn take_over(app: &mut TestApp) -> Self {
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
    async fn start(&self, port: u16) -> (tokio::process::Child, String) {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start_server_process(port, &env, &self.dir.path().join("server.log")).await
    }
}

/// `renkei-server create-admin` for the login `admin` with the test password, in `env`.
async fn create_admin(config: &Path, env: &[(&str, &str)]) {
    let args = ["create-admin", "--login", "admin", "--display-name", "A"];
    let out = run(&server_binary(), config, "C", &args, &format!("{PASSWORD}\n"), env).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
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
    async fn members_post_read_and_follow_a_group_from_the_terminal(app: TestApp) {
        let config = tempfile::tempdir().unwrap();
        let cli = Cli { app: &app, dir: config.path().join("renkei") };
        let team = app.team().await;
        for who in ["ns-sato", "cm-kato", "dr-suzuki"] {
            assert_eq!(cli.renkei(&["--profile", who, "login", who], &format!("{PASSWORD}\n")).await.code, 0);
        }
        // A live tail in the background, from the start of the group, for three posts.
        let renkei = Path::new(env!("CARGO_BIN_EXE_renkei"));
        let tail = tokio::process::Command::new(renkei)
            .args([
                "--server",
                &app.base_url,
                "--profile",
                "cm-kato",
                "--json",
                "tail",
                "山田",
                "--from-start",
                "--count",
                "3",
                "--mark-read",
            ])
            .env_clear()
            .env("RENKEI_CONFIG_DIR", &cli.dir)
            .env("LANG", "C")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();

        let out = cli.as_user("ns-sato", &["post", "山田", "血圧 130/80、SpO2 97%", "--client-id", "n-1"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("#1") && out.stdout.contains("nurse"), "{}", out.stdout);
        // The same client id again: the original, not a second post.
        let again =
            cli.as_user("ns-sato", &["--json", "post", "山田", "血圧 130/80、SpO2 97%", "--client-id", "n-1"]).await;
        assert_eq!(again.json()["post"]["seq"], 1);
        let question = cli
            .renkei(
                &["--profile", "ns-sato", "post", "山田", "--kind", "treatment-question", "--reply-to", "1"],
                "夜間の頓用薬を増やしてよいですか\n",
            )
            .await;
        assert_eq!(question.code, 0, "{}", question.stderr);
        assert_eq!(cli.as_user("dr-suzuki", &["post", "山田", "はい、1回分まで追加可です"]).await.code, 0);

        let followed = tokio::time::timeout(std::time::Duration::from_secs(30), tail.wait_with_output())
            .await
            .expect("tail ended")
            .unwrap();
        let lines: Vec<serde_json::Value> =
            String::from_utf8_lossy(&followed.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.iter().map(|p| p["seq"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(lines[1]["kind"], "treatment_question");
        // --mark-read advanced the care manager's read position.
        let unread = cli.as_user("cm-kato", &["--json", "unread"]).await.json();
        assert_eq!(unread["groups"][0]["unread"], 0);

        let history = cli.as_user("dr-suzuki", &["history", "山田"]).await;
        assert!(history.stdout.contains("SpO2 97%") && history.stdout.contains("↩#1"), "{}", history.stdout);
        assert_eq!(cli.as_user("ns-sato", &["edit", "山田", "1", "血圧 132/80（訂正）、SpO2 97%"]).await.code, 0);
        let versions = cli.as_user("cm-kato", &["--json", "history", "山田", "--versions", "1"]).await.json();
        assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
        assert_eq!(cli.as_user("dr-suzuki", &["edit", "山田", "1", "x"]).await.code, 5, "only the author edits");
        assert_eq!(cli.as_user("dr-suzuki", &["seen", "山田", "1"]).await.code, 0);
        let seen = cli.as_user("ns-sato", &["seen", "山田", "1", "--list"]).await;
        assert!(seen.stdout.contains("dr-suzuki さん"), "{}", seen.stdout);
        assert_eq!(cli.as_user("ns-sato", &["delete", "山田", "3"]).await.code, 5, "not hers");
        assert_eq!(cli.as_user("dr-suzuki", &["delete", "山田", "3"]).await.code, 0);
        assert_eq!(cli.as_user("ns-sato", &["read", "山田"]).await.code, 0);
        // The attending physician exports the timeline for the medical record.
        let file = config.path().join("timeline.md");
        let out = cli
            .as_user("dr-suzuki", &["group", "export", "山田", "--markdown", "--output", file.to_str().unwrap()])
            .await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let text = std::fs::read_to_string(&file).unwrap();
        // In the reader's language (this terminal: English), the content as written.
        assert!(
            text.contains("血圧 132/80（訂正）") && text.contains("(deleted)") && text.contains("（nurse・"),
            "{text}"
        );
        assert_eq!(cli.as_user("ns-sato", &["group", "export", "山田"]).await.code, 5);
        let report = cli.as_user("dr-suzuki", &["group", "access-report", "山田"]).await;
        assert!(report.stdout.contains("posts_read") && report.stdout.contains("cm-kato さん"), "{}", report.stdout);
        let _ = team;
    }
);

both_backends!(
    async fn administrators_audit_from_the_terminal_and_operators_verify_the_chain(app: TestApp) {
        let config = tempfile::tempdir().unwrap();
        let cli = Cli { app: &app, dir: config.path().join("renkei") };
        let _team = app.team().await;
        for who in ["admin", "ns-sato"] {
            assert_eq!(cli.renkei(&["--profile", who, "login", who], &format!("{PASSWORD}\n")).await.code, 0);
        }
        let csv = cli.as_user("admin", &["admin", "audit", "--user", "ns-sato", "--csv"]).await;
        assert_eq!(csv.code, 0, "{}", csv.stderr);
        let mut lines = csv.stdout.lines();
        assert_eq!(lines.next(), Some("seq,at,action,actor,group,target,client_addr,session,details,hash"));
        assert!(csv.stdout.contains("\"invitation_answered\""), "{}", csv.stdout);
        let json = cli.as_user("admin", &["--json", "admin", "audit", "--action", "group_opened"]).await.json();
        assert_eq!(json["entries"].as_array().unwrap().len(), 1);
        // Plain JSON for scripts: details an object, times RFC 3339.
        let invited = cli.as_user("admin", &["--json", "admin", "audit", "--action", "invitation_sent"]).await.json();
        let entry = &invited["entries"][0];
        assert!(entry["details"]["consent_version"].is_number(), "{entry}");
        assert!(entry["at"].as_str().is_some_and(|t| t.contains('T')), "{entry}");
        // The newest N, newest first; a time window; people by login and name; an unknown action refused
        // with the list, as a usage error.
        let newest = cli.as_user("admin", &["--json", "admin", "audit", "--limit", "3"]).await.json();
        let seqs: Vec<i64> = newest["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs.len(), 3, "{newest}");
        assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
        let window = ["--json", "admin", "audit", "--since", "2000-01-01", "--until", "2999-01-01T00:00:00Z"];
        assert!(!cli.as_user("admin", &window).await.json()["entries"].as_array().unwrap().is_empty());
        let future = cli.as_user("admin", &["--json", "admin", "audit", "--since", "2999-01-01"]).await.json();
        assert!(future["entries"].as_array().unwrap().is_empty(), "{future}");
        let table = cli.as_user("admin", &["admin", "audit", "--action", "invitation_sent"]).await;
        assert!(table.stdout.contains("dr-suzuki（"), "{}", table.stdout);
        let unknown = cli.as_user("admin", &["admin", "audit", "--action", "logins"]).await;
        assert_eq!(unknown.code, 2, "{}", unknown.stderr);
        assert!(unknown.stderr.contains("login_failed"), "{}", unknown.stderr);
        let bad_date = cli.as_user("admin", &["admin", "audit", "--since", "yesterday"]).await;
        assert_eq!(bad_date.code, 2, "{}", bad_date.stderr);

        // Output into a closed pipe (`renkei admin audit | head`) ends the process quietly, as SIGPIPE
        // ends any Unix tool: no panic, no backtrace.
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_renkei"))
            .args(["--server", app.base_url.as_str(), "--profile", "admin", "admin", "audit"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RENKEI_CONFIG_DIR", &cli.dir)
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("ended within 60 s")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(13), "{:?}", out.status);
        let refused = cli.as_user("ns-sato", &["admin", "audit"]).await;
        assert_eq!(refused.code, 5, "{}", refused.stderr);
        assert!(refused.stderr.contains("only administrators"), "says who may: {}", refused.stderr);

        // The operator's side: verify the chain, keep an anchor, verify against it.
        let verified = cli.server(&["audit", "verify"], "").await;
        assert_eq!(verified.code, 0, "{}", verified.stderr);
        assert!(verified.stdout.contains("intact"), "{}", verified.stdout);
        let anchor = cli.server(&["audit", "anchor"], "").await;
        let anchor_file = config.path().join("anchor");
        std::fs::write(&anchor_file, &anchor.stdout).unwrap();
        let against = cli.server(&["audit", "verify", "--anchor", anchor_file.to_str().unwrap()], "").await;
        assert_eq!(against.code, 0, "{}", against.stderr);
        // An anchor from the future (a log whose tail was cut) fails.
        let (seq, hash) = anchor.stdout.trim().split_once(' ').unwrap();
        std::fs::write(&anchor_file, format!("{} {hash}", seq.parse::<i64>().unwrap() + 5)).unwrap();
        let cut = cli.server(&["audit", "verify", "--anchor", anchor_file.to_str().unwrap()], "").await;
        assert_eq!(cut.code, 1);
        assert!(cut.stderr.contains("TAMPERED"), "{}", cut.stderr);
    }
);

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

/// Reads `lines` into `seen` until `done(seen)` holds; panics after 30 s with what was read.
async fn read_until<R: tokio::io::AsyncBufRead + Unpin>(
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
            let out = crate::run(
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

both_backends!(
    async fn a_nurse_shares_a_photo_and_a_physician_saves_it_from_the_terminal(app: TestApp) {
        let team = app.team().await;
        let config = tempfile::tempdir().unwrap();
        let cli = Cli { app: &app, dir: config.path().join("renkei") };
        for who in ["dr-suzuki", "ns-sato"] {
            let out = cli.renkei(&["--profile", who, "login", who], &format!("{PASSWORD}\n")).await;
            assert_eq!(out.code, 0, "{}", out.stderr);
        }
        let files = tempfile::tempdir().unwrap();
        let photo = files.path().join("褥瘡 12-07.png");
        image::RgbImage::from_pixel(40, 20, image::Rgb([180, 60, 60])).save(&photo).unwrap();
        let pdf = files.path().join("care-plan.pdf");
        std::fs::write(&pdf, b"%PDF-1.4\n%%EOF\n").unwrap();

        // A photo and a document with a line of text; then a photo alone, without text or stdin.
        let (photo, pdf) = (photo.to_string_lossy().into_owned(), pdf.to_string_lossy().into_owned());
        let args = ["post", "山田", "仙骨部の発赤、写真を共有します", "--attach", &photo, "--attach", &pdf];
        let out = cli.as_user("ns-sato", &args).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("📎 褥瘡 12-07.png (PNG") && out.stdout.contains("40×20"), "{}", out.stdout);
        assert!(out.stdout.contains("📎 care-plan.pdf (PDF"), "{}", out.stdout);
        let out = cli.as_user("ns-sato", &["--json", "post", "山田", "--attach", &photo]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.json()["post"]["body"], "");

        // The physician sees both posts' files in the history and saves the photo under its own name.
        let out = cli.as_user("dr-suzuki", &["--json", "history", "山田"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let history = out.json();
        let posts = history["posts"].as_array().expect("posts");
        let first = posts[0]["attachments"].as_array().expect("attachments");
        assert_eq!(first.len(), 2);
        let id = first[0]["id"].as_str().unwrap().to_owned();
        let out = cli.as_user("dr-suzuki", &["history", "山田"]).await;
        assert!(out.stdout.contains(&format!("📎 褥瘡 12-07.png (PNG, 1 KB, 40×20) {id}")), "{}", out.stdout);

        let saved = tempfile::tempdir().unwrap();
        let mut full = vec!["--profile", "dr-suzuki", "attachment", "get", "山田", &id];
        let target = saved.path().join("wound.png");
        let target_arg = target.to_string_lossy().into_owned();
        full.extend(["--output", &target_arg]);
        let out = cli.renkei(&full, "").await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let image = image::open(&target).unwrap();
        assert_eq!((image.width(), image.height()), (40, 20));
        // Never over an existing file.
        let again = cli.renkei(&full, "").await;
        assert_ne!(again.code, 0);
        assert!(again.stderr.contains("exists"), "{}", again.stderr);

        // The physician files the timeline with its files for the medical record.
        let folder = saved.path().join("record");
        let folder_arg = folder.to_string_lossy().into_owned();
        let out = cli.as_user("dr-suzuki", &["group", "export", "山田", "--markdown", "--files", &folder_arg]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("(3 files)"), "{}", out.stdout);
        let timeline = std::fs::read_to_string(folder.join("timeline.md")).unwrap();
        assert!(timeline.contains(&format!("- Attachment: 褥瘡 12-07.png（png、1 KB、{id}）")), "{timeline}");
        let photo_copy = std::fs::read(folder.join("files").join(format!("{id}-褥瘡 12-07.png"))).unwrap();
        assert_eq!(photo_copy, std::fs::read(&target).unwrap());

        // Refusals: a file type renkei does not take, and a file that is not there.
        let text = files.path().join("notes.txt");
        std::fs::write(&text, "plain text").unwrap();
        let text = text.to_string_lossy().into_owned();
        let out = cli.as_user("ns-sato", &["post", "山田", "x", "--attach", &text]).await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains("JPEG"), "{}", out.stderr);
        let out = cli.as_user("ns-sato", &["post", "山田", "x", "--attach", "/nonexistent/photo.jpg"]).await;
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("/nonexistent/photo.jpg"), "{}", out.stderr);
        drop(team);
    }
);

both_backends!(
    async fn a_member_sets_her_notifications_from_the_terminal(app: TestApp) {
        let team = app.team().await;
        let config = tempfile::tempdir().unwrap();
        let cli = Cli { app: &app, dir: config.path().join("renkei") };
        let out = cli.renkei(&["--profile", "ns-sato", "login", "ns-sato"], &format!("{PASSWORD}\n")).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = cli.as_user("ns-sato", &["notifications", "set", "--push", "on", "--digest-minutes", "60"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("digest_minutes") && out.stdout.contains("60"), "{}", out.stdout);
        let settings = team.nurse.notifications().await.unwrap().settings;
        assert!(settings.push && !settings.email);
        assert_eq!(settings.digest_minutes, 60);

        // This server has no SMTP: e-mail is refused, saying why, and nothing changes.
        let out = cli
            .as_user("ns-sato", &["notifications", "set", "--email", "ns@example.jp", "--digest-minutes", "15"])
            .await;
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("email"), "{}", out.stderr);
        assert_eq!(team.nurse.notifications().await.unwrap().settings.digest_minutes, 60);
        let out = cli.as_user("ns-sato", &["--json", "notifications", "show"]).await;
        assert_eq!(out.json()["settings"]["push"], true);
        let out = cli.as_user("ns-sato", &["notifications", "remove-device", "0000"]).await;
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("0 of my devices match"), "{}", out.stderr);

        // Times are shown in Asia/Tokyo unless told otherwise, with the zone marked.
        team.nurse.post(team.group, &renkei_tests::care::update("訪問しました", "tz-1")).await.unwrap();
        let out = cli.as_user("ns-sato", &["history", "山田"]).await;
        assert!(out.stdout.contains(" JST"), "{}", out.stdout);
        let out = cli.as_user("ns-sato", &["--time-zone", "UTC", "history", "山田"]).await;
        assert!(out.stdout.contains(" UTC") && !out.stdout.contains(" JST"), "{}", out.stdout);
        let out = cli.as_user("ns-sato", &["--time-zone", "Mars/Olympus", "history", "山田"]).await;
        assert_eq!(out.code, 2, "{}", out.stderr);
    }
);

/// On a terminal, `create-admin` checks the password policy before it asks for the password again, and
/// creates the administrator when both entries match (a pseudo-terminal from util-linux's `script`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_on_a_terminal_says_what_is_wrong_before_asking_again() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPING: util-linux's script is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let command = format!("{} create-admin --login admin --display-name X", server_binary().display());
    let data = dir.path().to_string_lossy().into_owned();
    let env = [("RENKEI_DATA_DIR", data.as_str())];
    let on_a_terminal = ["-qec", command.as_str(), "/dev/null"];
    let short = run(Path::new("script"), dir.path(), "C", &on_a_terminal, "short\n", &env).await;
    assert_ne!(short.code, 0);
    assert!(short.stdout.contains("rejected by the policy: shorter_than_13"), "{}", short.stdout);
    assert!(!short.stdout.contains("Repeat"), "asked again for a password the policy refuses: {}", short.stdout);
    let typed = format!("{PASSWORD}\n{PASSWORD}\n");
    let created = run(Path::new("script"), dir.path(), "C", &on_a_terminal, &typed, &env).await;
    assert_eq!(created.code, 0, "{}", created.stdout);
    assert!(
        created.stdout.contains("Repeat") && created.stdout.contains("administrator admin created"),
        "{}",
        created.stdout
    );
}

/// `LANG=ja_JP.UTF-8 renkei --help` is Japanese throughout: the descriptions, the headings, the options;
/// in English otherwise. Both come from the message catalogue (locales/cli.*.ftl).
#[test]
fn the_help_speaks_the_users_language() {
    let help = |lang: &str, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_renkei"))
            .args(args)
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("LANG", lang)
            .output()
            .expect("renkei runs");
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let ja = help("ja_JP.UTF-8", &["--help"]);
    assert!(ja.contains("使い方:") && ja.contains("コマンド:") && ja.contains("患者グループ: 作成"), "{ja}");
    assert!(!ja.contains("Usage") && !ja.contains("Print help") && !ja.contains("Commands:"), "{ja}");
    let post = help("ja_JP.UTF-8", &["post", "--help"]);
    assert!(post.contains("緊急のように読めても") && post.contains("ヘルプを表示する"), "{post}");
    let en = help("en_US.UTF-8", &["post", "--help"]);
    assert!(en.contains("Usage:") && en.contains("Post to a group"), "{en}");
}
