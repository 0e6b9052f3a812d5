//! The audit log: every security-relevant act is exactly one entry with the right fields; the hash chain
//! finds every kind of tampering at its entry; the log is append-only in the database; administrators
//! query it (and are audited doing so) without ever reaching post bodies. On SQLite and PostgreSQL.

use renkei_cli::ClientError;
use renkei_protocol::{AuditEntry, ClientFrame, ErrorCode, ServerFrame, Subscription};
use renkei_server::domain::audit::ChainBreak;
use renkei_tests::care::update;
use renkei_tests::{Backend, PASSWORD, TestApp, both_backends};

async fn all_entries(app: &TestApp) -> Vec<AuditEntry> {
    let store = app.store().await;
    let entries =
        store.audit_entries(&renkei_server::store::AuditFilter { limit: 10_000, ..Default::default() }).await.unwrap();
    store.close().await;
    entries
}

async fn verify(app: &TestApp, anchor: Option<(i64, String)>) -> Result<i64, ChainBreak> {
    let store = app.store().await;
    let result = renkei_server::audit::verify(&store, anchor).await.unwrap();
    store.close().await;
    result
}

/// Raw SQL with the append-only triggers out of the way — what an attacker with database access could do.
async fn tamper(app: &TestApp, statements: &[&str]) {
    match app.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            for s in ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"]
                .iter()
                .chain(statements)
            {
                sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
            for s in statements {
                sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(&mut *tx).await.unwrap();
            }
            sqlx::query("ALTER TABLE audit_log ENABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            pool.close().await;
        }
    }
}

both_backends!(
    async fn every_act_is_exactly_one_entry_with_the_right_fields(app: TestApp) {
        let team = app.team().await;
        let doctor_id = team.doctor.me().await.unwrap().id;
        // Only what happens from here on is examined.
        let before = all_entries(&app).await.len();
        let _ = app.client().login("ns-sato", &renkei_protocol::Sensitive::new("wrong password here"), None).await;
        team.nurse.post(team.group, &update("血圧 120/70", "n-1")).await.unwrap();
        team.care_manager.posts(team.group, Some(0), None, 10).await.unwrap();
        team.doctor.remove_member(team.group, "cm-kato").await.unwrap();
        team.admin.admin_disable_user("cm-kato").await.unwrap();
        let entries = all_entries(&app).await;
        let new: Vec<(&str, Option<uuid::Uuid>)> =
            entries[before..].iter().map(|e| (e.action.as_str(), e.target_user_id)).collect();
        let actions: Vec<&str> = new.iter().map(|(a, _)| *a).collect();
        assert_eq!(actions, ["login_failed", "posts_read", "member_removed", "account_disabled"]);
        let failed = &entries[before];
        assert!(
            failed.details.to_string().contains("ns-sato")
                && failed.details.to_string().contains("invalid_credentials"),
            "{}",
            failed.details
        );
        assert!(failed.client_addr.as_deref() == Some("127.0.0.1"));
        let read = &entries[before + 1];
        assert_eq!(read.group_id, Some(team.group));
        assert!(read.session_id.is_some());
        let removed = &entries[before + 2];
        assert_eq!((removed.actor_id, removed.group_id), (Some(doctor_id), Some(team.group)));
        // The whole setup is there too, in order, one entry each.
        let setup: Vec<&str> = entries[..before].iter().map(|e| e.action.as_str()).collect();
        for expected in [
            "account_created",
            "login",
            "password_changed",
            "group_opened",
            "consent_recorded",
            "invitation_sent",
            "invitation_answered",
        ] {
            assert!(setup.contains(&expected), "no {expected} in {setup:?}");
        }
        assert_eq!(setup.iter().filter(|a| **a == "group_opened").count(), 1);
        assert_eq!(setup.iter().filter(|a| **a == "invitation_sent").count(), 2);
        // Never a body, a password or a patient identifier.
        let text = serde_json::to_string(&entries).unwrap();
        for secret in ["血圧", PASSWORD, "山田 花子", "やまだ", "P-0001", "rks_"] {
            assert!(!text.contains(secret), "the audit log contains {secret}");
        }
    }
);

