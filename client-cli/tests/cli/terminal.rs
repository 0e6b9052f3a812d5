//! What users do from the terminal: the first day, a care team, posting and reading, auditing, photos,
//! notifications.

use renkei_tests::{PASSWORD, both_backends, totp_code};
use std::path::Path;
use std::process::Stdio;

use crate::harness::*;

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
