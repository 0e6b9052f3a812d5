//! Property test: random sequences of open / record consent / amend / withdraw / invite / accept /
//! decline / remove / leave / handover / archive, checked after every step against a small reference
//! model — each operation succeeds exactly when the model says so, and the set of users who can read the
//! group equals the model's set of active members. On SQLite and PostgreSQL.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use renkei_cli::Client;
use renkei_protocol::{Profession, User};
use renkei_tests::care::{consent, patient, person, withdrawal};
use renkei_tests::{Backend, TestApp};
use uuid::Uuid;

/// The cast, by index: 0 and 1 are physicians, then a nurse, a care manager and a pharmacist.
const USERS: usize = 5;
const PHYSICIANS: [usize; 2] = [0, 1];

#[derive(Debug, Clone)]
enum Op {
    /// Record or amend consent: the scope names these users (bit mask over 1..USERS; never empty).
    Consent(u8),
    Withdraw,
    Invite(usize),
    Accept(usize),
    Decline(usize),
    Remove(usize),
    Leave(usize),
    Handover(usize),
    AcceptHandover,
    Archive,
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        3 => (1u8..16).prop_map(Op::Consent),
        1 => Just(Op::Withdraw),
        4 => user.clone().prop_map(Op::Invite),
        4 => user.clone().prop_map(Op::Accept),
        1 => user.clone().prop_map(Op::Decline),
        1 => user.clone().prop_map(Op::Remove),
        1 => user.clone().prop_map(Op::Leave),
        1 => prop::sample::select(PHYSICIANS.to_vec()).prop_map(Op::Handover),
        1 => Just(Op::AcceptHandover),
        1 => Just(Op::Archive),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Active,
    ReadOnly,
    Archived,
}

/// The reference model of one patient group.
#[derive(Debug, Clone)]
struct Model {
    status: Status,
    /// `None` before any consent; `Some(empty)` after a withdrawal.
    scope: Option<BTreeSet<usize>>,
    attending: usize,
    active: BTreeSet<usize>,
    invited: BTreeSet<usize>,
    handover_to: Option<usize>,
}

impl Model {
    fn new() -> Self {
        Self {
            status: Status::Active,
            scope: None,
            attending: 0,
            active: BTreeSet::from([0]),
            invited: BTreeSet::new(),
            handover_to: None,
        }
    }

    fn in_scope(&self, u: usize) -> bool {
        self.scope.as_ref().is_some_and(|s| s.contains(&u))
    }

    fn member(&self, u: usize) -> bool {
        self.active.contains(&u) || self.invited.contains(&u)
    }

    /// Applies `op` if the rules allow it; returns whether they did.
    fn apply(&mut self, op: &Op) -> bool {
        let active_group = self.status == Status::Active;
        match *op {
            Op::Consent(mask) => {
                if self.status == Status::Archived {
                    return false;
                }
                let scope: BTreeSet<usize> = (1..USERS).filter(|u| mask & (1 << (u - 1)) != 0).collect();
                let attending = self.attending;
                self.active.retain(|u| *u == attending || scope.contains(u));
                self.invited.retain(|u| scope.contains(u));
                self.scope = Some(scope);
                self.status = Status::Active;
                self.clear_stale_handover();
                true
            }
            Op::Withdraw => {
                if self.status == Status::Archived {
                    return false;
                }
                self.active = BTreeSet::from([self.attending]);
                self.invited.clear();
                self.scope = Some(BTreeSet::new());
                self.status = Status::ReadOnly;
                self.handover_to = None;
                true
            }
            Op::Invite(u) => {
                let ok = active_group && self.in_scope(u) && !self.member(u) && u != self.attending;
                if ok {
                    self.invited.insert(u);
                }
                ok
            }
            Op::Accept(u) | Op::Decline(u) => {
                let ok = active_group && self.invited.contains(&u);
                if ok {
                    self.invited.remove(&u);
                    if matches!(op, Op::Accept(_)) {
                        self.active.insert(u);
                    }
                }
                ok
            }
            Op::Remove(u) => {
                let ok = active_group && self.member(u) && u != self.attending;
                if ok {
                    self.active.remove(&u);
                    self.invited.remove(&u);
                    self.clear_stale_handover();
                }
                ok
            }
            Op::Leave(u) => {
                let ok = self.status != Status::Archived && self.active.contains(&u) && u != self.attending;
                if ok {
                    self.active.remove(&u);
                    self.clear_stale_handover();
                }
                ok
            }
            Op::Handover(u) => {
                let ok = active_group && self.in_scope(u) && self.active.contains(&u) && u != self.attending;
                if ok {
                    self.handover_to = Some(u);
                }
                ok
            }
            Op::AcceptHandover => match self.handover_to {
                Some(u) if active_group && self.active.contains(&u) => {
                    self.attending = u;
                    self.handover_to = None;
                    true
                }
                _ => false,
            },
            Op::Archive => {
                let ok = self.status != Status::Archived;
                if ok {
                    self.status = Status::Archived;
                    self.handover_to = None;
                }
                ok
            }
        }
    }

