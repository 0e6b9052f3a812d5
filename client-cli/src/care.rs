//! Care-team commands: groups, consent, invitations, membership, and the administrators' group views.
//! A group is named by its id, a prefix of its id, or its label; an invitation by its id or its group's
//! label.

use renkei_cli::Client;
use renkei_cli::i18n::{Msg, profession_text, role_text, status_text};
use renkei_protocol::{
    Consent, ConsentChange, Consenter, Group, Invitation, Person, RecordConsentRequest, ScopeEntry,
    WithdrawConsentRequest,
};
use uuid::Uuid;

use crate::args::{ConsentArgs, ConsentCommand, ConsenterArgs, GroupCommand, WireEnum};
use crate::output::{CliError, Output};
use crate::records::export_folder;

type Result<T> = std::result::Result<T, CliError>;

/// Finds one of my groups by id, id prefix (4+ characters) or label (exact, else a unique substring).
pub async fn resolve_group(client: &Client, key: &str) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(key) {
        return Ok(id);
    }
    let groups = client.groups().await?.groups;
    let key = key.trim();
    let by = |pred: &dyn Fn(&renkei_protocol::GroupSummary) -> bool| -> Vec<Uuid> {
        groups.iter().filter(|g| pred(g)).map(|g| g.id).collect()
    };
    for candidates in [
        by(&|g| g.label == key),
        by(&|g| key.len() >= 4 && g.id.simple().to_string().starts_with(&key.replace('-', ""))),
        by(&|g| g.label.contains(key)),
    ] {
        match candidates.as_slice() {
            [one] => return Ok(*one),
            [] => continue,
            _ => return Err(CliError::Message(Msg::AmbiguousGroup)),
        }
    }
    Err(CliError::Message(Msg::NoSuchGroup))
}

/// Finds a group among all of them, as an administrator sees them: by id, id prefix (4+ characters), the
/// neutral reference of a patient group (`P-1a2b3c4d`), or a community group's label (exact, else a
/// unique substring).
pub async fn resolve_admin_group(client: &Client, key: &str) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(key) {
        return Ok(id);
    }
    let groups = client.admin_groups().await?.groups;
    let key = key.trim();
    let by = |pred: &dyn Fn(&renkei_protocol::AdminGroup) -> bool| -> Vec<Uuid> {
        groups.iter().filter(|g| pred(g)).map(|g| g.id).collect()
    };
    for candidates in [
        by(&|g| g.reference.eq_ignore_ascii_case(key) || g.label.as_deref() == Some(key)),
        by(&|g| key.len() >= 4 && g.id.simple().to_string().starts_with(&key.to_ascii_lowercase().replace('-', ""))),
        by(&|g| g.label.as_deref().is_some_and(|l| l.contains(key))),
    ] {
        match candidates.as_slice() {
            [one] => return Ok(*one),
            [] => continue,
            _ => return Err(CliError::Message(Msg::AmbiguousGroup)),
        }
    }
    Err(CliError::Message(Msg::NoSuchGroup))
}

pub(crate) fn person_text(out: &Output, p: &Person) -> String {
    format!("{}（{}・{}）", p.display_name, profession_text(p.profession, out.lang), p.organisation)
}

fn scope_text(out: &Output, scope: &[ScopeEntry]) -> String {
    if scope.is_empty() {
        return "—".into();
    }
    scope
        .iter()
        .map(|e| {
            let mut parts = Vec::new();
            if let Some(o) = &e.organisation {
                parts.push(o.clone());
            }
            if let Some(p) = e.profession {
                parts.push(profession_text(p, out.lang).to_owned());
            }
            if let Some(u) = e.user {
                parts.push(format!("user:{u}"));
            }
            parts.join(" ∧ ")
        })
        .collect::<Vec<_>>()
        .join(" ／ ")
}