both_backends!(
    async fn the_hash_chain_finds_every_kind_of_tampering_at_its_entry(app: TestApp) {
        let _team = app.team().await;
        let entries = all_entries(&app).await;
        let n = entries.len() as i64;
        assert!(n >= 10, "a log long enough to tamper with");
        assert_eq!(verify(&app, None).await, Ok(n), "no false alarm on an untouched log");
        let anchor = (n, entries.last().unwrap().hash.clone());
        assert_eq!(verify(&app, Some(anchor.clone())).await, Ok(n));

        // Change a row, then put it back.
        let original = entries[4].details.to_string().replace('\'', "''");
        tamper(&app, &["UPDATE audit_log SET details = '{\"forged\":true}' WHERE seq = 5"]).await;
        assert_eq!(verify(&app, None).await, Err(ChainBreak::Altered { seq: 5 }));
        tamper(&app, &[&format!("UPDATE audit_log SET details = '{original}' WHERE seq = 5")]).await;
        assert_eq!(verify(&app, None).await, Ok(n));

        // Delete a row.
        tamper(
            &app,
            &[
                "CREATE TABLE audit_keep AS SELECT * FROM audit_log WHERE seq = 6",
                "DELETE FROM audit_log WHERE seq = 6",
            ],
        )
        .await;
        assert_eq!(verify(&app, None).await, Err(ChainBreak::Gap { expected: 6, found: 7 }));
        tamper(&app, &["INSERT INTO audit_log SELECT * FROM audit_keep", "DROP TABLE audit_keep"]).await;
        assert_eq!(verify(&app, None).await, Ok(n));

        // Swap two rows' contents (keeping their numbers).
        let swap = [
            "UPDATE audit_log SET seq = -3 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = -3",
        ];
        tamper(&app, &swap).await;
        assert!(matches!(
            verify(&app, None).await,
            Err(ChainBreak::Unlinked { seq: 3 } | ChainBreak::Altered { seq: 3 })
        ));
        tamper(&app, &swap).await;
        assert_eq!(verify(&app, None).await, Ok(n));

        // Insert a row (shifting the rest up by one to hide it).
        tamper(&app, &[
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 8",
            "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1008",
            "INSERT INTO audit_log SELECT 8, at, actor_id, 'login', group_id, target_user_id, client_addr, session_id, details, prev_hash, hash, mac FROM audit_log WHERE seq = 7",
        ]).await;
        assert_eq!(verify(&app, None).await, Err(ChainBreak::Unlinked { seq: 8 }));
        tamper(
            &app,
            &[
                "DELETE FROM audit_log WHERE seq = 8",
                "UPDATE audit_log SET seq = seq + 999 WHERE seq >= 9",
                "UPDATE audit_log SET seq = seq - 1000 WHERE seq >= 1008",
            ],
        )
        .await;
        assert_eq!(verify(&app, None).await, Ok(n));

        // Truncate the tail: the chain alone cannot tell, the anchor can.
        tamper(&app, &[&format!("DELETE FROM audit_log WHERE seq > {}", n - 2)]).await;
        assert_eq!(verify(&app, None).await, Ok(n - 2));
        assert_eq!(verify(&app, Some(anchor)).await, Err(ChainBreak::Truncated { anchor_seq: n, last_seq: n - 2 }));
    }
);

