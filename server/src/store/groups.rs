//! Care teams: groups, consent versions, membership episodes. Every operation that changes a group first
//! touches the group's row inside its transaction, which serialises changes to one group on both
//! backends (a row lock in PostgreSQL, the write lock in SQLite): a consent change and an invitation can
//! never interleave.

use crate::store::BeginWrite;
use renkei_protocol::{
    Consent, ConsentKind, ConsentMethod, Consenter, GroupStatus, Member, MemberRole, MembershipRecord, MembershipState,
    PatientIdentifiers, Person, ScopeEntry,
};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::dialect::Steps;
use super::group_rows::{
    ConsentRow, GroupRow, MemberRow, MembershipRow, consent_columns, date_text, group_columns, membership_columns,
    membership_returning, person_columns,
};
use super::rows::{UserRow, user_columns};
use super::{Conflict, NewAuditEntry, Store, StoreError, is_unique_violation, with_pool};
use crate::domain::{Account, GroupRecord, Membership, to_micros};
use crate::policy;

/// An invitation to write, checked by the caller against `consent_version`.
#[derive(Debug, Clone, Copy)]
pub struct NewInvitation {
    pub group: Uuid,
    pub invitee: Uuid,
    pub invited_by: Uuid,
    /// The consent in force when the caller checked the invitee against it.
    pub consent_version: i32,
    pub expires_at: OffsetDateTime,
}

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

    /// The user's current (invited or active) membership episode in the group, if any.
    pub async fn current_membership(&self, group: Uuid, user: Uuid) -> Result<Option<Membership>, StoreError> {
        let sql = concat!(
            "SELECT ",
            membership_columns!(),
            " FROM memberships m WHERE m.group_id = $1 AND m.user_id = $2 AND m.state IN ('invited', 'active')"
        );
        let row: Option<MembershipRow> =
            with_pool!(self, |pool| sqlx::query_as(sql).bind(group).bind(user).fetch_optional(pool).await)?;
        row.map(Membership::try_from).transpose()
    }

    /// The groups the user is an active member of, with their role, by label.
    pub async fn groups_of(&self, user: Uuid) -> Result<Vec<(GroupRecord, MemberRole)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            group: GroupRow,
            member_role: String,
        }
        let sql = concat!(
            "SELECT g.*, m.role AS member_role FROM groups g JOIN memberships m ON m.group_id = g.id ",
            "WHERE m.user_id = $1 AND m.state = 'active' ORDER BY g.label, g.id"
        );
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(sql).bind(user).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| {
                let role = MemberRole::parse(&r.member_role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {:?}", r.member_role)))?;
                Ok((GroupRecord::try_from(r.group)?, role))
            })
            .collect()
    }

    /// Active members with who they are, attending physician first, then by joining time.
    pub async fn active_members(&self, group: Uuid) -> Result<Vec<Member>, StoreError> {
        let rows = self.member_rows(group, true).await?;
        rows.into_iter()
            .map(|r| {
                let person = Person::try_from(r.person)?;
                let m = Membership::try_from(r.membership)?;
                Ok(Member { person, role: m.role, since: m.joined_at.unwrap_or(m.invited_at) })
            })
            .collect()
    }

    /// Every membership episode of the group, oldest first (administrators' view).
    pub async fn membership_history(&self, group: Uuid) -> Result<Vec<MembershipRecord>, StoreError> {
        let rows = self.member_rows(group, false).await?;
        rows.into_iter()
            .map(|r| {
                let person = Person::try_from(r.person)?;
                let m = Membership::try_from(r.membership)?;
                Ok(MembershipRecord {
                    person,
                    role: m.role,
                    state: m.state,
                    invited_at: m.invited_at,
                    joined_at: m.joined_at,
                    ended_at: m.ended_at,
                })
            })
            .collect()
    }

    async fn member_rows(&self, group: Uuid, active_only: bool) -> Result<Vec<MemberRow>, StoreError> {
        macro_rules! members_where {
            ($filter:literal) => {
                concat!(
                    "SELECT ",
                    membership_columns!(),
                    ", ",
                    person_columns!(),
                    " FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 AND ",
                    $filter,
                    " ORDER BY CASE m.role WHEN 'attending_physician' THEN 0 ELSE 1 END, m.invited_at, m.id"
                )
            };
        }
        let sql = if active_only { members_where!("m.state = 'active'") } else { members_where!("TRUE") };
        Ok(with_pool!(self, |pool| sqlx::query_as(sql).bind(group).fetch_all(pool).await)?)
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

    /// Invites a user, provided the group is still active and `consent_version` is still the consent in
    /// force (the caller checked the invitee against it). A user already invited or active is
    /// `Conflict::AlreadyMember`; a consent changed in between is `Conflict::StateChanged`.
    pub async fn invite(
        &self,
        invitation: NewInvitation,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<Membership, StoreError> {
        let NewInvitation { group, invitee, invited_by, consent_version, expires_at } = invitation;
        let now = to_micros(now);
        let appender = self.audit_appender();
        let row: MembershipRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if tx.lock_group(group, now).await? != Some(GroupStatus::Active) {
                return Err(StoreError::Conflict(Conflict::GroupNotActive));
            }
            let version: Option<i32> = sqlx::query_scalar("SELECT MAX(version) FROM consents WHERE group_id = $1")
                .bind(group)
                .fetch_one(&mut *tx)
                .await?;
            if version != Some(consent_version) {
                return Err(StoreError::Conflict(Conflict::StateChanged));
            }
            tx.expire_invitations(&appender, Some(invitee), Some(group), now).await?;
            let inserted = sqlx::query_as::<_, MembershipRow>(concat!(
                "INSERT INTO memberships (id, group_id, user_id, role, state, invited_by, invited_at, expires_at) \
                 VALUES ($1, $2, $3, 'member', 'invited', $4, $5, $6) RETURNING ",
                membership_returning!()
            ))
            .bind(Uuid::now_v7())
            .bind(group)
            .bind(invitee)
            .bind(invited_by)
            .bind(now)
            .bind(to_micros(expires_at))
            .fetch_one(&mut *tx)
            .await;
            let row = match inserted {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict(Conflict::AlreadyMember));
                }
                other => other?,
            };
            audit.detail("invitation", row.id);
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// The user's pending invitations (expired ones are marked so first), newest first.
    pub async fn pending_invitations(&self, user: Uuid, now: OffsetDateTime) -> Result<Vec<Membership>, StoreError> {
        let now = to_micros(now);
        let sql = concat!(
            "SELECT ",
            membership_columns!(),
            " FROM memberships m WHERE m.user_id = $1 AND m.state = 'invited' ORDER BY m.invited_at DESC"
        );
        let appender = self.audit_appender();
        let rows: Vec<MembershipRow> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.expire_invitations(&appender, Some(user), None::<Uuid>, now).await?;
            tx.commit().await?;
            sqlx::query_as(sql).bind(user).fetch_all(pool).await
        })?;
        rows.into_iter().map(Membership::try_from).collect()
    }

    /// A group's pending invitations (expired ones are marked so first), oldest first.
    pub async fn group_invitations(&self, group: Uuid, now: OffsetDateTime) -> Result<Vec<Membership>, StoreError> {
        let now = to_micros(now);
        let sql = concat!(
            "SELECT ",
            membership_columns!(),
            " FROM memberships m WHERE m.group_id = $1 AND m.state = 'invited' ORDER BY m.invited_at"
        );
        let appender = self.audit_appender();
        let rows: Vec<MembershipRow> = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.expire_invitations(&appender, None::<Uuid>, Some(group), now).await?;
            tx.commit().await?;
            sqlx::query_as(sql).bind(group).fetch_all(pool).await
        })?;
        rows.into_iter().map(Membership::try_from).collect()
    }

    /// The invitation (any state) with this id addressed to `user`.
    pub async fn invitation(&self, id: Uuid, user: Uuid) -> Result<Option<Membership>, StoreError> {
        let sql = concat!("SELECT ", membership_columns!(), " FROM memberships m WHERE m.id = $1 AND m.user_id = $2");
        let row: Option<MembershipRow> =
            with_pool!(self, |pool| sqlx::query_as(sql).bind(id).bind(user).fetch_optional(pool).await)?;
        row.map(Membership::try_from).transpose()
    }

    /// Accepts or declines a pending invitation of `user`. An expired one is marked expired and reported as
    /// `Conflict::InvitationExpired`; one that is no longer pending is `Conflict::StateChanged`.
    pub async fn answer_invitation(
        &self,
        id: Uuid,
        user: Uuid,
        accept: bool,
        mut audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<Membership, StoreError> {
        let now = to_micros(now);
        let membership = self.invitation(id, user).await?.ok_or(StoreError::Conflict(Conflict::StateChanged))?;
        let appender = self.audit_appender();
        let row: MembershipRow = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if tx.lock_group(membership.group_id, now).await? != Some(GroupStatus::Active) {
                return Err(StoreError::Conflict(Conflict::GroupNotActive));
            }
            let expired = tx.expire_invitations(&appender, Some(user), Some(membership.group_id), now).await?;
            if expired > 0 {
                tx.commit().await?;
                return Err(StoreError::Conflict(Conflict::InvitationExpired));
            }
            let sql = if accept {
                concat!(
                    "UPDATE memberships SET state = 'active', joined_at = $3 WHERE id = $1 AND user_id = $2 \
                     AND state = 'invited' RETURNING ",
                    membership_returning!()
                )
            } else {
                concat!(
                    "UPDATE memberships SET state = 'declined', ended_at = $3 WHERE id = $1 AND user_id = $2 \
                     AND state = 'invited' RETURNING ",
                    membership_returning!()
                )
            };
            let row = sqlx::query_as::<_, MembershipRow>(sql)
                .bind(id)
                .bind(user)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::Conflict(Conflict::StateChanged))?;
            audit.group_id = Some(membership.group_id);
            audit.detail("invitation", id);
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Ends a user's current membership (active or invited) as `removed` or `left`. The attending
    /// physician's membership never ends this way. False when there was nothing to end.
    pub async fn end_membership(
        &self,
        group: Uuid,
        user: Uuid,
        how: MembershipState,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        let done = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if tx.lock_group(group, now).await?.is_none() {
                return Ok(false);
            }
            let done = sqlx::query(
                "UPDATE memberships SET state = CASE state WHEN 'invited' THEN 'cancelled' ELSE $3 END, ended_at = $4 \
                 WHERE group_id = $1 AND user_id = $2 AND state IN ('invited', 'active') AND role = 'member'",
            )
            .bind(group)
            .bind(user)
            .bind(how.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            sqlx::query("UPDATE groups SET handover_to_id = NULL WHERE id = $1 AND handover_to_id = $2")
                .bind(group)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
            done
        });
        Ok(done == 1)
    }

    /// Adds an active member directly (community groups, by an administrator).
    pub async fn add_member(
        &self,
        group: Uuid,
        user: Uuid,
        added_by: Uuid,
        audit: NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = to_micros(now);
        let appender = self.audit_appender();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if tx.lock_group(group, now).await? != Some(GroupStatus::Active) {
                return Err(StoreError::Conflict(Conflict::GroupNotActive));
            }
            match tx.insert_active_member(group, user, MemberRole::Member, Some(added_by), now).await {
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Conflict(Conflict::AlreadyMember));
                }
                other => other?,
            }
            tx.append_audit(&appender, &audit, now).await?;
            tx.commit().await?;
        });
        Ok(())
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
