//! Care records (在宅医療情報連携加算): the attending physician's care-policy post (診療方針), and the monthly
//! record of a patient group — complete or not and why, as JSON, CSV and a printable page — with the
//! clinic's summary of a month. On SQLite and PostgreSQL.

use renkei_protocol::{CarePolicy, ConsentMethod, ErrorCode, PostKind, Profession, RecordGap, WithdrawConsentRequest};
use renkei_tests::care::{family, post, update};
use renkei_tests::{both_backends, code_of};
use time::macros::date;

fn policy(changed: bool, summary: Option<&str>) -> CarePolicy {
    CarePolicy {
        next_visit_on: date!(2026 - 12 - 21),
        policy_changed: changed,
        change_summary: summary.map(str::to_owned),
    }
}

fn care_policy(cautions: &str, id: &str, policy: CarePolicy) -> renkei_protocol::NewPost {
    renkei_protocol::NewPost { care_policy: Some(policy), ..post(PostKind::CarePolicy, cautions, id) }
}

/// The month a post written now falls in, in the server's time zone (+09:00 unless configured).
fn this_month() -> String {
    let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+9));
    format!("{:04}-{:02}", now.year(), now.month() as u8)
}

fn field_problems(e: renkei_cli::ClientError) -> Vec<(String, String)> {
    match e {
        renkei_cli::ClientError::Api { body, .. } => {
            assert_eq!(body.code, ErrorCode::ValidationFailed, "{body:?}");
            body.fields.into_iter().collect()
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

both_backends!(
    async fn a_care_policy_is_the_attending_physicians_validated_structured_post(app: TestApp) {
        let team = app.team().await;
        let g = team.group;
        // The physician records it; every member reads it with its record.
        let sent = policy(true, Some("  降圧薬を減量  "));
        let posted = team.doctor.post(g, &care_policy("ふらつきに注意", "cp-1", sent)).await.unwrap();
        assert_eq!(posted.kind, PostKind::CarePolicy);
        let kept = posted.care_policy.clone().unwrap();
        assert_eq!((kept.next_visit_on, kept.policy_changed), (date!(2026 - 12 - 21), true));
        assert_eq!(kept.change_summary.as_deref(), Some("降圧薬を減量"), "trimmed");
        let page = team.nurse.posts(g, None, None, 10).await.unwrap();
        assert_eq!(page.posts.last().unwrap().care_policy, posted.care_policy);

        // Validated: a change needs its summary; the record goes with its kind and no other.
        let problems = |r: Result<renkei_protocol::Post, _>| field_problems(r.expect_err("refused"));
        let no_summary = care_policy("x", "cp-2", policy(true, Some("   ")));
        assert!(problems(team.doctor.post(g, &no_summary).await).iter().any(|(f, _)| f == "change_summary"));
        let bare = post(PostKind::CarePolicy, "x", "cp-3");
        assert!(problems(team.doctor.post(g, &bare).await).iter().any(|(f, _)| f == "care_policy"));
        let stray = renkei_protocol::NewPost { care_policy: Some(policy(false, None)), ..update("x", "cp-4") };
        assert!(problems(team.doctor.post(g, &stray).await).iter().any(|(f, _)| f == "care_policy"));
        // Only the attending physician writes one; nothing was stored by the refusals.
        let by_nurse = care_policy("x", "cp-5", policy(false, None));
        assert_eq!(code_of(team.nurse.post(g, &by_nurse).await), ErrorCode::Forbidden);
        assert_eq!(team.doctor.posts(g, None, None, 10).await.unwrap().last_seq, posted.seq);

        // An edit changes the record too, and the history keeps both.
        let later = CarePolicy { next_visit_on: date!(2026 - 12 - 28), ..policy(false, None) };
        let edited = team.doctor.edit_care_policy(g, posted.seq, "ふらつきに注意。転倒歴あり", &later).await.unwrap();
        assert_eq!(edited.care_policy.as_ref().unwrap().next_visit_on, date!(2026 - 12 - 28));
        let history = team.nurse.post_history(g, posted.seq).await.unwrap().versions;
        let dates: Vec<_> = history.iter().map(|v| v.care_policy.as_ref().unwrap().next_visit_on).collect();
        assert_eq!(dates, [date!(2026 - 12 - 21), date!(2026 - 12 - 28)]);
        // An update cannot become one.
        let plain = team.doctor.post(g, &update("訪問しました", "u-1")).await.unwrap();
        assert_eq!(code_of(team.doctor.edit_care_policy(g, plain.seq, "x", &later).await), ErrorCode::ValidationFailed);
    }
);

both_backends!(
    async fn a_months_record_says_what_is_missing_until_it_is_complete(app: TestApp) {
        let team = app.team().await;
        let g = team.group;
        let month = this_month();
        // Nothing yet: the consent (given before the month) covers it, but no care policy, nothing seen.
        let empty = team.doctor.care_record(g, &month).await.unwrap();
        assert!(!empty.complete);
        assert_eq!(empty.gaps, [RecordGap::NoCarePolicy, RecordGap::NoPostsSeen]);
        assert_eq!(empty.consent.as_ref().map(|c| c.version), Some(1));
        assert_eq!(
            empty.organisations,
            ["むさしの居宅介護支援", "むさしの訪問看護", "鈴木内科クリニック"],
            "the organisations of the team"
        );

        // The nurse and the care manager write; the physician marks the nurse's 「見ました」 and reads on.
        let seen = team.nurse.post(g, &update("=HYPERLINK(\"x\") 血圧 150/90、<b>浮腫</b>", "n-1")).await.unwrap();
        team.doctor.mark_seen(g, seen.seq).await.unwrap();
        let read = team.care_manager.post(g, &update("デイサービスを週2回に", "c-1")).await.unwrap();
        let unread = team.care_manager.post(g, &update("福祉用具を手配", "c-2")).await.unwrap();
        team.doctor.mark_read(g, read.seq).await.unwrap();
        let cp = team.doctor.post(g, &care_policy("転倒に注意", "cp-1", policy(false, None))).await.unwrap();
        // A deleted care policy does not count.
        let gone = team.doctor.post(g, &care_policy("書き損じ", "cp-2", policy(false, None))).await.unwrap();
        team.doctor.delete_post(g, gone.seq).await.unwrap();

        let record = team.doctor.care_record(g, &month).await.unwrap();
        assert!(record.complete, "{:?}", record.gaps);
        assert_eq!(record.care_policies.iter().map(|p| p.seq).collect::<Vec<_>>(), [cp.seq]);
        // The nurse's post marked seen, the care manager's first one read; the unread one and the
        // physician's own posts are not there.
        let seen_posts: Vec<_> = record.seen_posts.iter().map(|s| (s.post.seq, s.seen_at.is_some())).collect();
        assert_eq!(seen_posts, [(seen.seq, true), (read.seq, false)]);
        assert!(unread.seq > read.seq && record.seen_posts.iter().all(|s| s.post.seq != unread.seq));
        assert_eq!(record.attending_physician.as_ref().map(|p| p.profession), Some(Profession::Physician));

        // CSV: stable columns, a spreadsheet formula defused, the whole text kept.
        let csv = team.doctor.care_record_as(g, &month, "csv").await.unwrap();
        let mut lines = csv.trim_start_matches('\u{feff}').lines();
        assert_eq!(
            lines.next(),
            Some(
                "row,month,seq,at,author,profession,organisation,next_visit_on,policy_changed,change_summary,text,seen_at"
            )
        );
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.iter().filter(|r| r.starts_with("care_policy,")).count(), 1);
        assert_eq!(rows.iter().filter(|r| r.starts_with("seen_post,")).count(), 2);
        assert_eq!(rows.iter().filter(|r| r.starts_with("organisation,")).count(), 3);
        assert!(rows.iter().any(|r| r.contains("\"'=HYPERLINK(\"\"x\"\") 血圧 150/90、<b>浮腫</b>\"")), "{csv}");
        assert!(rows.iter().any(|r| r.contains("2026-12-21,no,")), "{csv}");
        // Times are in the server's zone (Asia/Tokyo by default), marked as such.
        assert!(rows.iter().skip(1).all(|r| !r.contains(':') || r.contains(" JST")), "{csv}");
        assert!(rows.iter().any(|r| r.contains(" JST")), "{csv}");
        assert_eq!(rows.last().copied(), Some(format!("complete,{month},,,,,,,,,yes,").as_str()));
        // The page to print: escaped, never markup from a post.
        let html = team.doctor.care_record_as(g, &month, "html").await.unwrap();
        assert!(html.contains("&lt;b&gt;浮腫&lt;/b&gt;") && !html.contains("<b>浮腫"), "{html}");
        assert!(html.contains("この月の記録は揃っています"));

        // The record is the attending physician's: a member is refused, an outsider learns nothing.
        assert_eq!(code_of(team.nurse.care_record(g, &month).await), ErrorCode::Forbidden);
        let (_, outsider) = app.member_at(&team.admin, "ns-ito", Profession::Nurse, "よその訪問看護").await;
        assert_eq!(code_of(outsider.care_record(g, &month).await), ErrorCode::NotFound);
        assert_eq!(code_of(team.doctor.care_record(g, "2026-13").await), ErrorCode::ValidationFailed);
        assert_eq!(code_of(team.doctor.care_record_as(g, &month, "pdf").await), ErrorCode::ValidationFailed);
        // Every record made is audited, without its content.
        let audit = team.admin.admin_audit(None, Some(g), Some("care_record_exported")).await.unwrap().entries;
        assert_eq!(audit.len(), 4, "two as JSON, one as CSV, one as a page");
        assert!(audit.iter().all(|e| !e.details.to_string().contains("浮腫")));

        // The clinic's month: this group complete, three organisations linked.
        let summary = team.doctor.record_summary(&month).await.unwrap();
        assert_eq!(summary.groups.len(), 1);
        assert!(summary.groups[0].complete);
        assert_eq!((summary.groups[0].organisations, summary.organisations.len()), (3, 3));
        assert!(team.nurse.record_summary(&month).await.unwrap().groups.is_empty(), "the nurse attends no group");

        // Consent withdrawn within the month: the month is no longer complete.
        let today = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+9)).date();
        let withdrawal =
            WithdrawConsentRequest { consenter: family(), method: ConsentMethod::Verbal, obtained_on: today };
        team.doctor.withdraw_consent(g, &withdrawal).await.unwrap();
        let record = team.doctor.care_record(g, &month).await.unwrap();
        assert_eq!((record.complete, record.gaps.as_slice()), (false, [RecordGap::ConsentWithdrawn].as_slice()));
        assert!(!team.doctor.record_summary(&month).await.unwrap().groups[0].complete);
    }
);
