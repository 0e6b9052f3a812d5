//! Administrators' commands: accounts, the audit log, community groups, the groups' membership view and
//! the offices' rules.

use renkei_cli::Client;
use renkei_cli::i18n::{Msg, profession_text, role_text, status_text};
use renkei_protocol::{CreateUserRequest, User};
use uuid::Uuid;

use crate::args::{AdminUserCommand, CommunityCommand};
use crate::care::{consent_table, person_text, resolve_admin_group};
use crate::commands::{Context, read_new_password, setup_link};
use crate::output::{CliError, Output, rfc3339};

type Result<T> = std::result::Result<T, CliError>;

pub(crate) async fn admin_user_cmd(ctx: &Context, out: &Output, cmd: AdminUserCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        AdminUserCommand::Add {
            login,
            display_name,
            kana,
            profession,
            organisation,
            phone,
            admin,
            initial_password,
        } => {
            let initial_password = if initial_password { Some(read_new_password(out)?) } else { None };
            let req = CreateUserRequest {
                login,
                display_name,
                kana,
                profession,
                organisation,
                phone,
                role: if admin { renkei_protocol::Role::Admin } else { renkei_protocol::Role::Member },
                initial_password,
            };
            let created = client.admin_create_user(&req).await?;
            if out.json {
                out.json(&serde_json::json!({
                    "user": created.user,
                    "setup_token": created.setup.as_ref().map(|s| s.token.expose()),
                    "setup_link": created.setup.as_ref().map(|s| setup_link(client.base_url(), s.token.expose())),
                    "setup_token_expires_at": created.setup.as_ref().map(|s| rfc3339(s.expires_at)),
                }));
                return Ok(());
            }
            out.say(Msg::UserCreated);
            show_user(out, &created.user);
            if let Some(setup) = created.setup {
                println!("\n{}", out.msg(Msg::SetupTokenHandOver));
                out.record(&[
                    ("setup_token", setup.token.expose().to_owned()),
                    ("expires", out.time(setup.expires_at)),
                    ("link", setup_link(client.base_url(), setup.token.expose())),
                    ("command", format!("renkei --server {} setup", client.base_url())),
                ]);
            }
            Ok(())
        }
        AdminUserCommand::List => {
            let list = client.admin_list_users().await?;
            if out.json {
                out.json(&list);
                return Ok(());
            }
            let rows = list
                .users
                .iter()
                .map(|u| {
                    vec![
                        u.login.clone(),
                        u.display_name.clone(),
                        profession_text(u.profession, out.lang).to_owned(),
                        u.organisation.clone(),
                        u.role.as_str().to_owned(),
                        u.status.as_str().to_owned(),
                        if u.totp_enabled { "totp" } else { "" }.to_owned(),
                    ]
                })
                .collect();
            out.table(&["login", "name", "profession", "organisation", "role", "status", "2fa"], rows);
            Ok(())
        }
        AdminUserCommand::Show { user } => {
            let user = client.admin_show_user(&user).await.map_err(|e| user_not_found(out, e, &user))?;
            show_user(out, &user);
            Ok(())
        }
        AdminUserCommand::Disable { user } => {
            let user = client.admin_disable_user(&user).await.map_err(|e| user_not_found(out, e, &user))?;
            out.say(Msg::Disabled);
            show_user(out, &user);
            Ok(())
        }
        AdminUserCommand::TotpReset { user } => {
            let user = client.admin_reset_totp(&user).await.map_err(|e| user_not_found(out, e, &user))?;
            out.say(Msg::TotpResetDone);
            show_user(out, &user);
            Ok(())
        }
        AdminUserCommand::Enable { user } => {
            let user = client.admin_enable_user(&user).await.map_err(|e| user_not_found(out, e, &user))?;
            out.say(Msg::Enabled);
            show_user(out, &user);
            Ok(())
        }
        AdminUserCommand::Sessions { user } => {
            let history = client.admin_user_sessions(&user).await.map_err(|e| user_not_found(out, e, &user))?;
            if out.json {
                out.json(&history);
                return Ok(());
            }
            let rows = history
                .sessions
                .iter()
                .map(|s| {
                    vec![
                        out.time(s.started_at),
                        s.ended_at.map(|t| out.time(t)).unwrap_or_else(|| "live".into()),
                        format!("{}m", s.duration_seconds / 60),
                        s.client_addr.clone().unwrap_or_default(),
                        s.user_agent.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            out.table(&["started", "ended", "duration", "address", "client"], rows);
            Ok(())
        }
        AdminUserCommand::SetupToken { user } => {
            let setup = client.admin_new_setup_token(&user).await.map_err(|e| user_not_found(out, e, &user))?;
            if out.json {
                out.json(&serde_json::json!({ "setup_token": setup.token.expose(), "expires_at": rfc3339(setup.expires_at) }));
                return Ok(());
            }
            println!("{}", out.msg(Msg::SetupTokenHandOver));
            out.record(&[
                ("setup_token", setup.token.expose().to_owned()),
                ("expires", out.time(setup.expires_at)),
                ("link", setup_link(client.base_url(), setup.token.expose())),
            ]);
            Ok(())
        }
    }
}

pub(crate) fn show_user(out: &Output, user: &User) {
    if out.json {
        out.json(user);
        return;
    }
    out.record(&[
        ("login", user.login.clone()),
        ("name", user.display_name.clone()),
        ("profession", profession_text(user.profession, out.lang).to_owned()),
        ("organisation", user.organisation.clone()),
        ("phone", user.phone.clone().unwrap_or_default()),
        ("role", user.role.as_str().to_owned()),
        ("status", user.status.as_str().to_owned()),
        ("totp", user.totp_enabled.to_string()),
        ("id", user.id.to_string()),
        ("created", out.time(user.created_at)),
    ]);
}

/// A user named on the command line who does not exist: the answer names them.
pub(crate) fn user_not_found(out: &Output, e: renkei_cli::ClientError, who: &str) -> CliError {
    match e.code() {
        Some(renkei_protocol::ErrorCode::NotFound) => {
            CliError::NotFound(format!("{}: {who}", out.msg(Msg::NoSuchUser)))
        }
        _ => e.into(),
    }
}

/// `--since` / `--until`: RFC 3339, or a date taken as its start in the user's time zone.
pub(crate) fn audit_time(out: &Output, option: &str, raw: Option<&str>) -> Result<Option<time::OffsetDateTime>> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(t) = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339) {
        return Ok(Some(t));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(raw, &date_format) {
        Ok(date) => Ok(Some(date.midnight().assume_offset(out.offset()))),
        Err(_) => Err(CliError::Usage(format!("{option} {raw}: {}", out.msg(Msg::NotATime)))),
    }
}

pub(crate) async fn admin_audit(
    client: &Client,
    out: &Output,
    search: &renkei_cli::client::AuditSearch,
    csv: bool,
) -> Result<()> {
    let list = client.admin_audit_search(search).await?;
    if out.json {
        out.json(&list);
        return Ok(());
    }
    // People by login and name, not by id; the directory is one request.
    let people: std::collections::HashMap<uuid::Uuid, String> = client
        .admin_list_users()
        .await?
        .users
        .into_iter()
        .map(|u| (u.id, format!("{}（{}）", u.login, u.display_name)))
        .collect();
    let who =
        |u: Option<uuid::Uuid>| u.map(|u| people.get(&u).cloned().unwrap_or_else(|| u.to_string())).unwrap_or_default();
    let opt = |u: Option<uuid::Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    if csv {
        // RFC 4180: quote every field, double the quotes inside.
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        println!("seq,at,action,actor,group,target,client_addr,session,details,hash");
        for e in &list.entries {
            let at = e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            let fields = [
                e.seq.to_string(),
                at,
                e.action.clone(),
                who(e.actor_id),
                opt(e.group_id),
                who(e.target_user_id),
                e.client_addr.clone().unwrap_or_default(),
                opt(e.session_id),
                e.details.to_string(),
                e.hash.clone(),
            ];
            println!("{}", fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(","));
        }
        return Ok(());
    }
    let details = |d: &serde_json::Value| match d.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect::<Vec<_>>()
            .join(" "),
        None => d.to_string(),
    };
    let rows = list
        .entries
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                out.time(e.at),
                e.action.clone(),
                who(e.actor_id),
                who(e.target_user_id),
                opt(e.group_id).chars().take(8).collect(),
                details(&e.details),
            ]
        })
        .collect();
    out.table(&["seq", "at", "action", "actor", "target", "group", "details"], rows);
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
