//! A database that is briefly away (PostgreSQL restarting, a failover): every answer caught in it is a
//! retryable `503 unavailable`, never `500 internal`, and a retry with the same client message id posts
//! exactly once. The outage is made by terminating the test database's connections over and over, which
//! is what a `pg_ctl restart -m fast` does to them (SQLSTATE 57P01), without stopping the cluster other
//! tests share.

use std::collections::HashMap;
use std::time::Duration;

use renkei_protocol::ErrorCode;
use renkei_tests::{Backend, TestApp, care};
use tokio::time::Instant;

const OUTAGE: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_caught_in_a_postgresql_outage_get_503_and_their_retry_posts_once() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else { return };
    let admin_url = renkei_tests::postgres_admin_url().expect("the cluster the app runs on");
    let database = app.database_url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let team = app.team().await;
    let group = team.group;
    let watcher = app.login("admin", renkei_tests::PASSWORD).await;

    let killer = tokio::spawn(async move {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&admin_url).await.unwrap();
        let end = Instant::now() + OUTAGE;
        let mut terminated = 0usize;
        while Instant::now() < end {
            let killed: Vec<(bool,)> = sqlx::query_as(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&database)
            .fetch_all(&pool)
            .await
            .unwrap();
            terminated += killed.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        pool.close().await;
        terminated
    });

    // Three members post one after another, each retrying a refused post with the same id; a reader
    // pages the history meanwhile.
    let mut posters = Vec::new();
    for (name, client) in [("ns", team.nurse), ("cm", team.care_manager), ("dr", team.doctor)] {
        posters.push(tokio::spawn(async move {
            let mut refusals: HashMap<(u16, ErrorCode), usize> = HashMap::new();
            let mut acknowledged = Vec::new();
            let end = Instant::now() + OUTAGE + Duration::from_millis(500);
            let mut n = 0;
            while Instant::now() < end {
                n += 1;
                let id = format!("{name}-{n}");
                let post = care::update(&format!("{name} の記録 {n}"), &id);
                let mut tries = 0;
                loop {
                    tries += 1;
                    assert!(tries <= 200, "{id} was never accepted");
                    match client.post(group, &post).await {
                        Ok(p) => {
                            acknowledged.push((id.clone(), p.seq));
                            break;
                        }
                        Err(renkei_cli::ClientError::Api { status, body }) => {
                            *refusals.entry((status, body.code)).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err(other) => panic!("{id}: not a typed answer: {other}"),
                    }
                }
            }
            (refusals, acknowledged, client)
        }));
    }
    let reader = {
        let client = watcher;
        tokio::spawn(async move {
            let mut refusals: HashMap<(u16, ErrorCode), usize> = HashMap::new();
            let end = Instant::now() + OUTAGE;
            while Instant::now() < end {
                if let Err(renkei_cli::ClientError::Api { status, body }) = client.admin_list_users().await {
                    *refusals.entry((status, body.code)).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            refusals
        })
    };

    let terminated = tokio::time::timeout(Duration::from_secs(30), killer).await.expect("outage ends").unwrap();
    let mut refusals = tokio::time::timeout(Duration::from_secs(30), reader).await.expect("reader ends").unwrap();
    let mut acknowledged = Vec::new();
    let mut reader_client = None;
    for poster in posters {
        let (r, a, client) = tokio::time::timeout(Duration::from_secs(60), poster).await.expect("poster ends").unwrap();
        for (k, v) in r {
            *refusals.entry(k).or_default() += v;
        }
        acknowledged.extend(a);
        reader_client = Some(client);
    }
    eprintln!("terminated {terminated} connections; refusals {refusals:?}; {} posts", acknowledged.len());
    assert!(terminated > 0, "the outage terminated no connection");
    for (status, code) in refusals.keys() {
        assert_eq!((*status, *code), (503, ErrorCode::Unavailable), "every refusal in an outage is 503 unavailable");
    }

    // Every acknowledged post is stored once, at the place it was acknowledged with, and nothing else is.
    let client = reader_client.unwrap();
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let page = client.posts(group, after, None, 500).await.unwrap();
        let Some(last) = page.posts.last() else { break };
        after = Some(last.seq);
        stored.extend(page.posts.into_iter().map(|p| (p.client_msg_id, p.seq)));
    }
    acknowledged.sort_by_key(|(_, seq)| *seq);
    assert_eq!(stored, acknowledged, "what was acknowledged is exactly what is stored");
}
