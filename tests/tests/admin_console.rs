//! What the ICT desk's console relies on: a recent sign-in before any administrator action that changes
//! accounts, groups or exports (enforced by the server), the audit log as a CSV/JSON download, and the
//! chain's verification state. On SQLite and PostgreSQL.

use renkei_cli::Client;
use renkei_protocol::{AuditBreak, CreateUserRequest, ErrorCode, Profession, Role, Sensitive};
use renkei_tests::{Backend, PASSWORD, TestApp, both_backends, code_of};

fn nurse(login: &str) -> CreateUserRequest {
    CreateUserRequest {
        login: login.into(),
        display_name: "佐藤 花子".into(),
        kana: Some("さとう はなこ".into()),
        profession: Profession::Nurse,
        organisation: "むさしの訪問看護".into(),
        phone: None,
        role: Role::Member,
        initial_password: None,
    }
}

/// Moves every session's proof of identity an hour back, as if the administrator signed in long ago.
async fn age_sign_ins(app: &TestApp) {
    let hour_ago = (time::OffsetDateTime::now_utc() - time::Duration::hours(1)).unix_timestamp() * 1_000_000;
    let sql = "UPDATE sessions SET authenticated_at = $1";
    match app.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).bind(hour_ago).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            sqlx::query(sql).bind(hour_ago).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

async fn every_change_is_refused(admin: &Client, group: uuid::Uuid) {
    assert_eq!(code_of(admin.admin_create_user(&nurse("ns-late")).await), ErrorCode::ReauthenticationRequired);
    assert_eq!(code_of(admin.admin_disable_user("ns-sato").await), ErrorCode::ReauthenticationRequired);
    assert_eq!(code_of(admin.admin_enable_user("ns-sato").await), ErrorCode::ReauthenticationRequired);
    assert_eq!(code_of(admin.admin_new_setup_token("ns-sato").await), ErrorCode::ReauthenticationRequired);
    assert_eq!(code_of(admin.admin_reset_totp("ns-sato").await), ErrorCode::ReauthenticationRequired);
    assert_eq!(code_of(admin.admin_create_community_group("全体").await), ErrorCode::ReauthenticationRequired);
    assert_eq!(code_of(admin.admin_add_community_member(group, "ns-sato").await), ErrorCode::ReauthenticationRequired);
    assert_eq!(
        code_of(admin.admin_remove_community_member(group, "ns-sato").await),
        ErrorCode::ReauthenticationRequired
    );
    assert_eq!(code_of(admin.admin_audit_export("csv").await), ErrorCode::ReauthenticationRequired);
}

