//! Command-line arguments of `renkei`.

mod admin;
mod localize;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use renkei_protocol::{ConsentMethod, ConsenterKind, PostKind, Profession};
use uuid::Uuid;

pub use admin::{AdminCommand, AdminUserCommand, CommunityCommand, OfficeCommand};
pub use localize::localized;

#[derive(Debug, Parser)]
#[command(name = "renkei", version, about = "renkei — closed messaging for the home-care team (client)")]
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
    /// The time zone times are shown in: an IANA name or an offset like +09:00 (the server reads the same
    /// variable).
    #[arg(long, global = true, env = "RENKEI_TIME_ZONE", default_value = renkei_protocol::zone::DEFAULT_ZONE, value_name = "ZONE")]
    pub time_zone: String,
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
    /// Patient groups: open, list, show, members, archive, hand over.
    #[command(subcommand)]
    Group(GroupCommand),
    /// The consent of the patient and family: record, amend, withdraw, history.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Invite a professional the consent covers into a group (attending physician).
    Invite {
        /// Group: id, id prefix or label.
        group: String,
        /// Login or id of the professional.
        user: String,
    },
    /// My pending invitations.
    Invitations,
    /// Accept an invitation (by invitation id or group label; alone when there is only one).
    Accept {
        /// The invitation, by id or id prefix (from `renkei invitations`).
        invitation: Option<String>,
    },
    /// Decline an invitation.
    Decline {
        /// The invitation, by id or id prefix (from `renkei invitations`).
        invitation: Option<String>,
    },
    /// Remove a member from a group, or cancel their invitation (attending physician).
    Remove {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The person, by login.
        user: String,
    },
    /// Leave a group.
    Leave {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
    /// Post to a group (the body from the argument, or from stdin when omitted).
    Post {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The text (read from stdin when not given).
        body: Option<String>,
        /// update, treatment_question (to the attending physician) or care_plan_question (to the care manager).
        #[arg(long, value_parser = parse_wire::<PostKind>, default_value = "update")]
        kind: PostKind,
        /// The sequence number of the post this one answers.
        #[arg(long)]
        reply_to: Option<i64>,
        /// Your own id for this post; retrying with the same id never posts twice (default: a new one).
        #[arg(long)]
        client_id: Option<String>,
        /// Send it although it reads like an emergency, confirming it is not one ("今日は急変なし"). Recorded.
        #[arg(long)]
        confirm_not_emergency: bool,
        /// A photo (JPEG, PNG, WebP) or PDF to share with the post; repeat for several (at most 10). Images
        /// are stored without their metadata (GPS position included). With a file, the text may be left out.
        #[arg(long = "attach", value_name = "FILE")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Record the care policy (診療方針) for the team (attending physician): the next visit, whether the
    /// treatment policy changed and how, and the cautions for care (the argument, or stdin when omitted).
    CarePolicy {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// Cautions for care (留意事項).
        cautions: Option<String>,
        /// The next visit date, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        next_visit: time::Date,
        /// The treatment policy changed (then --summary is required).
        #[arg(long, requires = "summary")]
        changed: bool,
        /// What changed.
        #[arg(long)]
        summary: Option<String>,
    },
    /// The month's care record of a group for 在宅医療情報連携加算 (attending physician), or without a group the
    /// summary of every group I attend: complete or not, and the organisations linked.
    Record {
        /// The group: its label (or part of it), id or id prefix.
        group: Option<String>,
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// As CSV.
        #[arg(long, conflicts_with = "html", requires = "group")]
        csv: bool,
        /// As a page to print (HTML).
        #[arg(long, requires = "group")]
        html: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Files shared in a group.
    #[command(subcommand)]
    Attachment(AttachmentCommand),
    /// Questions addressed to me that I have not answered or marked seen.
    Addressed,
    /// My availability hours and how I prefer to be reached (「ケアマネタイム」).
    #[command(subcommand)]
    Availability(AvailabilityCommand),
    /// My notifications: e-mail and push, and how often other posts are summed up. They say only how
    /// many new posts wait, never what they say; push is turned on per device in the web client.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// A group's history: the latest posts, or those after/before a sequence number.
    History {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// Posts after this number.
        #[arg(long)]
        after: Option<i64>,
        /// Posts before this number.
        #[arg(long)]
        before: Option<i64>,
        /// How many posts at most.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Show every version of this post instead.
        #[arg(long)]
        versions: Option<i64>,
    },
    /// Edit one of my posts (every version is kept).
    Edit {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The post's number (#N in the history).
        seq: i64,
        /// The new text.
        body: String,
    },
    /// Delete one of my posts (a tombstone keeps its place).
    Delete {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The post's number (#N in the history).
        seq: i64,
    },
    /// 「見ました」: mark a post as seen, or list who has seen it with --list.
    Seen {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The post's number (#N in the history).
        seq: i64,
        /// List who has seen it instead of marking it.
        #[arg(long)]
        list: bool,
    },
    /// Move my read position (default: to the latest post).
    Read {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The post's number (#N in the history).
        seq: Option<i64>,
    },
    /// Unread posts per group.
    Unread,
    /// Follow groups live (all of mine when none is named); survives disconnects without gaps.
    Tail {
        /// The groups to follow; none: all of mine, and any I join while it runs.
        groups: Vec<String>,
        /// Advance my read position as posts are shown.
        #[arg(long)]
        mark_read: bool,
        /// Start from the beginning of each group's history instead of the latest post.
        #[arg(long)]
        from_start: bool,
        /// Stop after this many posts (for scripts and tests).
        #[arg(long)]
        count: Option<usize>,
    },
    /// Talk in one group interactively: type a line to post it, see the others' posts arrive live.
    Chat {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// How many recent posts to show first.
        #[arg(long, default_value_t = 20)]
        recent: i64,
    },
    /// Administrator commands.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Client configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
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
    Confirm {
        /// The 6-digit code from the authenticator app.
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List my live sessions.
    List,
    /// End one of my sessions (a lost phone, a shared PC).
    Revoke {
        /// The session's id (from `renkei sessions`).
        id: Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum AttachmentCommand {
    /// Saves a shared file (its id is shown under the post in `history`).
    Get {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The file's id, as `history` lists it.
        id: uuid::Uuid,
        /// Where to save it (default: its name, in the current directory; an existing file is never replaced).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        /// The thumbnail instead of the picture.
        #[arg(long)]
        thumbnail: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AvailabilityCommand {
    /// Show my availability.
    Show,
    /// Replace my availability: `--window "mon-fri 09:00-17:00"` (repeatable) and `--contact TEXT`.
    Set {
        /// A weekly window, e.g. "mon-fri 09:00-17:00" (repeat for more).
        #[arg(long = "window")]
        windows: Vec<String>,
        /// How to reach me instead (e.g. "急ぎは診療所へ電話").
        #[arg(long)]
        contact: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// Show my notification settings and the devices that receive push.
    Show,
    /// Change my settings; what is not given stays as it is.
    Set {
        /// E-mail notifications to this address (`--email off` turns them off).
        #[arg(long)]
        email: Option<String>,
        /// Push to my registered devices: on or off.
        #[arg(long)]
        push: Option<OnOff>,
        /// Sum up other posts at most every this many minutes (5–1440); questions to me come at once.
        #[arg(long)]
        digest_minutes: Option<u32>,
    },
    /// Stop push to one of my devices (its id, or a prefix of it, from `show`).
    RemoveDevice {
        /// The device's id, or a prefix of it (from `notifications show`).
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Open a patient group (physicians); you become its attending physician.
    Open {
        /// What members see, e.g. 「山田 花子 様」.
        #[arg(long)]
        label: String,
        /// The patient's full name (kept for the community-group rule; never shown to administrators).
        #[arg(long)]
        patient_name: String,
        /// The patient's name in kana, for search.
        #[arg(long)]
        kana: Option<String>,
        /// The patient's number at the clinic.
        #[arg(long)]
        patient_number: Option<String>,
        /// Notes for the team (living situation, family).
        #[arg(long)]
        notes: Option<String>,
    },
    /// The groups I am a member of.
    List,
    /// One group (id, id prefix or label).
    Show {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
    /// The members of a group.
    Members {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
    /// Archive a group when care ends (attending physician).
    Archive {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
    /// Hand a group over to another physician who is a member inside the consent's scope.
    Handover {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// The physician who takes the group over, by login.
        to: String,
    },
    /// Accept a group handed over to me.
    AcceptHandover {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
    /// Decline a group handed over to me.
    DeclineHandover {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
    /// Export the timeline for the medical record (attending physician): JSON, or Markdown with --markdown.
    Export {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
        /// Markdown to read or print instead of JSON.
        #[arg(long)]
        markdown: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Make a folder for the medical record: the timeline (timeline.md or timeline.json) and, in
        /// files/, every file the posts and their earlier versions shared, named `<id>-<name>`.
        #[arg(long, value_name = "DIR", conflicts_with = "output")]
        files: Option<PathBuf>,
    },
    /// Who was in the group, added by whom under which consent, and who read it when (attending physician).
    AccessReport {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Record the first consent (or a new version).
    Record(ConsentArgs),
    /// Amend the consent: a new version; members it no longer covers are removed at once.
    Amend(ConsentArgs),
    /// Record the withdrawal of consent: everyone but the attending physician is removed.
    Withdraw(ConsenterArgs),
    /// Every consent version of a group.
    History {
        /// The group: its label (or part of it), id or id prefix.
        group: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct ConsenterArgs {
    /// The group: its label (or part of it), id or id prefix.
    pub group: String,
    /// patient, family or legal_representative.
    #[arg(long, value_parser = parse_wire::<ConsenterKind>)]
    pub consenter: ConsenterKind,
    /// The name of the person who consented.
    #[arg(long)]
    pub name: String,
    /// For family: the relationship, e.g. 長女.
    #[arg(long)]
    pub relationship: Option<String>,
    /// written, verbal or electronic.
    #[arg(long, value_parser = parse_wire::<ConsentMethod>, default_value = "written")]
    pub method: ConsentMethod,
    /// The date consent was obtained (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub date: time::Date,
}

#[derive(Debug, clap::Args)]
pub struct ConsentArgs {
    #[command(flatten)]
    pub consenter: ConsenterArgs,
    /// A scope entry, repeatable: `profession=nurse`, `organisation=むさしの訪問看護`, `user=sato`, or several
    /// joined by commas (all must match): `organisation=むさしの訪問看護,profession=nurse`.
    #[arg(long = "scope", required = true)]
    pub scope: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show the configuration directory, profile and whether a token is stored.
    Show,
}

/// Any `wire_enum` of the protocol, by its wire identifier (dashes accepted for underscores).
fn parse_wire<T: WireEnum>(s: &str) -> Result<T, String> {
    T::parse_wire(&s.trim().to_ascii_lowercase().replace('-', "_"))
        .ok_or_else(|| format!("one of: {}", T::identifiers().join(", ")))
}

pub trait WireEnum: Sized + Copy + Send + Sync + 'static {
    fn parse_wire(s: &str) -> Option<Self>;
    fn identifiers() -> Vec<&'static str>;
}

macro_rules! wire_enum_arg {
    ($($t:ty),*) => {$(
        impl WireEnum for $t {
            fn parse_wire(s: &str) -> Option<Self> {
                <$t>::parse(s)
            }
            fn identifiers() -> Vec<&'static str> {
                <$t>::ALL.iter().map(|v| v.as_str()).collect()
            }
        }
    )*};
}
wire_enum_arg!(Profession, ConsenterKind, ConsentMethod, PostKind);

fn parse_date(s: &str) -> Result<time::Date, String> {
    time::Date::parse(s.trim(), time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| "expected a date as YYYY-MM-DD".to_owned())
}
