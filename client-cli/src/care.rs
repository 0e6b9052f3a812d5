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

use crate::args::{CommunityCommand, ConsentArgs, ConsentCommand, ConsenterArgs, GroupCommand, WireEnum};
use crate::output::{CliError, Output};

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

fn person_text(out: &Output, p: &Person) -> String {
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
fn consent_table<'a>(
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
                serde_json::to_string_pretty(&client.export_timeline(id).await?).unwrap_or_default()
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

pub async fn admin_groups(client: &Client, out: &Output, group: Option<Uuid>) -> Result<()> {
    let groups = match group {
        Some(id) => vec![client.admin_group(id).await?],
        None => client.admin_groups().await?.groups,
    };
    if out.json {
        match group {
            Some(_) => out.json(&groups[0]),
            None => out.json(&renkei_protocol::AdminGroupList { groups }),
        }
        return Ok(());
    }
    if group.is_none() {
        let rows = groups
            .iter()
            .map(|g| {
                let active =
                    g.memberships.iter().filter(|m| m.state == renkei_protocol::MembershipState::Active).count();
                vec![
                    g.label.clone().unwrap_or_else(|| g.reference.clone()),
                    g.kind.as_str().to_owned(),
                    status_text(g.status, out.lang).to_owned(),
                    g.attending_physician.as_ref().map(|p| p.display_name.clone()).unwrap_or_default(),
                    active.to_string(),
                    g.consents.last().map(|c| format!("v{}", c.version)).unwrap_or_else(|| "—".into()),
                    g.id.to_string(),
                ]
            })
            .collect();
        out.table(&["group", "kind", "status", "attending", "members", "consent", "id"], rows);
        return Ok(());
    }
    let g = &groups[0];
    out.record(&[
        ("group", g.label.clone().unwrap_or_else(|| g.reference.clone())),
        ("kind", g.kind.as_str().to_owned()),
        ("status", status_text(g.status, out.lang).to_owned()),
        ("id", g.id.to_string()),
    ]);
    println!();
    let rows = g
        .memberships
        .iter()
        .map(|m| {
            vec![
                person_text(out, &m.person),
                role_text(m.role, out.lang).to_owned(),
                m.state.as_str().to_owned(),
                out.time(m.invited_at),
                m.joined_at.map(|t| out.time(t)).unwrap_or_default(),
                m.ended_at.map(|t| out.time(t)).unwrap_or_default(),
            ]
        })
        .collect();
    out.table(&["member", "role", "state", "invited", "joined", "ended"], rows);
    println!();
    consent_table(
        out,
        g.consents.iter().map(|c| {
            (c.version, c.kind, c.consenter_kind.as_str().to_owned(), c.method, c.obtained_on, c.scope.as_slice())
        }),
    );
    Ok(())
}

pub async fn community_cmd(client: &Client, out: &Output, cmd: CommunityCommand) -> Result<()> {
    match cmd {
        CommunityCommand::Create { label } => {
            let group = client.admin_create_community_group(&label).await?;
            if out.json {
                out.json(&group);
            } else {
                out.record(&[("label", group.label.clone().unwrap_or_default()), ("id", group.id.to_string())]);
            }
        }
        CommunityCommand::Add { group, user } => {
            let group = resolve_admin_group(client, &group).await?;
            client.admin_add_community_member(group, &user).await?;
            out.say(Msg::CommunityMemberAdded);
        }
        CommunityCommand::Remove { group, user } => {
            let group = resolve_admin_group(client, &group).await?;
            client.admin_remove_community_member(group, &user).await?;
            out.say(Msg::MemberRemoved);
        }
    }
    Ok(())
}

/// The timeline and every file its posts (and their earlier versions) shared, in a new folder: what a
/// clinic files in the medical record. A file of a deleted post is no longer served and is left out.
async fn export_folder(
    client: &Client,
    out: &Output,
    group: Uuid,
    dir: &std::path::Path,
    markdown: bool,
    text: &str,
) -> Result<()> {
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    std::fs::write(dir.join(if markdown { "timeline.md" } else { "timeline.json" }), text)?;
    let export = client.export_timeline(group).await?;
    let mut seen = std::collections::HashSet::new();
    let (mut saved, mut gone) = (0usize, 0usize);
    for e in &export.posts {
        for a in e.post.attachments.iter().chain(e.versions.iter().flat_map(|v| v.attachments.iter())) {
            if !seen.insert(a.id) {
                continue;
            }
            match client.attachment(group, a.id, false).await {
                Ok((bytes, _)) => {
                    let name = std::path::Path::new(&a.name).file_name().map(|n| n.to_string_lossy().into_owned());
                    let path = files.join(format!("{}-{}", a.id, name.unwrap_or_default()));
                    std::fs::write(path, bytes)?;
                    saved += 1;
                }
                Err(renkei_cli::ClientError::Api { status: 404, .. }) => gone += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
    if out.json {
        out.json(&serde_json::json!({ "folder": dir, "files": saved, "files_of_deleted_posts": gone }));
    } else {
        println!("{} ({saved} files)", dir.display());
    }
    Ok(())
}

/// `renkei record`: a group's care record of a month (a readable summary, JSON, CSV or HTML), or without a
/// group the month's summary of every group I attend.
pub async fn care_record(
    client: &Client,
    out: &Output,
    group: Option<&str>,
    month: &str,
    csv: bool,
    html: bool,
    output: Option<std::path::PathBuf>,
) -> Result<()> {
    let emit = |text: String| -> Result<()> {
        match &output {
            Some(path) => std::fs::write(path, text)?,
            None => print!("{text}"),
        }
        Ok(())
    };
    let Some(group) = group else {
        let summary = client.record_summary(month).await?;
        if out.json {
            return emit(serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n");
        }
        let rows = summary
            .groups
            .iter()
            .map(|g| {
                let state = if g.complete { Msg::RecordComplete } else { Msg::RecordIncomplete };
                let gaps: Vec<&str> = g.gaps.iter().map(|g| g.as_str()).collect();
                vec![g.label.clone(), out.msg(state).to_owned(), gaps.join(" "), g.organisations.to_string()]
            })
            .collect();
        out.table(&["group", "record", "gaps", "organisations"], rows);
        println!("{}: {}", out.msg(Msg::LinkedOrganisations), summary.organisations.len());
        for o in &summary.organisations {
            println!("  {o}");
        }
        return Ok(());
    };
    let id = resolve_group(client, group).await?;
    if csv || html {
        return emit(client.care_record_as(id, month, if csv { "csv" } else { "html" }).await?);
    }
    let record = client.care_record(id, month).await?;
    if out.json || output.is_some() {
        return emit(serde_json::to_string_pretty(&record).unwrap_or_default() + "\n");
    }
    let state = if record.complete { Msg::RecordComplete } else { Msg::RecordIncomplete };
    println!("{} {} — {}", record.label, record.month, out.msg(state));
    for gap in &record.gaps {
        println!("  - {}", gap.as_str());
    }
    for post in &record.care_policies {
        println!("{}", crate::messages::render_post(out, None, post));
    }
    for seen in &record.seen_posts {
        println!("{}", crate::messages::render_post(out, None, &seen.post));
    }
    if let Some(c) = &record.consent {
        println!("consent v{} {} {}", c.version, c.kind.as_str(), c.obtained_on);
    }
    println!("{}: {}", out.msg(Msg::LinkedOrganisations), record.organisations.join("、"));
    Ok(())
}

/// `renkei admin office`: each office's own rules.
pub async fn office_cmd(client: &Client, out: &Output, cmd: crate::args::OfficeCommand) -> Result<()> {
    use crate::args::OfficeCommand;
    let show = |rules: &[renkei_protocol::OfficeRules]| {
        let rows = rules
            .iter()
            .map(|o| {
                let export: Vec<&str> = o.timeline_export.iter().map(|p| p.as_str()).collect();
                vec![
                    o.organisation.clone(),
                    export.join(","),
                    o.attachment_networks.join(","),
                    o.purge_archived_after_days.map(|d| d.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        out.table(&["organisation", "timeline export", "download networks", "retention days"], rows);
    };
    match cmd {
        OfficeCommand::List => {
            let list = client.admin_offices().await?;
            if out.json {
                out.json(&list);
            } else {
                show(&list.offices);
            }
        }
        OfficeCommand::Set { organisation, export, networks, retention_days } => {
            let update = renkei_protocol::OfficeRulesUpdate {
                timeline_export: export,
                attachment_networks: networks,
                purge_archived_after_days: retention_days,
            };
            let rules = client.admin_set_office_rules(&organisation, &update).await?;
            if out.json {
                out.json(&rules);
            } else {
                show(std::slice::from_ref(&rules));
            }
        }
    }
    Ok(())
}
