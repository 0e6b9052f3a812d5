//! Each office's own rules (rule 7), kept by administrators: which of its professions may export a
//! timeline, from which networks its members download files, and its retention. Enforced over HTTP (the
//! CLI's walk-through in the README exports as a nurse the same way). On SQLite and PostgreSQL.

use renkei_protocol::{ErrorCode, OfficeRulesUpdate, Profession};
use renkei_server::housekeeping::purge_due;
use renkei_tests::care::update;
use renkei_tests::{both_backends, code_of};
use time::{Duration, OffsetDateTime};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
const STATION: &str = "むさしの訪問看護";

fn rules(export: &[Profession], networks: &[&str], days: Option<u32>) -> OfficeRulesUpdate {
    OfficeRulesUpdate {
        timeline_export: export.to_vec(),
        attachment_networks: networks.iter().map(|n| (*n).to_owned()).collect(),
        purge_archived_after_days: days,
    }
}

both_backends!(
    async fn an_office_lets_its_nurses_export_and_keeps_downloads_to_its_network(app: TestApp) {
        let team = app.team().await;
        let g = team.group;
        team.nurse.post(g, &update("訪問記録", "n-1")).await.unwrap();
        // By default the attending physician alone exports the timeline.
        assert!(team.doctor.export_timeline(g).await.is_ok());
        assert_eq!(code_of(team.nurse.export_timeline(g).await), ErrorCode::Forbidden);

        // The nurse's station lets its nurses keep their own record.
        let set = team.admin.admin_set_office_rules(STATION, &rules(&[Profession::Nurse], &[], None)).await.unwrap();
        assert_eq!(set.timeline_export, [Profession::Nurse]);
        let export = team.nurse.export_timeline(g).await.unwrap();
        assert_eq!(export.posts.len(), 1);
        assert!(team.nurse.export_timeline_markdown(g).await.unwrap().contains("訪問記録"));
        // Another office's member, and an outsider, gain nothing from it.
        assert_eq!(code_of(team.care_manager.export_timeline(g).await), ErrorCode::Forbidden);
        let (_, stranger) = app.member_at(&team.admin, "ns-ito", Profession::Nurse, STATION).await;
        assert_eq!(code_of(stranger.export_timeline(g).await), ErrorCode::NotFound);
        // The access report and the care record stay the attending physician's.
        assert_eq!(code_of(team.nurse.access_report(g).await), ErrorCode::Forbidden);
        // Every export is audited as before.
        let exports = team.admin.admin_audit(None, Some(g), Some("timeline_exported")).await.unwrap().entries;
        assert_eq!(exports.len(), 3);

        // Downloads only from the station's network: this test's client is outside 192.0.2.0/24.
        let file = team.nurse.upload_attachment(g, "plan.pdf", PDF.to_vec(), None).await.unwrap();
        let shared = renkei_protocol::NewPost { attachments: vec![file.id], ..update("計画書", "n-2") };
        team.nurse.post(g, &shared).await.unwrap();
        let networks = rules(&[Profession::Nurse], &["192.0.2.0/24"], None);
        team.admin.admin_set_office_rules(STATION, &networks).await.unwrap();
        let refused = team.nurse.attachment(g, file.id, false).await;
        assert_eq!(code_of(refused), ErrorCode::Forbidden);
        // Members of other offices are not bound by it.
        assert_eq!(team.care_manager.attachment(g, file.id, false).await.unwrap().0, PDF);
        // Inside the network (loopback here), it downloads again.
        team.admin.admin_set_office_rules(STATION, &rules(&[], &["127.0.0.0/8", "::1"], None)).await.unwrap();
        assert_eq!(team.nurse.attachment(g, file.id, false).await.unwrap().0, PDF);
        // Back to the default: the nurse no longer exports.
        assert_eq!(code_of(team.nurse.export_timeline(g).await), ErrorCode::Forbidden);

        // Kept by administrators only, validated, every change audited.
        assert_eq!(
            code_of(team.doctor.admin_set_office_rules(STATION, &rules(&[], &[], None)).await),
            ErrorCode::Forbidden
        );
        for bad in [rules(&[], &["10.0.0.0/33"], None), rules(&[], &["intranet"], None), rules(&[], &[], Some(0))] {
            assert_eq!(code_of(team.admin.admin_set_office_rules(STATION, &bad).await), ErrorCode::ValidationFailed);
        }
        let listed = team.admin.admin_offices().await.unwrap().offices;
        assert_eq!(listed.iter().map(|o| o.organisation.as_str()).collect::<Vec<_>>(), [STATION]);
        let changes = team.admin.admin_audit(None, None, Some("office_rules_changed")).await.unwrap().entries;
        assert_eq!(changes.len(), 3);
    }
);

both_backends!(
    async fn an_offices_retention_overrides_the_servers(app: TestApp) {
        let team = app.team().await;
        team.nurse.post(team.group, &update("最終訪問", "n-1")).await.unwrap();
        team.doctor.archive(team.group).await.unwrap();
        let store = app.store().await;
        let key = renkei_server::audit::load_or_create_key(&app.config, &store).await.unwrap();
        let store = store.with_audit_key(key);
        let now = OffsetDateTime::now_utc();
        // The server keeps everything; the clinic of the attending physician keeps ten days.
        assert!(purge_due(&store, now + Duration::days(11), None, false).await.unwrap().is_empty());
        let clinic = rules(&[], &[], Some(10));
        team.admin.admin_set_office_rules("鈴木内科クリニック", &clinic).await.unwrap();
        assert!(purge_due(&store, now + Duration::days(9), None, false).await.unwrap().is_empty());
        let purged = purge_due(&store, now + Duration::days(11), Some(3650), false).await.unwrap();
        assert_eq!(purged.len(), 1, "the office's ten days, not the server's ten years");
        assert!(team.doctor.group(team.group).await.unwrap().purged_at.is_some());
    }
);
