//! What the attending physician's screens rely on: the directory as seen from a group (invitable, or why
//! not), the group's pending invitations, and a consent preview that removes exactly whom the recording
//! then removes. On SQLite and PostgreSQL.

use renkei_protocol::{CandidateStatus, ErrorCode, Profession};
use renkei_tests::care::{consent, organisation, patient, person, profession};
use renkei_tests::{both_backends, code_of};

both_backends!(
    async fn the_directory_marks_each_candidate_invitable_or_says_why_not(app: TestApp) {
        let admin = app.admin().await;
        let (_, doctor) = app.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let (_, nurse) = app.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        app.member_at(&admin, "ns-ito", Profession::Nurse, "よその訪問看護").await;
        app.member_at(&admin, "cm-kato", Profession::CareManager, "むさしの居宅介護支援").await;
        let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap().id;

        // Before consent, everyone is "consent required" — the refusal the invitation would give.
        let all = doctor.candidates(group, "").await.unwrap().candidates;
        let logins: Vec<_> = all.iter().map(|c| c.login.as_str()).collect();
        assert!(!logins.contains(&"dr-suzuki") && !logins.contains(&"admin"), "{logins:?}");
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|c| c.status == CandidateStatus::ConsentRequired));
        for c in &all {
            assert_eq!(code_of(doctor.invite(group, &c.login).await), ErrorCode::ConsentRequired);
        }

        doctor.record_consent(group, &consent(vec![organisation("むさしの訪問看護")])).await.unwrap();
        let status = |login: &str, list: &[renkei_protocol::Candidate]| {
            list.iter().find(|c| c.login == login).map(|c| c.status).expect(login)
        };
        let list = doctor.candidates(group, "").await.unwrap().candidates;
        assert_eq!(status("ns-sato", &list), CandidateStatus::Invitable);
        assert_eq!(status("ns-ito", &list), CandidateStatus::OutsideConsentScope);
        assert_eq!(status("cm-kato", &list), CandidateStatus::OutsideConsentScope);
        // The marks match what the invitation then does.
        assert_eq!(code_of(doctor.invite(group, "ns-ito").await), ErrorCode::OutsideConsentScope);
        doctor.invite(group, "ns-sato").await.unwrap();
        let list = doctor.candidates(group, "").await.unwrap().candidates;
        assert_eq!(status("ns-sato", &list), CandidateStatus::Invited);
        let invitation = nurse.invitations().await.unwrap().invitations.remove(0);
        nurse.accept_invitation(invitation.id).await.unwrap();
        let list = doctor.candidates(group, "").await.unwrap().candidates;
        assert_eq!(status("ns-sato", &list), CandidateStatus::ActiveMember);

        // Search: every word must match the name, kana, organisation or login.
        let found = doctor.candidates(group, "よその").await.unwrap().candidates;
        assert_eq!(found.iter().map(|c| c.login.as_str()).collect::<Vec<_>>(), ["ns-ito"]);
        let found = doctor.candidates(group, "むさしの cm").await.unwrap().candidates;
        assert_eq!(found.iter().map(|c| c.login.as_str()).collect::<Vec<_>>(), ["cm-kato"]);
        assert!(doctor.candidates(group, "誰もいない").await.unwrap().candidates.is_empty());

        // Only the attending physician, and only of a group they are in.
        assert_eq!(code_of(nurse.candidates(group, "").await), ErrorCode::Forbidden);
        assert_eq!(code_of(nurse.group_invitations(group).await), ErrorCode::Forbidden);
        let (_, stranger) = app.member_at(&admin, "dr-ota", Profession::Physician, "太田医院").await;
        assert_eq!(code_of(stranger.candidates(group, "").await), ErrorCode::NotFound);
        assert_eq!(code_of(stranger.group_invitations(group).await), ErrorCode::NotFound);
    }
);

both_backends!(
    async fn the_consent_preview_removes_exactly_whom_the_recording_removes(app: TestApp) {
        let admin = app.admin().await;
        let (_, doctor) = app.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let (sato, nurse) = app.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        let (ito, _) = app.member_at(&admin, "ns-ito", Profession::Nurse, "よその訪問看護").await;
        let (kato, cm) = app.member_at(&admin, "cm-kato", Profession::CareManager, "むさしの居宅介護支援").await;
        let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap().id;
        let wide = vec![profession(Profession::Nurse), profession(Profession::CareManager)];
        doctor.record_consent(group, &consent(wide)).await.unwrap();
        for (login, client) in [("ns-sato", &nurse), ("cm-kato", &cm)] {
            doctor.invite(group, login).await.unwrap();
            let invitation = client.invitations().await.unwrap().invitations.remove(0);
            client.accept_invitation(invitation.id).await.unwrap();
        }
        doctor.invite(group, "ns-ito").await.unwrap();
        let pending = doctor.group_invitations(group).await.unwrap().invitations;
        assert_eq!(pending.iter().map(|i| i.invitee.id).collect::<Vec<_>>(), [ito.id]);
        assert!(pending[0].expires_at > pending[0].invited_at);

        // Narrow to Sato by name: Kato would be removed, Ito's invitation cancelled.
        let narrow = consent(vec![person(sato.id)]);
        let preview = doctor.preview_consent(group, &narrow).await.unwrap();
        assert_eq!(preview.removed_members.iter().map(|p| p.id).collect::<Vec<_>>(), [kato.id]);
        assert_eq!(preview.cancelled_invitations.iter().map(|p| p.id).collect::<Vec<_>>(), [ito.id]);
        // A preview changes nothing.
        assert_eq!(doctor.consents(group).await.unwrap().consents.len(), 1);
        assert_eq!(doctor.members(group).await.unwrap().members.len(), 3);
        assert_eq!(doctor.group_invitations(group).await.unwrap().invitations.len(), 1);

        let change = doctor.record_consent(group, &narrow).await.unwrap();
        let mut removed: Vec<_> = change.removed.iter().map(|p| p.id).collect();
        let mut previewed: Vec<_> =
            preview.removed_members.iter().chain(&preview.cancelled_invitations).map(|p| p.id).collect();
        removed.sort();
        previewed.sort();
        assert_eq!(removed, previewed);
        assert!(doctor.group_invitations(group).await.unwrap().invitations.is_empty());

        // A bad scope is refused as the recording would refuse it.
        assert_eq!(code_of(doctor.preview_consent(group, &consent(vec![])).await), ErrorCode::ValidationFailed);
        assert_eq!(code_of(nurse.preview_consent(group, &narrow).await), ErrorCode::Forbidden);
    }
);
