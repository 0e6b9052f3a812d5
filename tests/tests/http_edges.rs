//! Bad input and the operational endpoints, over raw HTTP: every client mistake is a typed 4xx body and
//! changes nothing; `/healthz`, `/readyz`, `/metrics` and the OpenAPI document answer.

use renkei_protocol::{ErrorBody, ErrorCode, Profession};
use renkei_tests::{Backend, PASSWORD, TestApp, both_backends};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

async fn typed(response: reqwest::Response) -> (StatusCode, ErrorBody) {
    let status = response.status();
    let body = response.bytes().await.unwrap();
    let parsed = serde_json::from_slice::<ErrorBody>(&body)
        .unwrap_or_else(|e| panic!("untyped error body ({status}): {e}: {}", String::from_utf8_lossy(&body)));
    (status, parsed)
}

both_backends!(
    async fn malformed_bodies_get_typed_errors_and_change_nothing(app: TestApp) {
        let admin = app.admin().await;
        let token = admin.token().unwrap().expose().to_owned();
        // The client's own connection (its login was unauthenticated) is released by a signed-in request.
        admin.me().await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/api/v1/admin/users", app.base_url);
        let valid = r#"{"login":"sato","display_name":"佐藤","profession":"nurse","organisation":"むさしの"}"#;
        let long_login =
            format!(r#"{{"login":"{}","display_name":"a","profession":"nurse","organisation":"b"}}"#, "a".repeat(300));
        let huge = format!(
            r#"{{"login":"sato","display_name":"{}","profession":"nurse","organisation":"b"}}"#,
            "あ".repeat(40_000)
        );
        let cases: Vec<(&str, Vec<u8>, &str, StatusCode, ErrorCode)> = vec![
            (
                "syntax",
                b"{\"login\":".to_vec(),
                "application/json",
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
            ),
            (
                "not an object",
                b"[1,2]".to_vec(),
                "application/json",
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
            ),
            (
                "wrong type",
                valid.replace("\"nurse\"", "7").into_bytes(),
                "application/json",
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
            ),
            (
                "unknown profession",
                valid.replace("nurse", "surgeon").into_bytes(),
                "application/json",
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
            ),
            (
                "unknown field",
                valid.replace("}", r#","is_admin":true}"#).into_bytes(),
                "application/json",
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
            ),
            (
                "invalid UTF-8",
                [&valid.as_bytes()[..10], &[0xff, 0xfe], &valid.as_bytes()[10..]].concat(),
                "application/json",
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
            ),
            (
                "missing content type",
                valid.as_bytes().to_vec(),
                "text/plain",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            (
                "over-long login",
                long_login.into_bytes(),
                "application/json",
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationFailed,
            ),
            (
                "oversized body",
                huge.into_bytes(),
                "application/json",
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
            ),
        ];
        for (what, body, content_type, status, code) in cases {
            let response = http
                .post(&url)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let (got_status, got) = typed(response).await;
            assert_eq!((got_status, got.code), (status, code), "{what}: {}", got.message);
        }
        // Nothing was created by any of them.
        assert_eq!(admin.admin_list_users().await.unwrap().users.len(), 1);
    }
);

both_backends!(
    async fn missing_malformed_and_forged_credentials_are_unauthenticated(app: TestApp) {
        let _admin = app.admin().await;
        let http = reqwest::Client::new();
        let url = format!("{}/api/v1/me", app.base_url);
        for header in
            [None, Some("Bearer "), Some("Basic YWRtaW46cGFzcw=="), Some("Bearer rks_forged"), Some("bearer x")]
        {
            let mut request = http.get(&url);
            if let Some(h) = header {
                request = request.header(AUTHORIZATION, h);
            }
            let (status, body) = typed(request.send().await.unwrap()).await;
            assert_eq!((status, body.code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated), "{header:?}");
        }
        let long = format!("Bearer {}", "x".repeat(5000));
        let (status, body) = typed(http.get(&url).header(AUTHORIZATION, long).send().await.unwrap()).await;
        assert_eq!((status, body.code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated));
        // Login with a body of the wrong shape is a typed error, not a 500.
        let login = format!("{}/api/v1/auth/login", app.base_url);
        let (status, body) =
            typed(http.post(&login).json(&serde_json::json!({"login": "admin"})).send().await.unwrap()).await;
        assert_eq!((status, body.code), (StatusCode::BAD_REQUEST, ErrorCode::MalformedRequest));
        let (status, body) = typed(
            http.post(&login)
                .json(&serde_json::json!({"login": "admin", "password": PASSWORD, "totp_code": 5}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, body.code), (StatusCode::BAD_REQUEST, ErrorCode::MalformedRequest));
    }
);

both_backends!(
    async fn unknown_paths_and_methods_get_typed_errors(app: TestApp) {
        let http = reqwest::Client::new();
        let (status, body) =
            typed(http.get(format!("{}/api/v1/nothing-here", app.base_url)).send().await.unwrap()).await;
        assert_eq!((status, body.code), (StatusCode::NOT_FOUND, ErrorCode::NotFound));
        let (status, body) =
            typed(http.delete(format!("{}/api/v1/auth/login", app.base_url)).send().await.unwrap()).await;
        assert_eq!((status, body.code), (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed));
        let (status, body) =
            typed(http.delete(format!("{}/api/v1/me/sessions/not-a-uuid", app.base_url)).send().await.unwrap()).await;
        assert_eq!((status, body.code), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated));
    }
);

both_backends!(
    async fn health_readiness_metrics_and_openapi_answer(app: TestApp) {
        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("{}{path}", app.base_url)).send();
        assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
        assert_eq!(get("/readyz").await.unwrap().text().await.unwrap(), "ready\n");
        let _ = app.client().login("nobody", &renkei_protocol::Sensitive::new("wrong password here"), None).await;
        let metrics = get("/metrics").await.unwrap().text().await.unwrap();
        assert!(metrics.contains("renkei_logins_total{outcome=\"failure\"} 1"), "{metrics}");
        assert!(metrics.contains("renkei_http_responses_total"), "{metrics}");
        let openapi: serde_json::Value = get("/api/v1/openapi.json").await.unwrap().json().await.unwrap();
        let paths = openapi["paths"].as_object().unwrap();
        for path in
            ["/api/v1/auth/login", "/api/v1/me", "/api/v1/me/sessions/{id}", "/api/v1/admin/users/{user}/disable"]
        {
            assert!(paths.contains_key(path), "OpenAPI lacks {path}");
        }
        assert!(openapi["components"]["schemas"]["ErrorBody"].is_object());
    }
);

both_backends!(
    async fn metrics_cover_the_post_path_and_the_process_with_snake_case_labels(app: TestApp) {
        let team = app.team().await;
        use renkei_protocol::{ClientFrame, ServerFrame, Subscription};
        let mut live = team.care_manager.connect_live().await.expect("live");
        let subscribe = ClientFrame::Subscribe {
            id: "s".into(),
            groups: vec![Subscription { group_id: team.group, after_seq: 0 }],
        };
        live.send(&subscribe).await.unwrap();
        let mut next = async || {
            tokio::time::timeout(std::time::Duration::from_secs(15), live.next())
                .await
                .expect("a frame within 15 s")
                .unwrap()
                .unwrap()
        };
        while !matches!(next().await, ServerFrame::Subscribed { .. }) {}
        for i in 0..3 {
            team.nurse.post(team.group, &renkei_tests::care::update("訪問しました", &format!("m{i}"))).await.unwrap();
        }
        let mut delivered = 0;
        while delivered < 3 {
            if let ServerFrame::Post { .. } = next().await {
                delivered += 1;
            }
        }
        let metrics = reqwest::get(format!("{}/metrics", app.base_url)).await.unwrap().text().await.unwrap();
        let value = |sample: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
                .unwrap_or_else(|| panic!("no {sample} in {metrics}"))
        };
        assert_eq!(value("renkei_posts_committed_total "), 3.0);
        assert!(value("renkei_commit_batch_posts_count ") >= 1.0);
        assert!(value("renkei_commit_duration_seconds_count ") >= 1.0);
        assert_eq!(value("renkei_ws_connections "), 1.0);
        assert!(value("renkei_deliveries_total ") >= 3.0, "each post reached the subscribed connection");
        assert_eq!(value("renkei_lagged_connections_total "), 0.0);
        assert!(value("renkei_db_pool_connections ") >= 1.0);
        assert!(value("renkei_audit_entries ") >= 1.0);
        let route = "renkei_http_request_duration_seconds_count{method=\"post\",route=\"/api/v1/groups/{id}/posts\"} ";
        assert_eq!(value(route), 3.0, "timed by route template, never by the path with its ids");
        assert!(!metrics.contains(&team.group.to_string()), "no id in a label");
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(value(name) > 0.0, "{name}");
        }
        if app.backend == renkei_tests::Backend::Postgres {
            assert_eq!(value("renkei_cluster_listener_up "), 1.0);
        }
        // Every label value is snake_case (route templates aside).
        for line in metrics.lines().filter(|l| !l.starts_with('#')) {
            let Some((_, labels)) = line.split_once('{') else { continue };
            for pair in labels.split('}').next().unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap();
                let value = value.trim_matches('"');
                let snake = value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                // `le` bucket bounds are numbers (`0.00025`, `+Inf`), `route` a template.
                let bound = key == "le" && (value == "+Inf" || value.parse::<f64>().is_ok());
                assert!(key == "route" || snake || bound, "{line}");
            }
        }
    }
);

