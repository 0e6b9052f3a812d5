//! Provisioning: users with the professions of a real municipality and patient groups opened,
//! consented and joined through the API, exactly as people would do it.

use anyhow::{Context, Result};
use futures_util::StreamExt;
use renkei_cli::Client;
use renkei_protocol::{
    ConsentMethod, Consenter, ConsenterKind, CreateUserRequest, OpenGroupRequest, PatientIdentifiers, Profession,
    RecordConsentRequest, Role, ScopeEntry, Sensitive,
};
use uuid::Uuid;

/// Registered professionals in Musashino (2017), physicians left out: each group's attending
/// physician is added separately, the other members are drawn in these proportions.
const MIX: [(Profession, u32); 8] = [
    (Profession::Dentist, 21),
    (Profession::Pharmacist, 73),
    (Profession::Nurse, 85),
    (Profession::CareManager, 100),
    (Profession::CareWorker, 59),
    (Profession::SupportCentre, 30),
    (Profession::Government, 3),
    (Profession::Other, 18),
];

fn organisation(profession: Profession, n: usize) -> String {
    let kind = match profession {
        Profession::Physician => "内科クリニック",
        Profession::Dentist => "歯科医院",
        Profession::Pharmacist => "薬局",
        Profession::Nurse => "訪問看護ステーション",
        Profession::CareManager => "居宅介護支援事業所",
        Profession::CareWorker => "訪問介護事業所",
        Profession::SupportCentre => "地域包括支援センター",
        _ => "事業所",
    };
    format!("ベンチ{}{kind}", n % 20)
}

/// A small deterministic generator, so that every run draws the same mix.
struct Draw(u64);

impl Draw {
    fn profession(&mut self) -> Profession {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut pick = u32::try_from(self.0 % u64::from(total)).unwrap_or(0);
        for (profession, weight) in MIX {
            if pick < weight {
                return profession;
            }
            pick -= weight;
        }
        Profession::Other
    }
}

/// A member with a logged-in client.
#[derive(Debug, Clone)]
pub struct Member {
    pub login: String,
    pub profession: Profession,
    pub client: Client,
}

/// A patient group; `members[0]` is the attending physician.
#[derive(Debug)]
pub struct Group {
    pub id: Uuid,
    pub members: Vec<Member>,
}

/// Creates `groups` patient groups of `size` members each (all distinct users), `concurrency` groups
/// at a time. Logins are `bench-<run>-<group>-<member>`.
pub async fn provision(
    admin: &Client,
    run: &str,
    groups: usize,
    size: usize,
    concurrency: usize,
) -> Result<Vec<Group>> {
    let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
    let plans: Vec<Vec<Profession>> = (0..groups)
        .map(|_| std::iter::once(Profession::Physician).chain((1..size).map(|_| draw.profession())).collect())
        .collect();
    let password = Sensitive::new(format!("bench-member-{}", Uuid::new_v4().simple()));
    let mut made: Vec<(usize, Group)> = futures_util::stream::iter(plans.into_iter().enumerate())
        .map(|(g, plan)| provision_group(admin, run, g, plan, &password))
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    made.sort_by_key(|(g, _)| *g);
    Ok(made.into_iter().map(|(_, group)| group).collect())
}

async fn provision_group(
    admin: &Client,
    run: &str,
    g: usize,
    plan: Vec<Profession>,
    password: &Sensitive,
) -> Result<(usize, Group)> {
    let mut members = Vec::with_capacity(plan.len());
    for (m, profession) in plan.into_iter().enumerate() {
        let login = format!("bench-{run}-{g:05}-{m}");
        members.push(member(admin, &login, profession, g + m, password).await?);
    }
    let physician = &members[0].client;
    let group = physician
        .open_group(&OpenGroupRequest {
            label: format!("ベンチ {g} 様"),
            patient: PatientIdentifiers {
                full_name: format!("ベンチ患者 {run}-{g}"),
                kana: None,
                patient_number: Some(format!("B-{run}-{g}")),
            },
            notes: None,
        })
        .await
        .context("open group")?;
    let mut scope: Vec<ScopeEntry> = Vec::new();
    for member in &members[1..] {
        if !scope.iter().any(|s| s.profession == Some(member.profession)) {
            scope.push(ScopeEntry { organisation: None, profession: Some(member.profession), user: None });
        }
    }
    if !scope.is_empty() {
        physician
            .record_consent(
                group.id,
                &RecordConsentRequest {
                    consenter: Consenter { kind: ConsenterKind::Patient, name: "本人".into(), relationship: None },
                    method: ConsentMethod::Written,
                    obtained_on: time::OffsetDateTime::now_utc().date(),
                    scope,
                },
            )
            .await
            .context("record consent")?;
    }
    for member in &members[1..] {
        physician.invite(group.id, &member.login).await.context("invite")?;
        let invitation = member
            .client
            .invitations()
            .await?
            .invitations
            .into_iter()
            .find(|i| i.group_id == group.id)
            .context("the invitation did not arrive")?;
        member.client.accept_invitation(invitation.id).await.context("accept")?;
    }
    Ok((g, Group { id: group.id, members }))
}

async fn member(admin: &Client, login: &str, profession: Profession, n: usize, password: &Sensitive) -> Result<Member> {
    let created = admin
        .admin_create_user(&CreateUserRequest {
            login: login.to_owned(),
            display_name: format!("{login} さん"),
            kana: None,
            profession,
            organisation: organisation(profession, n),
            phone: Some("0422-00-0000".into()),
            role: Role::Member,
            initial_password: None,
        })
        .await
        .context("create user")?;
    let setup = created.setup.context("no setup token")?;
    // The administrator's client shares its connection pool with every member's.
    let mut client = admin.clone().without_token();
    client.setup_password(&setup.token, password).await.context("set password")?;
    client.login(login, password, None).await.context("login")?;
    Ok(Member { login: login.to_owned(), profession, client })
}
