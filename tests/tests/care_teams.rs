//! Care teams (rules 2 and 3): a physician opens a patient group, records consent, invites only whom the
//! consent covers; narrowing or withdrawing consent removes whoever falls outside it; administrators audit
//! membership without patient identifiers; community groups exist. On SQLite and PostgreSQL.

use renkei_cli::{Client, ClientError};
use renkei_protocol::{
    ConsentKind, ErrorCode, GroupKind, GroupStatus, MemberRole, MembershipState, Profession, ScopeEntry,
};
use renkei_tests::care::{consent, organisation, patient, person, profession, withdrawal};
use renkei_tests::{PASSWORD, both_backends, code_of};

async fn accept_invitation(client: &Client) {
    let invitations = client.invitations().await.unwrap().invitations;
    assert_eq!(invitations.len(), 1, "{invitations:?}");
    client.accept_invitation(invitations[0].id).await.unwrap();
}

both_backends!(
    async fn a_physician_opens_a_group_records_consent_and_invites_only_whom_it_covers(app: TestApp) {
        let admin = app.admin().await;
        let (_, doctor) = app.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let (nurse_user, nurse) = app.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        let (_, other_nurse) = app.member_at(&admin, "ns-ito", Profession::Nurse, "よその訪問看護").await;
        let (_, cm) = app.member_at(&admin, "cm-kato", Profession::CareManager, "むさしの居宅介護支援").await;

        // Rule 2: only a physician opens a patient group.
        assert_eq!(code_of(nurse.open_group(&patient("山田 花子 様", "山田 花子")).await), ErrorCode::Forbidden);
        let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap();
        assert_eq!(
            (group.kind, group.status, group.my_role),
            (GroupKind::Patient, GroupStatus::Active, MemberRole::AttendingPhysician)
        );
        assert_eq!(group.patient.as_ref().unwrap().full_name, "山田 花子");
        assert_eq!(group.consent_version, None);

        // Before any consent, nobody can be invited.
        assert_eq!(code_of(doctor.invite(group.id, "ns-sato").await), ErrorCode::ConsentRequired);
        let change = doctor
            .record_consent(
                group.id,
                &consent(vec![organisation("むさしの訪問看護"), profession(Profession::CareManager)]),
            )
            .await
            .unwrap();
        assert_eq!((change.consent.version, change.consent.kind), (1, ConsentKind::Recorded));
        assert!(change.removed.is_empty());

        // Rule 3: inside the scope, invited; outside, refused (fail closed).
        assert_eq!(code_of(doctor.invite(group.id, "ns-ito").await), ErrorCode::OutsideConsentScope);
        let invitation = doctor.invite(group.id, "ns-sato").await.unwrap();
        assert_eq!(invitation.invitee.id, nurse_user.id);
        assert_eq!(code_of(doctor.invite(group.id, "ns-sato").await), ErrorCode::AlreadyMember);
        doctor.invite(group.id, "cm-kato").await.unwrap();
        assert!(other_nurse.invitations().await.unwrap().invitations.is_empty());
        // Someone else's invitation is not there for them.
        assert_eq!(code_of(other_nurse.accept_invitation(invitation.id).await), ErrorCode::NotFound);
        // An invitee who has not accepted sees nothing of the group yet.
        assert_eq!(code_of(nurse.group(group.id).await), ErrorCode::NotFound);
        let pending = nurse.invitations().await.unwrap().invitations;
        assert_eq!(pending[0].group_label, "山田 花子 様");
        let joined = nurse.accept_invitation(invitation.id).await.unwrap();
        assert_eq!(joined.my_role, MemberRole::Member);
        assert_eq!(code_of(nurse.accept_invitation(invitation.id).await), ErrorCode::NotFound);
        accept_invitation(&cm).await;

        // Members see one another: name, profession, organisation, role, since when.
        let members = nurse.members(group.id).await.unwrap().members;
        let roles: Vec<_> =
            members.iter().map(|m| (m.person.display_name.as_str(), m.person.profession, m.role)).collect();
        assert_eq!(
            roles,
            [
                ("dr-suzuki さん", Profession::Physician, MemberRole::AttendingPhysician),
                ("ns-sato さん", Profession::Nurse, MemberRole::Member),
                ("cm-kato さん", Profession::CareManager, MemberRole::Member),
            ]
        );
        assert_eq!(members[1].person.organisation, "むさしの訪問看護");
        assert_eq!(nurse.groups().await.unwrap().groups.len(), 1);
        assert!(other_nurse.groups().await.unwrap().groups.is_empty());
        // Members may read the consent history; only the attending physician changes it.
        assert_eq!(cm.consents(group.id).await.unwrap().consents.len(), 1);
        assert_eq!(
            code_of(cm.record_consent(group.id, &consent(vec![profession(Profession::Nurse)])).await),
            ErrorCode::Forbidden
        );
        assert_eq!(code_of(cm.invite(group.id, "ns-ito").await), ErrorCode::Forbidden);
    }
);

