//! Storage for the ICT collaboration rules: members' availability hours and the identifiers rule 4 compares
//! against. Rule overrides are audit entries (`audit.rs`).

use renkei_protocol::{Availability, MemberRole, MembershipState, PatientIdentifiers, Person, Profession};
use uuid::Uuid;

use super::group_rows::GroupRow;
use super::{Store, StoreError, with_pool};
use crate::domain::{GroupRecord, Membership, from_micros};

/// What posting to a group needs to know before the commit, read in one statement: the group, and its
/// active members with their availability (rule 5).
#[derive(Debug, Clone)]
pub struct PostContext {
    pub group: GroupRecord,
    pub members: Vec<(Membership, MemberAvailability)>,
}

impl PostContext {
    pub fn membership_of(&self, user: Uuid) -> Option<&Membership> {
        self.members.iter().map(|(m, _)| m).find(|m| m.user_id == user)
    }

    pub fn availability(&self) -> impl Iterator<Item = &MemberAvailability> {
        self.members.iter().map(|(_, a)| a)
    }
}

/// An active member with what rule 5 needs to know.
#[derive(Debug, Clone)]
pub struct MemberAvailability {
    pub person: Person,
    pub role: MemberRole,
    pub availability: Availability,
}

pub(super) fn parse_availability(text: Option<String>) -> Availability {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

impl Store {
    /// The group and its active members with their availability, in one statement (`None`: no such
    /// group). One read per post instead of three: the commit re-checks membership where no removal can
    /// race it, so this only decides which answer an outsider gets and who is off hours.
    pub async fn post_context(&self, group: Uuid) -> Result<Option<PostContext>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            group: GroupRow,
            m_id: Option<Uuid>,
            m_user_id: Option<Uuid>,
            m_role: Option<String>,
            m_invited_by: Option<Uuid>,
            m_invited_at: Option<i64>,
            m_expires_at: Option<i64>,
            m_joined_at: Option<i64>,
            u_display_name: Option<String>,
            u_profession: Option<String>,
            u_organisation: Option<String>,
            u_availability: Option<String>,
        }
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT g.*, m.id AS m_id, m.user_id AS m_user_id, m.role AS m_role, m.invited_by AS m_invited_by, \
             m.invited_at AS m_invited_at, m.expires_at AS m_expires_at, m.joined_at AS m_joined_at, \
             u.display_name AS u_display_name, u.profession AS u_profession, u.organisation AS u_organisation, \
             u.availability AS u_availability \
             FROM groups g LEFT JOIN memberships m ON m.group_id = g.id AND m.state = 'active' \
             LEFT JOIN users u ON u.id = m.user_id WHERE g.id = $1"
        )
        .bind(group)
        .fetch_all(pool)
        .await)?;
        // One row per active member (or one row of NULLs for a group without any), each carrying the group.
        let mut members = Vec::new();
        let mut group_record = None;
        for row in rows {
            let corrupt = || StoreError::Corrupt(format!("member of group {group}"));
            if let (Some(id), Some(user_id), Some(role), Some(invited_at)) =
                (row.m_id, row.m_user_id, row.m_role.as_deref(), row.m_invited_at)
            {
                let role = MemberRole::parse(role).ok_or_else(corrupt)?;
                let membership = Membership {
                    id,
                    group_id: group,
                    user_id,
                    role,
                    state: MembershipState::Active,
                    invited_by: row.m_invited_by,
                    invited_at: from_micros(invited_at),
                    expires_at: row.m_expires_at.map(from_micros),
                    joined_at: row.m_joined_at.map(from_micros),
                    ended_at: None,
                };
                let person = Person {
                    id: user_id,
                    display_name: row.u_display_name.ok_or_else(corrupt)?,
                    profession: row.u_profession.as_deref().and_then(Profession::parse).ok_or_else(corrupt)?,
                    organisation: row.u_organisation.ok_or_else(corrupt)?,
                };
                let availability = parse_availability(row.u_availability);
                members.push((membership, MemberAvailability { person, role, availability }));
            }
            if group_record.is_none() {
                group_record = Some(GroupRecord::try_from(row.group)?);
            }
        }
        Ok(group_record.map(|group| PostContext { group, members }))
    }
}

impl Store {
    pub async fn set_availability(&self, user: Uuid, availability: &Availability) -> Result<(), StoreError> {
        let json = serde_json::to_string(availability).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        with_pool!(self, |pool| sqlx::query("UPDATE users SET availability = $2 WHERE id = $1")
            .bind(user)
            .bind(json)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    pub async fn availability(&self, user: Uuid) -> Result<Availability, StoreError> {
        let text: Option<Option<String>> =
            with_pool!(self, |pool| sqlx::query_scalar("SELECT availability FROM users WHERE id = $1")
                .bind(user)
                .fetch_optional(pool)
                .await)?;
        Ok(parse_availability(text.flatten()))
    }

    /// The identifiers of every active patient group's patient (rule 4).
    pub async fn active_patient_identifiers(&self) -> Result<Vec<PatientIdentifiers>, StoreError> {
        let rows: Vec<(String, Option<String>, Option<String>)> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT patient_full_name, patient_kana, patient_number FROM groups \
             WHERE kind = 'patient' AND status = 'active' AND patient_full_name IS NOT NULL"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(full_name, kana, patient_number)| PatientIdentifiers { full_name, kana, patient_number })
            .collect())
    }
}
