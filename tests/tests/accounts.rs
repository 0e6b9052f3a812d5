//! Accounts, sessions, TOTP and throttling, end to end through the real client, on SQLite and PostgreSQL.

use renkei_cli::ClientError;
use renkei_protocol::{AccountStatus, CreateUserRequest, ErrorCode, PendingStep, Profession, Role, Sensitive};
use renkei_tests::{PASSWORD, both_backends, code_of, totp_code, totp_code_at, totp_step};

fn nurse(login: &str) -> CreateUserRequest {
    CreateUserRequest {
        login: login.into(),
        display_name: "佐藤 花子".into(),
        kana: Some("さとう はなこ".into()),
        profession: Profession::Nurse,
        organisation: "むさしの訪問看護ステーション".into(),
        phone: Some("０４２２－５１－１１１１".into()),
        role: Role::Member,
        initial_password: None,
    }
}

both_backends!(
    async fn a_new_user_sets_a_password_with_the_setup_token_and_logs_in(app: TestApp) {
        let admin = app.admin().await;
        let created = admin.admin_create_user(&nurse("sato")).await.unwrap();
        assert_eq!(created.user.login, "sato");
        assert_eq!(created.user.phone.as_deref(), Some("0422-51-1111"));
        assert!(created.user.must_change_password);
        let setup = created.setup.expect("a setup token when no initial password is given");

        // No password exists yet, so nothing logs in.
        let anon = app.client();
        assert_eq!(code_of(app.client().login("sato", &Sensitive::new(""), None).await), ErrorCode::InvalidCredentials);
        // A weak password is refused and the token stays usable.
        let weak = anon.setup_password(&setup.token, &Sensitive::new("too short")).await;
        assert_eq!(code_of(weak), ErrorCode::PasswordTooWeak);
        anon.setup_password(&setup.token, &Sensitive::new(PASSWORD)).await.unwrap();
        // The token works once only.
        let again = anon.setup_password(&setup.token, &Sensitive::new("another long password")).await;
        assert_eq!(code_of(again), ErrorCode::SetupTokenInvalid);

        let sato = app.login("sato", PASSWORD).await;
        let me = sato.me().await.unwrap();
        assert_eq!(me.display_name, "佐藤 花子");
        assert_eq!(me.profession, Profession::Nurse);
        assert!(!me.must_change_password);
    }
);

both_backends!(
    async fn an_initial_password_must_be_changed_before_anything_else(app: TestApp) {
        let admin = app.admin().await;
        let mut req = nurse("suzuki");
        req.initial_password = Some(Sensitive::new("initial password 123"));
        let created = admin.admin_create_user(&req).await.unwrap();
        assert!(created.setup.is_none());

        let mut client = app.client();
        let login = client.login("suzuki", &Sensitive::new("initial password 123"), None).await.unwrap();
        assert_eq!(login.pending, Some(PendingStep::ChangePassword));
        assert_eq!(code_of(client.sessions().await), ErrorCode::PasswordChangeRequired);
        // The account itself stays readable, so a client can say what to do.
        assert!(client.me().await.unwrap().must_change_password);
        let same = client
            .change_password(&Sensitive::new("initial password 123"), &Sensitive::new("initial password 123"))
            .await;
        assert_eq!(code_of(same), ErrorCode::PasswordTooWeak);
        let wrong = client.change_password(&Sensitive::new("not the password"), &Sensitive::new(PASSWORD)).await;
        assert_eq!(code_of(wrong), ErrorCode::InvalidCredentials);
        client.change_password(&Sensitive::new("initial password 123"), &Sensitive::new(PASSWORD)).await.unwrap();
        assert_eq!(client.sessions().await.unwrap().sessions.len(), 1);
        // The old password no longer works; the new one does.
        let old = app.client().login("suzuki", &Sensitive::new("initial password 123"), None).await;
        assert_eq!(code_of(old), ErrorCode::InvalidCredentials);
        app.login("suzuki", PASSWORD).await;
    }
);

