//! Posting over real sockets with the real client library, on SQLite and PostgreSQL: durable acknowledged
//! posts in one order for everyone, idempotent retries, replies, history pages, edits with history, seen
//! and read marks, the catch-up page, the post cache, and the commit's decision on the group as it stands.
//! Live delivery is in delivery.rs.

use std::time::Duration;

use renkei_cli::Client;
use renkei_protocol::{ClientFrame, ErrorCode, PostKind, ServerFrame, Subscription};
use renkei_tests::care::update;
use renkei_tests::live::{next, subscribe, until};
use renkei_tests::{both_backends, code_of};
use uuid::Uuid;

/// Sends `posts` pipelined on one socket; their acknowledged sequence numbers, by frame id.
async fn pipelined(
    client: &Client,
    group: Uuid,
    posts: Vec<(&str, renkei_protocol::NewPost)>,
) -> std::collections::BTreeMap<String, i64> {
    let mut live = client.connect_live().await.unwrap();
    let count = posts.len();
    for (id, post) in posts {
        live.send(&ClientFrame::Post { id: id.into(), group_id: group, post }).await.unwrap();
    }
    let mut acked = std::collections::BTreeMap::new();
    while acked.len() < count {
        // `next` fails after 10 s, or at once if the socket closes.
        if let ServerFrame::Ack { id, seq: Some(seq), .. } = next(&mut live).await {
            acked.insert(id, seq);
        }
    }
    live.close().await;
    acked
}

both_backends!(
    async fn posts_are_numbered_in_order_and_stored_as_acknowledged(app: TestApp) {
        let team = app.team().await;
        let first = team.nurse.post(team.group, &update("血圧 128/76、体温 36.5℃", "n-1")).await.unwrap();
        let second =
            team.care_manager.post(team.group, &update("デイサービスの曜日を変更します", "c-1")).await.unwrap();
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(first.author.profession, renkei_protocol::Profession::Nurse);
        assert_eq!(first.author.organisation, "むさしの訪問看護");
        assert_eq!(first.consent_version, Some(1));
        // What the group commit acknowledged (built from what it inserted) is exactly what was stored.
        let stored = team.doctor.posts(team.group, Some(0), None, 10).await.unwrap().posts;
        assert_eq!(stored, [first, second]);
    }
);