/// `/metrics` answers only whom the configuration allows: behind a proxy nobody on the main listener; with a
/// token whoever sends it; with `metrics_listen` on that address alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_where_configured() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| c.behind_tls_proxy = true).await else { return };
    let status = reqwest::get(format!("{}/metrics", app.base_url)).await.unwrap().status();
    assert_eq!(status, StatusCode::NOT_FOUND, "behind a proxy every client looks local");
    drop(app);

    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "s3cret-metrics-token\n").unwrap();
    let path = token.path().to_path_buf();
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_token_file = Some(path)).await else { return };
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", app.base_url);
    assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::NOT_FOUND, "no token");
    let wrong = http.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let right = http.get(&url).bearer_auth("s3cret-metrics-token").send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("renkei_http_responses_total"));
    drop(app);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| c.metrics_listen = Some(listen)).await else { return };
    let main = reqwest::get(format!("{}/metrics", app.base_url)).await.unwrap().status();
    assert_eq!(main, StatusCode::NOT_FOUND, "not on the main listener");
    let own = reqwest::get(format!("http://{listen}/metrics")).await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.unwrap().contains("process_open_fds"));
    let elsewhere = reqwest::get(format!("http://{listen}/api/v1/me")).await.unwrap().status();
    assert_eq!(elsewhere, StatusCode::NOT_FOUND, "the metrics listener serves nothing else");
}

