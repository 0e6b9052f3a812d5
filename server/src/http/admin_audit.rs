//! `/api/v1/admin/audit`: administrators query the audit log by user, group, action and time — metadata
//! only, never content. Every query is itself an audit entry.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use renkei_protocol::{AuditEntry, AuditList, AuditVerification, ErrorBody};
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiQuery, csv_field};
use crate::audit::{Actor, action};
use crate::auth::{Admin, RecentAdmin};
use crate::domain;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::AuditFilter;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(query)).routes(routes!(export)).routes(routes!(verification))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries where this user acted or was acted upon.
    user: Option<Uuid>,
    group: Option<Uuid>,
    action: Option<String>,
    /// RFC 3339 time, inclusive.
    from: Option<String>,
    /// RFC 3339 time, exclusive.
    to: Option<String>,
    /// Entries after this sequence number (for paging forward).
    after: Option<i64>,
    /// Entries before this sequence number (for paging back from the newest).
    before: Option<i64>,
    /// The newest first (default: the oldest first).
    #[serde(default)]
    newest_first: bool,
    /// At most this many (default 1000, at most 10000).
    limit: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        let limit = self.limit.unwrap_or(1000);
        if !(1..=10_000).contains(&limit) {
            return Err(ApiError::field("limit", "out_of_range"));
        }
        if let Some(action) = &self.action
            && !action::ALL.contains(&action.as_str())
        {
            return Err(ApiError::field("action", "unknown_action"));
        }
        Ok(AuditFilter {
            actor_id: self.user,
            group_id: self.group,
            action: self.action.clone(),
            from: time("from", self.from.as_deref())?,
            to: time("to", self.to.as_deref())?,
            after_seq: self.after,
            before_seq: self.before,
            newest_first: self.newest_first,
            limit,
        })
    }
}

fn time(field: &'static str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ApiError::field(field, "not_rfc3339"))
    })
    .transpose()
}

