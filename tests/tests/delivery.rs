//! Live delivery over the WebSocket, on SQLite and PostgreSQL: order and gapless resume, removal stopping
//! delivery, a slow reader catching up, bad frames, browsers' authentication and flood limits, and the
//! tail of all my groups.

use std::time::Duration;

use renkei_cli::ClientError;
use renkei_cli::live::{Tail, TailEvent};
use renkei_protocol::{ClientFrame, ErrorCode, MembershipChange, ServerFrame, Subscription};
use renkei_tests::care::update;
use renkei_tests::live::{WAIT_AMONG_OTHERS, next, next_post, subscribe, until};
use renkei_tests::{both_backends, code_of};
use uuid::Uuid;

both_backends!(
    async fn live_posts_arrive_in_order_and_resume_without_gap_or_duplicate(app: TestApp) {
        let team = app.team().await;
        team.doctor.post(team.group, &update("before", "d-0")).await.unwrap();
        let mut tail = Tail::new(team.nurse.clone(), [(team.group, 0)]);
        assert_eq!(next_post(&mut tail).await.seq, 1);

        // Posts over the socket, acknowledged with their sequence numbers.
        let mut writer = team.care_manager.connect_live().await.unwrap();
        for i in 0..10 {
            let post = update(&format!("live {i}"), &format!("c-{i}"));
            writer.send(&ClientFrame::Post { id: format!("r{i}"), group_id: team.group, post }).await.unwrap();
        }
        let mut acked = Vec::new();
        while acked.len() < 10 {
            if let ServerFrame::Ack { id, seq: Some(seq), .. } = next(&mut writer).await {
                acked.push((id, seq));
            }
        }
        acked.sort_by_key(|(_, seq)| *seq);
        assert_eq!(acked.iter().map(|(_, s)| *s).collect::<Vec<_>>(), (2..=11).collect::<Vec<_>>());
        for expected in 2..=6 {
            assert_eq!(next_post(&mut tail).await.seq, expected);
        }
        // A forced disconnect; posts keep coming meanwhile.
        tail.disconnect();
        for i in 10..20 {
            team.care_manager.post(team.group, &update(&format!("offline {i}"), &format!("c-{i}"))).await.unwrap();
        }
        let mut seqs = Vec::new();
        while seqs.len() < 15 {
            seqs.push(next_post(&mut tail).await.seq);
        }
        assert_eq!(seqs, (7..=21).collect::<Vec<_>>(), "resumed without gap or duplicate");
        // Twice more, disconnecting in the middle of delivery.
        for round in 0..2 {
            for i in 0..5 {
                team.doctor.post(team.group, &update("x", &format!("d-{round}-{i}"))).await.unwrap();
            }
            assert_eq!(next_post(&mut tail).await.seq, 22 + round * 5);
            tail.disconnect();
            for expected in 23 + round * 5..=26 + round * 5 {
                assert_eq!(next_post(&mut tail).await.seq, expected);
            }
        }
        writer.close().await;
    }
);

