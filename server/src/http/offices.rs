//! `/api/v1/admin/offices`: each office's own rules (rule 7), kept by administrators — who of the office
//! may export a timeline, from which networks its members download files, its retention. Decided in
//! `policy::offices`; every change audited.

use axum::extract::{Path, State};
use renkei_protocol::{ErrorBody, OfficeRules, OfficeRulesList, OfficeRulesUpdate};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiJson;
use crate::audit::{Actor, Audit, action};
use crate::auth::{Admin, RecentAdmin};
use crate::domain::{self, FieldError, Organisation};
use crate::error::ApiError;
use crate::policy::offices::parse_network;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_offices)).routes(routes!(set_office_rules))
}

/// Every office that has rules of its own.
#[utoipa::path(get, path = "/api/v1/admin/offices", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = OfficeRulesList), (status = 403, body = ErrorBody)))]
async fn list_offices(State(state): State<AppState>, _admin: Admin) -> Result<axum::Json<OfficeRulesList>, ApiError> {
    Ok(axum::Json(OfficeRulesList { offices: state.store.all_office_rules().await? }))
}

/// Sets an office's rules (the organisation as on its members' accounts). Empty lists and no retention
/// restore the defaults: the attending physician alone exports, files download from anywhere, the
/// server's retention applies.
#[utoipa::path(put, path = "/api/v1/admin/offices/{organisation}", tag = "admin", security(("bearer" = [])),
    params(("organisation" = String, Path)), request_body = OfficeRulesUpdate,
    responses((status = 200, body = OfficeRules), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_office_rules(
    State(state): State<AppState>,
    RecentAdmin(caller): RecentAdmin,
    Path(organisation): Path<String>,
    ApiJson(mut rules): ApiJson<OfficeRulesUpdate>,
) -> Result<axum::Json<OfficeRules>, ApiError> {
    let organisation = Organisation::parse(&organisation).map_err(|e| ApiError::Validation(vec![e]))?;
    let mut problems = Vec::new();
    rules.attachment_networks = rules.attachment_networks.iter().map(|n| n.trim().to_owned()).collect();
    if rules.attachment_networks.len() > 50 || rules.attachment_networks.iter().any(|n| parse_network(n).is_none()) {
        problems.push(FieldError::new("attachment_networks", "invalid_network"));
    }
    if rules.purge_archived_after_days.is_some_and(|d| d == 0 || d > 36_500) {
        problems.push(FieldError::new("purge_archived_after_days", "out_of_range"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    rules.timeline_export.sort_by_key(|p| p.as_str());
    rules.timeline_export.dedup();
    let details = serde_json::json!({
        "organisation": organisation.as_str(),
        "timeline_export": rules.timeline_export,
        "attachment_networks": rules.attachment_networks,
        "purge_archived_after_days": rules.purge_archived_after_days,
    });
    let audit = Audit::entry(action::OFFICE_RULES_CHANGED, &Actor::from(&caller), None, None, details);
    let saved =
        state.store.set_office_rules(organisation.as_str(), &rules, caller.account.id(), audit, domain::now()).await?;
    Ok(axum::Json(saved))
}
