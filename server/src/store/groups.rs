//! Care teams: groups, consent versions, membership episodes. Every operation that changes a group first
//! touches the group's row inside its transaction, which serialises changes to one group on both
//! backends (a row lock in PostgreSQL, the write lock in SQLite): a consent change and an invitation can
//! never interleave.

use crate::store::BeginWrite;
use renkei_protocol::{
    Consent, ConsentKind, ConsentMethod, Consenter, GroupStatus, MemberRole, PatientIdentifiers, Person, ScopeEntry,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::dialect::Steps;
use super::group_rows::{
    ConsentRow, GroupRow, MemberRow, consent_columns, date_text, group_columns, membership_columns, person_columns,
};
use super::rows::{UserRow, user_columns};
use super::{Conflict, NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::{Account, GroupRecord, to_micros};
use crate::policy;

/// A new consent version, as the attending physician records it.
#[derive(Debug)]
pub struct NewConsent {
    pub kind: ConsentKind,
    pub consenter: Consenter,
    pub method: ConsentMethod,
    pub obtained_on: Date,
    /// Empty exactly when `kind` is `Withdrawn`.
    pub scope: Vec<ScopeEntry>,
    pub recorded_by: Uuid,
}

impl Store {
    /// Opens a patient group with `physician` as its attending physician and first active member.
    pub async fn open_patient_group(
        &self,
        label: &str,
        patient: &PatientIdentifiers,
        notes: Option<&str>,
        physician: Uuid,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<GroupRecord, StoreError> {
        let id = Uuid::now_v7();
        let now = to_micros(now);
        let appender = self.audit_appender();
        audit.group_id = Some(id);
        let row: GroupRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as::<_, GroupRow>(concat!(
                "INSERT INTO groups (id, kind, label, status, attending_physician_id, patient_full_name, patient_kana, \
                 patient_number, notes, created_by, created_at, updated_at) \
                 VALUES ($1, 'patient', $2, 'active', $3, $4, $5, $6, $7, $3, $8, $8) RETURNING ",
                group_columns!()
            ))
            .bind(id)
            .bind(label)
            .bind(physician)
            .bind(&patient.full_name)
            .bind(patient.kana.as_deref())
            .bind(patient.patient_number.as_deref())
            .bind(notes)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            tx.insert_active_member(id, physician, MemberRole::AttendingPhysician, Some(physician), now).await?;
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Creates a community group (city-wide or per profession). Administrators add its members.
    pub async fn create_community_group(
        &self,
        label: &str,
        admin: Uuid,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<GroupRecord, StoreError> {
        let id = Uuid::now_v7();
        let now = to_micros(now);
        let appender = self.audit_appender();
        audit.group_id = Some(id);
        let row: GroupRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as::<_, GroupRow>(concat!(
                "INSERT INTO groups (id, kind, label, status, created_by, created_at, updated_at) \
                 VALUES ($1, 'community', $2, 'active', $3, $4, $4) RETURNING ",
                group_columns!()
            ))
            .bind(id)
            .bind(label)
            .bind(admin)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    pub async fn group(&self, id: Uuid) -> Result<Option<GroupRecord>, StoreError> {
        let sql = concat!("SELECT ", group_columns!(), " FROM groups WHERE id = $1");
        let row: Option<GroupRow> = with_pool!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        row.map(GroupRecord::try_from).transpose()
    }

    /// Every group, oldest first (administrators' view).
    pub async fn all_groups(&self) -> Result<Vec<GroupRecord>, StoreError> {
        let sql = concat!("SELECT ", group_columns!(), " FROM groups ORDER BY created_at, id");
        let rows: Vec<GroupRow> = with_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
        rows.into_iter().map(GroupRecord::try_from).collect()
    }

    /// Every consent version of the group, oldest first.
    pub async fn consents(&self, group: Uuid) -> Result<Vec<Consent>, StoreError> {
        let sql = concat!("SELECT ", consent_columns!(), " FROM consents WHERE group_id = $1 ORDER BY version");
        let rows: Vec<ConsentRow> = with_pool!(self, |pool| sqlx::query_as(sql).bind(group).fetch_all(pool).await)?;
        rows.into_iter().map(Consent::try_from).collect()
    }

    pub async fn latest_consent(&self, group: Uuid) -> Result<Option<Consent>, StoreError> {
        let sql =
            concat!("SELECT ", consent_columns!(), " FROM consents WHERE group_id = $1 ORDER BY version DESC LIMIT 1");
        let row: Option<ConsentRow> =
            with_pool!(self, |pool| sqlx::query_as(sql).bind(group).fetch_optional(pool).await)?;
        row.map(Consent::try_from).transpose()
    }

    /// Records a consent version and, in the same transaction, ends every membership and invitation the new
    /// scope no longer covers (all but the attending physician's when withdrawn), clears a handover to a
    /// physician outside it, and sets the group active (read-only when withdrawn). Returns the version and
    /// the people removed.
    pub async fn record_consent(
        &self,
        group: Uuid,
        new: NewConsent,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<(Consent, Vec<Person>), StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        let scope = serde_json::to_string(&new.scope).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let status = if new.kind == ConsentKind::Withdrawn { GroupStatus::ReadOnly } else { GroupStatus::Active };
        let (row, removed): (ConsentRow, Vec<MemberRow>) = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            match tx.lock_group(group, now).await? {
                Some(GroupStatus::Archived) => {
                    return Err(StoreError::Conflict(Conflict::GroupNotActive));
                }
                None => return Err(StoreError::Conflict(Conflict::StateChanged)),
                Some(_) => {}
            }
            let version: i32 =
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM consents WHERE group_id = $1")
                    .bind(group)
                    .fetch_one(&mut *tx)
                    .await?;
            let kind = match new.kind {
                ConsentKind::Withdrawn => ConsentKind::Withdrawn,
                _ if version == 1 => ConsentKind::Recorded,
                _ => ConsentKind::Amended,
            };
            let row = sqlx::query_as::<_, ConsentRow>(concat!(
                "INSERT INTO consents (group_id, version, kind, consenter_kind, consenter_name, consenter_relationship, \
                 method, obtained_on, scope, recorded_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
                consent_columns!()
            ))
            .bind(group)
            .bind(version)
            .bind(kind.as_str())
            .bind(new.consenter.kind.as_str())
            .bind(&new.consenter.name)
            .bind(new.consenter.relationship.as_deref())
            .bind(new.method.as_str())
            .bind(date_text(new.obtained_on))
            .bind(&scope)
            .bind(new.recorded_by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            // Everyone currently in or invited to the group, but the attending physician, with their profile.
            let candidates: Vec<(MemberRow, UserRow)> = {
                let members = sqlx::query_as::<_, MemberRow>(concat!(
                    "SELECT ",
                    membership_columns!(),
                    ", ",
                    person_columns!(),
                    " FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 \
                     AND m.state IN ('invited', 'active') AND m.role <> 'attending_physician' ORDER BY m.invited_at"
                ))
                .bind(group)
                .fetch_all(&mut *tx)
                .await?;
                let mut out = Vec::with_capacity(members.len());
                for m in members {
                    let user =
                        sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
                            .bind(m.person_id())
                            .fetch_one(&mut *tx)
                            .await?;
                    out.push((m, user));
                }
                out
            };
            let mut removed = Vec::new();
            for (member, user) in candidates {
                let account = Account::try_from(user)?;
                if policy::groups::in_scope(&new.scope, &account.user) {
                    continue;
                }
                sqlx::query(
                    "UPDATE memberships SET state = CASE state WHEN 'invited' THEN 'cancelled' ELSE 'removed' END, \
                     ended_at = $2 WHERE id = $1",
                )
                .bind(member.membership_id())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                removed.push(member);
            }
            sqlx::query(
                "UPDATE groups SET status = $2, handover_to_id = CASE WHEN handover_to_id IN \
                 (SELECT user_id FROM memberships WHERE group_id = $1 AND state = 'active') THEN handover_to_id END \
                 WHERE id = $1",
            )
            .bind(group)
            .bind(status.as_str())
            .execute(&mut *tx)
            .await?;
            audit.detail("version", row.version);
            audit.detail("kind", new.kind.as_str());
            audit.detail("removed", removed.iter().map(|m| m.person.person_id).collect::<Vec<_>>());
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
            (row, removed)
        });
        let consent = Consent::try_from(row)?;
        let removed = removed.into_iter().map(|m| Person::try_from(m.person)).collect::<Result<_, _>>()?;
        Ok((consent, removed))
    }

    /// Names `target` (an active member) as the physician the group is being handed over to.
    pub async fn request_handover(
        &self,
        group: Uuid,
        target: Uuid,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE groups SET handover_to_id = $2, updated_at = $3 WHERE id = $1 AND status = 'active' \
                 AND EXISTS (SELECT 1 FROM memberships WHERE group_id = $1 AND user_id = $2 AND state = 'active' \
                 AND role = 'member')",
            )
            .bind(group)
            .bind(target)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Err(StoreError::Conflict(Conflict::StateChanged));
            }
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The handover target accepts (they become the attending physician and the previous one a member) or
    /// declines (the handover is cancelled).
    pub async fn answer_handover(
        &self,
        group: Uuid,
        user: Uuid,
        accept: bool,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let pending = sqlx::query(
                "UPDATE groups SET handover_to_id = NULL, updated_at = $3 WHERE id = $1 AND handover_to_id = $2 \
                 AND status = 'active'",
            )
            .bind(group)
            .bind(user)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if pending != 1 {
                return Err(StoreError::Conflict(Conflict::StateChanged));
            }
            if accept {
                sqlx::query(
                    "UPDATE memberships SET role = 'member' WHERE group_id = $1 AND role = 'attending_physician' \
                     AND state = 'active'",
                )
                .bind(group)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE memberships SET role = 'attending_physician' WHERE group_id = $1 AND user_id = $2 \
                     AND state = 'active'",
                )
                .bind(group)
                .bind(user)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE groups SET attending_physician_id = $2 WHERE id = $1")
                    .bind(group)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Archives the group when care ends: read-only, kept for retention; a pending handover is cancelled.
    pub async fn archive_group(
        &self,
        group: Uuid,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE groups SET status = 'archived', handover_to_id = NULL, updated_at = $2, archived_at = $2 \
                 WHERE id = $1",
            )
            .bind(group)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