both_backends!(
    async fn the_log_is_append_only_in_the_database(app: TestApp) {
        let _admin = app.admin().await;
        let refused = match app.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                let update = sqlx::query("UPDATE audit_log SET action = 'x'").execute(&pool).await;
                let delete = sqlx::query("DELETE FROM audit_log").execute(&pool).await;
                pool.close().await;
                [update.is_err(), delete.is_err()]
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                let update = sqlx::query("UPDATE audit_log SET action = 'x'").execute(&pool).await;
                let delete = sqlx::query("DELETE FROM audit_log").execute(&pool).await;
                let truncate = sqlx::query("TRUNCATE audit_log").execute(&pool).await;
                pool.close().await;
                [update.is_err(), delete.is_err() && truncate.is_err()]
            }
        };
        assert_eq!(refused, [true, true]);
        assert!(verify(&app, None).await.is_ok());
    }
);

// Records are kept: users are disabled and groups closed, never deleted. The database refuses it itself
// (on PostgreSQL that is what keeps posts attached to their group and author, without foreign keys).
both_backends!(
    async fn users_and_groups_are_never_deleted_in_the_database(app: TestApp) {
        let team = app.team().await;
        let statements =
            [format!("DELETE FROM users WHERE login = '{}'", team.nurse_user.login), "DELETE FROM groups".to_string()];
        let errors: Vec<String> = match app.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                let mut errors = Vec::new();
                for s in &statements {
                    let r = sqlx::query(sqlx::AssertSqlSafe(s.clone())).execute(&pool).await;
                    errors.push(r.err().map(|e| e.to_string()).unwrap_or_default());
                }
                pool.close().await;
                errors
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                let mut errors = Vec::new();
                for s in statements.iter().cloned().chain(["TRUNCATE groups CASCADE".to_string()]) {
                    let r = sqlx::query(sqlx::AssertSqlSafe(s)).execute(&pool).await;
                    errors.push(r.err().map(|e| e.to_string()).unwrap_or_default());
                }
                pool.close().await;
                errors
            }
        };
        // Refused by the rule itself, not merely by some row still pointing at them.
        assert!(errors.iter().all(|e| e.contains("never deleted")), "{errors:?}");
        assert_eq!(team.nurse.posts(team.group, Some(0), None, 10).await.unwrap().posts.len(), 0);
    }
);

both_backends!(
    async fn administrators_query_the_log_are_audited_and_never_reach_post_bodies(app: TestApp) {
        let team = app.team().await;
        let nurse = team.nurse.me().await.unwrap();
        team.nurse.post(team.group, &update("褥瘡 2cm", "n-1")).await.unwrap();
        let by_nurse = team.admin.admin_audit(Some(nurse.id), None, None).await.unwrap().entries;
        assert!(by_nurse.iter().all(|e| e.actor_id == Some(nurse.id) || e.target_user_id == Some(nurse.id)));
        assert!(by_nurse.iter().any(|e| e.action == "invitation_answered"));
        let in_group = team.admin.admin_audit(None, Some(team.group), Some("consent_recorded")).await.unwrap().entries;
        assert_eq!(in_group.len(), 1);
        // The queries themselves are on record.
        // An action that does not exist is refused, not answered with an empty list.
        let unknown = team.admin.admin_audit(None, None, Some("logins")).await;
        assert!(
            matches!(&unknown, Err(ClientError::Api { body, .. })
                if body.code == ErrorCode::ValidationFailed && body.fields.get("action").map(String::as_str) == Some("unknown_action")),
            "{unknown:?}"
        );
        let queries = team.admin.admin_audit(None, None, Some("audit_queried")).await.unwrap().entries;
        assert_eq!(queries.len(), 2);
        // Sessions with their durations: the nurse's own (live) session, and a second one that logged out.
        let mut extra = app.login("ns-sato", PASSWORD).await;
        extra.logout().await.unwrap();
        let sessions = team.admin.admin_user_sessions("ns-sato").await.unwrap().sessions;
        assert_eq!(sessions.len(), 2, "{sessions:?}");
        assert!(sessions[0].ended_at.is_some(), "the logged-out session ended");
        assert!(sessions.iter().any(|s| s.ended_at.is_none()), "the live one has not");
        assert!(sessions.iter().all(|s| s.duration_seconds >= 0 && s.client_addr.as_deref() == Some("127.0.0.1")));
        // Members cannot query; administrators cannot read posts through any path.
        let refused = team.nurse.admin_audit(None, None, None).await;
        assert!(
            matches!(&refused, Err(ClientError::Api { status: 403, body })
                if body.fields.get("required").map(String::as_str) == Some("administrator")),
            "a refusal says who may: {refused:?}"
        );
        let code = |r: Result<_, ClientError>| r.err().and_then(|e| e.code());
        assert_eq!(code(team.admin.posts(team.group, Some(0), None, 10).await.map(drop)), Some(ErrorCode::NotFound));
        assert_eq!(code(team.admin.post_history(team.group, 1).await.map(drop)), Some(ErrorCode::NotFound));
        let mut live = team.admin.connect_live().await.unwrap();
        live.send(&ClientFrame::Subscribe {
            id: "a".into(),
            groups: vec![Subscription { group_id: team.group, after_seq: 0 }],
        })
        .await
        .unwrap();
        let frame =
            tokio::time::timeout(std::time::Duration::from_secs(10), live.next()).await.unwrap().unwrap().unwrap();
        assert!(matches!(frame, ServerFrame::Error { code: ErrorCode::NotFound, .. }), "{frame:?}");
        let everything = serde_json::to_string(&team.admin.admin_audit(None, None, None).await.unwrap()).unwrap();
        assert!(!everything.contains("褥瘡"));
    }
);