fn show_group(out: &Output, g: &Group) {
    if out.json {
        out.json(g);
        return;
    }
    let mut rows = vec![
        ("label", g.label.clone()),
        ("status", status_text(g.status, out.lang).to_owned()),
        ("attending", g.attending_physician.as_ref().map(|p| person_text(out, p)).unwrap_or_default()),
        ("my role", role_text(g.my_role, out.lang).to_owned()),
        ("consent", g.consent_version.map(|v| format!("v{v}")).unwrap_or_else(|| "—".into())),
    ];
    if let Some(p) = &g.patient {
        rows.push(("patient", p.full_name.clone()));
        rows.push(("kana", p.kana.clone().unwrap_or_default()));
        rows.push(("number", p.patient_number.clone().unwrap_or_default()));
    }
    if let Some(notes) = &g.notes {
        rows.push(("notes", notes.clone()));
    }
    if let Some(h) = &g.handover_to {
        rows.push(("handover to", person_text(out, h)));
    }
    rows.push(("id", g.id.to_string()));
    rows.push(("created", out.time(g.created_at)));
    out.record(&rows);
}

fn show_consent_change(out: &Output, change: &ConsentChange) {
    if out.json {
        out.json(change);
        return;
    }
    out.say(Msg::ConsentRecorded);
    show_consents(out, std::slice::from_ref(&change.consent));
    if !change.removed.is_empty() {
        println!("\n{}", out.msg(Msg::RemovedByConsent));
        for p in &change.removed {
            println!("  {}", person_text(out, p));
        }
    }
}

fn show_consents(out: &Output, consents: &[Consent]) {
    consent_table(
        out,
        consents.iter().map(|c| {
            let who = match &c.consenter.relationship {
                Some(r) => format!("{}（{} {}）", c.consenter.name, c.consenter.kind.as_str(), r),
                None => format!("{}（{}）", c.consenter.name, c.consenter.kind.as_str()),
            };
            (c.version, c.kind, who, c.method, c.obtained_on, c.scope.as_slice())
        }),
    );
}

/// One table for consent versions, whether members see them (with names) or administrators (without).
pub(crate) fn consent_table<'a>(
    out: &Output,
    versions: impl Iterator<
        Item = (
            i32,
            renkei_protocol::ConsentKind,
            String,
            renkei_protocol::ConsentMethod,
            time::Date,
            &'a [ScopeEntry],
        ),
    >,
) {
    let rows = versions
        .map(|(version, kind, consenter, method, obtained_on, scope)| {
            vec![
                format!("v{version}"),
                kind.as_str().to_owned(),
                consenter,
                method.as_str().to_owned(),
                obtained_on.to_string(),
                scope_text(out, scope),
            ]
        })
        .collect();
    out.table(&["version", "kind", "consenter", "method", "obtained", "scope"], rows);
}

fn show_invitations(out: &Output, invitations: &[Invitation]) {
    let rows = invitations
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.group_label.clone(),
                person_text(out, &i.invited_by),
                out.time(i.invited_at),
                out.time(i.expires_at),
            ]
        })
        .collect();
    out.table(&["invitation", "group", "invited by", "invited", "expires"], rows);
}