    fn clear_stale_handover(&mut self) {
        if self.handover_to.is_some_and(|u| !self.active.contains(&u)) {
            self.handover_to = None;
        }
    }

    /// Who performs `op`: the attending physician for what is theirs, the user concerned otherwise.
    fn actor(&self, op: &Op) -> usize {
        match *op {
            Op::Accept(u) | Op::Decline(u) | Op::Leave(u) => u,
            Op::AcceptHandover => self.handover_to.unwrap_or(1),
            _ => self.attending,
        }
    }
}

struct Cast {
    users: Vec<User>,
    clients: Vec<Client>,
}

async fn run_op(cast: &Cast, group: Uuid, actor: usize, op: &Op) -> bool {
    let c = &cast.clients[actor];
    let login = |u: usize| cast.users[u].login.clone();
    let result = match op {
        Op::Consent(mask) => {
            let scope = (1..USERS).filter(|u| mask & (1 << (u - 1)) != 0).map(|u| person(cast.users[u].id)).collect();
            c.record_consent(group, &consent(scope)).await.map(drop)
        }
        Op::Withdraw => c.withdraw_consent(group, &withdrawal()).await.map(drop),
        Op::Invite(u) => c.invite(group, &login(*u)).await.map(drop),
        Op::Accept(_) | Op::Decline(_) => {
            let pending = c.invitations().await.expect("invitations").invitations;
            match pending.into_iter().find(|i| i.group_id == group) {
                Some(i) if matches!(op, Op::Accept(_)) => c.accept_invitation(i.id).await.map(drop),
                Some(i) => c.decline_invitation(i.id).await,
                None => return false,
            }
        }
        Op::Remove(u) => c.remove_member(group, &login(*u)).await,
        Op::Leave(_) => c.leave(group).await,
        Op::Handover(u) => c.handover(group, &login(*u)).await.map(drop),
        Op::AcceptHandover => c.answer_handover(group, true).await.map(drop),
        Op::Archive => c.archive(group).await.map(drop),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            assert!(e.code().is_some(), "an untyped failure: {e:?}");
            false
        }
    }
}

async fn check_sequence(cast: &Cast, ops: &[Op]) -> Result<(), TestCaseError> {
    let group = cast.clients[0].open_group(&patient("山田 花子 様", "山田 花子")).await.expect("open").id;
    let mut model = Model::new();
    for (step, op) in ops.iter().enumerate() {
        let actor = model.actor(op);
        let allowed = model.apply(op);
        let happened = run_op(cast, group, actor, op).await;
        prop_assert_eq!(happened, allowed, "step {} {:?} by user {}: model {:?}", step, op, actor, model);
        for (u, client) in cast.clients.iter().enumerate() {
            let can_read = client.group(group).await.is_ok();
            prop_assert_eq!(
                can_read,
                model.active.contains(&u),
                "step {} {:?}: user {} read access; model {:?}",
                step,
                op,
                u,
                model
            );
        }
    }
    Ok(())
}

async fn property(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let mut users = Vec::new();
    let mut clients = Vec::new();
    for (login, p) in [
        ("dr-zero", Profession::Physician),
        ("dr-one", Profession::Physician),
        ("ns-two", Profession::Nurse),
        ("cm-three", Profession::CareManager),
        ("ph-four", Profession::Pharmacist),
    ] {
        let (user, client) = app.member(&admin, login, p).await;
        users.push(user);
        clients.push(client);
    }
    let cast = Cast { users, clients };
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config { cases: 48, failure_persistence: None, ..Config::default() });
    let result = tokio::task::block_in_place(|| {
        runner.run(&prop::collection::vec(op(), 1..30), |ops| handle.block_on(check_sequence(&cast, &ops)))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_always_equal_the_models_active_members_sqlite() {
    property(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_always_equal_the_models_active_members_postgres() {
    property(Backend::Postgres).await;
}