both_backends!(
    async fn an_old_administrator_sign_in_must_enter_the_password_again(app: TestApp) {
        let admin = app.admin().await;
        admin.admin_create_user(&nurse("ns-sato")).await.unwrap();
        let community = admin.admin_create_community_group("武蔵野市 全体").await.unwrap().id;

        age_sign_ins(&app).await;
        every_change_is_refused(&admin, community).await;
        // Reading stays open: the console still shows who is registered and the audit log.
        assert!(admin.admin_list_users().await.unwrap().users.len() >= 2);
        assert!(!admin.admin_audit(None, None, None).await.unwrap().entries.is_empty());
        // Nothing changed while refused.
        assert!(admin.admin_show_user("ns-late").await.is_err());

        // A wrong password renews nothing (and counts as a failed login); the right one does.
        assert_eq!(
            code_of(admin.reauthenticate(&Sensitive::new("not the password at all"), None).await),
            ErrorCode::InvalidCredentials
        );
        assert_eq!(code_of(admin.admin_create_user(&nurse("ns-late")).await), ErrorCode::ReauthenticationRequired);
        admin.reauthenticate(&Sensitive::new(PASSWORD), None).await.unwrap();
        admin.admin_create_user(&nurse("ns-late")).await.unwrap();
        admin.admin_add_community_member(community, "ns-sato").await.unwrap();

        let actions: Vec<String> =
            admin.admin_audit(None, None, None).await.unwrap().entries.into_iter().map(|e| e.action).collect();
        assert!(actions.iter().any(|a| a == "reauthenticated"), "{actions:?}");

        // Only the session that proved itself again is renewed, and members are not asked at all.
        age_sign_ins(&app).await;
        let second = app.login("admin", PASSWORD).await;
        second.admin_new_setup_token("ns-sato").await.unwrap();
        assert_eq!(code_of(admin.admin_new_setup_token("ns-sato").await), ErrorCode::ReauthenticationRequired);
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| c.admin_reauth_seconds = 3600 * 24;
    async fn a_long_window_from_the_configuration_is_honoured(app: TestApp) {
        let admin = app.admin().await;
        age_sign_ins(&app).await;
        admin.admin_create_user(&nurse("ns-sato")).await.unwrap();
    }
);

both_backends!(
    async fn the_audit_log_downloads_as_csv_and_json_and_reports_its_chain(app: TestApp) {
        let admin = app.admin().await;
        let created = admin.admin_create_user(&nurse("ns-sato")).await.unwrap();

        let csv = admin.admin_audit_export("csv").await.unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("seq,at,action,actor_id,group_id,target_user_id,client_addr,session_id,details,hash")
        );
        let created_line = lines.find(|l| l.contains(",account_created,") && l.contains(&created.user.id.to_string()));
        assert!(created_line.is_some(), "{csv}");
        // Details are JSON inside one quoted field.
        assert!(csv.contains("\"{\"\"profession\"\":\"\"nurse\"\""), "{csv}");
        let json: renkei_protocol::AuditList =
            serde_json::from_str(&admin.admin_audit_export("json").await.unwrap()).unwrap();
        assert!(json.entries.iter().any(|e| e.action == "account_created"));
        assert_eq!(code_of(admin.admin_audit_export("xml").await), ErrorCode::ValidationFailed);
        let actions: Vec<String> = admin
            .admin_audit(None, None, Some("audit_exported"))
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions.len(), 2, "each export is audited");

        let state = admin.admin_audit_verification(None).await.unwrap();
        assert!(state.intact, "{state:?}");
        assert_eq!(state.entries, state.last_seq);
        assert!(state.last_seq > 3);
        let hash = state.last_hash.clone().unwrap();
        assert_eq!(hash.len(), 64);
        // Checked against an anchor written down earlier: intact, then a forged anchor is reported.
        let anchor = format!("{} {}", state.last_seq, hash);
        let checked = admin.admin_audit_verification(Some(&anchor)).await.unwrap();
        assert!(checked.intact && checked.anchor.as_deref() == Some(anchor.as_str()), "{checked:?}");
        let forged = format!("{} {}", state.last_seq, "0".repeat(64));
        let broken = admin.admin_audit_verification(Some(&forged)).await.unwrap();
        assert!(!broken.intact && broken.problem.is_some(), "{broken:?}");
        assert_eq!((broken.break_kind, broken.break_seq), (Some(AuditBreak::Altered), Some(state.last_seq)));
        let beyond = format!("{} {}", state.last_seq + 1000, hash);
        let truncated = admin.admin_audit_verification(Some(&beyond)).await.unwrap();
        assert!(!truncated.intact);
        assert_eq!(
            (truncated.break_kind, truncated.break_seq),
            (Some(AuditBreak::Truncated), Some(state.last_seq + 1000))
        );
        assert_eq!(code_of(admin.admin_audit_verification(Some("12")).await), ErrorCode::ValidationFailed);

        // Members have no path here.
        let (_, member) = app.member(&admin, "ns-ito", Profession::Nurse).await;
        assert_eq!(code_of(member.admin_audit_verification(None).await), ErrorCode::Forbidden);
        assert_eq!(code_of(member.admin_audit_export("csv").await), ErrorCode::Forbidden);
    }
);
