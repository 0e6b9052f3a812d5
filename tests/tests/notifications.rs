//! Notifications (#27): content-free Web Push and e-mail, prompt for questions addressed to the member,
//! batched otherwise, nothing outside their hours, each sent once across nodes, and never in the way of
//! posting. A push service and an SMTP server stand in inside the test; every payload is decrypted with the
//! subscription's private key and read, every e-mail is read, and neither may carry any label, name or body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renkei_cli::Client;
use renkei_protocol::{
    Availability, AvailabilityWindow, ErrorCode, NewPushSubscription, NotificationPayload, NotificationSettings,
    PostKind, PushKeys, Weekday,
};
use renkei_server::notifications::Notifier;
use renkei_tests::{TestApp, both_backends, care, code_of};
use time::macros::datetime;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;
use web_push_native::p256;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;

/// Everything in these tests that identifies a patient, a group, a person or a post.
const SECRETS: &[&str] = &[
    "山田",
    "花子",
    "P-0001",
    "やまだ",
    "褥瘡",
    "ケアプラン",
    "dr-suzuki",
    "ns-sato",
    "cm-kato",
    "さん",
    "鈴木内科",
    "むさしの",
    "血圧",
];

fn assert_content_free(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "a notification carried {s:?}: {text}");
    }
}

/// One request the push service received.
#[derive(Debug, Clone)]
struct Pushed {
    device: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct PushState {
    received: Mutex<Vec<Pushed>>,
    /// The status to answer with (201 unless a test changes it).
    status: Mutex<Option<StatusCode>>,
    /// Hold every request this long before answering (a hanging push service).
    hold: Mutex<Option<Duration>>,
}

/// A push service on a random loopback port.
struct PushService {
    base: String,
    state: Arc<PushState>,
}

impl PushService {
    async fn start() -> Self {
        async fn receive(
            State(state): State<Arc<PushState>>,
            Path(device): Path<String>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            state.received.lock().unwrap().push(Pushed { device, headers, body: body.to_vec() });
            let hold = *state.hold.lock().unwrap();
            if let Some(hold) = hold {
                tokio::time::sleep(hold).await;
            }
            state.status.lock().unwrap().unwrap_or(StatusCode::CREATED)
        }
        let state = Arc::new(PushState::default());
        let app = axum::Router::new().route("/push/{device}", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    fn received(&self) -> Vec<Pushed> {
        self.state.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Pushed> {
        for _ in 0..300 {
            if self.received().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the push service received {} of {n} messages in 30 s", self.received().len());
    }
}

/// A browser's subscription: the private key and auth secret stay with the test, which decrypts with them.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
    device: String,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(16) {
        chunk.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..chunk.len()]);
    }
    out
}

impl Browser {
    fn new(device: &str) -> Self {
        let secret = p256::SecretKey::from_slice(&random_bytes::<32>()).expect("a scalar");
        Self { secret, auth: random_bytes::<16>(), device: device.into() }
    }

    fn subscription(&self, push: &PushService) -> NewPushSubscription {
        let point = self.secret.public_key().to_encoded_point(false);
        NewPushSubscription {
            endpoint: format!("{}/push/{}", push.base, self.device),
            keys: PushKeys {
                p256dh: URL_SAFE_NO_PAD.encode(point.as_bytes()),
                auth: URL_SAFE_NO_PAD.encode(self.auth),
            },
            device: Some(self.device.clone()),
        }
    }