pub async fn group_cmd(client: &Client, out: &Output, cmd: GroupCommand) -> Result<()> {
    match cmd {
        GroupCommand::Open { label, patient_name, kana, patient_number, notes } => {
            let req = renkei_protocol::OpenGroupRequest {
                label,
                patient: renkei_protocol::PatientIdentifiers { full_name: patient_name, kana, patient_number },
                notes,
            };
            let group = client.open_group(&req).await?;
            out.say(Msg::GroupOpened);
            show_group(out, &group);
        }
        GroupCommand::List => {
            let list = client.groups().await?;
            if out.json {
                out.json(&list);
                return Ok(());
            }
            let rows = list
                .groups
                .iter()
                .map(|g| {
                    vec![
                        g.label.clone(),
                        g.kind.as_str().to_owned(),
                        status_text(g.status, out.lang).to_owned(),
                        role_text(g.my_role, out.lang).to_owned(),
                        g.id.to_string(),
                    ]
                })
                .collect();
            out.table(&["group", "kind", "status", "my role", "id"], rows);
        }
        GroupCommand::Show { group } => {
            let id = resolve_group(client, &group).await?;
            show_group(out, &client.group(id).await?);
        }
        GroupCommand::Members { group } => {
            let id = resolve_group(client, &group).await?;
            let list = client.members(id).await?;
            if out.json {
                out.json(&list);
                return Ok(());
            }
            let rows = list
                .members
                .iter()
                .map(|m| {
                    vec![
                        m.person.display_name.clone(),
                        profession_text(m.person.profession, out.lang).to_owned(),
                        m.person.organisation.clone(),
                        role_text(m.role, out.lang).to_owned(),
                        out.time(m.since),
                    ]
                })
                .collect();
            out.table(&["name", "profession", "organisation", "role", "since"], rows);
        }
        GroupCommand::Archive { group } => {
            let id = resolve_group(client, &group).await?;
            let g = client.archive(id).await?;
            out.say(Msg::Archived);
            show_group(out, &g);
        }
        GroupCommand::Handover { group, to } => {
            let id = resolve_group(client, &group).await?;
            let g = client.handover(id, &to).await?;
            out.say(Msg::HandoverRequested);
            show_group(out, &g);
        }
        GroupCommand::Export { group, markdown, output, files } => {
            let id = resolve_group(client, &group).await?;
            let text = if markdown {
                let language = match out.lang {
                    renkei_cli::i18n::Lang::Ja => "ja",
                    renkei_cli::i18n::Lang::En => "en",
                };
                client.export_timeline_markdown_in(id, language).await?
            } else {
                serde_json::to_string_pretty(&client.export_timeline(id).await?)
                    .expect("a timeline serialises: plain fields, string keys")
            };
            match (output, files) {
                (_, Some(dir)) => export_folder(client, out, id, &dir, markdown, &text).await?,
                (Some(path), None) => std::fs::write(&path, text)?,
                (None, None) => println!("{text}"),
            }
        }
        GroupCommand::AccessReport { group } => {
            let id = resolve_group(client, &group).await?;
            let report = client.access_report(id).await?;
            if out.json {
                out.json(&report);
                return Ok(());
            }
            let name = |id: Option<Uuid>| {
                id.and_then(|id| report.people.iter().find(|p| p.id == id))
                    .map(|p| p.display_name.clone())
                    .unwrap_or_default()
            };
            let rows = report
                .events
                .iter()
                .map(|e| {
                    vec![
                        out.time(e.at),
                        e.action.clone(),
                        name(e.actor_id),
                        name(e.target_user_id),
                        e.details.to_string(),
                    ]
                })
                .collect();
            out.table(&["at", "action", "by", "whom", "details"], rows);
        }
        GroupCommand::AcceptHandover { group } => {
            let id = resolve_group(client, &group).await?;
            let g = client.answer_handover(id, true).await?;
            out.say(Msg::HandoverAccepted);
            show_group(out, &g);
        }
        GroupCommand::DeclineHandover { group } => {
            let id = resolve_group(client, &group).await?;
            let g = client.answer_handover(id, false).await?;
            out.say(Msg::HandoverDeclined);
            show_group(out, &g);
        }
    }
    Ok(())
}

/// Parses `key=value[,key=value…]` into one scope entry; `user=` takes a login or id.
async fn scope_entry(client: &Client, text: &str) -> Result<ScopeEntry> {
    let mut entry = ScopeEntry { organisation: None, profession: None, user: None };
    for part in text.split(',') {
        let (key, value) =
            part.split_once('=').ok_or_else(|| CliError::Other(format!("scope entry {part:?}: expected key=value")))?;
        let value = value.trim();
        match key.trim() {
            "organisation" | "organization" | "org" => entry.organisation = Some(value.to_owned()),
            "profession" => {
                let p = renkei_protocol::Profession::parse_wire(&value.to_ascii_lowercase().replace('-', "_"))
                    .ok_or_else(|| CliError::Other(format!("unknown profession {value:?}")))?;
                entry.profession = Some(p);
            }
            "user" => entry.user = Some(client.lookup_user(value).await?.id),
            other => {
                return Err(CliError::Other(format!("unknown scope key {other:?} (organisation, profession, user)")));
            }
        }
    }
    Ok(entry)
}