/// Reads until the server closes the connection; panics if it has not within `limit`.
async fn closed_within(what: &str, stream: &mut tokio::net::TcpStream, limit: std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server kept the {what} connection open"));
}

both_backends!(
    config = |c: &mut renkei_server::Config| c.http_header_timeout_seconds = 1;
    async fn half_open_and_idle_connections_are_closed(app: TestApp) {
        use tokio::io::AsyncWriteExt;
        let addr = app.base_url.trim_start_matches("http://").to_owned();
        // Headers that never end (a slow or half-open client).
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: renkei\r\n").await.unwrap();
        closed_within("slow", &mut slow, std::time::Duration::from_secs(5)).await;
        // A keep-alive connection left idle after its answer.
        let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: renkei\r\n\r\n").await.unwrap();
        closed_within("idle", &mut idle, std::time::Duration::from_secs(5)).await;
        // Nothing at all after connecting.
        let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
        closed_within("silent", &mut silent, std::time::Duration::from_secs(5)).await;
    }
);

/// Sends one HTTP/1.1 request on `stream` and reads the status line of the answer.
async fn status_on(stream: &mut tokio::net::TcpStream, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned()
}

/// Connects to `addr` from 127.0.0.2, an address no other connection of the test uses: the places counted
/// for it are this test's alone, whatever the client's pool or the harness's probes still hold open.
async fn connect_from_own_address(addr: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

both_backends!(
    config = |c: &mut renkei_server::Config| c.max_unauthenticated_connections_per_address = 3;
    async fn one_address_cannot_hold_more_than_its_share_of_unauthenticated_connections(app: TestApp) {
        use std::time::Duration;
        let addr = app.base_url.trim_start_matches("http://").to_owned();
        let admin = app.admin().await;
        let token = admin.token().unwrap().expose().to_owned();
        // A connection that authenticates no longer counts against its address.
        let mut signed_in = connect_from_own_address(&addr).await;
        let me = format!("GET /api/v1/me HTTP/1.1\r\nHost: renkei\r\nAuthorization: Bearer {token}\r\n\r\n");
        assert!(status_on(&mut signed_in, &me).await.contains("200"));
        // Four silent connections for three places: exactly one is closed at once, before it can say
        // anything (which one depends on the order the server admits them in), and three stay open.
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(connect_from_own_address(&addr).await);
        }
        let mut open = Vec::new();
        let mut closed = 0;
        for mut stream in silent {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 16];
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
                Err(_) => open.push(stream),
                Ok(Ok(0) | Err(_)) => closed += 1,
                Ok(Ok(n)) => panic!("a silent connection was sent {n} bytes"),
            }
        }
        assert_eq!((closed, open.len()), (1, 3), "one refused, three admitted");
        let mut silent = open;
        // The signed-in connection is still served.
        assert!(status_on(&mut signed_in, &me).await.contains("200"));
        // A place freed is a place taken again.
        drop(silent.pop());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut next = connect_from_own_address(&addr).await;
            use tokio::io::AsyncWriteExt;
            if next.write_all(b"GET /healthz HTTP/1.1\r\nHost: renkei\r\n\r\n").await.is_ok() {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 64];
                let read = tokio::time::timeout(Duration::from_secs(2), next.read(&mut buf)).await;
                if matches!(read, Ok(Ok(n)) if String::from_utf8_lossy(&buf[..n]).contains("200")) {
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "the freed place was never given back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| c.connection_idle_seconds = 1;
    async fn an_idle_http2_connection_is_closed(app: TestApp) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = app.base_url.trim_start_matches("http://").to_owned();
        // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then silence.
        let mut h2 = tokio::net::TcpStream::connect(&addr).await.unwrap();
        h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
        // The server answers with its own SETTINGS: this really is an HTTP/2 connection.
        let mut head = [0u8; 9];
        tokio::time::timeout(std::time::Duration::from_secs(5), h2.read_exact(&mut head))
            .await
            .expect("the server's SETTINGS within 5 s")
            .unwrap();
        assert_eq!(head[3], 4, "expected a SETTINGS frame, got type {}", head[3]);
        h2.write_all(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00").await.unwrap();
        closed_within("idle HTTP/2", &mut h2, std::time::Duration::from_secs(5)).await;
    }
);

