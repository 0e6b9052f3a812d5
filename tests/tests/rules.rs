//! The ICT collaboration rules enforced by the server, over HTTP and WebSocket, on both databases:
//! rule 6 (no emergency use, with an audited override), rule 4 (no patient names in community groups, and
//! no hint of which patient), rule 3 (questions to the right person), rule 5 (off-hours receipts).

use std::time::Duration;

use renkei_cli::ClientError;
use renkei_protocol::{
    Availability, AvailabilityWindow, ClientFrame, ErrorCode, PostKind, ServerFrame, Subscription, Weekday,
};
use renkei_tests::both_backends;
use renkei_tests::care::post;

fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> renkei_protocol::ErrorBody {
    match r {
        Err(ClientError::Api { body, .. }) => body,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

both_backends!(
    async fn emergencies_are_refused_with_the_physicians_phone_and_the_override_is_audited(app: TestApp) {
        let team = app.team().await;
        // The attending physician's phone (the harness registers everyone with one).
        let refused =
            refusal(team.nurse.post(team.group, &post(PostKind::Update, "急変です、至急来てください", "n-1")).await);
        assert_eq!(refused.code, ErrorCode::EmergencyUseProhibited);
        // The message is in the request's language: Japanese unless English comes first.
        assert!(refused.message.contains("電話"), "{}", refused.message);
        let english = reqwest::Client::new()
            .post(format!("{}/api/v1/groups/{}/posts", app.base_url, team.group))
            .bearer_auth(team.nurse.token().unwrap().expose())
            .header("accept-language", "en-GB,en;q=0.9,ja;q=0.5")
            .json(&post(PostKind::Update, "急変です、至急来てください", "n-1"))
            .send()
            .await
            .unwrap();
        let body: renkei_protocol::ErrorBody = english.json().await.unwrap();
        assert_eq!(body.code, ErrorCode::EmergencyUseProhibited);
        assert!(body.message.contains("telephone") && !body.message.contains("電話"), "{}", body.message);
        assert_eq!(refused.fields.get("matched").map(String::as_str), Some("急変,至急"));
        assert_eq!(refused.fields.get("attending_physician_phone").map(String::as_str), Some("0422-51-0000"));
        assert_eq!(team.nurse.posts(team.group, Some(0), None, 10).await.unwrap().last_seq, 0, "nothing stored");
        // Full-width, spacing and case variants are caught too.
        for (i, text) in ["ＵＲＧＥＮＴ please", "救　急車を呼びました", "Cardiac Arrest?"].iter().enumerate()
        {
            let r = refusal(team.nurse.post(team.group, &post(PostKind::Update, text, &format!("v-{i}"))).await);
            assert_eq!(r.code, ErrorCode::EmergencyUseProhibited, "{text}");
        }
        // A false positive, sent again with the explicit confirmation: accepted and audited.
        let mut calm = post(PostKind::Update, "今日は急変なし。バイタル安定", "n-2");
        assert_eq!(refusal(team.nurse.post(team.group, &calm).await).code, ErrorCode::EmergencyUseProhibited);
        calm.confirm_not_emergency = true;
        let accepted = team.nurse.post(team.group, &calm).await.unwrap();
        assert_eq!(accepted.seq, 1);
        let store = app.store().await;
        let overrides = || async {
            let filter = renkei_server::store::AuditFilter {
                action: Some("emergency_override".into()),
                limit: 100,
                ..Default::default()
            };
            store.audit_entries(&filter).await.unwrap()
        };
        let recorded = overrides().await;
        assert_eq!(recorded.len(), 1);
        let entry = &recorded[0];
        assert_eq!((entry.actor_id, entry.group_id), (Some(team.nurse_user.id), Some(team.group)));
        assert!(entry.details.to_string().contains("急変"), "{}", entry.details);
        assert!(!entry.details.to_string().contains("バイタル"), "the audit keeps the matched terms, never the text");
        // Edits are checked the same way.
        let r = refusal(team.nurse.edit_post(team.group, 1, "やはり急変").await);
        assert_eq!(r.code, ErrorCode::EmergencyUseProhibited);
        team.nurse.edit_post_confirmed(team.group, 1, "やはり急変なし", true).await.unwrap();
        assert_eq!(overrides().await.len(), 2);

        // The WebSocket path goes through the same rule.
        let mut live = team.nurse.connect_live().await.unwrap();
        let frame = ClientFrame::Post {
            id: "w".into(),
            group_id: team.group,
            post: post(PostKind::Update, "emergency!", "n-3"),
        };
        live.send(&frame).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), live.next()).await.unwrap().unwrap().unwrap();
        let ServerFrame::Error { id, code, .. } = reply else { panic!("expected an error, got {reply:?}") };
        assert_eq!((id.as_deref(), code), (Some("w"), ErrorCode::EmergencyUseProhibited));
        store.close().await;
    }
);