both_backends!(
    async fn wrong_passwords_and_unknown_logins_get_the_same_answer(app: TestApp) {
        let _admin = app.admin().await;
        let wrong = app.client().login("admin", &Sensitive::new("wrong password here"), None).await;
        let unknown = app.client().login("nobody", &Sensitive::new("wrong password here"), None).await;
        let (Err(ClientError::Api { status: s1, body: b1 }), Err(ClientError::Api { status: s2, body: b2 })) =
            (wrong, unknown)
        else {
            panic!("both must fail with a typed error");
        };
        assert_eq!((s1, &b1), (s2, &b2));
        assert_eq!(b1.code, ErrorCode::InvalidCredentials);
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| {
        c.login_account_failures_per_hour = 8;
        c.login_backoff_max_seconds = 2;
    };
    async fn repeated_failures_back_off_briefly_then_hit_the_hourly_limit(app: TestApp) {
        let _admin = app.admin().await;
        let attempt = || async { app.client().login("admin", &Sensitive::new("wrong password here"), None).await };
        for _ in 0..5 {
            assert_eq!(code_of(attempt().await), ErrorCode::InvalidCredentials);
        }
        // Back-off: refused without checking the password, even the right one.
        let throttled = app.client().login("admin", &Sensitive::new(PASSWORD), None).await;
        let Err(ClientError::Api { status, body }) = throttled else { panic!("expected throttling") };
        assert_eq!((status, body.code), (429, ErrorCode::TooManyAttempts));
        assert!(body.fields.contains_key("retry_after_seconds"));
        // The back-off is short (capped at 2 s here): the real user gets in after waiting.
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        app.login("admin", PASSWORD).await;
        // A success forgets the failures; eight more reach the hourly limit, which holds.
        for _ in 0..8 {
            tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
            let _ = attempt().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let limited = app.client().login("admin", &Sensitive::new(PASSWORD), None).await;
        assert_eq!(code_of(limited), ErrorCode::TooManyAttempts);
    }
);

both_backends!(
    async fn totp_enrolment_makes_login_need_a_code_that_works_once(app: TestApp) {
        let admin = app.admin().await;
        let enrollment = admin.totp_enroll().await.unwrap();
        assert!(enrollment.otpauth_uri.expose().starts_with("otpauth://totp/renkei:admin?"));
        assert_eq!(code_of(admin.totp_confirm("000000").await), ErrorCode::TotpInvalid);
        // Every code for a step fixed here, not for whatever step the clock is in when it is computed: the
        // server accepts one step of skew either way, so the test holds whenever a step ends during it.
        let step = totp_step();
        let first = totp_code_at(enrollment.secret.expose(), step);
        let user = admin.totp_confirm(&first).await.unwrap().user;
        assert!(user.totp_enabled);
        assert_eq!(code_of(admin.totp_enroll().await), ErrorCode::Conflict);

        let mut client = app.client();
        let no_code = client.login("admin", &Sensitive::new(PASSWORD), None).await;
        assert_eq!(code_of(no_code), ErrorCode::TotpRequired);
        let bad = client.login("admin", &Sensitive::new(PASSWORD), Some("123456")).await;
        assert_eq!(code_of(bad), ErrorCode::TotpInvalid);
        // The code used to confirm the enrolment is spent, in login too.
        let spent = client.login("admin", &Sensitive::new(PASSWORD), Some(&first)).await;
        assert_eq!(code_of(spent), ErrorCode::TotpInvalid);
        // The next time step's code is within the one-step clock skew the server allows.
        let code = totp_code_at(enrollment.secret.expose(), step + 1);
        client.login("admin", &Sensitive::new(PASSWORD), Some(&code)).await.unwrap();
        client.me().await.unwrap();
        // Replaying the same code is refused (RFC 6238 §5.2).
        let replay = app.client().login("admin", &Sensitive::new(PASSWORD), Some(&code)).await;
        assert_eq!(code_of(replay), ErrorCode::TotpInvalid);
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| c.require_totp = renkei_server::config::TotpPolicy::Admins;
    async fn a_totp_policy_for_admins_blocks_them_until_they_enrol(app: TestApp) {
        let admin = app.admin().await;
        assert_eq!(code_of(admin.admin_list_users().await), ErrorCode::TotpEnrollmentRequired);
        // Members are not affected by an admins-only policy.
        let mut req = nurse("tanaka");
        req.initial_password = Some(Sensitive::new("initial password 123"));
        let mut member = app.client();
        assert_eq!(code_of(admin.admin_create_user(&req).await), ErrorCode::TotpEnrollmentRequired);
        let enrollment = admin.totp_enroll().await.unwrap();
        admin.totp_confirm(&totp_code(enrollment.secret.expose(), 0)).await.unwrap();
        admin.admin_create_user(&req).await.unwrap();
        let login = member.login("tanaka", &Sensitive::new("initial password 123"), None).await.unwrap();
        assert_eq!(login.pending, Some(PendingStep::ChangePassword));
    }
);

both_backends!(
    async fn disabling_an_account_ends_its_sessions_at_once(app: TestApp) {
        let admin = app.admin().await;
        let (_, nurse_client) = app.member(&admin, "watanabe", Profession::Nurse).await;
        let second = app.login("watanabe", PASSWORD).await;
        assert_eq!(nurse_client.sessions().await.unwrap().sessions.len(), 2);

        let disabled = admin.admin_disable_user("watanabe").await.unwrap();
        assert_eq!(disabled.status, AccountStatus::Disabled);
        assert_eq!(code_of(nurse_client.me().await), ErrorCode::Unauthenticated);
        assert_eq!(code_of(second.me().await), ErrorCode::Unauthenticated);
        // The right and a wrong password get the same answer: no oracle for whoever holds a leaked one.
        let right = app.client().login("watanabe", &Sensitive::new(PASSWORD), None).await.unwrap_err();
        let wrong = app.client().login("watanabe", &Sensitive::new("wrong password here"), None).await.unwrap_err();
        assert_eq!(right.code(), Some(ErrorCode::InvalidCredentials));
        assert_eq!(format!("{right:?}"), format!("{wrong:?}"));

        admin.admin_enable_user("watanabe").await.unwrap();
        app.login("watanabe", PASSWORD).await.me().await.unwrap();
        // An administrator cannot lock themselves out.
        assert_eq!(code_of(admin.admin_disable_user("admin").await), ErrorCode::ValidationFailed);
    }
);

both_backends!(
    async fn sessions_can_be_listed_and_revoked_and_logout_ends_the_token(app: TestApp) {
        let admin = app.admin().await;
        let mut phone = app.login("admin", PASSWORD).await;
        let list = admin.sessions().await.unwrap().sessions;
        assert_eq!(list.len(), 2);
        assert_eq!(list.iter().filter(|s| s.current).count(), 1);
        let other = list.iter().find(|s| !s.current).unwrap().id;
        admin.revoke_session(other).await.unwrap();
        assert_eq!(code_of(phone.me().await), ErrorCode::Unauthenticated);
        assert_eq!(code_of(admin.revoke_session(other).await), ErrorCode::NotFound);
        assert_eq!(code_of(admin.revoke_session(uuid::Uuid::new_v4()).await), ErrorCode::NotFound);

        let token = admin.token().unwrap().clone();
        let mut admin = admin;
        admin.logout().await.unwrap();
        let stale = app.client().with_token(token);
        assert_eq!(code_of(stale.me().await), ErrorCode::Unauthenticated);
        assert_eq!(code_of(phone.logout().await), ErrorCode::Unauthenticated);
    }
);

both_backends!(
    async fn only_administrators_manage_accounts_and_nobody_else_sees_them(app: TestApp) {
        let admin = app.admin().await;
        let (_, member) = app.member(&admin, "kobayashi", Profession::CareManager).await;
        assert_eq!(code_of(member.admin_list_users().await), ErrorCode::Forbidden);
        assert_eq!(code_of(member.admin_create_user(&nurse("x-user")).await), ErrorCode::Forbidden);
        assert_eq!(code_of(member.admin_disable_user("admin").await), ErrorCode::Forbidden);
        assert_eq!(code_of(member.admin_show_user("admin").await), ErrorCode::Forbidden);
        assert_eq!(admin.admin_show_user("admin").await.unwrap().status, AccountStatus::Active);

        for client in [app.client(), app.client().with_token(Sensitive::new("rks_forged-token-value"))] {
            assert_eq!(code_of(client.me().await), ErrorCode::Unauthenticated);
            assert_eq!(code_of(client.admin_list_users().await), ErrorCode::Unauthenticated);
        }
        let users = admin.admin_list_users().await.unwrap().users;
        assert_eq!(users.iter().map(|u| u.login.as_str()).collect::<Vec<_>>(), ["admin", "kobayashi"]);
    }
);

both_backends!(
    async fn invalid_accounts_are_refused_with_every_bad_field_named(app: TestApp) {
        let admin = app.admin().await;
        let mut req = nurse("ab");
        req.display_name = " ".into();
        req.organisation = "x".repeat(201);
        req.phone = Some("call me".into());
        req.initial_password = Some(Sensitive::new("short"));
        let Err(ClientError::Api { status, body }) = admin.admin_create_user(&req).await else { panic!() };
        assert_eq!((status, body.code), (422, ErrorCode::ValidationFailed));
        let fields: Vec<_> = body.fields.keys().map(String::as_str).collect();
        assert_eq!(fields, ["display_name", "initial_password", "login", "organisation", "phone"]);

        admin.admin_create_user(&nurse("sato")).await.unwrap();
        let mut twice = nurse("SATO");
        twice.display_name = "別人".into();
        let Err(ClientError::Api { status, body }) = admin.admin_create_user(&twice).await else { panic!() };
        assert_eq!(
            (status, body.code, body.fields.get("login").map(String::as_str)),
            (409, ErrorCode::Conflict, Some("taken"))
        );
        assert_eq!(admin.admin_list_users().await.unwrap().users.len(), 2);
        assert_eq!(code_of(admin.admin_show_user("nobody").await), ErrorCode::NotFound);
        assert_eq!(code_of(admin.admin_show_user("../../etc").await), ErrorCode::NotFound);
    }
);

both_backends!(
    async fn sessions_end_after_the_idle_timeout_and_the_absolute_expiry(app: TestApp) {
        let admin = app.admin().await;
        let token_hash = renkei_server::auth::token::hash(admin.token().unwrap().expose());
        let store = app.store().await;
        let now = time::OffsetDateTime::now_utc();
        let idle = time::Duration::minutes(i64::from(app.config.session_idle_minutes));
        let absolute = time::Duration::hours(i64::from(app.config.session_absolute_hours));
        // Alive now.
        assert!(store.authenticate(&token_hash, now, now - idle).await.unwrap().is_some());
        // Unused for longer than the idle timeout: gone.
        let later = now + idle + time::Duration::minutes(1);
        assert!(store.authenticate(&token_hash, later, later - idle).await.unwrap().is_none());
        // Used a moment ago but past its absolute expiry: gone too.
        let much_later = now + absolute + time::Duration::minutes(1);
        store.touch_session(admin.sessions().await.unwrap().sessions[0].id, much_later).await.unwrap();
        assert!(store.authenticate(&token_hash, much_later, much_later - idle).await.unwrap().is_none());
        store.close().await;
    }
);

/// A login attempt as a browser behind the TLS proxy at `addr` makes it; the HTTP status.
async fn login_from(app: &renkei_tests::TestApp, addr: &str, login: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.base_url))
        .header("x-forwarded-for", addr)
        .json(&serde_json::json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

both_backends!(
    config = |c: &mut renkei_server::Config| c.behind_tls_proxy = true;
    async fn a_stranger_elsewhere_cannot_lock_the_real_user_out(app: TestApp) {
        let admin = app.admin().await;
        app.member(&admin, "ns-sato", Profession::Nurse).await;
        let mut answers = Vec::new();
        for _ in 0..12 {
            answers.push(login_from(&app, "203.0.113.66", "ns-sato", "guessing the password").await);
        }
        assert_eq!(answers.iter().filter(|s| **s == 401).count(), 5, "{answers:?}");
        assert_eq!(answers.iter().filter(|s| **s == 429).count(), 7, "{answers:?}");
        // Meanwhile the nurse, from her own station's address, gets in at once.
        assert_eq!(login_from(&app, "198.51.100.7", "ns-sato", PASSWORD).await, 200);
        // And the attacker is still refused.
        assert_eq!(login_from(&app, "203.0.113.66", "ns-sato", PASSWORD).await, 429);
    }
);

both_backends!(
    async fn a_concurrent_burst_gets_no_more_password_checks_than_the_back_off_allows(app: TestApp) {
        let _admin = app.admin().await;
        let burst = (0..40).map(|_| async {
            reqwest::Client::new()
                .post(format!("{}/api/v1/auth/login", app.base_url))
                .json(&serde_json::json!({ "login": "admin", "password": "wrong password here" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
        let answers = futures_util::future::join_all(burst).await;
        let evaluated = answers.iter().filter(|s| **s == 401).count();
        assert!(evaluated <= 5, "{evaluated} passwords were checked in a burst of 40: {answers:?}");
        assert_eq!(answers.iter().filter(|s| **s == 429).count(), 40 - evaluated, "{answers:?}");
    }
);

both_backends!(
    async fn a_lost_phone_is_recovered_with_a_recovery_code_once_or_reset_by_an_administrator(app: TestApp) {
        let admin = app.admin().await;
        let (_, nurse_client) = app.member(&admin, "ns-ito", Profession::Nurse).await;
        let enrollment = nurse_client.totp_enroll().await.unwrap();
        let confirmed = nurse_client.totp_confirm(&totp_code(enrollment.secret.expose(), 0)).await.unwrap();
        assert!(confirmed.user.totp_enabled);
        assert_eq!(confirmed.recovery_codes.len(), 10);
        let code = confirmed.recovery_codes[3].expose().to_owned();

        // Phone lost: a recovery code stands in for the 6 digits, however it is typed, and only once.
        let typed = code.to_uppercase().replace('-', " ");
        let mut phone = app.client();
        phone.login("ns-ito", &Sensitive::new(PASSWORD), Some(&typed)).await.unwrap();
        phone.me().await.unwrap();
        let again = app.client().login("ns-ito", &Sensitive::new(PASSWORD), Some(&code)).await;
        assert_eq!(code_of(again), ErrorCode::TotpInvalid);
        // Another user's code is no use to her.
        assert_eq!(
            code_of(app.client().login("ns-ito", &Sensitive::new(PASSWORD), Some("abcd-efgh-ijkm-npqr")).await),
            ErrorCode::TotpInvalid
        );

        // No codes left either: the ICT desk resets her second factor; every session ends at once.
        let mut live = phone.connect_live().await.unwrap();
        let reset = admin.admin_reset_totp("ns-ito").await.unwrap();
        assert!(!reset.totp_enabled);
        let closed =
            tokio::time::timeout(std::time::Duration::from_secs(2), live.next()).await.expect("closed at once");
        assert!(matches!(&closed, Some(Err(ClientError::Live(r))) if r.contains("1008")), "{closed:?}");
        assert_eq!(code_of(phone.me().await), ErrorCode::Unauthenticated);
        assert_eq!(code_of(nurse_client.me().await), ErrorCode::Unauthenticated);
        // She logs in with her password alone and enrols again; the old codes are gone.
        let mut back = app.client();
        back.login("ns-ito", &Sensitive::new(PASSWORD), None).await.unwrap();
        assert!(!back.me().await.unwrap().totp_enabled);
        // Only administrators reset.
        assert_eq!(code_of(back.admin_reset_totp("admin").await), ErrorCode::Forbidden);

        let store = app.store().await;
        let entries = store
            .audit_entries(&renkei_server::store::AuditFilter { limit: 10_000, ..Default::default() })
            .await
            .unwrap();
        store.close().await;
        for action in ["totp_recovery_used", "totp_reset"] {
            assert_eq!(entries.iter().filter(|e| e.action == action).count(), 1, "{action}");
        }
        let text = serde_json::to_string(&entries).unwrap();
        assert!(!text.contains(&code), "a recovery code reached the audit log");
    }
);
