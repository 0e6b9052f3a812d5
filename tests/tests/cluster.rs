//! Two server nodes on one PostgreSQL: a post accepted on one reaches subscribers on the other, in order;
//! membership changes cross too; when the receiving node's listener connection is killed, it catches up
//! by sequence number instead of losing what was sent meanwhile.

use std::time::Duration;

use renkei_cli::live::{Tail, TailEvent};
use renkei_tests::care::update;
use renkei_tests::{Backend, TestApp};

async fn next_event(tail: &mut Tail) -> TailEvent {
    tokio::time::timeout(Duration::from_secs(20), tail.next()).await.expect("an event within 20 s").unwrap()
}

async fn next_post_seq(tail: &mut Tail) -> i64 {
    loop {
        if let TailEvent::Post(post) = next_event(tail).await {
            return post.seq;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_and_membership_changes_cross_nodes_and_survive_a_lost_listener() {
    let Some(node_a) = TestApp::spawn(Backend::Postgres).await else { return };
    let node_b = node_a.spawn_node().await;
    let team = node_a.team().await;
    // The nurse reads through node B; everyone else writes through node A.
    let nurse_on_b = node_b.login("ns-sato", renkei_tests::PASSWORD).await;
    let mut tail = Tail::new(nurse_on_b.clone(), [(team.group, 0)]);
    // Wait until node B has the subscription in place: a first post proves it.
    team.doctor.post(team.group, &update("first", "d-0")).await.unwrap();
    assert_eq!(next_post_seq(&mut tail).await, 1);

    for i in 1..=20 {
        team.care_manager.post(team.group, &update(&format!("{i}"), &format!("c-{i}"))).await.unwrap();
    }
    for expected in 2..=21 {
        assert_eq!(next_post_seq(&mut tail).await, expected);
    }

    // A post whose notification is lost: committed straight into the database, as if node A's NOTIFY
    // had been sent while B was not listening. Only B's catch-up after its listener reconnects can
    // deliver it — so kill B's listener connection (and A's: they share the database).
    let store = renkei_server::store::Store::connect(&node_a.database_url, 1).await.unwrap();
    let author = renkei_protocol::Author {
        id: team.doctor.me().await.unwrap().id,
        display_name: "dr-suzuki さん".into(),
        profession: renkei_protocol::Profession::Physician,
        organisation: "鈴木内科クリニック".into(),
    };
    let silent = renkei_server::store::PostRequest { group_id: team.group, author, post: update("silent", "d-silent") };
    let outcome = store.commit_posts(&[silent], time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(outcome[0].as_ref().unwrap().0.seq, 22);
    let killed = store.terminate_listeners().await.unwrap();
    assert!(killed >= 1, "no listener connection found to kill");
    assert_eq!(next_post_seq(&mut tail).await, 22, "recovered by the catch-up after the listener reconnected");
    for i in 23..=30 {
        team.care_manager.post(team.group, &update(&format!("{i}"), &format!("c-{i}"))).await.unwrap();
    }
    for expected in 23..=30 {
        assert_eq!(next_post_seq(&mut tail).await, expected);
    }

    // Both nodes accept posts to the same group at once: one gap-free sequence.
    let doctor_on_b = node_b.login("dr-suzuki", renkei_tests::PASSWORD).await;
    let (a, b) = (team.care_manager.clone(), doctor_on_b.clone());
    let group = team.group;
    let on_a = tokio::spawn(async move {
        for i in 0..25 {
            a.post(group, &update("a", &format!("a-{i}"))).await.unwrap();
        }
    });
    let on_b = tokio::spawn(async move {
        for i in 0..25 {
            b.post(group, &update("b", &format!("b-{i}"))).await.unwrap();
        }
    });
    on_a.await.unwrap();
    on_b.await.unwrap();
    for expected in 31..=80 {
        assert_eq!(next_post_seq(&mut tail).await, expected);
    }
    let all = doctor_on_b.posts(group, Some(0), None, 500).await.unwrap().posts;
    assert_eq!(all.iter().map(|p| p.seq).collect::<Vec<_>>(), (1..=80).collect::<Vec<_>>());

    // A removal on node A stops delivery on node B.
    team.doctor.remove_member(team.group, "ns-sato").await.unwrap();
    loop {
        match next_event(&mut tail).await {
            TailEvent::Ended(group) => {
                assert_eq!(group, team.group);
                break;
            }
            TailEvent::Post(post) => panic!("delivered after removal: {}", post.seq),
            _ => {}
        }
    }
    store.close().await;
    node_b.stop().await;
}