both_backends!(
    async fn the_attending_physician_exports_the_timeline_and_the_access_report(app: TestApp) {
        let team = app.team().await;
        team.nurse.post(team.group, &update("褥瘡 2cm", "n-1")).await.unwrap();
        team.nurse.edit_post(team.group, 1, "褥瘡 2.5cm（訂正）").await.unwrap();
        team.care_manager.post(team.group, &update("デイの曜日を変更", "c-1")).await.unwrap();
        team.doctor.mark_seen(team.group, 1).await.unwrap();
        team.care_manager.posts(team.group, Some(0), None, 10).await.unwrap();

        // A download reports its progress (the CLI draws its bar with it), ending at the whole body.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let doctor = team.doctor.clone().with_progress(std::sync::Arc::new(move |got, total| {
            record.lock().unwrap().push((got, total));
        }));
        let export = doctor.export_timeline(team.group).await.unwrap();
        let reported = seen.lock().unwrap().clone();
        let (got, total) = *reported.last().expect("progress reported");
        assert!(got > 0 && total == Some(got), "{reported:?}");
        assert!(reported.windows(2).all(|w| w[0].0 <= w[1].0), "progress only grows: {reported:?}");
        assert_eq!(export.posts.len(), 2);
        let first = &export.posts[0];
        let bodies: Vec<_> = first.versions.iter().map(|v| v.body.as_deref()).collect();
        assert_eq!(bodies, [Some("褥瘡 2cm"), Some("褥瘡 2.5cm（訂正）")]);
        assert_eq!(first.seen.len(), 1);
        // The export matches what the database holds.
        let page = team.doctor.posts(team.group, Some(0), None, 10).await.unwrap().posts;
        assert_eq!(export.posts.iter().map(|e| e.post.clone()).collect::<Vec<_>>(), page);
        let markdown = team.doctor.export_timeline_markdown(team.group).await.unwrap();
        assert!(
            markdown.contains("# 山田 花子 様")
                && markdown.contains("褥瘡 2.5cm（訂正）")
                && markdown.contains("見ました")
                && markdown.contains("（看護師・")
                && markdown.contains("[経過報告]")
                && markdown.contains(" JST"),
            "{markdown}"
        );
        // In the reader's language: kinds, professions and headings; the content as written.
        let english = team.doctor.export_timeline_markdown_in(team.group, "en-GB,en;q=0.9").await.unwrap();
        assert!(
            english.contains("（nurse・") && english.contains("[update]") && english.contains("- Seen: "),
            "{english}"
        );

        // Only the attending physician; administrators have no path at all.
        let code = |r: Result<_, ClientError>| r.err().and_then(|e| e.code());
        assert_eq!(code(team.nurse.export_timeline(team.group).await.map(drop)), Some(ErrorCode::Forbidden));
        assert_eq!(code(team.admin.export_timeline(team.group).await.map(drop)), Some(ErrorCode::NotFound));
        assert_eq!(code(team.admin.access_report(team.group).await.map(drop)), Some(ErrorCode::NotFound));

        let report = team.doctor.access_report(team.group).await.unwrap();
        assert_eq!(report.memberships.len(), 3);
        let actions: Vec<&str> = report.events.iter().map(|e| e.action.as_str()).collect();
        for expected in [
            "group_opened",
            "consent_recorded",
            "invitation_sent",
            "invitation_answered",
            "posts_read",
            "timeline_exported",
        ] {
            assert!(actions.contains(&expected), "no {expected} in {actions:?}");
        }
        let cm = team.care_manager.me().await.unwrap();
        let read = report
            .events
            .iter()
            .find(|e| e.action == "posts_read" && e.actor_id == Some(cm.id))
            .expect("the care manager's read");
        assert!(report.people.iter().any(|p| Some(p.id) == read.actor_id && p.display_name == "cm-kato さん"));
        let invited = report.events.iter().find(|e| e.action == "invitation_sent").unwrap();
        assert!(invited.details.to_string().contains("\"consent_version\":1"), "{}", invited.details);
        // Every export (JSON, Markdown in Japanese and in English) is itself on record.
        let exports = team.admin.admin_audit(None, Some(team.group), Some("timeline_exported")).await.unwrap().entries;
        assert_eq!(exports.len(), 3);
        assert!(!serde_json::to_string(&report).unwrap().contains("褥瘡"), "the access report carries no content");
    }
);