both_backends!(
    async fn narrowing_consent_removes_members_at_once_and_withdrawal_leaves_only_the_physician(app: TestApp) {
        let admin = app.admin().await;
        let (_, doctor) = app.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let (nurse_user, nurse) = app.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        let (_, cm) = app.member_at(&admin, "cm-kato", Profession::CareManager, "むさしの居宅介護支援").await;
        let (pharmacist_user, pharmacist) = app.member_at(&admin, "ph-abe", Profession::Pharmacist, "あべ薬局").await;
        let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap();
        let everyone =
            vec![profession(Profession::Nurse), profession(Profession::CareManager), person(pharmacist_user.id)];
        doctor.record_consent(group.id, &consent(everyone)).await.unwrap();
        for (login, client) in [("ns-sato", &nurse), ("cm-kato", &cm)] {
            doctor.invite(group.id, login).await.unwrap();
            accept_invitation(client).await;
        }
        doctor.invite(group.id, "ph-abe").await.unwrap();

        // The family narrows the consent to the care manager: the nurse is removed and the pharmacist's
        // invitation cancelled, in the same transaction, effective at once.
        let change =
            doctor.record_consent(group.id, &consent(vec![profession(Profession::CareManager)])).await.unwrap();
        assert_eq!((change.consent.version, change.consent.kind), (2, ConsentKind::Amended));
        let mut removed: Vec<_> = change.removed.iter().map(|p| p.id).collect();
        removed.sort();
        let mut expected = vec![nurse_user.id, pharmacist_user.id];
        expected.sort();
        assert_eq!(removed, expected);
        assert_eq!(code_of(nurse.group(group.id).await), ErrorCode::NotFound);
        assert_eq!(code_of(nurse.members(group.id).await), ErrorCode::NotFound);
        assert!(pharmacist.invitations().await.unwrap().invitations.is_empty());
        assert_eq!(cm.members(group.id).await.unwrap().members.len(), 2);

        // An empty scope is not a withdrawal.
        let Err(ClientError::Api { status, body }) = doctor.record_consent(group.id, &consent(vec![])).await else {
            panic!()
        };
        assert_eq!(
            (status, body.code, body.fields.get("scope").map(String::as_str)),
            (422, ErrorCode::ValidationFailed, Some("empty"))
        );

        // Withdrawal: everyone but the attending physician goes; the group becomes read-only.
        let change = doctor.withdraw_consent(group.id, &withdrawal()).await.unwrap();
        assert_eq!((change.consent.version, change.consent.kind), (3, ConsentKind::Withdrawn));
        assert!(change.consent.scope.is_empty());
        assert_eq!(code_of(cm.group(group.id).await), ErrorCode::NotFound);
        let after = doctor.group(group.id).await.unwrap();
        assert_eq!(after.status, GroupStatus::ReadOnly);
        assert_eq!(doctor.members(group.id).await.unwrap().members.len(), 1);
        assert_eq!(code_of(doctor.invite(group.id, "cm-kato").await), ErrorCode::GroupNotActive);
        // The whole history is kept.
        let history = doctor.consents(group.id).await.unwrap().consents;
        let kinds: Vec<_> = history.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ConsentKind::Recorded, ConsentKind::Amended, ConsentKind::Withdrawn]);

        // A new consent re-opens the group; the physician archives it when care ends.
        doctor.record_consent(group.id, &consent(vec![profession(Profession::CareManager)])).await.unwrap();
        assert_eq!(doctor.group(group.id).await.unwrap().status, GroupStatus::Active);
        assert_eq!(doctor.archive(group.id).await.unwrap().status, GroupStatus::Archived);
        assert_eq!(code_of(doctor.invite(group.id, "cm-kato").await), ErrorCode::GroupNotActive);
        assert_eq!(
            code_of(doctor.record_consent(group.id, &consent(vec![profession(Profession::Nurse)])).await),
            ErrorCode::GroupNotActive
        );
        assert_eq!(doctor.group(group.id).await.unwrap().status, GroupStatus::Archived);
    }
);

