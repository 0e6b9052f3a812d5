//! TLS through rustls: a client that trusts the server's certificate logs in; one that does not cannot
//! connect at all; every answer over TLS carries HSTS.

use renkei_protocol::Sensitive;
use renkei_tests::{Backend, PASSWORD, TestApp, install_crypto_provider};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_log_in_over_tls_and_untrusted_certificates_are_refused() {
    install_crypto_provider();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    renkei_server::admin_cli::dev_cert(&cert, &key, vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.tls_cert = Some(cert.clone());
        c.tls_key = Some(key.clone());
    })
    .await
    .unwrap();
    assert!(app.base_url.starts_with("https://"), "{}", app.base_url);

    let admin = app.admin().await;
    assert_eq!(admin.me().await.unwrap().login, "admin");

    // Over TLS every answer tells the browser to keep to HTTPS.
    let pem = std::fs::read(&cert).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap();
    let page = http.get(format!("{}/", app.base_url)).send().await.unwrap();
    let hsts = page.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(hsts.as_deref(), Some("max-age=31536000"));

    // The system's roots do not include our self-signed certificate.
    let untrusted = renkei_cli::Client::new(&app.base_url, None).unwrap();
    let err = untrusted.clone().login("admin", &Sensitive::new(PASSWORD), None).await.unwrap_err();
    assert!(matches!(err, renkei_cli::ClientError::Transport(_)), "{err:?}");

    // Plain HTTP to the TLS port gets nowhere either.
    let plain = renkei_cli::Client::new(&app.base_url.replace("https://", "http://"), None).unwrap();
    assert!(plain.me().await.is_err());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    app.stop().await;
}
