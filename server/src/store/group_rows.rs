//! Row types of the care-team tables and their conversion into domain and protocol types.

use renkei_protocol::{
    Consent, ConsentKind, ConsentMethod, Consenter, ConsenterKind, GroupKind, GroupStatus, MemberRole, MembershipState,
    PatientIdentifiers, Person, Profession, ScopeEntry,
};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{GroupRecord, Membership, from_micros};

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

macro_rules! group_columns {
    () => {
        "id, kind, label, status, attending_physician_id, patient_full_name, patient_kana, patient_number, notes, \
         handover_to_id, created_at, archived_at, purged_at"
    };
}
pub(super) use group_columns;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct GroupRow {
    pub(super) id: Uuid,
    kind: String,
    label: String,
    status: String,
    attending_physician_id: Option<Uuid>,
    patient_full_name: Option<String>,
    patient_kana: Option<String>,
    patient_number: Option<String>,
    notes: Option<String>,
    handover_to_id: Option<Uuid>,
    created_at: i64,
    archived_at: Option<i64>,
    purged_at: Option<i64>,
}

impl TryFrom<GroupRow> for GroupRecord {
    type Error = StoreError;

    fn try_from(r: GroupRow) -> Result<Self, StoreError> {
        Ok(GroupRecord {
            id: r.id,
            kind: GroupKind::parse(&r.kind).ok_or_else(|| corrupt("group kind", &r.kind))?,
            label: r.label,
            status: GroupStatus::parse(&r.status).ok_or_else(|| corrupt("group status", &r.status))?,
            attending_physician_id: r.attending_physician_id,
            patient: r.patient_full_name.map(|full_name| PatientIdentifiers {
                full_name,
                kana: r.patient_kana,
                patient_number: r.patient_number,
            }),
            notes: r.notes,
            handover_to_id: r.handover_to_id,
            created_at: from_micros(r.created_at),
            archived_at: r.archived_at.map(from_micros),
            purged_at: r.purged_at.map(from_micros),
        })
    }
}

macro_rules! membership_columns {
    () => {
        "m.id, m.group_id, m.user_id, m.role, m.state, m.invited_by, m.invited_at, m.expires_at, m.joined_at, \
         m.ended_at"
    };
}
pub(super) use membership_columns;

/// [`membership_columns`] unqualified, for `RETURNING` (SQLite does not accept a table alias there).
macro_rules! membership_returning {
    () => {
        "id, group_id, user_id, role, state, invited_by, invited_at, expires_at, joined_at, ended_at"
    };
}
pub(super) use membership_returning;

/// Also read as JSON, where PostgreSQL aggregates a group's memberships into its row.
#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub(super) struct MembershipRow {
    pub(super) id: Uuid,
    group_id: Uuid,
    user_id: Uuid,
    role: String,
    state: String,
    invited_by: Option<Uuid>,
    invited_at: i64,
    expires_at: Option<i64>,
    joined_at: Option<i64>,
    ended_at: Option<i64>,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;

    fn try_from(r: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            id: r.id,
            group_id: r.group_id,
            user_id: r.user_id,
            role: MemberRole::parse(&r.role).ok_or_else(|| corrupt("role", &r.role))?,
            state: MembershipState::parse(&r.state).ok_or_else(|| corrupt("membership state", &r.state))?,
            invited_by: r.invited_by,
            invited_at: from_micros(r.invited_at),
            expires_at: r.expires_at.map(from_micros),
            joined_at: r.joined_at.map(from_micros),
            ended_at: r.ended_at.map(from_micros),
        })
    }
}

/// The user columns of a [`PersonRow`], from `users u`.
macro_rules! person_columns {
    () => {
        "u.id AS person_id, u.display_name AS person_name, u.profession AS person_profession, \
         u.organisation AS person_organisation"
    };
}
pub(super) use person_columns;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct PersonRow {
    pub(super) person_id: Uuid,
    person_name: String,
    person_profession: String,
    person_organisation: String,
}

impl TryFrom<PersonRow> for Person {
    type Error = StoreError;

    fn try_from(r: PersonRow) -> Result<Self, StoreError> {
        Ok(Person {
            id: r.person_id,
            display_name: r.person_name,
            profession: Profession::parse(&r.person_profession)
                .ok_or_else(|| corrupt("profession", &r.person_profession))?,
            organisation: r.person_organisation,
        })
    }
}

/// A membership with the person it belongs to.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct MemberRow {
    #[sqlx(flatten)]
    pub(super) membership: MembershipRow,
    #[sqlx(flatten)]
    pub(super) person: PersonRow,
}

impl MemberRow {
    pub(super) fn person_id(&self) -> Uuid {
        self.person.person_id
    }

    pub(super) fn membership_id(&self) -> Uuid {
        self.membership.id
    }
}

macro_rules! consent_columns {
    () => {
        "version, kind, consenter_kind, consenter_name, consenter_relationship, method, obtained_on, scope, \
         recorded_by, recorded_at"
    };
}
pub(super) use consent_columns;

#[derive(Debug, sqlx::FromRow)]
pub(super) struct ConsentRow {
    pub(super) version: i32,
    kind: String,
    consenter_kind: String,
    consenter_name: String,
    consenter_relationship: Option<String>,
    method: String,
    obtained_on: String,
    scope: String,
    recorded_by: Uuid,
    recorded_at: i64,
}

const DATE: &[time::format_description::BorrowedFormatItem<'_>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub(super) fn date_text(date: time::Date) -> String {
    date.format(DATE).unwrap_or_default()
}

impl TryFrom<ConsentRow> for Consent {
    type Error = StoreError;

    fn try_from(r: ConsentRow) -> Result<Self, StoreError> {
        let scope: Vec<ScopeEntry> =
            serde_json::from_str(&r.scope).map_err(|e| StoreError::Corrupt(format!("consent scope: {e}")))?;
        Ok(Consent {
            version: r.version,
            kind: ConsentKind::parse(&r.kind).ok_or_else(|| corrupt("consent kind", &r.kind))?,
            consenter: Consenter {
                kind: ConsenterKind::parse(&r.consenter_kind).ok_or_else(|| corrupt("consenter", &r.consenter_kind))?,
                name: r.consenter_name,
                relationship: r.consenter_relationship,
            },
            method: ConsentMethod::parse(&r.method).ok_or_else(|| corrupt("consent method", &r.method))?,
            obtained_on: time::Date::parse(&r.obtained_on, DATE)
                .map_err(|e| StoreError::Corrupt(format!("consent date: {e}")))?,
            scope,
            recorded_by: r.recorded_by,
            recorded_at: from_micros(r.recorded_at),
        })
    }
}