fn consenter(args: &ConsenterArgs) -> Consenter {
    Consenter { kind: args.consenter, name: args.name.clone(), relationship: args.relationship.clone() }
}

pub async fn consent_cmd(client: &Client, out: &Output, cmd: ConsentCommand) -> Result<()> {
    match cmd {
        ConsentCommand::Record(args) | ConsentCommand::Amend(args) => record(client, out, args).await,
        ConsentCommand::Withdraw(args) => {
            let id = resolve_group(client, &args.group).await?;
            let req =
                WithdrawConsentRequest { consenter: consenter(&args), method: args.method, obtained_on: args.date };
            show_consent_change(out, &client.withdraw_consent(id, &req).await?);
            Ok(())
        }
        ConsentCommand::History { group } => {
            let id = resolve_group(client, &group).await?;
            let history = client.consents(id).await?;
            if out.json {
                out.json(&history);
            } else {
                show_consents(out, &history.consents);
            }
            Ok(())
        }
    }
}

async fn record(client: &Client, out: &Output, args: ConsentArgs) -> Result<()> {
    let id = resolve_group(client, &args.consenter.group).await?;
    let mut scope = Vec::with_capacity(args.scope.len());
    for text in &args.scope {
        scope.push(scope_entry(client, text).await?);
    }
    let req = RecordConsentRequest {
        consenter: consenter(&args.consenter),
        method: args.consenter.method,
        obtained_on: args.consenter.date,
        scope,
    };
    show_consent_change(out, &client.record_consent(id, &req).await?);
    Ok(())
}

pub async fn invite(client: &Client, out: &Output, group: &str, user: &str) -> Result<()> {
    let id = resolve_group(client, group).await?;
    let invitation = client.invite(id, user).await?;
    if out.json {
        out.json(&invitation);
    } else {
        out.say(Msg::Invited);
        println!("  {} → {}", person_text(out, &invitation.invitee), invitation.group_label);
    }
    Ok(())
}

pub async fn invitations(client: &Client, out: &Output) -> Result<()> {
    let list = client.invitations().await?;
    if out.json {
        out.json(&list);
    } else {
        show_invitations(out, &list.invitations);
    }
    Ok(())
}

/// Finds a pending invitation by id, or by its group's label; alone when there is only one.
async fn resolve_invitation(client: &Client, key: Option<&str>) -> Result<Uuid> {
    let pending = client.invitations().await?.invitations;
    let matches: Vec<Uuid> = match key {
        None => pending.iter().map(|i| i.id).collect(),
        Some(k) => pending
            .iter()
            .filter(|i| i.id.to_string().starts_with(k) || i.group_label == k || i.group_label.contains(k))
            .map(|i| i.id)
            .collect(),
    };
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => match key.and_then(|k| Uuid::parse_str(k).ok()) {
            Some(id) => Ok(id),
            None => Err(CliError::Message(Msg::NoSuchInvitation)),
        },
        _ => Err(CliError::Message(Msg::AmbiguousGroup)),
    }
}

pub async fn answer(client: &Client, out: &Output, key: Option<&str>, accept: bool) -> Result<()> {
    let id = resolve_invitation(client, key).await?;
    if accept {
        let group = client.accept_invitation(id).await?;
        out.say(Msg::Joined);
        show_group(out, &group);
    } else {
        client.decline_invitation(id).await?;
        out.say(Msg::Declined);
    }
    Ok(())
}

pub async fn remove(client: &Client, out: &Output, group: &str, user: &str) -> Result<()> {
    let id = resolve_group(client, group).await?;
    client.remove_member(id, user).await?;
    out.say(Msg::MemberRemoved);
    Ok(())
}

pub async fn leave(client: &Client, out: &Output, group: &str) -> Result<()> {
    let id = resolve_group(client, group).await?;
    client.leave(id).await?;
    out.say(Msg::LeftGroup);
    Ok(())
}
