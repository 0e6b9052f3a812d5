//! `/api/v1/admin/audit`: administrators query the audit log by user, group, action and time — metadata
//! only, never content. Every query is itself an audit entry.

use axum::extract::State;
use renkei_protocol::{AuditList, ErrorBody};
use serde::Deserialize;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ApiQuery;
use crate::app::AppState;
use crate::audit::{Actor, action};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::store::AuditFilter;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(query))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
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
    /// Entries after this sequence number (for paging).
    after: Option<i64>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<i64>,
}

fn time(field: &'static str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|_| ApiError::field(field, "not_rfc3339"))
    })
    .transpose()
}

/// Audit entries matching the filters, oldest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn query(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::Json<AuditList>, ApiError> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::field("limit", "out_of_range"));
    }
    let filter = AuditFilter {
        actor_id: q.user,
        group_id: q.group,
        action: q.action.clone(),
        from: time("from", q.from.as_deref())?,
        to: time("to", q.to.as_deref())?,
        after_seq: q.after,
        limit,
    };
    let entries = state.store.audit_entries(&filter).await?;
    let details = serde_json::json!({
        "user": q.user, "group": q.group, "action": q.action, "from": q.from, "to": q.to, "returned": entries.len(),
    });
    state.audit.record(action::AUDIT_QUERIED, &Actor::from(&caller), q.group, q.user, details).await;
    Ok(axum::Json(AuditList { entries }))
}