both_backends!(
    async fn a_number_the_schema_calls_an_integer_is_taken_as_one(app: TestApp) {
        // JSON Schema counts `30.0` as an integer, so a generated client may send it; serde alone refuses it.
        let admin = app.admin().await;
        let (_, nurse) = app.member(&admin, "kato", Profession::Nurse).await;
        let token = nurse.token().unwrap().expose().to_owned();
        let http = reqwest::Client::new();
        let put = |body: &'static str| {
            http.put(format!("{}/api/v1/me/notifications", app.base_url))
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body)
                .send()
        };
        let taken = put(r#"{"push":false,"email":false,"digest_minutes":30.0}"#).await.unwrap();
        assert_eq!(taken.status(), StatusCode::OK);
        let view: serde_json::Value = taken.json().await.unwrap();
        assert_eq!(view["settings"]["digest_minutes"], 30);
        // A fraction is not an integer, and changes nothing.
        let (status, error) = typed(put(r#"{"push":false,"email":false,"digest_minutes":45.5}"#).await.unwrap()).await;
        assert_eq!((status, error.code), (StatusCode::BAD_REQUEST, ErrorCode::MalformedRequest));
        let view = nurse.notifications().await.unwrap();
        assert_eq!(view.settings.digest_minutes, 30);
    }
);
