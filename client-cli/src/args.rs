//! Command-line arguments of `renkei`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use renkei_protocol::Profession;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "renkei",
    version,
    about = "renkei — closed messaging for the home-care team (client)"
)]
pub struct Cli {
    /// Server URL, e.g. https://renkei.example.jp:8443 (remembered in the profile at login).
    #[arg(long, global = true, env = "RENKEI_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// PEM file of the CA certificate to trust (self-signed or private CA); remembered at login.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Profile name, for using several servers or accounts.
    #[arg(long, global = true, env = "RENKEI_PROFILE", default_value = "default")]
    pub profile: String,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in (asks for the authenticator code when the account has TOTP).
    Login {
        /// Login name (asked for when omitted).
        login: Option<String>,
        /// The current authenticator code, instead of being asked.
        #[arg(long, value_name = "CODE")]
        totp: Option<String>,
    },
    /// Log out and forget the token.
    Logout,
    /// Show who I am logged in as.
    Whoami,
    /// Change my password (current, then new; from stdin when piped, one per line).
    Passwd,
    /// Set my first password with the setup token my administrator gave me.
    Setup {
        /// The one-time setup token (asked for when omitted).
        #[arg(long)]
        token: Option<String>,
    },
    /// Two-factor authentication (TOTP).
    #[command(subcommand)]
    Totp(TotpCommand),
    /// My sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Administrator commands.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Client configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Start enrolment: shows the secret and a QR code, then asks for a code to confirm.
    Enroll {
        /// Only show the secret; confirm later with `renkei totp confirm CODE`.
        #[arg(long)]
        no_confirm: bool,
    },
    /// Confirm enrolment with a code from the authenticator app.
    Confirm { code: String },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List my live sessions.
    List,
    /// End one of my sessions (a lost phone, a shared PC).
    Revoke { id: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage user accounts.
    #[command(subcommand)]
    User(AdminUserCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminUserCommand {
    /// Register a professional (after checking who they are). Prints a one-time setup token to hand over.
    Add {
        #[arg(long)]
        login: String,
        /// The name other members see, e.g. 「佐藤 花子」.
        #[arg(long = "name")]
        display_name: String,
        /// physician, dentist, pharmacist, nurse, therapist, care_manager, care_worker, support_centre, msw,
        /// government or other.
        #[arg(long, value_parser = parse_profession)]
        profession: Profession,
        #[arg(long)]
        organisation: String,
        #[arg(long)]
        phone: Option<String>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// Set an initial password (read from stdin or prompted) instead of issuing a setup token;
        /// the user must change it at first login.
        #[arg(long)]
        initial_password: bool,
    },
    /// List every account.
    List,
    /// Show one account (id or login).
    Show { user: String },
    /// Disable an account; all its sessions end at once.
    Disable { user: String },
    /// Re-enable a disabled account.
    Enable { user: String },
    /// Issue a new one-time setup token (lost token, forgotten password).
    SetupToken { user: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the configuration directory, profile and whether a token is stored.
    Show,
}

/// Accepts the wire identifiers (`care_manager`) and their dashed forms (`care-manager`).
fn parse_profession(s: &str) -> Result<Profession, String> {
    Profession::parse(&s.trim().to_ascii_lowercase().replace('-', "_")).ok_or_else(|| {
        let valid: Vec<&str> = Profession::ALL.iter().map(|p| p.as_str()).collect();
        format!("unknown profession; one of: {}", valid.join(", "))
    })
}