    /// Decrypts a message as the browser would, after checking its VAPID signature against `vapid`.
    fn open(&self, pushed: &Pushed, vapid: &str) -> NotificationPayload {
        assert_eq!(pushed.headers["content-encoding"], "aes128gcm");
        let authorization = pushed.headers["authorization"].to_str().unwrap();
        let (token, key) = authorization
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .unwrap_or_else(|| panic!("not a VAPID authorization: {authorization}"));
        assert_eq!(key, vapid, "signed with the server's advertised key");
        let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(key).unwrap()).unwrap();
        let claims = public.verify_token::<NoCustomClaims>(token, None).expect("a valid VAPID signature");
        assert_eq!(claims.subject.as_deref(), Some("mailto:ict@example.jp"));
        assert!(claims.audiences.is_some(), "the JWT names the push service");
        let plain = web_push_native::decrypt(pushed.body.clone(), &self.secret, &self.auth.into()).expect("decrypts");
        let text = String::from_utf8(plain).unwrap();
        assert_content_free(&text);
        assert_content_free(&String::from_utf8_lossy(&pushed.body));
        serde_json::from_str(&text).unwrap()
    }
}

/// An SMTP server on a random loopback port that keeps every message's DATA.
struct MailServer {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl MailServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 stand-in ESMTP\r\n").await.ok();
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(body) = data.as_mut() {
                            if line == "." {
                                kept.lock().unwrap().push(data.take().unwrap_or_default());
                                write.write_all(b"250 queued\r\n").await.ok();
                            } else {
                                body.push_str(&line);
                                body.push('\n');
                            }
                            continue;
                        }
                        let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
                        let answer: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-stand-in\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.ok();
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        write.write_all(answer).await.ok();
                    }
                });
            }
        });
        Self { port, messages }
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..300 {
            let got = self.messages.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the SMTP server received fewer than {n} messages in 30 s");
    }
}

/// A message as its reader sees it: the subject's encoded words and a base64 body decoded.
fn readable(message: &str) -> String {
    let (head, body) = message.split_once("\n\n").unwrap_or((message, ""));
    let head = head.replace("\n ", " ");
    let mut out = String::new();
    for line in head.lines() {
        let mut line = line.to_owned();
        while let Some(start) = line.find("=?utf-8?b?") {
            let rest = &line[start + 10..];
            let end = rest.find("?=").expect("an encoded word ends");
            let word = base64::engine::general_purpose::STANDARD.decode(&rest[..end]).expect("base64 word");
            line = format!("{}{}{}", &line[..start], String::from_utf8(word).unwrap(), &rest[end + 2..]);
        }
        out.push_str(&line.replace("?= ", ""));
        out.push('\n');
    }
    out.push('\n');
    if head.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        out.push_str(&String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).unwrap()).unwrap());
    } else {
        out.push_str(body);
    }
    out
}

fn configure(c: &mut renkei_server::Config, every: u32) {
    c.push_services = vec!["127.0.0.1".into()];
    c.vapid_subject = "mailto:ict@example.jp".into();
    c.notification_seconds = every;
}

fn settings(push: bool, email: Option<&str>, digest_minutes: u32) -> NotificationSettings {
    NotificationSettings { push, email: email.is_some(), email_address: email.map(str::to_owned), digest_minutes }
}

async fn subscribe(client: &Client, browser: &Browser, push: &PushService) -> String {
    client.add_push_device(&browser.subscription(push)).await.expect("subscribe");
    client.notifications().await.expect("view").vapid_public_key
}