/// Audit entries matching the filters, oldest first (or the newest first). An unknown action is refused
/// (`validation_failed`, `action: unknown_action`) rather than matching nothing.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn query(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::Json<AuditList>, ApiError> {
    let entries = state.store.audit_entries(&q.filter()?).await?;
    let details = serde_json::json!({
        "user": q.user, "group": q.group, "action": q.action, "from": q.from, "to": q.to, "returned": entries.len(),
    });
    state.audit.record(action::AUDIT_QUERIED, &Actor::from(&caller), q.group, q.user, details).await?;
    Ok(axum::Json(AuditList { entries }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// `csv` (default) or `json`.
    format: Option<String>,
    user: Option<Uuid>,
    group: Option<Uuid>,
    action: Option<String>,
    /// RFC 3339 time, inclusive.
    from: Option<String>,
    /// RFC 3339 time, exclusive.
    to: Option<String>,
    /// At most this many (default 10000, at most 10000).
    limit: Option<i64>,
}

fn audit_csv(entries: &[AuditEntry]) -> String {
    let mut out =
        String::from("seq,at,action,actor_id,group_id,target_user_id,client_addr,session_id,details,hash\r\n");
    let text = |v: Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    for e in entries {
        let at = e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let row = [
            e.seq.to_string(),
            at,
            e.action.clone(),
            text(e.actor_id),
            text(e.group_id),
            text(e.target_user_id),
            e.client_addr.clone().unwrap_or_default(),
            text(e.session_id),
            e.details.to_string(),
            e.hash.clone(),
        ];
        out.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// The audit entries matching the filters as a CSV or JSON download, for the physicians' association's
/// records. An export needs a recent sign-in and is itself audited.
#[utoipa::path(get, path = "/api/v1/admin/audit/export", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(ExportQuery),
    responses((status = 200, description = "CSV (the default) or JSON", content((String = "text/csv"), (AuditList = "application/json"))),
        (status = 403, description = "forbidden, or reauthentication_required", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn export(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(ApiError::field("format", "csv_or_json")),
    };
    let filter = AuditQuery {
        user: q.user,
        group: q.group,
        action: q.action.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        after: None,
        before: None,
        newest_first: false,
        limit: Some(q.limit.unwrap_or(10_000)),
    }
    .filter()?;
    let entries = state.store.audit_entries(&filter).await?;
    let details = serde_json::json!({
        "user": q.user, "group": q.group, "action": q.action, "from": q.from, "to": q.to,
        "format": if csv { "csv" } else { "json" }, "returned": entries.len(),
    });
    state.audit.record(action::AUDIT_EXPORTED, &Actor::from(&caller), q.group, q.user, details).await?;
    let stamp = domain::now().date();
    if csv {
        let disposition = format!("attachment; filename=\"renkei-audit-{stamp}.csv\"");
        Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
            audit_csv(&entries),
        )
            .into_response())
    } else {
        let disposition = format!("attachment; filename=\"renkei-audit-{stamp}.json\"");
        Ok(([(header::CONTENT_DISPOSITION, disposition)], axum::Json(AuditList { entries })).into_response())
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct VerificationQuery {
    /// An anchor written down earlier, `SEQ HASH`; without it, the configured `audit_anchor_file`, if any.
    anchor: Option<String>,
}

/// Verifies the whole audit chain now (and against the anchor), and says where it ends: the last entry's
/// sequence number, time and hash, to write down as the next anchor.
#[utoipa::path(get, path = "/api/v1/admin/audit/verification", tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(VerificationQuery),
    responses((status = 200, body = AuditVerification), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn verification(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiQuery(q): ApiQuery<VerificationQuery>,
) -> Result<axum::Json<AuditVerification>, ApiError> {
    // The anchor given, or the one the server keeps (read fresh: another node may have written it).
    // Exactly `SEQ HASH` as the verification printed it (the document's pattern), or nothing.
    let anchor = match q.anchor.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => {
            let exact = text.split_once(' ').is_some_and(|(seq, hash)| {
                (1..=18).contains(&seq.len()) && seq.bytes().all(|b| b.is_ascii_digit()) && hash.len() == 64
            });
            let parsed = crate::audit::parse_anchor(text).filter(|_| exact);
            Some(parsed.ok_or_else(|| ApiError::field("anchor", "not_seq_and_hash"))?)
        }
        None => crate::audit::configured_anchor(&state.config).map_err(ApiError::internal)?,
    };
    let anchor_text = anchor.as_ref().map(|(seq, hash)| format!("{seq} {hash}"));
    let outcome = crate::audit::verify(&state.store, anchor).await?;
    let last = state.store.audit_last().await?;
    use crate::domain::audit::ChainBreak;
    use renkei_protocol::AuditBreak;
    let (intact, problem, break_kind, break_seq) = match &outcome {
        Ok(_) => (true, None, None, None),
        Err(broken) => {
            let (kind, seq) = match broken {
                ChainBreak::Altered { seq } => (AuditBreak::Altered, *seq),
                ChainBreak::Unlinked { seq } => (AuditBreak::Unlinked, *seq),
                ChainBreak::Gap { expected, .. } => (AuditBreak::Gap, *expected),
                ChainBreak::Truncated { anchor_seq, .. } => (AuditBreak::Truncated, *anchor_seq),
                ChainBreak::Forged { seq } => (AuditBreak::Forged, *seq),
            };
            (false, Some(broken.to_string()), Some(kind), Some(seq))
        }
    };
    let details = serde_json::json!({ "intact": intact, "anchor": anchor_text.is_some() });
    state.audit.record(action::AUDIT_VERIFIED, &Actor::from(&caller), None, None, details).await?;
    Ok(axum::Json(AuditVerification {
        intact,
        entries: *outcome.as_ref().unwrap_or(&0),
        last_seq: last.as_ref().map_or(0, |e| e.seq),
        last_at: last.as_ref().map(|e| e.at),
        last_hash: last.map(|e| e.hash),
        anchor: anchor_text,
        problem,
        break_kind,
        break_seq,
        verified_at: domain::now(),
    }))
}
