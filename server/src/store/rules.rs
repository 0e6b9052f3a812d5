//! Storage for the ICT collaboration rules: members' availability hours and the identifiers rule 4 compares
//! against. Rule overrides are audit entries (`audit.rs`).

use renkei_protocol::{Availability, MemberRole, PatientIdentifiers, Person, Profession};
use uuid::Uuid;

use super::{Store, StoreError, with_pool};

/// An active member with what rule 5 needs to know.
#[derive(Debug, Clone)]
pub struct MemberAvailability {
    pub person: Person,
    pub role: MemberRole,
    pub availability: Availability,
}

fn parse_availability(text: Option<String>) -> Availability {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
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

    /// The active members of a group with their role and availability.
    pub async fn members_availability(&self, group: Uuid) -> Result<Vec<MemberAvailability>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            display_name: String,
            profession: String,
            organisation: String,
            role: String,
            availability: Option<String>,
        }
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(
            "SELECT u.id, u.display_name, u.profession, u.organisation, m.role, u.availability \
             FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 AND m.state = 'active'"
        )
        .bind(group)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|r| {
                let corrupt = || StoreError::Corrupt(format!("member {}", r.id));
                Ok(MemberAvailability {
                    person: Person {
                        id: r.id,
                        display_name: r.display_name.clone(),
                        profession: Profession::parse(&r.profession).ok_or_else(corrupt)?,
                        organisation: r.organisation.clone(),
                    },
                    role: MemberRole::parse(&r.role).ok_or_else(corrupt)?,
                    availability: parse_availability(r.availability),
                })
            })
            .collect()
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
