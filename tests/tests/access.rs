//! The access table (rules 2 and 3): every kind of actor × every group operation, asserting allow or deny
//! exactly. A non-member learns nothing (`not_found`); a member without the right gets `forbidden`; a
//! disabled user's session no longer authenticates. Each operation runs on a fresh group, denied actors
//! first, so the one allowed change happens last.

use renkei_cli::Client;
use renkei_protocol::{ErrorCode, Profession, User};
use renkei_tests::care::{consent, patient, profession};
use renkei_tests::{TestApp, both_backends};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    AttendingPhysician,
    PhysicianInScope,
    MemberNurse,
    MemberCareManager,
    InvitedNotAccepted,
    RemovedMember,
    NonMember,
    Administrator,
    DisabledUser,
}

use Actor::*;

/// Denied actors first, the attending physician last, so an allowed change cannot affect another row.
const ACTORS: [Actor; 9] = [
    DisabledUser,
    Administrator,
    NonMember,
    RemovedMember,
    InvitedNotAccepted,
    MemberCareManager,
    MemberNurse,
    PhysicianInScope,
    AttendingPhysician,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    View,
    Members,
    ConsentHistory,
    RecordConsent,
    WithdrawConsent,
    Invite,
    RemoveMember,
    Leave,
    Handover,
    Archive,
}

const OPS: [Op; 10] = [
    Op::View,
    Op::Members,
    Op::ConsentHistory,
    Op::RecordConsent,
    Op::WithdrawConsent,
    Op::Invite,
    Op::RemoveMember,
    Op::Leave,
    Op::Handover,
    Op::Archive,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied(ErrorCode),
}

use Outcome::*;

/// The table. Reading a group is for its active members; changing it is for its attending physician;
/// leaving is for the other members; everyone else learns nothing.
fn expected(actor: Actor, op: Op) -> Outcome {
    let outsider = Denied(ErrorCode::NotFound);
    match actor {
        DisabledUser => Denied(ErrorCode::Unauthenticated),
        Administrator | NonMember | RemovedMember | InvitedNotAccepted => outsider,
        AttendingPhysician => match op {
            Op::Leave => Denied(ErrorCode::Forbidden),
            _ => Allowed,
        },
        PhysicianInScope | MemberNurse | MemberCareManager => match op {
            Op::View | Op::Members | Op::ConsentHistory | Op::Leave => Allowed,
            _ => Denied(ErrorCode::Forbidden),
        },
    }
}

struct Cast {
    clients: Vec<(Actor, Client)>,
    victim: User,
    newcomer: User,
}

impl Cast {
    fn client(&self, actor: Actor) -> &Client {
        &self.clients.iter().find(|(a, _)| *a == actor).unwrap().1
    }
}

async fn cast(app: &TestApp) -> Cast {
    let admin = app.admin().await;
    let mut clients = Vec::new();
    for (actor, login, p) in [
        (AttendingPhysician, "dr-a", Profession::Physician),
        (PhysicianInScope, "dr-b", Profession::Physician),
        (MemberNurse, "ns-n", Profession::Nurse),
        (MemberCareManager, "cm-c", Profession::CareManager),
        (InvitedNotAccepted, "ns-i", Profession::Nurse),
        (RemovedMember, "ns-r", Profession::Nurse),
        (NonMember, "ns-x", Profession::Nurse),
        (DisabledUser, "ns-d", Profession::Nurse),
    ] {
        clients.push((actor, app.member(&admin, login, p).await.1));
    }
    let victim = app.member(&admin, "ns-victim", Profession::Nurse).await.0;
    let newcomer = app.member(&admin, "ns-new", Profession::Nurse).await.0;
    clients.push((Administrator, admin));
    Cast { clients, victim, newcomer }
}

/// A fresh group: consent covering physicians, nurses and care managers; every actor in their place.
async fn fresh_group(cast: &Cast) -> Uuid {
    let doctor = cast.client(AttendingPhysician);
    let group = doctor.open_group(&patient("山田 花子 様", "山田 花子")).await.unwrap().id;
    let scope =
        vec![profession(Profession::Physician), profession(Profession::Nurse), profession(Profession::CareManager)];
    doctor.record_consent(group, &consent(scope)).await.unwrap();
    for (actor, login) in [
        (PhysicianInScope, "dr-b"),
        (MemberNurse, "ns-n"),
        (MemberCareManager, "cm-c"),
        (RemovedMember, "ns-r"),
        (DisabledUser, "ns-d"),
        (InvitedNotAccepted, "ns-i"),
    ] {
        doctor.invite(group, login).await.unwrap();
        if actor != InvitedNotAccepted {
            let client = cast.client(actor);
            let invitation =
                client.invitations().await.unwrap().invitations.into_iter().find(|i| i.group_id == group).unwrap();
            client.accept_invitation(invitation.id).await.unwrap();
        }
    }
    doctor.invite(group, &cast.victim.login).await.unwrap();
    doctor.remove_member(group, "ns-r").await.unwrap();
    group
}

async fn attempt(cast: &Cast, actor: Actor, op: Op, group: Uuid) -> Outcome {
    let c = cast.client(actor);
    let result = match op {
        Op::View => c.group(group).await.map(drop),
        Op::Members => c.members(group).await.map(drop),
        Op::ConsentHistory => c.consents(group).await.map(drop),
        Op::RecordConsent => {
            let scope = vec![
                profession(Profession::Physician),
                profession(Profession::Nurse),
                profession(Profession::CareManager),
            ];
            c.record_consent(group, &consent(scope)).await.map(drop)
        }
        Op::WithdrawConsent => c.withdraw_consent(group, &renkei_tests::care::withdrawal()).await.map(drop),
        Op::Invite => c.invite(group, &cast.newcomer.login).await.map(drop),
        Op::RemoveMember => c.remove_member(group, &cast.victim.login).await,
        Op::Leave => c.leave(group).await,
        Op::Handover => c.handover(group, "dr-b").await.map(drop),
        Op::Archive => c.archive(group).await.map(drop),
    };
    match result {
        Ok(()) => Allowed,
        Err(e) => Denied(e.code().unwrap_or_else(|| panic!("untyped error {e:?}"))),
    }
}

both_backends!(
    async fn every_actor_kind_gets_exactly_its_access_to_every_group_operation(app: TestApp) {
        let mut cast = cast(&app).await;
        let mut mismatches = Vec::new();
        for op in OPS {
            let group = fresh_group(&cast).await;
            // The disabled user was an active member until an administrator disabled the account.
            cast.client(Administrator).admin_disable_user("ns-d").await.unwrap();
            for actor in ACTORS {
                let got = attempt(&cast, actor, op, group).await;
                let want = expected(actor, op);
                if got != want {
                    mismatches.push(format!("{actor:?} × {op:?}: expected {want:?}, got {got:?}"));
                }
            }
            cast.client(Administrator).admin_enable_user("ns-d").await.unwrap();
            // Re-login the re-enabled user for the next group (disabling ended the session).
            let fresh = app.login("ns-d", renkei_tests::PASSWORD).await;
            let slot = cast.clients.iter().position(|(a, _)| *a == DisabledUser).unwrap();
            cast.clients[slot].1 = fresh;
        }
        assert!(mismatches.is_empty(), "access table mismatches:\n{}", mismatches.join("\n"));
    }
);
