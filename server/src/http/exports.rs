//! Exports for the attending physician: the timeline for the medical record (JSON or Markdown), and the
//! access report of a patient group. Every export is audited. Administrators have no path here.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use renkei_protocol::words::Lang;
use renkei_protocol::{AccessReport, ErrorBody, ExportedPost, Person, TimelineExport};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiQuery;
use super::groups::authorized;
use crate::audit::{Actor, action};
use crate::auth::Member as Caller;
use crate::domain;
use crate::error::ApiError;
use crate::policy::groups::GroupAction;
use crate::state::AppState;
use crate::store::AuditFilter;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_timeline)).routes(routes!(access_report))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// `json` (default) or `markdown`.
    format: Option<String>,
}

/// The whole timeline — every post, every version, every seen mark — as JSON or a readable Markdown
/// document for the medical record.
#[utoipa::path(get, path = "/api/v1/groups/{id}/export", tag = "groups", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ExportQuery),
    responses((status = 200, description = "JSON (the default) or Markdown",
        content((TimelineExport = "application/json"), (String = "text/markdown"))), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export_timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let lang = Lang::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
    let markdown = match q.format.as_deref() {
        None | Some("json") => false,
        Some("markdown") => true,
        Some(_) => return Err(ApiError::field("format", "json_or_markdown")),
    };
    // The attending physician, or a member whose office's rules let their profession export (rule 7).
    let (group, membership) = authorized(&state, &caller, &id, GroupAction::View).await?;
    let person = caller.0.account.person();
    let office = state.store.office_rules(&person.organisation).await?;
    crate::policy::offices::may_export_timeline(&group, Some(&membership), person.profession, office.as_ref())?;
    let mut posts = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.posts_page(group.id, Some(after), None, 500).await?;
        let full = page.len() == 500;
        for post in page {
            after = post.seq;
            let versions = state.store.post_versions(&post).await?;
            let seen = state.store.seen_marks(group.id, post.seq).await?;
            posts.push(ExportedPost { post, versions, seen });
        }
        if !full {
            break;
        }
    }
    let export = TimelineExport {
        group_id: group.id,
        label: group.label.clone(),
        patient: group.patient.clone(),
        exported_at: domain::now(),
        posts,
    };
    let details =
        serde_json::json!({ "format": if markdown { "markdown" } else { "json" }, "posts": export.posts.len() });
    state.audit.record(action::TIMELINE_EXPORTED, &Actor::from(&caller.0), Some(group.id), None, details).await?;
    if markdown {
        let text = render_markdown(&export, &state.config.zone(), lang);
        Ok(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], text).into_response())
    } else {
        Ok(axum::Json(export).into_response())
    }
}

/// The timeline as a document for the medical record, in the reader's language (`Accept-Language`).
fn render_markdown(export: &TimelineExport, zone: &renkei_protocol::zone::Zone, lang: Lang) -> String {
    let when = |t: time::OffsetDateTime| zone.minute(t);
    let mut out = format!("# {}\n\n", export.label);
    if let Some(p) = &export.patient {
        out.push_str(&format!("- {}: {}", lang.pick("患者", "Patient"), p.full_name));
        if let Some(k) = &p.kana {
            out.push_str(&format!("（{k}）"));
        }
        if let Some(n) = &p.patient_number {
            out.push_str(&format!(" / {n}"));
        }
        out.push('\n');
    }
    out.push_str(&format!("- {}: {}\n\n", lang.pick("出力日時", "Exported"), when(export.exported_at)));
    for e in &export.posts {
        let p = &e.post;
        out.push_str(&format!(
            "## #{} {} — {}（{}・{}）[{}]\n\n",
            p.seq,
            when(p.created_at),
            p.author.display_name,
            p.author.profession.name(lang),
            p.author.organisation,
            p.kind.name(lang)
        ));
        if let Some(r) = p.reply_to {
            out.push_str(&match lang {
                Lang::Ja => format!("> #{r} への返信\n\n"),
                Lang::En => format!("> in reply to #{r}\n\n"),
            });
        }
        for v in &e.versions {
            let body = v.body.as_deref().unwrap_or(lang.pick("（削除）", "(deleted)"));
            out.push_str(&format!("- v{} {}: {}\n", v.version, when(v.at), body.replace('\n', "\n  ")));
        }
        // The files themselves stay in renkei (`GET …/attachments/{id}`, or `renkei attachment get`).
        for a in &p.attachments {
            let size = a.size.div_euclid(1024).max(1);
            let label = lang.pick("添付", "Attachment");
            out.push_str(&format!("- {label}: {}（{}、{size} KB、{}）\n", a.name, a.kind.as_str(), a.id));
        }
        if !e.seen.is_empty() {
            let names: Vec<String> = e.seen.iter().map(|s| format!("{} {}", s.by.display_name, when(s.at))).collect();
            out.push_str(&format!("- {}: {}\n", lang.pick("見ました", "Seen"), names.join("、")));
        }
        out.push('\n');
    }
    out
}

/// Who was and is in the group, added by whom under which consent version, removed when, and who read
/// the timeline when.
#[utoipa::path(get, path = "/api/v1/groups/{id}/access-report", tag = "groups", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = AccessReport), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn access_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<AccessReport>, ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::Export).await?;
    let filter = AuditFilter { group_id: Some(group.id), limit: 100_000, ..Default::default() };
    let events = state.store.audit_entries(&filter).await?;
    let mut ids: Vec<uuid::Uuid> = events.iter().flat_map(|e| [e.actor_id, e.target_user_id]).flatten().collect();
    ids.sort();
    ids.dedup();
    let mut people: Vec<Person> = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(account) = state.store.account_by_id(id).await? {
            people.push(account.person());
        }
    }
    let report = AccessReport {
        group_id: group.id,
        label: group.label.clone(),
        generated_at: domain::now(),
        memberships: state.store.membership_history(group.id).await?,
        events,
        people,
    };
    let details = serde_json::json!({ "events": report.events.len() });
    state.audit.record(action::ACCESS_REPORT_EXPORTED, &Actor::from(&caller.0), Some(group.id), None, details).await?;
    Ok(axum::Json(report))
}