both_backends!(
    async fn removal_and_withdrawal_stop_delivery_at_once_and_disabled_sockets_close(app: TestApp) {
        let team = app.team().await;
        let mut nurse = subscribe(&team.nurse, team.group, 0).await;
        until(&mut nurse, |f| matches!(f, ServerFrame::Subscribed { .. })).await;
        let mut cm = subscribe(&team.care_manager, team.group, 0).await;
        until(&mut cm, |f| matches!(f, ServerFrame::Subscribed { .. })).await;

        team.doctor.remove_member(team.group, "ns-sato").await.unwrap();
        let frame = until(&mut nurse, |f| matches!(f, ServerFrame::MembershipChanged { .. })).await;
        assert_eq!(frame, ServerFrame::MembershipChanged { group_id: team.group, change: MembershipChange::Ended });
        team.doctor.post(team.group, &update("after the removal", "d-1")).await.unwrap();
        let ServerFrame::Post { post } = until(&mut cm, |f| matches!(f, ServerFrame::Post { .. })).await else {
            unreachable!()
        };
        assert_eq!(post.seq, 1);
        // The removed nurse gets nothing more, and cannot subscribe or post again.
        nurse.send(&ClientFrame::Ping { id: "p".into() }).await.unwrap();
        assert_eq!(next(&mut nurse).await, ServerFrame::Pong { id: "p".into() });
        nurse
            .send(&ClientFrame::Subscribe {
                id: "again".into(),
                groups: vec![Subscription { group_id: team.group, after_seq: 0 }],
            })
            .await
            .unwrap();
        let ServerFrame::Error { code, .. } = next(&mut nurse).await else { panic!("expected an error") };
        assert_eq!(code, ErrorCode::NotFound);
        let post = update("still here?", "n-1");
        nurse.send(&ClientFrame::Post { id: "np".into(), group_id: team.group, post }).await.unwrap();
        let ServerFrame::Error { id, code, .. } = next(&mut nurse).await else { panic!("expected an error") };
        assert_eq!((id.as_deref(), code), (Some("np"), ErrorCode::NotFound));

        // Withdrawal removes the care manager too; the group is read-only.
        team.doctor.withdraw_consent(team.group, &renkei_tests::care::withdrawal()).await.unwrap();
        until(&mut cm, |f| matches!(f, ServerFrame::MembershipChanged { .. })).await;
        assert_eq!(code_of(team.doctor.post(team.group, &update("x", "d-2")).await), ErrorCode::GroupNotActive);

        // A disabled account's sockets close.
        let mut doctor = subscribe(&team.doctor, team.group, 0).await;
        until(&mut doctor, |f| matches!(f, ServerFrame::Subscribed { .. })).await;
        team.admin.admin_disable_user("dr-suzuki").await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match doctor.next().await {
                    None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the disabled user's socket stayed open");
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| c.ws_queue_frames = 1;
    async fn a_slow_reader_resyncs_from_the_database_without_losing_a_post(app: TestApp) {
        let team = app.team().await;
        let mut slow = subscribe(&team.nurse, team.group, 0).await;
        until(&mut slow, |f| matches!(f, ServerFrame::Subscribed { .. })).await;
        // Posts pipelined over a socket commit in large batches, published faster than one connection with
        // a one-frame queue can take them, while the reader does not read at all.
        let body = "経過記録。".repeat(500);
        let mut writer = team.care_manager.connect_live().await.unwrap();
        for i in 0..150 {
            let post = update(&body, &format!("c-{i}"));
            writer.send(&ClientFrame::Post { id: format!("r{i}"), group_id: team.group, post }).await.unwrap();
        }
        let mut acks = 0;
        while acks < 150 {
            if let ServerFrame::Ack { .. } = next(&mut writer).await {
                acks += 1;
            }
        }
        let mut seqs = Vec::new();
        let mut resyncs = 0;
        while seqs.len() < 150 {
            match next(&mut slow).await {
                ServerFrame::Post { post } => seqs.push(post.seq),
                ServerFrame::Resync { .. } => resyncs += 1,
                _ => {}
            }
        }
        assert_eq!(seqs, (1..=150).collect::<Vec<_>>(), "every post, once, in order");
        assert!(resyncs > 0, "the reader was never slow enough to lag; the test proves nothing");
    }
);

both_backends!(
    async fn bad_frames_get_typed_errors_and_the_connection_goes_on(app: TestApp) {
        use tokio_tungstenite::tungstenite::Message;
        let team = app.team().await;
        let mut live = team.nurse.connect_live().await.unwrap();
        for (raw, code) in [
            (Message::Text("{not json".into()), ErrorCode::MalformedRequest),
            (Message::Text(r#"{"type":"shout","id":"1"}"#.into()), ErrorCode::MalformedRequest),
            (Message::Text(r#"{"type":"ping","id":1}"#.into()), ErrorCode::MalformedRequest),
            (Message::Binary(vec![0xff, 0x00].into()), ErrorCode::MalformedRequest),
        ] {
            live.send_raw(raw).await.unwrap();
            let ServerFrame::Error { code: got, .. } = next(&mut live).await else { panic!("expected an error") };
            assert_eq!(got, code);
        }
        let out_of_range = ClientFrame::Subscribe {
            id: "s".into(),
            groups: vec![Subscription { group_id: team.group, after_seq: 5 }],
        };
        live.send(&out_of_range).await.unwrap();
        let ServerFrame::Error { code, .. } = next(&mut live).await else { panic!("expected an error") };
        assert_eq!(code, ErrorCode::ValidationFailed);
        let nowhere = ClientFrame::Post { id: "p".into(), group_id: Uuid::new_v4(), post: update("x", "n-1") };
        live.send(&nowhere).await.unwrap();
        let ServerFrame::Error { id, code, .. } = next(&mut live).await else { panic!("expected an error") };
        assert_eq!((id.as_deref(), code), (Some("p"), ErrorCode::NotFound));
        live.send(&ClientFrame::Ping { id: "still".into() }).await.unwrap();
        assert_eq!(next(&mut live).await, ServerFrame::Pong { id: "still".into() });
        // An oversized frame closes the connection with 1009; nothing was stored.
        live.send_raw(Message::Text("x".repeat(70 * 1024).into())).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(10), live.next()).await.expect("closed");
        assert!(
            matches!(&closed, Some(Err(ClientError::Live(reason))) if reason.contains("1009")) || closed.is_none(),
            "{closed:?}"
        );
        assert_eq!(team.nurse.posts(team.group, Some(0), None, 10).await.unwrap().last_seq, 0);
        // Without a token there is no upgrade.
        let anonymous = app.client();
        assert!(anonymous.connect_live().await.is_err());
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| {
        c.ws_allowed_origins = vec!["https://renkei.example.jp".into()];
        c.ws_frames_per_second = 5;
    };
    async fn browsers_authenticate_by_subprotocol_from_allowed_origins_and_floods_are_limited(app: TestApp) {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let team = app.team().await;
        let url = format!("{}/api/v1/ws", app.base_url.replacen("http", "ws", 1));
        let token = team.nurse.token().unwrap().expose().to_owned();
        let browser = |origin: &str| {
            let mut request = url.clone().into_client_request().unwrap();
            let headers = request.headers_mut();
            headers.insert("origin", origin.parse().unwrap());
            headers.insert("sec-websocket-protocol", format!("renkei.v1, renkei.token.{token}").parse().unwrap());
            request
        };
        let (mut socket, response) = tokio_tungstenite::connect_async(browser("https://renkei.example.jp")).await.unwrap();
        assert_eq!(response.headers().get("sec-websocket-protocol").unwrap(), "renkei.v1");
        use futures_util::{SinkExt, StreamExt};
        socket.send(tokio_tungstenite::tungstenite::Message::Text(r#"{"type":"ping","id":"b"}"#.into())).await.unwrap();
        let reply = loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a frame within 10 s");
            match frame.unwrap().unwrap() {
                tokio_tungstenite::tungstenite::Message::Text(text) => break text,
                _ => continue,
            }
        };
        assert_eq!(reply.as_str(), r#"{"type":"pong","id":"b"}"#);
        let refused = tokio_tungstenite::connect_async(browser("https://evil.example")).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
            other => panic!("a foreign origin was let in: {other:?}"),
        }

        // A flood of frames: beyond the per-connection rate, typed errors; the connection survives.
        let mut live = team.nurse.connect_live().await.unwrap();
        for i in 0..30 {
            live.send(&ClientFrame::Ping { id: i.to_string() }).await.unwrap();
        }
        let mut limited = 0;
        let mut pongs = 0;
        let mut answered = std::collections::HashSet::new();
        while limited + pongs < 30 {
            match next(&mut live).await {
                // Each refusal names the frame it refused, so a client knows what to send again.
                ServerFrame::Error { id: Some(id), code: ErrorCode::RateLimited, .. } => {
                    limited += 1;
                    answered.insert(id);
                }
                ServerFrame::Pong { id } => {
                    pongs += 1;
                    answered.insert(id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(limited > 0 && pongs >= 5, "limited {limited}, answered {pongs}");
        assert_eq!(answered.len(), 30, "every frame answered once, by its id");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        live.send(&ClientFrame::Ping { id: "later".into() }).await.unwrap();
        assert_eq!(next(&mut live).await, ServerFrame::Pong { id: "later".into() });
    }
);

both_backends!(
    async fn a_tail_of_all_my_groups_follows_a_group_i_join_and_says_when_it_lost_the_server(app: TestApp) {
        let team = app.team().await;
        let mut tail =
            Tail::new(team.nurse.clone(), [(team.group, 0)]).following_new_groups(Duration::from_millis(200));
        team.doctor.post(team.group, &update("往診しました", "d-1")).await.unwrap();
        assert_eq!(next_post(&mut tail).await.body.as_deref(), Some("往診しました"));

        // The physician opens a second group and the nurse joins it while the tail runs.
        let second =
            team.doctor.open_group(&renkei_tests::care::patient("田中 一郎 様", "田中 一郎")).await.unwrap().id;
        let scope = vec![renkei_tests::care::profession(renkei_protocol::Profession::Nurse)];
        team.doctor.record_consent(second, &renkei_tests::care::consent(scope)).await.unwrap();
        team.doctor.invite(second, "ns-sato").await.unwrap();
        let invitation = team.nurse.invitations().await.unwrap().invitations.remove(0);
        team.nurse.accept_invitation(invitation.id).await.unwrap();
        let joined = tokio::time::timeout(WAIT_AMONG_OTHERS, async {
            loop {
                match tokio::time::timeout(Duration::from_secs(15), tail.next())
                    .await
                    .expect("an event within 15 s")
                    .unwrap()
                {
                    TailEvent::Joined { group_id, label } => break (group_id, label),
                    _ => continue,
                }
            }
        })
        .await
        .expect("the joined group among the tail's events within 30 s");
        assert_eq!(joined, (second, "田中 一郎 様".to_owned()));
        team.doctor.post(second, &update("初回訪問の予定です", "d-2")).await.unwrap();
        let post = next_post(&mut tail).await;
        assert_eq!((post.group_id, post.body.as_deref()), (second, Some("初回訪問の予定です")));

        // The connection ends (here: the account is disabled): the tail says so, then that reconnecting
        // cannot help.
        team.admin.admin_disable_user("ns-sato").await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(15), tail.next()).await.expect("an event within 15 s");
        assert!(matches!(event, Ok(TailEvent::Disconnected)), "{event:?}");
        let event = tokio::time::timeout(Duration::from_secs(15), tail.next()).await.expect("an event within 15 s");
        assert!(event.is_err(), "{event:?}");
    }
);
