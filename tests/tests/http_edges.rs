//! Bad input and the operational endpoints, over raw HTTP: every client mistake is a typed 4xx body and
//! changes nothing; `/healthz`, `/readyz`, `/metrics` and the OpenAPI document answer.

use renkei_protocol::{ErrorBody, ErrorCode};
use renkei_tests::{PASSWORD, both_backends};
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
        assert!(metrics.contains("renkei_logins_total{outcome=\"Failure\"} 1"), "{metrics}");
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
