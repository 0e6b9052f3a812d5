//! Memberships: a member's episodes in a group (invited, active, ended), invitations and their answers,
//! and who is in a group. Every change touches the group's row first (see `groups.rs`).

use renkei_protocol::{GroupStatus, Member, MemberRole, MembershipRecord, MembershipState, Person};
use time::OffsetDateTime;
use uuid::Uuid;

use super::dialect::Steps;
use super::group_rows::{GroupRow, MemberRow, MembershipRow, membership_columns, membership_returning, person_columns};
use super::{BeginWrite, Conflict, NewAuditEntry, Store, StoreError, is_unique_violation, with_pool};
use crate::domain::{GroupRecord, Membership, to_micros};

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

impl Store {
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
}