both_backends!(
    async fn concurrent_acts_each_leave_their_entry(app: TestApp) {
        use futures_util::StreamExt;
        // Members registered, logging in and changing their password all at once: renkei-bench found
        // SQLite dropping these entries when a transaction that read first could not wait for the lock.
        const MEMBERS: usize = 24;
        let admin = app.admin().await;
        let logins: Vec<String> = (0..MEMBERS).map(|i| format!("busy-{i}")).collect();
        let ids: Vec<uuid::Uuid> = futures_util::stream::iter(&logins)
            .map(|login| {
                let (app, admin) = (&app, &admin);
                async move { app.member(admin, login, renkei_protocol::Profession::Nurse).await.0.id }
            })
            .buffer_unordered(MEMBERS)
            .collect()
            .await;
        let entries = all_entries(&app).await;
        let count = |action: &str, by_target: bool| {
            entries
                .iter()
                .filter(|e| e.action == action)
                .filter(|e| ids.iter().any(|id| Some(*id) == if by_target { e.target_user_id } else { e.actor_id }))
                .count()
        };
        assert_eq!(count("account_created", true), MEMBERS);
        assert_eq!(count("login", false), MEMBERS);
        assert_eq!(count("password_changed", false), MEMBERS);
        assert_eq!(verify(&app, None).await, Ok(entries.len() as i64));
    }
);

