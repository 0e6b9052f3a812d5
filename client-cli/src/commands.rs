//! One function per command. Secrets come from stdin when it is piped (one per line, in the order the
//! command asks for them) and from a hidden prompt on a terminal.

use std::io::IsTerminal;

use clap::CommandFactory;
use renkei_cli::Client;
use renkei_cli::i18n::Msg;
use renkei_cli::profile::{ConfigDir, Profile};
use renkei_protocol::{ErrorCode, PendingStep, Sensitive};

use crate::args::{AdminCommand, Cli, Command, ConfigCommand, SessionsCommand, TotpCommand};
use crate::output::{CliError, Output, rfc3339};
use crate::{admin, care, messages, records, settings};

type Result<T> = std::result::Result<T, CliError>;

pub async fn run(cli: Cli, out: &Output) -> Result<()> {
    let ctx = Context::new(&cli, out.lang)?;
    match cli.command {
        Command::Login { login, totp } => login_cmd(&ctx, out, login, totp).await,
        Command::Logout => {
            let mut client = ctx.client()?;
            let result = client.logout().await;
            // Forget the token either way: an expired session is as good as logged out.
            ctx.dir.delete_token(&ctx.profile_name)?;
            match result {
                Ok(()) | Err(renkei_cli::ClientError::Api { .. }) => {
                    out.say(Msg::LoggedOut);
                    Ok(())
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Whoami => {
            let user = ctx.client()?.me().await?;
            admin::show_user(out, &user);
            Ok(())
        }
        Command::Passwd => {
            let client = ctx.client()?;
            let current = read_secret(&out.msg(Msg::CurrentPassword))?;
            let new = read_new_password(out)?;
            client.change_password(&current, &new).await?;
            out.say(Msg::PasswordChanged);
            Ok(())
        }
        Command::Setup { token } => {
            let client = ctx.anonymous_client()?;
            let token = match token {
                Some(t) => Sensitive::new(t),
                None => read_secret("Setup token: ")?,
            };
            let new = read_new_password(out)?;
            client.setup_password(&token, &new).await?;
            // The server this account lives on is this profile's from now on: `login` comes next.
            ctx.save_profile()?;
            out.say(Msg::PasswordSet);
            Ok(())
        }
        Command::Totp(cmd) => totp_cmd(&ctx, out, cmd).await,
        Command::Sessions(cmd) => sessions_cmd(&ctx, out, cmd).await,
        Command::Admin(AdminCommand::User(cmd)) => admin::admin_user_cmd(&ctx, out, cmd).await,
        Command::Admin(AdminCommand::Groups { group }) => {
            let client = ctx.client()?;
            let group = match group {
                Some(key) => Some(care::resolve_admin_group(&client, &key).await?),
                None => None,
            };
            admin::admin_groups(&client, out, group).await
        }
        Command::Admin(AdminCommand::Community(cmd)) => admin::community_cmd(&ctx.client()?, out, cmd).await,
        Command::Admin(AdminCommand::Office(cmd)) => admin::office_cmd(&ctx.client()?, out, cmd).await,
        Command::Admin(AdminCommand::Audit { user, group, action, since, until, limit, csv }) => {
            if let Some(action) = &action
                && !renkei_protocol::audit_action::ALL.contains(&action.as_str())
            {
                let known = renkei_protocol::audit_action::ALL.join(", ");
                return Err(CliError::Usage(format!("{} `{action}`: {known}", out.msg(Msg::UnknownAction))));
            }
            let client = ctx.client()?;
            let group = match group {
                Some(key) => Some(care::resolve_admin_group(&client, &key).await?),
                None => None,
            };
            let user = match user {
                Some(u) => Some(client.admin_show_user(&u).await.map_err(|e| admin::user_not_found(out, e, &u))?.id),
                None => None,
            };
            let (from, to) = (
                admin::audit_time(out, "--since", since.as_deref())?,
                admin::audit_time(out, "--until", until.as_deref())?,
            );
            let table = !out.json && !csv;
            let limit = limit.or(table.then_some(50));
            let search =
                renkei_cli::client::AuditSearch { user, group, action, from, to, newest_first: limit.is_some(), limit };
            admin::admin_audit(&client, out, &search, csv).await
        }
        Command::Group(cmd) => care::group_cmd(&ctx.client()?, out, cmd).await,
        Command::Consent(cmd) => care::consent_cmd(&ctx.client()?, out, cmd).await,
        Command::Invite { group, user } => care::invite(&ctx.client()?, out, &group, &user).await,
        Command::Invitations => care::invitations(&ctx.client()?, out).await,
        Command::Accept { invitation } => care::answer(&ctx.client()?, out, invitation.as_deref(), true).await,
        Command::Decline { invitation } => care::answer(&ctx.client()?, out, invitation.as_deref(), false).await,
        Command::Remove { group, user } => care::remove(&ctx.client()?, out, &group, &user).await,
        Command::Leave { group } => care::leave(&ctx.client()?, out, &group).await,
        Command::Post { group, body, kind, reply_to, client_id, confirm_not_emergency, attach } => {
            let options =
                messages::PostOptions { kind, reply_to, client_id, confirm_not_emergency, attach, care_policy: None };
            messages::post(&ctx.client()?, out, &group, body, options).await
        }
        Command::CarePolicy { group, cautions, next_visit, changed, summary } => {
            let care_policy = renkei_protocol::CarePolicy {
                next_visit_on: next_visit,
                policy_changed: changed,
                change_summary: summary,
            };
            let options = messages::PostOptions {
                kind: renkei_protocol::PostKind::CarePolicy,
                reply_to: None,
                client_id: None,
                confirm_not_emergency: false,
                attach: Vec::new(),
                care_policy: Some(care_policy),
            };
            messages::post(&ctx.client()?, out, &group, cautions, options).await
        }
        Command::Record { group, month, csv, html, output } => {
            records::care_record(&ctx.client()?, out, group.as_deref(), &month, csv, html, output).await
        }
        Command::Attachment(crate::args::AttachmentCommand::Get { group, id, output, thumbnail }) => {
            messages::attachment_get(&ctx.client()?, out, &group, id, output, thumbnail).await
        }
        Command::Addressed => messages::addressed(&ctx.client()?, out).await,
        Command::Availability(cmd) => settings::availability(&ctx.client()?, out, cmd).await,
        Command::Notifications(cmd) => settings::notifications(&ctx.client()?, out, cmd).await,
        Command::History { group, after, before, limit, versions } => {
            messages::history(&ctx.client()?, out, &group, after, before, limit, versions).await
        }
        Command::Edit { group, seq, body } => messages::edit(&ctx.client()?, out, &group, seq, &body).await,
        Command::Delete { group, seq } => messages::delete(&ctx.client()?, out, &group, seq).await,
        Command::Seen { group, seq, list } => messages::seen(&ctx.client()?, out, &group, seq, list).await,
        Command::Read { group, seq } => messages::read(&ctx.client()?, out, &group, seq).await,
        Command::Unread => messages::unread(&ctx.client()?, out).await,
        Command::Tail { groups, mark_read, from_start, count } => {
            messages::tail(&ctx.client()?, out, &groups, mark_read, from_start, count).await
        }
        Command::Chat { group, recent } => messages::chat(&ctx.client()?, out, &group, recent).await,
        Command::Config(ConfigCommand::Show) => {
            let logged_in = ctx.dir.load_token(&ctx.profile_name)?.is_some();
            let server = ctx.profile.server.clone().unwrap_or_default();
            let ca = ctx.profile.ca_cert.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
            if out.json {
                out.json(&serde_json::json!({
                    "config_dir": ctx.dir.path(), "profile": ctx.profile_name, "server": server,
                    "ca_cert": ca, "logged_in": logged_in,
                }));
            } else {
                out.record(&[
                    ("config_dir", ctx.dir.path().display().to_string()),
                    ("profile", ctx.profile_name.clone()),
                    ("server", server),
                    ("ca_cert", ca),
                    ("logged_in", logged_in.to_string()),
                ]);
            }
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "renkei", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// The profile in effect: the saved one, overridden by `--server` and `--ca-cert`.
pub(crate) struct Context {
    dir: ConfigDir,
    profile_name: String,
    profile: Profile,
    /// The language detected once at start (`Output` has the same).
    lang: renkei_cli::i18n::Lang,
}

impl Context {
    fn new(cli: &Cli, lang: renkei_cli::i18n::Lang) -> Result<Self> {
        let dir = ConfigDir::locate()?;
        let mut profile = dir.load()?.profiles.remove(&cli.profile).unwrap_or_default();
        if let Some(server) = &cli.server {
            profile.server = Some(server.clone());
        }
        if let Some(ca) = &cli.ca_cert {
            profile.ca_cert = Some(std::path::absolute(ca)?);
        }
        Ok(Self { dir, profile_name: cli.profile.clone(), profile, lang })
    }

    fn anonymous_client(&self) -> Result<Client> {
        let server = self.profile.server.as_deref().ok_or(CliError::Message(Msg::NoServer))?;
        Ok(Client::new(server, self.profile.ca_cert.as_deref())?)
    }

    pub(crate) fn client(&self) -> Result<Client> {
        let token = self.dir.load_token(&self.profile_name)?.ok_or(CliError::Message(Msg::NotLoggedIn))?;
        let progress = crate::output::download_progress(self.lang);
        Ok(self.anonymous_client()?.with_token(token).with_progress(progress))
    }

    fn save_profile(&self) -> Result<()> {
        let mut file = self.dir.load()?;
        file.profiles.insert(self.profile_name.clone(), self.profile.clone());
        self.dir.save(&file)?;
        Ok(())
    }
}

/// One line from a terminal (hidden for secrets) or from piped stdin. Piped input is read line by line
/// through stdin's shared buffer, so a command asking for several secrets takes one per line.
fn read_line_or_prompt(prompt: &str, hidden: bool) -> Result<String> {
    let terminal = std::io::stdin().is_terminal();
    if terminal && hidden {
        return Ok(rpassword::prompt_password(prompt)?);
    }
    if terminal {
        eprint!("{prompt}");
    }
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line)? == 0 {
        return Err(CliError::Other(format!("{}: no input", prompt.trim_end_matches([' ', ':']))));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_secret(prompt: &str) -> Result<Sensitive> {
    read_line_or_prompt(prompt, true).map(Sensitive::new)
}

/// A new password; on a terminal it is asked twice.
pub(crate) fn read_new_password(out: &Output) -> Result<Sensitive> {
    let first = read_secret(&out.msg(Msg::NewPassword))?;
    if std::io::stdin().is_terminal() {
        let again = read_secret(&out.msg(Msg::RepeatPassword))?;
        if again != first {
            return Err(CliError::Message(Msg::PasswordsDiffer));
        }
    }
    Ok(first)
}

async fn login_cmd(ctx: &Context, out: &Output, login: Option<String>, totp: Option<String>) -> Result<()> {
    let mut client = ctx.anonymous_client()?;
    let login = match login {
        Some(l) => l,
        None => read_line_or_prompt("Login: ", false)?,
    };
    let password = read_secret(&out.msg(Msg::Password))?;
    let response = match client.login(&login, &password, totp.as_deref()).await {
        Err(e) if e.code() == Some(ErrorCode::TotpRequired) => {
            let code = read_line_or_prompt(&out.msg(Msg::TotpCode), false)?;
            client.login(&login, &password, Some(code.trim())).await?
        }
        other => other?,
    };
    ctx.save_profile()?;
    if let Some(token) = client.token() {
        ctx.dir.save_token(&ctx.profile_name, token)?;
    }
    if out.json {
        // The token stays in the token file; it is never printed.
        out.json(&serde_json::json!({
            "user": response.user, "session_id": response.session_id,
            "expires_at": rfc3339(response.expires_at), "pending": response.pending,
        }));
        return Ok(());
    }
    println!("{} — {} ({})", out.msg(Msg::LoggedIn), response.user.display_name, response.user.login);
    match response.pending {
        Some(PendingStep::ChangePassword) => println!("{}", out.msg(Msg::MustChangePassword)),
        Some(PendingStep::EnrollTotp) => println!("{}", out.msg(Msg::MustEnrollTotp)),
        None => {}
    }
    Ok(())
}

async fn totp_cmd(ctx: &Context, out: &Output, cmd: TotpCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TotpCommand::Enroll { no_confirm } => {
            let enrollment = client.totp_enroll().await?;
            if out.json {
                out.json(&serde_json::json!({
                    "secret": enrollment.secret.expose(), "otpauth_uri": enrollment.otpauth_uri.expose(),
                }));
            } else {
                println!("{}", out.msg(Msg::TotpScan));
                if let Some(qr) = qr_text(enrollment.otpauth_uri.expose()) {
                    println!("{qr}");
                }
                out.record(&[
                    ("secret", enrollment.secret.expose().to_owned()),
                    ("uri", enrollment.otpauth_uri.expose().to_owned()),
                ]);
            }
            if no_confirm {
                return Ok(());
            }
            let code = read_line_or_prompt(&out.msg(Msg::TotpCode), false)?;
            let confirmed = client.totp_confirm(code.trim()).await?;
            show_totp_confirmed(out, &confirmed);
            Ok(())
        }
        TotpCommand::Confirm { code } => {
            let confirmed = client.totp_confirm(&code).await?;
            show_totp_confirmed(out, &confirmed);
            Ok(())
        }
    }
}

/// The web client's setup page with the token filled in: what the user opens on her phone. The token sits
/// in the URL's fragment, which a browser never sends to the server (nor to its logs).
pub(crate) fn setup_link(base_url: &str, token: &str) -> String {
    format!("{}/#/setup/{token}", base_url.trim_end_matches('/'))
}

/// TOTP is on: the recovery codes, this once.
fn show_totp_confirmed(out: &Output, confirmed: &renkei_protocol::TotpConfirmed) {
    let codes: Vec<&str> = confirmed.recovery_codes.iter().map(|c| c.expose()).collect();
    if out.json {
        out.json(&serde_json::json!({ "user": confirmed.user, "recovery_codes": codes }));
        return;
    }
    out.say(Msg::TotpEnabled);
    println!("{}", out.msg(Msg::RecoveryCodes));
    for code in codes {
        println!("  {code}");
    }
}

/// The otpauth URI as a QR code drawn with half-block characters, small enough for a terminal.
fn qr_text(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build())
}

async fn sessions_cmd(ctx: &Context, out: &Output, cmd: SessionsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        SessionsCommand::List => {
            let list = client.sessions().await?;
            if out.json {
                out.json(&list);
                return Ok(());
            }
            let rows = list
                .sessions
                .iter()
                .map(|s| {
                    vec![
                        format!("{}{}", if s.current { "* " } else { "  " }, s.id),
                        out.time(s.created_at),
                        out.time(s.last_seen_at),
                        out.time(s.expires_at),
                        s.client_addr.clone().unwrap_or_default(),
                        s.user_agent.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            out.table(&["  id", "created", "last seen", "expires", "address", "client"], rows);
            Ok(())
        }
        SessionsCommand::Revoke { id } => {
            client.revoke_session(id).await?;
            out.say(Msg::SessionRevoked);
            Ok(())
        }
    }
}