/// A question addressed to a member with push and e-mail on reaches both within seconds, saying only how many
/// posts wait; the push is encrypted for her browser and signed with the server's VAPID key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_notifies_by_push_and_email_without_content_sqlite() {
    question_notifies(renkei_tests::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_notifies_by_push_and_email_without_content_postgres() {
    question_notifies(renkei_tests::Backend::Postgres).await;
}

async fn question_notifies(backend: renkei_tests::Backend) {
    let push = PushService::start().await;
    let mail = MailServer::start().await;
    let port = mail.port;
    let Some(app) = TestApp::spawn_with(backend, |c| {
        configure(c, 1);
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = port;
        c.smtp_security = renkei_server::config::SmtpSecurity::None;
        c.smtp_from = "renkei <renkei@example.jp>".into();
        c.public_url = Some("https://renkei.example.jp".into());
    })
    .await
    else {
        return;
    };
    let team = app.team().await;
    let browser = Browser::new("phone");
    let vapid = subscribe(&team.care_manager, &browser, &push).await;
    let view = team.care_manager.set_notifications(&settings(true, Some("cm@example.jp"), 30)).await.unwrap();
    assert!(view.email_available);
    assert_eq!(view.devices.len(), 1);

    let body = "山田 花子 様の褥瘡についてケアプランの変更を相談させてください。血圧は安定しています。";
    team.nurse.post(team.group, &care::post(PostKind::CarePlanQuestion, body, "q1")).await.expect("post");

    let pushed = push.wait_for(1).await;
    let payload = browser.open(&pushed[0], &vapid);
    assert_eq!((payload.posts, payload.question), (1, true));
    assert_eq!(payload.body_ja, "renkei にあなた宛ての質問を含む新しい投稿が 1 件あります");
    let mails = mail.wait_for(1).await;
    assert_content_free(&mails[0]);
    let mail = readable(&mails[0]);
    assert_content_free(&mail);
    assert!(mail.contains("renkei にあなた宛ての質問を含む新しい投稿が 1 件あります"), "{mail}");
    assert!(mail.contains("\nhttps://renkei.example.jp"), "{mail}");
    assert!(mail.contains("To: cm@example.jp"), "{mail}");

    let devices = team.care_manager.notifications().await.unwrap().devices;
    assert!(devices[0].last_sent_at.is_some(), "the device shows when it was last reached");
    let metrics = reqwest::get(format!("{}/metrics", app.base_url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("renkei_notifications_total{channel=\"push\",outcome=\"sent\"} 1"), "{metrics}");
    assert!(metrics.contains("renkei_notifications_total{channel=\"email\",outcome=\"sent\"} 1"), "{metrics}");
    app.stop().await;
}

both_backends!(
    config = |c: &mut renkei_server::Config| configure(c, 3600);
    async fn nothing_goes_off_hours_and_the_window_opening_summarises(app: TestApp) {
        // The app's own pass runs once at start; every later pass is this test's, at instants it chooses.
        let push = PushService::start().await;
        let team = app.team().await;
        let browser = Browser::new("phone");
        let vapid = subscribe(&team.care_manager, &browser, &push).await;
        team.care_manager.set_notifications(&settings(true, None, 30)).await.unwrap();
        let weekdays = vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
        let window = AvailabilityWindow { days: weekdays, start: "09:00".into(), end: "17:00".into() };
        team.care_manager
            .set_availability(&Availability { windows: vec![window], contact_preference: None })
            .await
            .unwrap();
        let notifier = Notifier::new(app.store().await, Arc::new(app.config.clone()), Default::default()).await.unwrap();

        team.nurse.post(team.group, &care::post(PostKind::CarePlanQuestion, "褥瘡の件", "q1")).await.unwrap();
        team.nurse.post(team.group, &care::update("血圧 128/80", "u1")).await.unwrap();
        team.doctor.post(team.group, &care::update("山田さん、往診済み", "u2")).await.unwrap();

        // Monday 23:00 in Tokyo: off hours — not even the question goes.
        notifier.run_once(datetime!(2030-01-07 23:00 +09:00)).await.unwrap();
        assert!(push.received().is_empty(), "nothing is sent outside the member's hours");
        // Tuesday 09:00: the window opens and one notification sums up what waited.
        let opened = datetime!(2030-01-08 09:00 +09:00);
        notifier.run_once(opened).await.unwrap();
        let received = push.received();
        assert_eq!(received.len(), 1);
        let payload = browser.open(&received[0], &vapid);
        assert_eq!((payload.posts, payload.question), (3, true));

        // An ordinary post five minutes later waits for the 30-minute digest...
        team.nurse.post(team.group, &care::update("食事量 8 割", "u3")).await.unwrap();
        notifier.run_once(opened + time::Duration::minutes(5)).await.unwrap();
        assert_eq!(push.received().len(), 1, "the digest is not due");
        // ...and goes when it is, counting only what is new since.
        notifier.run_once(opened + time::Duration::minutes(31)).await.unwrap();
        let received = push.received();
        assert_eq!(received.len(), 2);
        let payload = browser.open(&received[1], &vapid);
        assert_eq!((payload.posts, payload.question), (1, false));

        // What the member has read is not announced again; her own posts never are.
        team.care_manager.post(team.group, &care::update("承知しました", "c1")).await.unwrap();
        notifier.run_once(opened + time::Duration::hours(2)).await.unwrap();
        assert_eq!(push.received().len(), 2, "her own post is not news to her");
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| configure(c, 1);
    async fn a_failing_push_service_delays_no_post_and_a_gone_subscription_is_removed(app: TestApp) {
        let push = PushService::start().await;
        *push.state.hold.lock().unwrap() = Some(Duration::from_secs(60));
        let team = app.team().await;
        let browser = Browser::new("phone");
        subscribe(&team.care_manager, &browser, &push).await;
        team.care_manager.set_notifications(&settings(true, None, 5)).await.unwrap();
        team.nurse.post(team.group, &care::post(PostKind::CarePlanQuestion, "褥瘡の件", "q1")).await.unwrap();
        push.wait_for(1).await;
        // The push service now holds the request; posting goes on regardless.
        for i in 0..20 {
            let post = team.nurse.post(team.group, &care::update("血圧 128/80", &format!("u{i}"))).await;
            assert!(post.is_ok(), "post {i} while the push service hangs: {post:?}");
        }

        // A push service that says the subscription is gone (410) has it removed.
        *push.state.hold.lock().unwrap() = None;
        *push.state.status.lock().unwrap() = Some(StatusCode::GONE);
        let second = Browser::new("tablet");
        team.doctor.add_push_device(&second.subscription(&push)).await.unwrap();
        team.doctor.set_notifications(&settings(true, None, 5)).await.unwrap();
        team.nurse.post(team.group, &care::post(PostKind::TreatmentQuestion, "処方の件", "q2")).await.unwrap();
        let mut removed = false;
        for _ in 0..300 {
            if team.doctor.notifications().await.unwrap().devices.is_empty() {
                removed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(removed, "a subscription its push service calls gone is removed within 30 s");
        let metrics = reqwest::get(format!("{}/metrics", app.base_url)).await.unwrap().text().await.unwrap();
        assert!(metrics.contains("renkei_notifications_total{channel=\"push\",outcome=\"gone\"} 1"), "{metrics}");
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| configure(c, 3600);
    async fn settings_and_subscriptions_are_checked(app: TestApp) {
        let team = app.team().await;
        let push = PushService::start().await;
        let c = &team.nurse;
        let bad = |s: NotificationSettings| async move { code_of(c.set_notifications(&s).await) };
        assert_eq!(bad(settings(false, None, 4)).await, ErrorCode::ValidationFailed);
        assert_eq!(bad(settings(false, Some("not an address"), 30)).await, ErrorCode::ValidationFailed);
        // No SMTP server is configured here: e-mail cannot be chosen.
        assert_eq!(bad(settings(false, Some("ns@example.jp"), 30)).await, ErrorCode::ValidationFailed);
        assert_eq!(c.notifications().await.unwrap().settings, NotificationSettings::default(), "nothing changed");

        let browser = Browser::new("phone");
        let mut sub = browser.subscription(&push);
        sub.endpoint = "https://10.0.0.1/admin".into();
        assert_eq!(code_of(c.add_push_device(&sub).await), ErrorCode::ValidationFailed, "not a listed push service");
        let mut sub = browser.subscription(&push);
        sub.keys.auth = URL_SAFE_NO_PAD.encode([1u8; 8]);
        assert_eq!(code_of(c.add_push_device(&sub).await), ErrorCode::ValidationFailed, "auth must be 16 bytes");
        let mut sub = browser.subscription(&push);
        sub.keys.p256dh = URL_SAFE_NO_PAD.encode([4u8; 65]);
        assert_eq!(code_of(c.add_push_device(&sub).await), ErrorCode::ValidationFailed, "not a P-256 point");
        assert!(c.notifications().await.unwrap().devices.is_empty(), "nothing was kept");

        let device = c.add_push_device(&browser.subscription(&push)).await.unwrap();
        assert_eq!(code_of(team.doctor.remove_push_device(device.id).await), ErrorCode::NotFound, "not his device");
        c.remove_push_device(device.id).await.unwrap();
        assert!(c.notifications().await.unwrap().devices.is_empty());
    }
);

/// Two nodes on one PostgreSQL database each run the planner and the sender every second: every
/// notification still goes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_notification_once() {
    let push = PushService::start().await;
    let Some(app) = TestApp::spawn_with(renkei_tests::Backend::Postgres, |c| configure(c, 1)).await else { return };
    let node2 = app.spawn_node().await;
    let team = app.team().await;
    let browsers = [Browser::new("cm-phone"), Browser::new("cm-pc"), Browser::new("dr-phone"), Browser::new("dr-pc")];
    for (i, browser) in browsers.iter().enumerate() {
        let client = if i < 2 { &team.care_manager } else { &team.doctor };
        subscribe(client, browser, &push).await;
    }
    team.care_manager.set_notifications(&settings(true, None, 30)).await.unwrap();
    team.doctor.set_notifications(&settings(true, None, 30)).await.unwrap();
    team.nurse.post(team.group, &care::update("訪問しました", "u1")).await.unwrap();
    push.wait_for(4).await;
    // Several more passes of both nodes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut devices: Vec<String> = push.received().into_iter().map(|p| p.device).collect();
    devices.sort();
    assert_eq!(devices, ["cm-pc", "cm-phone", "dr-pc", "dr-phone"], "each device reached once");
    node2.stop().await;
    app.stop().await;
}

both_backends!(
    config = |c: &mut renkei_server::Config| configure(c, 3600);
    async fn the_outbox_outlives_a_failing_push_service_and_a_node_that_died_mid_send(app: TestApp) {
        let push = PushService::start().await;
        *push.state.status.lock().unwrap() = Some(StatusCode::SERVICE_UNAVAILABLE);
        let team = app.team().await;
        let browser = Browser::new("phone");
        let vapid = subscribe(&team.care_manager, &browser, &push).await;
        team.care_manager.set_notifications(&settings(true, None, 30)).await.unwrap();
        team.nurse.post(team.group, &care::post(PostKind::CarePlanQuestion, "褥瘡の件", "q1")).await.unwrap();
        let config = Arc::new(app.config.clone());
        let t0 = datetime!(2030-01-08 10:00 +09:00);

        // The push service is down: the row stays in the outbox, to be tried again after a back-off.
        let first = Notifier::new(app.store().await, config.clone(), Default::default()).await.unwrap();
        first.run_once(t0).await.unwrap();
        assert_eq!(push.received().len(), 1);
        drop(first);
        // A node restarted later finds it, and the push service is back.
        *push.state.status.lock().unwrap() = None;
        let restarted = Notifier::new(app.store().await, config.clone(), Default::default()).await.unwrap();
        restarted.run_once(t0 + time::Duration::seconds(10)).await.unwrap();
        assert_eq!(push.received().len(), 1, "not before its back-off");
        restarted.run_once(t0 + time::Duration::seconds(31)).await.unwrap();
        let received = push.received();
        assert_eq!(received.len(), 2, "sent again after the back-off");
        assert_eq!(browser.open(&received[1], &vapid).posts, 1);
        restarted.run_once(t0 + time::Duration::minutes(5)).await.unwrap();
        assert_eq!(push.received().len(), 2, "and only once");

        // A node that claimed a row and died before sending it holds it for its lease only.
        team.nurse.post(team.group, &care::post(PostKind::CarePlanQuestion, "処方の件", "q2")).await.unwrap();
        let t1 = t0 + time::Duration::hours(1);
        let store = app.store().await;
        restarted.plan(t1).await.unwrap();
        let claimed = store.claim_notifications(t1, time::Duration::minutes(2), 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "the dead node's claim");
        restarted.run_once(t1 + time::Duration::minutes(1)).await.unwrap();
        assert_eq!(push.received().len(), 2, "another node waits for the lease");
        restarted.run_once(t1 + time::Duration::minutes(3)).await.unwrap();
        assert_eq!(push.received().len(), 3, "and then sends it");
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| configure(c, 3600);
    async fn a_node_with_another_vapid_key_is_refused(app: TestApp) {
        // Browsers subscribe with the key a node hands them: a node signing with another would be refused by
        // every push service, so it does not start.
        let other = tempfile::tempdir().unwrap();
        let mut config = app.config.clone();
        config.vapid_key_file = Some(other.path().join("vapid.key"));
        let refused = Notifier::new(app.store().await, Arc::new(config), Default::default()).await.unwrap_err();
        assert!(refused.to_string().contains("another VAPID key"), "{refused}");
        // The same file starts.
        Notifier::new(app.store().await, Arc::new(app.config.clone()), Default::default()).await.expect("same key");
    }
);