both_backends!(
    async fn invitations_are_declined_removed_left_and_expire(app: TestApp) {
        let admin = app.admin().await;
        let (_, doctor) = app.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let (nurse_user, nurse) = app.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        let (_, cm) = app.member_at(&admin, "cm-kato", Profession::CareManager, "むさしの居宅介護支援").await;
        let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap();
        doctor
            .record_consent(
                group.id,
                &consent(vec![profession(Profession::Nurse), profession(Profession::CareManager)]),
            )
            .await
            .unwrap();

        // Declined, then invited again and accepted.
        let first = doctor.invite(group.id, "ns-sato").await.unwrap();
        nurse.decline_invitation(first.id).await.unwrap();
        assert_eq!(code_of(nurse.accept_invitation(first.id).await), ErrorCode::NotFound);
        doctor.invite(group.id, "ns-sato").await.unwrap();
        accept_invitation(&nurse).await;
        // She leaves; the attending physician cannot leave (hand over or archive instead).
        nurse.leave(group.id).await.unwrap();
        assert_eq!(code_of(nurse.group(group.id).await), ErrorCode::NotFound);
        assert_eq!(code_of(doctor.leave(group.id).await), ErrorCode::Forbidden);
        // The care manager is removed by the physician.
        doctor.invite(group.id, "cm-kato").await.unwrap();
        accept_invitation(&cm).await;
        doctor.remove_member(group.id, "cm-kato").await.unwrap();
        assert_eq!(code_of(cm.members(group.id).await), ErrorCode::NotFound);
        assert_eq!(code_of(doctor.remove_member(group.id, "cm-kato").await), ErrorCode::NotFound);

        // An invitation past its expiry cannot be accepted (the store is given a clock 15 days ahead).
        let invitation = doctor.invite(group.id, "ns-sato").await.unwrap();
        let store = app.store().await;
        let later = time::OffsetDateTime::now_utc() + time::Duration::days(15);
        let entry = renkei_server::store::NewAuditEntry::default();
        let expired = store.answer_invitation(invitation.id, nurse_user.id, true, entry.clone(), later).await;
        assert!(
            matches!(
                expired,
                Err(renkei_server::store::StoreError::Conflict(renkei_server::store::Conflict::InvitationExpired))
            ),
            "{expired:?}"
        );
        assert_eq!(code_of(nurse.accept_invitation(invitation.id).await), ErrorCode::NotFound);
        // And one that expired is reported as such to the invitee who tries it in time-travelled storage.
        let stale = store
            .invite(
                renkei_server::store::NewInvitation {
                    group: group.id,
                    invitee: nurse_user.id,
                    invited_by: group.attending_physician.as_ref().unwrap().id,
                    consent_version: 1,
                    expires_at: time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
                },
                renkei_server::store::NewAuditEntry { action: "invitation_sent", ..entry },
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert_eq!(code_of(nurse.accept_invitation(stale.id).await), ErrorCode::InvitationExpired);
        // Expired invitations do not block a new one.
        doctor.invite(group.id, "ns-sato").await.unwrap();
        accept_invitation(&nurse).await;
        let history = admin.admin_group(group.id).await.unwrap().memberships;
        let nurse_states: Vec<_> = history.iter().filter(|m| m.person.id == nurse_user.id).map(|m| m.state).collect();
        assert_eq!(
            nurse_states,
            [
                MembershipState::Declined,
                MembershipState::Left,
                MembershipState::Expired,
                MembershipState::Expired,
                MembershipState::Active
            ]
        );
        store.close().await;
    }
);

both_backends!(
    async fn the_attending_physician_hands_the_group_over_to_a_physician_inside_the_scope(app: TestApp) {
        let admin = app.admin().await;
        let (hospital_user, hospital) =
            app.member_at(&admin, "dr-byoin", Profession::Physician, "武蔵野総合病院").await;
        let (home_user, home) = app.member_at(&admin, "dr-zaitaku", Profession::Physician, "在宅クリニック").await;
        let (_, outsider) = app.member_at(&admin, "dr-yoso", Profession::Physician, "よその病院").await;
        let (_, nurse) = app.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        let group = hospital.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap();
        hospital
            .record_consent(group.id, &consent(vec![organisation("在宅クリニック"), profession(Profession::Nurse)]))
            .await
            .unwrap();
        for (login, client) in [("dr-zaitaku", &home), ("ns-sato", &nurse)] {
            hospital.invite(group.id, login).await.unwrap();
            accept_invitation(client).await;
        }
        let Err(ClientError::Api { body, .. }) = hospital.handover(group.id, "ns-sato").await else { panic!() };
        assert_eq!(
            (body.code, body.fields.get("user").map(String::as_str)),
            (ErrorCode::ValidationFailed, Some("not_a_physician"))
        );
        assert_eq!(code_of(hospital.handover(group.id, "dr-yoso").await), ErrorCode::OutsideConsentScope);
        assert_eq!(code_of(nurse.handover(group.id, "dr-zaitaku").await), ErrorCode::Forbidden);
        let pending = hospital.handover(group.id, "dr-zaitaku").await.unwrap();
        assert_eq!(pending.handover_to.as_ref().map(|p| p.id), Some(home_user.id));
        // Nothing changes until the new physician accepts; nobody else can accept for them.
        assert_eq!(code_of(nurse.answer_handover(group.id, true).await), ErrorCode::Forbidden);
        assert_eq!(code_of(outsider.answer_handover(group.id, true).await), ErrorCode::NotFound);
        let accepted = home.answer_handover(group.id, true).await.unwrap();
        assert_eq!(accepted.my_role, MemberRole::AttendingPhysician);
        assert_eq!(accepted.attending_physician.as_ref().map(|p| p.id), Some(home_user.id));
        assert_eq!(hospital.group(group.id).await.unwrap().my_role, MemberRole::Member);
        // The former attending physician is now an ordinary member, outside the consent's scope for new
        // changes: the new physician's next consent removes them unless it covers them.
        let change = home
            .record_consent(group.id, &consent(vec![organisation("在宅クリニック"), profession(Profession::Nurse)]))
            .await
            .unwrap();
        assert_eq!(change.removed.iter().map(|p| p.id).collect::<Vec<_>>(), [hospital_user.id]);
        assert_eq!(code_of(hospital.group(group.id).await), ErrorCode::NotFound);
    }
);

both_backends!(
    async fn administrators_audit_membership_without_patient_identifiers_and_run_community_groups(app: TestApp) {
        let admin = app.admin().await;
        let (_, doctor) = app.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let (nurse_user, nurse) = app.member_at(&admin, "ns-sato", Profession::Nurse, "むさしの訪問看護").await;
        let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap();
        doctor.record_consent(group.id, &consent(vec![profession(Profession::Nurse)])).await.unwrap();
        doctor.invite(group.id, "ns-sato").await.unwrap();
        accept_invitation(&nurse).await;

        // An administrator is not a member of any patient group unless invited like anyone else.
        assert_eq!(code_of(admin.group(group.id).await), ErrorCode::NotFound);
        let audit = admin.admin_groups().await.unwrap();
        let seen = &audit.groups[0];
        // A neutral reference, never the label the physician wrote (it names the patient).
        assert_eq!(seen.label, None);
        assert_eq!(seen.reference, format!("P-{}", &group.id.simple().to_string()[..8]));
        assert_eq!(seen.status, GroupStatus::Active);
        assert_eq!(seen.memberships.len(), 2);
        assert_eq!(
            seen.consents[0].scope,
            vec![ScopeEntry { organisation: None, profession: Some(Profession::Nurse), user: None }]
        );
        // Metadata only: no label, no patient identifiers, no notes, no consenter names.
        let text = serde_json::to_string(&audit).unwrap();
        for secret in ["山田", "花子", "やまだ", "P-0001", "独居", "山田 一郎", "長男"] {
            assert!(!text.contains(secret), "the audit view shows {secret}: {text}");
        }
        assert_eq!(code_of(nurse.admin_groups().await), ErrorCode::Forbidden);
        assert_eq!(code_of(nurse.admin_group(group.id).await), ErrorCode::Forbidden);

        // Community groups: created by an administrator, who adds and removes members.
        let city = admin.admin_create_community_group("武蔵野市 全体").await.unwrap();
        assert_eq!(city.kind, GroupKind::Community);
        // The administrators' own name for it is theirs to see.
        assert_eq!(city.label.as_deref(), Some("武蔵野市 全体"));
        admin.admin_add_community_member(city.id, "ns-sato").await.unwrap();
        admin.admin_add_community_member(city.id, "dr-suzuki").await.unwrap();
        assert_eq!(code_of(admin.admin_add_community_member(city.id, "ns-sato").await), ErrorCode::AlreadyMember);
        // Patient groups are never joined by an administrator's say-so.
        assert_eq!(code_of(admin.admin_add_community_member(group.id, "ns-sato").await), ErrorCode::NotFound);
        let mine = nurse.groups().await.unwrap().groups;
        assert_eq!(mine.len(), 2);
        let community = nurse.group(city.id).await.unwrap();
        assert_eq!(
            (community.kind, community.patient.clone(), community.attending_physician.clone()),
            (GroupKind::Community, None, None)
        );
        assert_eq!(nurse.members(city.id).await.unwrap().members.len(), 2);
        // No consent or invitation business in a community group.
        assert_eq!(code_of(doctor.invite(city.id, "ns-sato").await), ErrorCode::Forbidden);
        admin.admin_remove_community_member(city.id, nurse_user.id.to_string().as_str()).await.unwrap();
        assert_eq!(code_of(nurse.group(city.id).await), ErrorCode::NotFound);
    }
);

both_backends!(
    async fn bad_care_team_input_gets_typed_errors_and_changes_nothing(app: TestApp) {
        let admin = app.admin().await;
        let (_, doctor) = app.member_at(&admin, "dr-suzuki", Profession::Physician, "鈴木内科クリニック").await;
        let mut long = patient(&"あ".repeat(101), "山田 花子");
        long.patient.full_name = String::new();
        let Err(ClientError::Api { body, .. }) = doctor.open_group(&long).await else { panic!() };
        assert_eq!(body.code, ErrorCode::ValidationFailed);
        assert_eq!(body.fields.keys().map(String::as_str).collect::<Vec<_>>(), ["label", "patient.full_name"]);
        assert!(doctor.groups().await.unwrap().groups.is_empty());

        let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap();
        let nothing = ScopeEntry { organisation: None, profession: None, user: None };
        let unknown = ScopeEntry { organisation: None, profession: None, user: Some(uuid::Uuid::new_v4()) };
        for (scope, problem) in
            [(vec![nothing], ("scope", "entry_names_nothing")), (vec![unknown], ("scope.user", "unknown_user"))]
        {
            let Err(ClientError::Api { body, .. }) = doctor.record_consent(group.id, &consent(scope)).await else {
                panic!()
            };
            assert_eq!(body.fields.get(problem.0).map(String::as_str), Some(problem.1), "{body:?}");
        }
        let mut future = consent(vec![profession(Profession::Nurse)]);
        future.obtained_on = time::macros::date!(2099 - 01 - 01);
        assert_eq!(code_of(doctor.record_consent(group.id, &future).await), ErrorCode::ValidationFailed);
        assert!(doctor.consents(group.id).await.unwrap().consents.is_empty());

        // Unknown professions and unknown fields never reach the handler.
        let http = reqwest::Client::new();
        let url = format!("{}/api/v1/groups/{}/consents", app.base_url, group.id);
        let token = doctor.token().unwrap().expose().to_owned();
        for body in [
            r#"{"consenter":{"kind":"family","name":"x"},"method":"written","obtained_on":"2026-11-20","scope":[{"profession":"surgeon"}]}"#,
            r#"{"consenter":{"kind":"family","name":"x"},"method":"written","obtained_on":"2026-11-20","scope":[],"urgent":true}"#,
            r#"{"consenter":{"kind":"cousin","name":"x"},"method":"written","obtained_on":"2026-11-20","scope":[]}"#,
        ] {
            let response = http
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{body}");
            let err: renkei_protocol::ErrorBody = response.json().await.unwrap();
            assert_eq!(err.code, ErrorCode::MalformedRequest);
        }
        // Unknown groups and malformed ids are not found, for members and physicians alike.
        assert_eq!(code_of(doctor.group(uuid::Uuid::new_v4()).await), ErrorCode::NotFound);
        let response =
            http.get(format!("{}/api/v1/groups/not-a-uuid", app.base_url)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(code_of(doctor.invite(group.id, "nobody").await), ErrorCode::NotFound);
        let _ = PASSWORD;
    }
);
