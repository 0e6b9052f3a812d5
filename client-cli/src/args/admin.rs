//! The administrators' commands: `renkei admin …`.

use clap::Subcommand;
use renkei_protocol::Profession;

use super::parse_wire;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage user accounts.
    #[command(subcommand)]
    User(AdminUserCommand),
    /// Every group with its members and consent versions (metadata only), or one group: by id, id prefix,
    /// reference (P-…) or a community group's label.
    Groups {
        /// One group, by reference (P-…), id or id prefix, or a community group's label; none: every group.
        group: Option<String>,
    },
    /// Community groups (city-wide, per profession).
    #[command(subcommand)]
    Community(CommunityCommand),
    /// Each office's own rules (rule 7): who exports timelines, where files download, retention.
    #[command(subcommand)]
    Office(OfficeCommand),
    /// Query the audit log (metadata only; the query itself is audited).
    Audit {
        /// Entries where this user (login or id) acted or was acted upon.
        #[arg(long)]
        user: Option<String>,
        /// A group by id, id prefix, reference (P-…) or community label.
        #[arg(long)]
        group: Option<String>,
        /// One action: login_failed, posts_read, consent_recorded, emergency_override, … (an unknown one is
        /// refused with the list).
        #[arg(long)]
        action: Option<String>,
        /// From this time on: RFC 3339, or a date (YYYY-MM-DD, from its start in your time zone).
        #[arg(long)]
        since: Option<String>,
        /// Before this time: RFC 3339, or a date (up to its start).
        #[arg(long)]
        until: Option<String>,
        /// The newest N entries, newest first (the table shows the newest 50 unless told; CSV and JSON
        /// give every match, oldest first).
        #[arg(long)]
        limit: Option<i64>,
        /// CSV instead of a table (with --json: JSON).
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OfficeCommand {
    /// Every office with rules of its own.
    List,
    /// Set an office's rules, all at once (what is left out goes back to the default).
    Set {
        /// The organisation, exactly as on its members' accounts.
        organisation: String,
        /// Professions of this office that may export the timeline of a group they belong to, besides the
        /// attending physician (repeat, or separate with commas). Default: none.
        #[arg(long = "export", value_delimiter = ',', value_parser = parse_wire::<Profession>)]
        export: Vec<Profession>,
        /// A network (CIDR) this office's members may download files from (repeat). Default: anywhere.
        #[arg(long = "network")]
        networks: Vec<String>,
        /// Days after archiving when its patients' groups are purged (overrides the server's setting).
        #[arg(long)]
        retention_days: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CommunityCommand {
    /// Create a community group.
    Create {
        /// The group's name.
        label: String,
    },
    /// Add a member (the group by id, id prefix or label).
    Add {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The person, by login.
        user: String,
    },
    /// Remove a member (the group by id, id prefix or label).
    Remove {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The person, by login.
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminUserCommand {
    /// Register a professional (after checking who they are). Prints a one-time setup token to hand over.
    Add {
        /// The login: at least 3 of a–z, 0–9, ".", "_", "-".
        #[arg(long)]
        login: String,
        /// The name other members see, e.g. 「佐藤 花子」.
        #[arg(long = "name")]
        display_name: String,
        /// The name's reading in kana (フリガナ), e.g. 「さとう はなこ」: the directory finds people by it.
        #[arg(long)]
        kana: Option<String>,
        /// physician, dentist, pharmacist, nurse, therapist, care_manager, care_worker, support_centre, msw,
        /// government or other.
        #[arg(long, value_parser = parse_wire::<Profession>)]
        profession: Profession,
        /// The office they work for.
        #[arg(long)]
        organisation: String,
        /// A phone number the team may call.
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
    Show {
        /// The person, by login.
        user: String,
    },
    /// Disable an account; all its sessions end at once.
    Disable {
        /// The person, by login.
        user: String,
    },
    /// Re-enable a disabled account.
    Enable {
        /// The person, by login.
        user: String,
    },
    /// Issue a new one-time setup token (lost token, forgotten password); every session of the account ends.
    SetupToken {
        /// The person, by login.
        user: String,
    },
    /// Reset a lost authenticator: TOTP off and every session ended; the user logs in and enrols again.
    TotpReset {
        /// The person, by login.
        user: String,
    },
    /// A user's sessions: when they logged in, for how long, from where.
    Sessions {
        /// The person, by login.
        user: String,
    },
}
