//! Each office's own rules (rule 7 of the Musashino rules), kept by administrators: who of the office may
//! export a timeline, from which networks its members may download files, and how long its patients'
//! archived groups are kept.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::Profession;

/// An office's rules. An office without rules follows the defaults: the attending physician alone exports,
/// files download from anywhere, the server's retention applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfficeRules {
    /// The organisation, exactly as on its members' accounts.
    pub organisation: String,
    /// Besides the attending physician, the professions of this office whose members may export the
    /// timeline of a patient group they belong to (e.g. a visiting-nurse station keeping its own record).
    pub timeline_export: Vec<Profession>,
    /// Networks (CIDR, e.g. `10.1.0.0/16`) from which this office's members may download shared files;
    /// empty: from anywhere. Thumbnails are not restricted.
    pub attachment_networks: Vec<String>,
    /// Days after archiving when the content of a group whose attending physician belongs to this office is
    /// purged; overrides the server's `purge_archived_after_days`. None: the server's setting.
    pub purge_archived_after_days: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Sets an office's rules (all of them; empty lists and no retention restore the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficeRulesUpdate {
    #[serde(default)]
    pub timeline_export: Vec<Profession>,
    #[serde(default)]
    pub attachment_networks: Vec<String>,
    #[serde(default)]
    pub purge_archived_after_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OfficeRulesList {
    pub offices: Vec<OfficeRules>,
}
