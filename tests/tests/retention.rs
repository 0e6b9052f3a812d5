//! Retention (rule 7): an archived patient group's content is purged once the configured time has passed —
//! posts, versions, marks, files, patient identifiers, consenters' names — leaving a tombstone and an
//! intact audit log; nothing else is touched, and nothing before its time. On SQLite and PostgreSQL.

use renkei_protocol::{ErrorCode, GroupStatus};
use renkei_server::housekeeping::purge_due;
use renkei_server::policy::retention::PurgeRefused;
use renkei_tests::care::{consent, patient, profession, update};
use renkei_tests::{TestApp, both_backends, code_of};
use time::{Duration, OffsetDateTime};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// A second connection to the app's database that appends audit entries under the server's key.
async fn keyed_store(app: &TestApp) -> renkei_server::store::Store {
    let store = app.store().await;
    let key = renkei_server::audit::load_or_create_key(&app.config, &store).await.unwrap();
    store.with_audit_key(key)
}

both_backends!(
    config = |c: &mut renkei_server::Config| c.purge_archived_after_days = Some(30);
    async fn an_archived_groups_content_is_purged_after_its_time_and_nothing_else(app: TestApp) {
        let team = app.team().await;
        let g = team.group;
        // The group's record: posts, an edit, a 「見ました」, a read mark, a file.
        let first = team.nurse.post(g, &update("血圧 130/80", "n-1")).await.unwrap();
        team.nurse.edit_post(g, first.seq, "血圧 132/80（訂正）").await.unwrap();
        team.doctor.mark_seen(g, first.seq).await.unwrap();
        team.care_manager.mark_read(g, first.seq).await.unwrap();
        let file = team.nurse.upload_attachment(g, "care-plan.pdf", PDF.to_vec(), None).await.unwrap();
        let with_file = renkei_protocol::NewPost { attachments: vec![file.id], ..update("ケアプラン", "n-2") };
        team.nurse.post(g, &with_file).await.unwrap();
        // Another patient's group, still in care: never touched.
        let other = team.doctor.open_group(&patient("田中 次郎 様", "田中 次郎")).await.unwrap().id;
        team.doctor.record_consent(other, &consent(vec![profession(renkei_protocol::Profession::Nurse)])).await.unwrap();
        team.doctor.post(other, &update("初回訪問", "d-1")).await.unwrap();

        let store = keyed_store(&app).await;
        let now = OffsetDateTime::now_utc();
        // Not archived: never purged, however late; and refused when asked directly.
        assert!(purge_due(&store, now + Duration::days(3650), Some(30), false).await.unwrap().is_empty());
        let record = store.group(g).await.unwrap().unwrap();
        assert_eq!(store.purge_group(&record, now).await.unwrap(), Err(PurgeRefused::NotArchived));

        team.doctor.archive(g).await.unwrap();
        // Archived, but its time has not come: nothing goes; a dry run lists it and changes nothing.
        assert!(purge_due(&store, now + Duration::days(29), Some(30), false).await.unwrap().is_empty());
        let listed = purge_due(&store, now + Duration::days(31), Some(30), true).await.unwrap();
        assert_eq!(listed.iter().map(|(g, p)| (g.id, p.is_some())).collect::<Vec<_>>(), [(g, false)]);
        assert_eq!(team.nurse.posts(g, None, None, 10).await.unwrap().posts.len(), 2);

        // Its time: the content goes, in one transaction with its audit entry.
        let purged = purge_due(&store, now + Duration::days(31), Some(30), false).await.unwrap();
        assert_eq!(purged.len(), 1);
        let counts = purged[0].1.expect("purged");
        assert_eq!((counts.posts, counts.attachments), (2, 1));
        // A second pass finds nothing left.
        assert!(purge_due(&store, now + Duration::days(400), Some(30), false).await.unwrap().is_empty());

        // The tombstone: the group, its dates and members, no patient, no posts, no file, no names.
        let tomb = team.doctor.group(g).await.unwrap();
        assert_eq!(tomb.status, GroupStatus::Archived);
        assert!(tomb.purged_at.is_some() && tomb.archived_at.is_some());
        assert_eq!((tomb.patient, tomb.notes), (None, None));
        assert!(tomb.label.starts_with("P-") && !tomb.label.contains("山田"), "{}", tomb.label);
        let page = team.nurse.posts(g, None, None, 10).await.unwrap();
        assert!(page.posts.is_empty());
        assert_eq!(code_of(team.nurse.attachment(g, file.id, false).await), ErrorCode::NotFound);
        assert_eq!(code_of(team.nurse.post_history(g, first.seq).await), ErrorCode::NotFound);
        let consents = team.doctor.consents(g).await.unwrap().consents;
        assert!(consents.iter().all(|c| c.consenter.name.is_empty() && c.consenter.relationship.is_none()));
        assert_eq!(team.doctor.members(g).await.unwrap().members.len(), 3, "memberships stay");

        // Everything else is as it was.
        assert_eq!(team.doctor.posts(other, None, None, 10).await.unwrap().posts.len(), 1);
        assert!(team.doctor.group(other).await.unwrap().patient.is_some());

        // The audit log keeps every entry of the group, gains the purge, and still verifies.
        let entries = team.admin.admin_audit(None, Some(g), None).await.unwrap().entries;
        assert!(entries.iter().any(|e| e.action == "consent_recorded"));
        let purge = entries.iter().find(|e| e.action == "group_purged").expect("a purge entry");
        assert_eq!(purge.details, serde_json::json!({ "posts": 2, "attachments": 1 }));
        assert!(team.admin.admin_audit_verification(None).await.unwrap().intact);
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| {
        c.purge_archived_after_days = Some(0);
        c.housekeeping_seconds = 1;
    };
    async fn the_housekeeping_sweep_purges_when_a_policy_is_configured(app: TestApp) {
        let team = app.team().await;
        team.nurse.post(team.group, &update("最終訪問", "n-1")).await.unwrap();
        team.doctor.archive(team.group).await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if team.doctor.group(team.group).await.unwrap().purged_at.is_some() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the sweep never purged the group");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!(team.nurse.posts(team.group, None, None, 10).await.unwrap().posts.is_empty());
    }
);
