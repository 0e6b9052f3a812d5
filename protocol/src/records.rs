//! The monthly care record of a patient group (在宅医療情報連携加算): what the attending physician
//! recorded for the team, what of the others' records they saw, the consent in force and the organisations
//! linked; and the clinic-wide summary of a month.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Consent, PatientIdentifiers, Person, Post};

wire_enum!(
    /// Why a month's record is not complete.
    RecordGap {
        /// No care-policy post (診療方針) in the month.
        NoCarePolicy = "no_care_policy",
        /// The physician saw no post of another profession in the month (見ました or read).
        NoPostsSeen = "no_posts_seen",
        /// No consent recorded on or before the month's last day.
        NoConsent = "no_consent",
        /// The consent was withdrawn on or before the month's last day.
        ConsentWithdrawn = "consent_withdrawn",
    }
);

/// A post of another profession that the attending physician saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SeenPost {
    pub post: Post,
    /// When the physician marked it 「見ました」; none when it was read without the mark.
    #[serde(with = "time::serde::rfc3339::option")]
    pub seen_at: Option<OffsetDateTime>,
}

/// One patient group's record for one month, for its attending physician (audited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CareRecord {
    pub group_id: Uuid,
    pub label: String,
    pub patient: Option<PatientIdentifiers>,
    /// `YYYY-MM`, in the server's time zone.
    pub month: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub attending_physician: Option<Person>,
    /// Complete when `gaps` is empty.
    pub complete: bool,
    pub gaps: Vec<RecordGap>,
    /// The month's care-policy posts, oldest first.
    pub care_policies: Vec<Post>,
    /// Posts of the month by other professions that the attending physician saw, oldest first.
    pub seen_posts: Vec<SeenPost>,
    /// The consent in force at the month's end (a withdrawal, if that is the latest).
    pub consent: Option<Consent>,
    /// The organisations of everyone who was a member during the month, the clinic's included.
    pub organisations: Vec<String>,
}

/// One patient group in a month's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordSummaryGroup {
    pub group_id: Uuid,
    pub label: String,
    pub complete: bool,
    pub gaps: Vec<RecordGap>,
    pub organisations: usize,
}

/// Every patient group of an attending physician for a month, and the organisations linked across them
/// (the 加算 asks for at least five).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordSummary {
    pub month: String,
    pub groups: Vec<RecordSummaryGroup>,
    pub organisations: Vec<String>,
}