both_backends!(
    async fn a_retried_client_message_id_returns_the_original_and_takes_no_number(app: TestApp) {
        let team = app.team().await;
        let first = team.nurse.post(team.group, &update("血圧 128/76、体温 36.5℃", "n-1")).await.unwrap();
        let retry = team.nurse.post(team.group, &update("血圧 128/76、体温 36.5℃", "n-1")).await.unwrap();
        assert_eq!(retry, first);
        // Also when the retry lands in the same group commit as the original (pipelined on one socket).
        let twice = (0..3).map(|_| update("夕方に再訪問します", "n-twice"));
        let acked = pipelined(&team.nurse, team.group, ["a", "b", "c"].into_iter().zip(twice).collect()).await;
        assert_eq!(acked.into_values().collect::<Vec<_>>(), [2, 2, 2], "one post, acknowledged three times");
        // A retry pipelined with new posts: the retry gets its original, the new posts the next numbers.
        let frames = vec![
            ("r", update("血圧 128/76、体温 36.5℃", "n-1")),
            ("s", update("追加 1", "n-3")),
            ("t", update("追加 2", "n-4")),
        ];
        let acked = pipelined(&team.nurse, team.group, frames).await;
        assert_eq!(acked.into_values().collect::<Vec<_>>(), [1, 3, 4]);
        let all = team.doctor.posts(team.group, Some(0), None, 500).await.unwrap().posts;
        assert_eq!(all.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }
);

both_backends!(
    async fn a_reply_names_an_earlier_post_of_the_group(app: TestApp) {
        let team = app.team().await;
        team.nurse.post(team.group, &update("血圧 128/76", "n-1")).await.unwrap();
        let mut reply = update("了解しました", "d-1");
        reply.reply_to = Some(1);
        reply.kind = PostKind::TreatmentQuestion;
        assert_eq!(team.doctor.post(team.group, &reply).await.unwrap().seq, 2);
        for (id, reply_to) in [("d-2", 99), ("d-3", 3), ("d-4", 0)] {
            let mut dangling = update("?", id);
            dangling.reply_to = Some(reply_to);
            assert_eq!(code_of(team.doctor.post(team.group, &dangling).await), ErrorCode::ValidationFailed);
        }
        assert_eq!(team.nurse.posts(team.group, Some(0), None, 10).await.unwrap().last_seq, 2);
    }
);

both_backends!(
    async fn history_pages_go_forward_and_backward_by_sequence_number(app: TestApp) {
        let team = app.team().await;
        for i in 1..=4 {
            team.nurse.post(team.group, &update(&format!("記録 {i}"), &format!("n-{i}"))).await.unwrap();
        }
        let page = team.nurse.posts(team.group, Some(0), None, 2).await.unwrap();
        assert_eq!(page.posts.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(page.last_seq, 4);
        let next_page = team.nurse.posts(team.group, Some(2), None, 10).await.unwrap();
        assert_eq!(next_page.posts.iter().map(|p| p.seq).collect::<Vec<_>>(), [3, 4]);
        let back = team.nurse.posts(team.group, None, Some(3), 10).await.unwrap();
        assert_eq!(back.posts.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2]);
        let last_two = team.nurse.posts(team.group, None, Some(5), 2).await.unwrap();
        assert_eq!(last_two.posts.iter().map(|p| p.seq).collect::<Vec<_>>(), [3, 4]);
    }
);

both_backends!(
    async fn concurrent_posts_of_three_members_get_one_gap_free_order(app: TestApp) {
        let team = app.team().await;
        let mut handles = Vec::new();
        for (who, client) in [("n", team.nurse.clone()), ("c", team.care_manager.clone()), ("d", team.doctor.clone())] {
            let group = team.group;
            handles.push(tokio::spawn(async move {
                for i in 0..20 {
                    client.post(group, &update(&format!("{who} {i}"), &format!("{who}-burst-{i}"))).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let all = team.doctor.posts(team.group, Some(0), None, 500).await.unwrap().posts;
        assert_eq!(all.iter().map(|p| p.seq).collect::<Vec<_>>(), (1..=60).collect::<Vec<_>>());
        // Each member's own posts keep the order they were sent in.
        for who in ["n", "c", "d"] {
            let own: Vec<&str> =
                all.iter().filter_map(|p| p.client_msg_id.strip_prefix(&format!("{who}-burst-"))).collect();
            assert_eq!(own, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
        }
    }
);

both_backends!(
    async fn an_outsider_an_empty_and_an_oversized_post_get_typed_errors_and_change_nothing(app: TestApp) {
        let team = app.team().await;
        let (_, outsider) = app.member(&team.admin, "ns-outside", renkei_protocol::Profession::Nurse).await;
        assert_eq!(code_of(outsider.post(team.group, &update("hello", "o-1")).await), ErrorCode::NotFound);
        assert_eq!(code_of(team.nurse.post(team.group, &update("   ", "n-2")).await), ErrorCode::ValidationFailed);
        let huge = "あ".repeat(8001);
        assert_eq!(code_of(team.nurse.post(team.group, &update(&huge, "n-3")).await), ErrorCode::ValidationFailed);
        assert_eq!(team.nurse.posts(team.group, Some(0), None, 500).await.unwrap().last_seq, 0);
    }
);

both_backends!(
    async fn edits_deletions_seen_and_read_marks_are_kept_and_shared(app: TestApp) {
        let team = app.team().await;
        let post = team.nurse.post(team.group, &update("褥瘡 2cm", "n-1")).await.unwrap();
        let mut watcher = subscribe(&team.care_manager, team.group, 1).await;
        until(&mut watcher, |f| matches!(f, ServerFrame::Subscribed { .. })).await;

        let edited = team.nurse.edit_post(team.group, post.seq, "褥瘡 2.5cm（訂正）").await.unwrap();
        assert_eq!((edited.version, edited.body.as_deref()), (2, Some("褥瘡 2.5cm（訂正）")));
        assert!(edited.edited_at.is_some());
        let ServerFrame::PostUpdated { post: seen_edit } =
            until(&mut watcher, |f| matches!(f, ServerFrame::PostUpdated { .. })).await
        else {
            unreachable!()
        };
        assert_eq!(seen_edit.version, 2);
        // Only the author edits or deletes.
        assert_eq!(code_of(team.doctor.edit_post(team.group, post.seq, "x").await), ErrorCode::Forbidden);
        assert_eq!(code_of(team.doctor.delete_post(team.group, post.seq).await), ErrorCode::Forbidden);

        let mark = team.doctor.mark_seen(team.group, post.seq).await.unwrap();
        assert_eq!(mark.by.display_name, "dr-suzuki さん");
        let ServerFrame::Seen { mark: live_mark } =
            until(&mut watcher, |f| matches!(f, ServerFrame::Seen { .. })).await
        else {
            unreachable!()
        };
        assert_eq!(live_mark.seq, post.seq);
        team.doctor.mark_seen(team.group, post.seq).await.unwrap();
        assert_eq!(team.nurse.seen(team.group, post.seq).await.unwrap().seen.len(), 1);

        let deleted = team.nurse.delete_post(team.group, post.seq).await.unwrap();
        assert_eq!((deleted.body, deleted.version), (None, 3));
        assert!(deleted.deleted_at.is_some());
        assert_eq!(code_of(team.nurse.edit_post(team.group, post.seq, "y").await), ErrorCode::Forbidden);
        // Every version is kept for the clinical record: the attending physician reads them; other members
        // see that there were three, without their text.
        let history = team.doctor.post_history(team.group, post.seq).await.unwrap().versions;
        let bodies: Vec<_> = history.iter().map(|v| v.body.as_deref()).collect();
        assert_eq!(bodies, [Some("褥瘡 2cm"), Some("褥瘡 2.5cm（訂正）"), None]);
        let history = team.care_manager.post_history(team.group, post.seq).await.unwrap().versions;
        assert!(history.len() == 3 && history.iter().all(|v| v.body.is_none()), "{history:?}");

        team.nurse.post(team.group, &update("2", "n-2")).await.unwrap();
        team.nurse.post(team.group, &update("3", "n-3")).await.unwrap();
        let unread = team.care_manager.unread().await.unwrap().groups;
        assert_eq!((unread[0].last_seq, unread[0].unread), (3, 3));
        assert_eq!(team.care_manager.mark_read(team.group, 2).await.unwrap(), 2);
        // Read positions never go backwards, and cannot pass the end.
        assert_eq!(team.care_manager.mark_read(team.group, 1).await.unwrap(), 2);
        assert_eq!(code_of(team.care_manager.mark_read(team.group, 4).await), ErrorCode::ValidationFailed);
        assert_eq!(team.care_manager.unread().await.unwrap().groups[0].unread, 1);
        // My own posts are never unread to me: the nurse wrote all three, and has read none of them.
        let mine = team.nurse.unread().await.unwrap().groups;
        assert_eq!((mine[0].last_seq, mine[0].last_read_seq, mine[0].unread), (3, 0, 0));
        team.care_manager.post(team.group, &update("4", "c-4")).await.unwrap();
        assert_eq!(team.nurse.unread().await.unwrap().groups[0].unread, 1);
        assert_eq!(team.care_manager.unread().await.unwrap().groups[0].unread, 1);
        watcher.close().await;
    }
);

// A post's first version is written at its first change, not when it is posted: the history must still be
// whole, and two first edits at once (one author, two devices) must keep one original.
both_backends!(
    async fn a_posts_history_keeps_its_original_whenever_it_first_changes(app: TestApp) {
        let team = app.team().await;
        let post = team.nurse.post(team.group, &update("体温 37.8", "h-1")).await.unwrap();
        let history = team.doctor.post_history(team.group, post.seq).await.unwrap().versions;
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].version, history[0].body.as_deref()), (1, Some("体温 37.8")));
        assert_eq!(history[0].at, post.created_at);

        // Deleted without an edit: the original stays as version 1.
        let gone = team.nurse.post(team.group, &update("誤送信", "h-2")).await.unwrap();
        team.nurse.delete_post(team.group, gone.seq).await.unwrap();
        let history = team.doctor.post_history(team.group, gone.seq).await.unwrap().versions;
        let versions: Vec<_> = history.iter().map(|v| (v.version, v.body.as_deref())).collect();
        assert_eq!(versions, [(1, Some("誤送信")), (2, None)]);
        assert_eq!(history[0].at, gone.created_at);

        let (a, b) = tokio::join!(
            team.nurse.edit_post(team.group, post.seq, "体温 37.9"),
            team.nurse.edit_post(team.group, post.seq, "体温 38.0"),
        );
        let mut got = [a.unwrap().version, b.unwrap().version];
        got.sort_unstable();
        assert_eq!(got, [2, 3]);
        let history = team.doctor.post_history(team.group, post.seq).await.unwrap().versions;
        assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(history[0].body.as_deref(), Some("体温 37.8"));
        let mut edits: Vec<_> = history[1..].iter().map(|v| v.body.as_deref().unwrap()).collect();
        edits.sort_unstable();
        assert_eq!(edits, ["体温 37.9", "体温 38.0"]);
    }
);

// A catch-up reads its pages by another path than the one that wrote the posts (on SQLite, a page is one
// JSON value built by SQLite), and so does the HTTP page after a position; history before a position reads
// row by row. Every field must come back as written, whatever the body holds.
both_backends!(
    async fn a_catch_up_returns_every_post_as_written(app: TestApp) {
        let team = app.team().await;
        let long = "長".repeat(3_000);
        let bodies = [
            "\"引用\" と \\バックスラッシュ\\ と 'single'",
            "改行\n二行目\tタブ",
            "絵文字 🩺💊 と \u{2028} 行区切り",
            "</script><b>x</b> & <!-- -->",
            long.as_str(),
        ];
        let mut written = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            written.push(team.nurse.post(team.group, &update(body, &format!("c-{i}"))).await.unwrap());
        }
        let mut reply = update("返信", "c-reply");
        reply.reply_to = Some(1);
        written.push(team.nurse.post(team.group, &reply).await.unwrap());
        written[1] = team.nurse.edit_post(team.group, 2, "訂正 \"後\"").await.unwrap();
        written[2] = team.nurse.delete_post(team.group, 3).await.unwrap();

        let mut live = subscribe(&team.doctor, team.group, 0).await;
        let mut replayed = Vec::new();
        while replayed.len() < written.len() {
            if let ServerFrame::Post { post } = next(&mut live).await {
                replayed.push(post);
            }
        }
        assert_eq!(replayed, written);
        assert_eq!(team.doctor.posts(team.group, Some(0), None, 500).await.unwrap().posts, written);
        assert_eq!(team.doctor.posts(team.group, Some(2), None, 2).await.unwrap().posts, written[2..4]);
        assert_eq!(team.doctor.posts(team.group, None, Some(7), 500).await.unwrap().posts, written);
        live.close().await;
    }
);

both_backends!(
    async fn the_per_node_post_cache_never_turns_away_a_new_member_nor_admits_a_removed_one(app: TestApp) {
        let team = app.team().await;
        // The nurse's post leaves the group's context cached for a second.
        team.nurse.post(team.group, &update("訪問しました", "n-1")).await.unwrap();
        let (_, newcomer) = app.member(&team.admin, "ns-new", renkei_protocol::Profession::Nurse).await;
        team.doctor.invite(team.group, "ns-new").await.unwrap();
        let invitation = newcomer.invitations().await.unwrap().invitations.remove(0);
        newcomer.accept_invitation(invitation.id).await.unwrap();
        // At once: the cached entry does not list her, so the server asks the database again.
        assert_eq!(newcomer.post(team.group, &update("本日から担当します", "new-1")).await.unwrap().seq, 2);
        team.doctor.remove_member(team.group, "ns-new").await.unwrap();
        // At once after the removal: refused, and nothing was posted.
        assert_eq!(code_of(newcomer.post(team.group, &update("まだ見えますか", "new-2")).await), ErrorCode::NotFound);
        assert_eq!(team.doctor.posts(team.group, Some(0), None, 10).await.unwrap().last_seq, 2);
    }
);

/// Whether a statement `LIKE` this pattern comes to wait on a lock within 5 s (PostgreSQL).
async fn waits_on_a_lock(database_url: &str, pattern: &str) -> bool {
    use sqlx::Connection;
    let mut observer = sqlx::PgConnection::connect(database_url).await.unwrap();
    for _ in 0..200 {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
        )
        .bind(pattern)
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if count > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// A post waiting on the database never holds up its own connection's other work: a post's reads run in
/// tasks of their own. With the pool down to one connection, a post's first read holds it (stalled here
/// behind a table lock) while the same socket's next frame, a subscribe, waits for it. When the read ran in
/// the post's future, which the connection polls only between its other work, the finished read was never
/// taken up while the connection waited in the subscribe, so the subscribe failed at the pool's 10-s acquire
/// timeout (renkei-bench multinode: 10-s stalls and `unavailable` errors). PostgreSQL only: the stall needs
/// `LOCK TABLE`, which SQLite lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_waiting_on_the_database_does_not_stall_its_connection() {
    use sqlx::Connection;
    let Some(app) = renkei_tests::TestApp::spawn_with(renkei_tests::Backend::Postgres, |c| {
        c.database_max_connections = 1;
    })
    .await
    else {
        return;
    };
    let team = app.team().await;
    let mut live = team.nurse.connect_live().await.unwrap();
    let mut locker = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE groups IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let post = update("本日の訪問、変わりありません", "n-stalled");
    live.send(&ClientFrame::Post { id: "p".into(), group_id: team.group, post }).await.unwrap();
    // Until the post's read (the group and its members) waits on the lock, holding the pool's connection.
    assert!(waits_on_a_lock(&app.database_url, "%FROM groups g%").await, "the post's read never waited on the lock");
    let subscribe =
        ClientFrame::Subscribe { id: "s".into(), groups: vec![Subscription { group_id: team.group, after_seq: 0 }] };
    live.send(&subscribe).await.unwrap();
    // Give the connection time to take the subscribe and wait for the pool behind the post.
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.commit().await.unwrap();
    let (mut acked, mut subscribed) = (false, false);
    while !(acked && subscribed) {
        match next(&mut live).await {
            ServerFrame::Ack { id, seq: Some(1), .. } if id == "p" => acked = true,
            ServerFrame::Subscribed { id, .. } if id == "s" => subscribed = true,
            ServerFrame::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    live.close().await;
}

/// A post decided on a group that changes before its write commits is decided again: on PostgreSQL a
/// batch is decided on groups read without a lock and written only if no group's `state_version` moved.
/// Here the nurse's post is read and decided (she is a member), then held at its write behind a table lock
/// on `posts`, while the physician removes her through the API. Her post must then be refused, and nothing
/// posted: had the write not checked the group's row, a removed member would have posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_between_a_posts_read_and_its_write_refuses_the_post() {
    use sqlx::Connection;
    let Some(app) = renkei_tests::TestApp::spawn(renkei_tests::Backend::Postgres).await else {
        return;
    };
    let team = app.team().await;
    let mut live = team.nurse.connect_live().await.unwrap();
    let mut locker = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    // Reads of `posts` go on; its inserts wait.
    sqlx::query("LOCK TABLE posts IN SHARE MODE").execute(&mut *lock).await.unwrap();
    let post = update("本日の訪問、変わりありません", "n-raced");
    live.send(&ClientFrame::Post { id: "p".into(), group_id: team.group, post }).await.unwrap();
    assert!(
        waits_on_a_lock(&app.database_url, "%INSERT INTO posts%").await,
        "the post's write never waited on the lock"
    );
    team.doctor.remove_member(team.group, "ns-sato").await.unwrap();
    lock.commit().await.unwrap();
    let answer = until(
        &mut live,
        |f| matches!(f, ServerFrame::Error { id: Some(id), .. } | ServerFrame::Ack { id, .. } if id == "p"),
    )
    .await;
    match answer {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::NotFound),
        other => panic!("a removed member's post was committed: {other:?}"),
    }
    assert_eq!(team.doctor.posts(team.group, Some(0), None, 10).await.unwrap().last_seq, 0);
    live.close().await;
}

both_backends!(
    async fn a_deleted_posts_earlier_texts_are_for_the_attending_physician_only(app: TestApp) {
        let team = app.team().await;
        let seq = team.nurse.post(team.group, &update("血圧 180/100", "n-1")).await.unwrap().seq;
        team.nurse.edit_post(team.group, seq, "血圧 130/80（訂正）").await.unwrap();
        // While the post stands, every member reads its versions.
        let standing = team.care_manager.post_history(team.group, seq).await.unwrap();
        assert!(standing.versions.iter().all(|v| v.body.is_some()), "{standing:?}");
        team.nurse.delete_post(team.group, seq).await.unwrap();
        let for_member = team.care_manager.post_history(team.group, seq).await.unwrap();
        assert_eq!(for_member.versions.len(), standing.versions.len() + 1);
        assert!(for_member.versions.iter().all(|v| v.body.is_none()), "{for_member:?}");
        let for_author = team.nurse.post_history(team.group, seq).await.unwrap();
        assert!(for_author.versions.iter().all(|v| v.body.is_none()), "{for_author:?}");
        let for_physician = team.doctor.post_history(team.group, seq).await.unwrap();
        let texts: Vec<_> = for_physician.versions.iter().filter_map(|v| v.body.as_deref()).collect();
        assert_eq!(texts, ["血圧 180/100", "血圧 130/80（訂正）"]);
    }
);