both_backends!(
    async fn community_groups_refuse_patient_names_without_saying_which(app: TestApp) {
        let team = app.team().await;
        let city = team.admin.admin_create_community_group("武蔵野市 全体").await.unwrap();
        let (_, outsider) = app.member(&team.admin, "ph-outside", renkei_protocol::Profession::Pharmacist).await;
        for who in ["ns-sato", "ph-outside"] {
            team.admin.admin_add_community_member(city.id, who).await.unwrap();
        }
        // Names of the patient of an active group, in the variants people type.
        let mut refusals = Vec::new();
        for (i, text) in
            ["山田花子さんの件で", "山田　花子様", "やまだ はなこさん", "ﾔﾏﾀﾞﾊﾅｺ", "P-0001 の方"].iter().enumerate()
        {
            for (who, client) in [("member", &team.nurse), ("outsider", &outsider)] {
                let r = refusal(client.post(city.id, &post(PostKind::Update, text, &format!("{who}-{i}"))).await);
                assert_eq!(r.code, ErrorCode::PatientInfoInCommunityGroup, "{who}: {text}");
                refusals.push(r);
            }
        }
        // The refusal says the same to everyone and names no patient or group.
        assert!(refusals.windows(2).all(|w| w[0] == w[1]));
        let text = serde_json::to_string(&refusals[0]).unwrap();
        assert!(!text.contains("山田") && !text.contains(&team.group.to_string()), "{text}");
        // General talk passes; so does the same name in the patient's own group.
        outsider.post(city.id, &post(PostKind::Update, "来月の研修会のお知らせです", "o-ok")).await.unwrap();
        team.nurse.post(team.group, &post(PostKind::Update, "山田花子さん、食事量8割", "n-own")).await.unwrap();
        // Questions belong in a patient's group.
        let r = refusal(outsider.post(city.id, &post(PostKind::TreatmentQuestion, "一般的な質問です", "o-q")).await);
        assert_eq!(r.code, ErrorCode::ValidationFailed);
        // Once the group is archived, its patient's name no longer blocks community posts.
        team.doctor.archive(team.group).await.unwrap();
        outsider.post(city.id, &post(PostKind::Update, "山田花子さんの件で", "o-after")).await.unwrap();
    }
);

both_backends!(
    async fn questions_go_to_the_right_person_and_wait_in_their_addressed_list(app: TestApp) {
        let team = app.team().await;
        let question = team
            .nurse
            .post(team.group, &post(PostKind::TreatmentQuestion, "頓用の追加は可能ですか", "q-1"))
            .await
            .unwrap();
        let plan = team
            .nurse
            .post(team.group, &post(PostKind::CarePlanQuestion, "デイの回数を増やせますか", "q-2"))
            .await
            .unwrap();
        let to_doctor = team.doctor.addressed().await.unwrap().posts;
        assert_eq!(to_doctor.iter().map(|p| p.seq).collect::<Vec<_>>(), [question.seq]);
        let to_cm = team.care_manager.addressed().await.unwrap().posts;
        assert_eq!(to_cm.iter().map(|p| p.seq).collect::<Vec<_>>(), [plan.seq]);
        assert!(team.nurse.addressed().await.unwrap().posts.is_empty());
        // A reply clears it for the physician; 「見ました」 clears it for the care manager.
        let mut reply = post(PostKind::Update, "1回分まで可", "d-1");
        reply.reply_to = Some(question.seq);
        team.doctor.post(team.group, &reply).await.unwrap();
        assert!(team.doctor.addressed().await.unwrap().posts.is_empty());
        team.care_manager.mark_seen(team.group, plan.seq).await.unwrap();
        assert!(team.care_manager.addressed().await.unwrap().posts.is_empty());
        // Without a care manager in the group, a care-plan question is refused.
        team.care_manager.leave(team.group).await.unwrap();
        let r =
            refusal(team.nurse.post(team.group, &post(PostKind::CarePlanQuestion, "ケアプランについて", "q-3")).await);
        assert_eq!(r.code, ErrorCode::NoCareManagerInGroup);
    }
);

