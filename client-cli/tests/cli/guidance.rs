//! What the user is told: connection problems, a refused password, and `--help`, in their language.

use renkei_tests::{PASSWORD, TestApp};
use std::path::Path;

use crate::harness::*;

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