both_backends!(
    async fn expiry_of_sessions_and_invitations_is_recorded_once(app: TestApp) {
        let team = app.team().await;
        let (nurse_2, nurse_2_client) = app.member(&team.admin, "ns-second", renkei_protocol::Profession::Nurse).await;
        team.doctor.invite(team.group, "ns-second").await.unwrap();
        let store = app.store().await;
        // A sweep two weeks and a day from now: every session is past its 12 hours, the invitation past
        // its 14 days.
        let later = time::OffsetDateTime::now_utc() + time::Duration::days(15);
        let sessions = store.expire_sessions(later, later - time::Duration::hours(1)).await.unwrap().len();
        assert!(sessions >= 5, "admin, three team members and the new nurse: {sessions}");
        assert_eq!(store.expire_invitations(later).await.unwrap(), 1);
        // A second sweep (or a second node) finds nothing left.
        assert!(store.expire_sessions(later, later).await.unwrap().is_empty());
        assert_eq!(store.expire_invitations(later).await.unwrap(), 0);
        store.close().await;

        let entries = all_entries(&app).await;
        let expired: Vec<_> = entries.iter().filter(|e| e.action == "session_expired").collect();
        assert_eq!(expired.len(), sessions);
        let mine: Vec<_> = expired.iter().filter(|e| e.actor_id == Some(nurse_2.id)).collect();
        assert_eq!(mine.len(), 1);
        assert!(
            mine[0].session_id.is_some() && mine[0].details.to_string().contains("\"reason\":\"absolute\""),
            "{:?}",
            mine[0]
        );
        let invitation: Vec<_> = entries.iter().filter(|e| e.action == "invitation_expired").collect();
        assert_eq!(invitation.len(), 1);
        assert_eq!((invitation[0].group_id, invitation[0].target_user_id), (Some(team.group), Some(nurse_2.id)));
        assert_eq!(verify(&app, None).await, Ok(entries.len() as i64));
        // An expired session no longer opens anything, and the invitation is gone.
        assert!(matches!(nurse_2_client.me().await, Err(ClientError::Api { status: 401, .. })));
        let again = app.login("ns-second", PASSWORD).await;
        assert!(again.invitations().await.unwrap().invitations.is_empty());
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| {
        c.housekeeping_seconds = 1;
        c.audit_anchor_file = Some(std::env::temp_dir().join(format!("renkei-anchor-{}", uuid::Uuid::new_v4())));
    };
    async fn the_server_writes_the_audit_anchor_as_entries_arrive(app: TestApp) {
        let path = app.config.audit_anchor_file.clone().expect("an anchor file");
        let team = app.team().await;
        team.nurse.post(team.group, &update("訪問しました", "n-1")).await.unwrap();
        let last = all_entries(&app).await.last().map(|e| (e.seq, e.hash.clone())).unwrap();
        let mut written = String::new();
        for _ in 0..100 {
            written = std::fs::read_to_string(&path).unwrap_or_default();
            if written.trim() == format!("{} {}", last.0, last.1) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(written.trim(), format!("{} {}", last.0, last.1));
        // What was anchored verifies (a log cut short of an anchor is the tamper tests' business).
        assert_eq!(verify(&app, Some(last.clone())).await, Ok(last.0));
        let _ = std::fs::remove_file(&path);
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| c.housekeeping_seconds = 1;
    async fn a_rewritten_or_cut_tail_is_found_against_the_key_and_the_servers_own_anchor(app: TestApp) {
        use renkei_protocol::AuditBreak;
        let team = app.team().await;
        let entries = all_entries(&app).await;
        let n = entries.len() as i64;
        // The server anchors the log by itself, outside the database.
        let path = app.config.effective_audit_anchor_file();
        let wanted = format!("{n} {}", entries.last().unwrap().hash);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&path).unwrap_or_default().trim() != wanted {
            assert!(tokio::time::Instant::now() < deadline, "the server never anchored entry {n}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let intact = team.admin.admin_audit_verification(None).await.unwrap();
        assert!(intact.intact, "{intact:?}");
        assert_eq!(intact.anchor.as_deref(), Some(wanted.as_str()), "checked against the server's anchor");

        // Someone who can write the database but not read the key rewrites entry k and recomputes every
        // hash from it on: the plain chain holds, the MACs do not.
        let k = n - 3;
        let store = app.store().await;
        let rows = store.audit_rows(k - 2, 100).await.unwrap();
        store.close().await;
        let mut prev = rows[0].hash.clone();
        let mut statements = Vec::new();
        for row in rows.iter().filter(|r| r.fields().seq >= k) {
            let mut fields = row.fields();
            if fields.seq == k {
                fields.details = "{\"forged\":true}".into();
            }
            let hash = fields.hash(&prev);
            statements.push(format!(
                "UPDATE audit_log SET details = '{}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
                fields.details, fields.seq
            ));
            prev = hash;
        }
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        tamper(&app, &statements).await;
        let forged = team.admin.admin_audit_verification(None).await.unwrap();
        assert!(!forged.intact);
        assert_eq!((forged.break_kind, forged.break_seq), (Some(AuditBreak::Forged), Some(k)), "{forged:?}");

        // Cutting the tail off is found against the anchor the server wrote, without being handed one.
        tamper(&app, &[&format!("DELETE FROM audit_log WHERE seq >= {k}")]).await;
        let cut = team.admin.admin_audit_verification(None).await.unwrap();
        assert!(!cut.intact);
        assert_eq!(cut.break_kind, Some(AuditBreak::Truncated), "{cut:?}");
    }
);

both_backends!(
    async fn a_log_longer_than_a_page_is_verified_to_its_end(app: TestApp) {
        // Verification reads the log a page (5,000 entries) at a time: the chain carries across pages.
        let store = app.store().await;
        let entry = renkei_server::store::NewAuditEntry { action: "login", ..Default::default() };
        for _ in 0..5_100 {
            store.append_audit(&entry, time::OffsetDateTime::now_utc()).await.unwrap();
        }
        store.close().await;
        let n = all_entries(&app).await.len() as i64;
        assert_eq!(verify(&app, None).await, Ok(n));
        tamper(&app, &["UPDATE audit_log SET action = 'logout' WHERE seq = 5050"]).await;
        assert_eq!(verify(&app, None).await, Err(ChainBreak::Altered { seq: 5050 }));
    }
);

both_backends!(
    async fn a_keyed_log_without_its_key_file_is_refused_at_start(app: TestApp) {
        use std::os::unix::fs::PermissionsExt;
        let mut app = app;
        let _admin = app.admin().await;
        app.stop_server().await;
        let key_file = app.config.effective_audit_key_file();
        let text = std::fs::read_to_string(&key_file).expect("the server made its audit key");
        assert!(text.starts_with("renkei audit key v1\n"), "{text}");
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key is readable by its owner only");
        // A new key would make every later entry look forged: the server says what to do instead.
        std::fs::remove_file(&key_file).unwrap();
        let refused = renkei_server::Application::build(app.config.clone()).await;
        let Err(error) = refused else { panic!("started without its key") };
        let message = format!("{error:#}");
        assert!(message.contains("its key file") && message.contains("audit.key"), "{message}");
        // Nor does another key seal it (a second node started with a key file of its own).
        let other = renkei_server::domain::audit::AuditKey::new([9; 32], 1);
        std::fs::write(&key_file, other.to_file_text()).unwrap();
        let refused = renkei_server::Application::build(app.config.clone()).await;
        let Err(error) = refused else { panic!("started with another key") };
        assert!(format!("{error:#}").contains("sealed with another key"), "{error:#}");
        std::fs::write(&key_file, &text).unwrap();
        let started = renkei_server::Application::build(app.config.clone()).await;
        assert!(started.is_ok(), "{:?}", started.err());
    }
);

both_backends!(
    async fn creating_an_administrator_from_the_command_line_is_in_the_audit_log(app: TestApp) {
        let admin = app.admin().await;
        let me = admin.me().await.unwrap();
        let entries = all_entries(&app).await;
        let created: Vec<_> = entries.iter().filter(|e| e.action == "account_created").collect();
        assert_eq!(created.len(), 1, "{created:?}");
        assert_eq!((created[0].actor_id, created[0].target_user_id), (None, Some(me.id)));
        assert!(created[0].details.to_string().contains("create-admin"), "{:?}", created[0]);
        assert!(verify(&app, None).await.is_ok());
    }
);