both_backends!(
    async fn the_sender_learns_who_is_off_hours_and_how_to_reach_them(app: TestApp) {
        let team = app.team().await;
        let today = (time::OffsetDateTime::now_utc()
            .to_offset(app.config.zone().offset_at(time::OffsetDateTime::now_utc()))
            .weekday()
            .number_days_from_monday()) as usize;
        // The physician works every day but today; the care manager every day, all day.
        let not_today: Vec<Weekday> =
            Weekday::ALL.iter().enumerate().filter(|(i, _)| *i != today).map(|(_, d)| *d).collect();
        let doctor_hours = Availability {
            windows: vec![AvailabilityWindow { days: not_today, start: "09:00".into(), end: "17:00".into() }],
            contact_preference: Some("急ぎは診療所へ電話 0422-00-0000".into()),
        };
        team.doctor.set_availability(&doctor_hours).await.unwrap();
        let always = Availability {
            windows: vec![AvailabilityWindow {
                days: Weekday::ALL.to_vec(),
                start: "00:00".into(),
                end: "24:00".into(),
            }],
            contact_preference: None,
        };
        team.care_manager.set_availability(&always).await.unwrap();
        assert_eq!(team.doctor.availability().await.unwrap(), doctor_hours);
        let bad = Availability {
            windows: vec![AvailabilityWindow { days: vec![Weekday::Mon], start: "18:00".into(), end: "09:00".into() }],
            contact_preference: None,
        };
        assert_eq!(refusal(team.doctor.set_availability(&bad).await).code, ErrorCode::ValidationFailed);

        let receipt = team
            .nurse
            .post_receipt(team.group, &post(PostKind::TreatmentQuestion, "明日の往診時間は？", "q-1"))
            .await
            .unwrap();
        assert_eq!(receipt.off_hours.len(), 1);
        assert_eq!(receipt.off_hours[0].person.display_name, "dr-suzuki さん");
        assert_eq!(receipt.off_hours[0].contact_preference.as_deref(), Some("急ぎは診療所へ電話 0422-00-0000"));
        let receipt = team
            .nurse
            .post_receipt(team.group, &post(PostKind::CarePlanQuestion, "訪問回数について", "q-2"))
            .await
            .unwrap();
        assert!(receipt.off_hours.is_empty(), "the care manager is on hours");
        // An update is addressed to everyone: the physician is the one off hours.
        let receipt = team.nurse.post_receipt(team.group, &post(PostKind::Update, "食事量8割", "u-1")).await.unwrap();
        assert_eq!(
            receipt.off_hours.iter().map(|o| o.person.display_name.as_str()).collect::<Vec<_>>(),
            ["dr-suzuki さん"]
        );

        // The WebSocket acknowledgement says the same.
        let mut live = team.nurse.connect_live().await.unwrap();
        live.send(&ClientFrame::Subscribe {
            id: "s".into(),
            groups: vec![Subscription { group_id: team.group, after_seq: 3 }],
        })
        .await
        .unwrap();
        let frame = ClientFrame::Post {
            id: "w".into(),
            group_id: team.group,
            post: post(PostKind::TreatmentQuestion, "追加の質問", "q-3"),
        };
        live.send(&frame).await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), live.next()).await.unwrap().unwrap().unwrap() {
                ServerFrame::Ack { id, off_hours, .. } if id == "w" => {
                    assert_eq!(off_hours.len(), 1);
                    break;
                }
                _ => continue,
            }
        }
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| {
        let path = std::env::temp_dir().join(format!("renkei-lexicon-{}.txt", uuid::Uuid::new_v4()));
        std::fs::write(&path, "# the operator's own list\n大至急\nright now\n").unwrap();
        c.emergency_lexicon_file = Some(path);
    };
    async fn an_operator_can_replace_the_emergency_lexicon(app: TestApp) {
        let team = app.team().await;
        let r = refusal(team.nurse.post(team.group, &post(PostKind::Update, "大至急お願いします", "n-1")).await);
        assert_eq!(r.code, ErrorCode::EmergencyUseProhibited);
        let r = refusal(team.nurse.post(team.group, &post(PostKind::Update, "Come RIGHT NOW", "n-2")).await);
        assert_eq!(r.fields.get("matched").map(String::as_str), Some("right now"));
        // The shipped list is replaced, not extended.
        team.nurse.post(team.group, &post(PostKind::Update, "urgent とは書かない", "n-3")).await.unwrap();
        if let Some(path) = &app.config.emergency_lexicon_file {
            let _ = std::fs::remove_file(path);
        }
    }
);

/// Availability that covers every moment, and availability that covers none of today.
fn hours(all_day: bool, today: usize) -> Availability {
    let days = if all_day {
        Weekday::ALL.to_vec()
    } else {
        Weekday::ALL.iter().enumerate().filter(|(i, _)| *i != today).map(|(_, d)| *d).collect()
    };
    Availability {
        windows: vec![AvailabilityWindow { days, start: "00:00".into(), end: "24:00".into() }],
        contact_preference: None,
    }
}

/// Each post reads the attending physician's hours as they are now: a change is seen by the very next
/// post, not a second later (the post context cached per group is read again at once).
async fn availability_is_seen_by_the_next_post(
    doctor: &renkei_cli::Client,
    nurse: &renkei_cli::Client,
    app: &renkei_tests::TestApp,
    group: uuid::Uuid,
) {
    let today = time::OffsetDateTime::now_utc()
        .to_offset(app.config.zone().offset_at(time::OffsetDateTime::now_utc()))
        .weekday()
        .number_days_from_monday() as usize;
    for (i, on_hours) in [true, false, true, false].into_iter().enumerate() {
        doctor.set_availability(&hours(on_hours, today)).await.unwrap();
        let question = post(PostKind::TreatmentQuestion, "明日の往診は何時頃ですか", &format!("avail-{i}"));
        let receipt = nurse.post_receipt(group, &question).await.unwrap();
        assert_eq!(receipt.off_hours.is_empty(), on_hours, "change {i}: the post saw the hours before it");
    }
}

both_backends!(
    async fn a_change_of_hours_is_seen_by_the_very_next_post(app: TestApp) {
        let team = app.team().await;
        availability_is_seen_by_the_next_post(&team.doctor, &team.nurse, &app, team.group).await;
    }
);

/// The physician changes their hours through node A; the nurse posts through node B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_hours_on_one_node_is_seen_by_the_next_post_on_another() {
    let Some(node_a) = renkei_tests::TestApp::spawn(renkei_tests::Backend::Postgres).await else { return };
    let node_b = node_a.spawn_node().await;
    let team = node_a.team().await;
    let nurse_on_b = node_b.login("ns-sato", renkei_tests::PASSWORD).await;
    // The cluster link carries the change; give B's listener a moment to be in place first.
    nurse_on_b.post(team.group, &renkei_tests::care::update("接続確認", "warm-up")).await.unwrap();
    let today = time::OffsetDateTime::now_utc()
        .to_offset(node_a.config.zone().offset_at(time::OffsetDateTime::now_utc()))
        .weekday()
        .number_days_from_monday() as usize;
    for (i, on_hours) in [true, false, true, false].into_iter().enumerate() {
        team.doctor.set_availability(&hours(on_hours, today)).await.unwrap();
        // The notification reaches B asynchronously, so a post may race it: allow it 250 ms, well inside
        // the second for which B would otherwise keep serving the hours it read before.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
        for attempt in 0.. {
            let question = post(PostKind::TreatmentQuestion, "往診の時間", &format!("x-{i}-{attempt}"));
            let receipt = nurse_on_b.post_receipt(team.group, &question).await.unwrap();
            if receipt.off_hours.is_empty() == on_hours {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "change {i} not seen on node B within 250 ms");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
