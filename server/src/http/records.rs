//! The monthly care record (在宅医療情報連携加算) of a patient group, and the summary of a month over every
//! group of an attending physician: theirs alone, audited like every export. What makes a month complete is
//! decided in `policy::records`.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use renkei_protocol::{
    CareRecord, ErrorBody, GroupKind, MemberRole, Post, PostKind, RecordSummary, RecordSummaryGroup, SeenPost,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::groups::authorized;
use renkei_protocol::zone::Zone;

use super::{ApiQuery, csv_field};
use crate::audit::{Actor, action};
use crate::auth::Member as Caller;
use crate::domain::{self, GroupRecord};
use crate::error::ApiError;
use crate::policy::groups::GroupAction;
use crate::policy::records::{self, Month};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(care_record)).routes(routes!(record_summary))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RecordQuery {
    /// `json` (default), `csv` or `html` (a page to print).
    format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Html,
}

impl Format {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("json") => Ok(Self::Json),
            Some("csv") => Ok(Self::Csv),
            Some("html") => Ok(Self::Html),
            Some(_) => Err(ApiError::field("format", "json_csv_or_html")),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
        }
    }
}

fn parse_month(state: &AppState, raw: &str) -> Result<Month, ApiError> {
    // The month's bounds at today's offset (Japan keeps one all year).
    let offset = state.config.zone().offset_at(crate::domain::now());
    Month::parse(raw, offset).ok_or_else(|| ApiError::field("month", "invalid_month"))
}

/// A patient group's record of one month (`YYYY-MM`, in the server's time zone): the care-policy posts,
/// the posts of other professions the attending physician saw, the consent in force, the organisations
/// linked, and whether the month is complete and why not. For the attending physician; audited.
#[utoipa::path(get, path = "/api/v1/groups/{id}/records/{month}", tag = "groups", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("month" = String, Path, description = "YYYY-MM"), RecordQuery),
    responses((status = 200, description = "JSON (the default), CSV or a printable HTML page",
        content((CareRecord = "application/json"), (String = "text/csv"), (String = "text/html"))), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn care_record(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, month)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<Response, ApiError> {
    let format = Format::parse(q.format.as_deref())?;
    let (group, _) = authorized(&state, &caller, &id, GroupAction::Export).await?;
    let month = parse_month(&state, &month)?;
    let record = build(&state, &group, month).await?;
    let details = serde_json::json!({
        "month": record.month,
        "format": format.as_str(),
        "complete": record.complete,
    });
    state.audit.record(action::CARE_RECORD_EXPORTED, &Actor::from(&caller.0), Some(group.id), None, details).await?;
    let zone = state.config.zone();
    Ok(match format {
        Format::Json => axum::Json(record).into_response(),
        Format::Csv => {
            let name = format!("attachment; filename=\"care-record-{}.csv\"", record.month);
            (
                [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)],
                render_csv(&record, &zone),
            )
                .into_response()
        }
        Format::Html => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], render_html(&record, &zone)).into_response()
        }
    })
}

/// Every patient group I am the attending physician of, for one month: complete or not, and the
/// organisations linked across them (the 加算 asks for at least five facilities). Audited.
#[utoipa::path(get, path = "/api/v1/records/{month}", tag = "groups", security(("bearer" = [])),
    params(("month" = String, Path, description = "YYYY-MM")),
    responses((status = 200, body = RecordSummary), (status = 422, body = ErrorBody)))]
async fn record_summary(
    State(state): State<AppState>,
    caller: Caller,
    Path(month): Path<String>,
) -> Result<axum::Json<RecordSummary>, ApiError> {
    let month = parse_month(&state, &month)?;
    let me = caller.0.account.id();
    let mut groups = Vec::new();
    let mut organisations = std::collections::BTreeSet::new();
    for (group, role) in state.store.groups_of(me).await? {
        if group.kind != GroupKind::Patient || role != MemberRole::AttendingPhysician {
            continue;
        }
        let record = build(&state, &group, month).await?;
        organisations.extend(record.organisations.iter().cloned());
        groups.push(RecordSummaryGroup {
            group_id: group.id,
            label: group.label.clone(),
            complete: record.complete,
            gaps: record.gaps,
            organisations: record.organisations.len(),
        });
    }
    let summary =
        RecordSummary { month: month.to_string(), groups, organisations: organisations.into_iter().collect() };
    let details = serde_json::json!({ "month": summary.month, "groups": summary.groups.len() });
    state.audit.record(action::CARE_RECORD_EXPORTED, &Actor::from(&caller.0), None, None, details).await?;
    Ok(axum::Json(summary))
}

/// The record of `group` for `month`, as the store holds it now.
async fn build(state: &AppState, group: &GroupRecord, month: Month) -> Result<CareRecord, ApiError> {
    let (from, until) = month.bounds();
    let posts = state.store.posts_written_between(group.id, from, until).await?;
    let physician = match group.attending_physician_id {
        Some(id) => state.store.account_by_id(id).await?.map(|a| a.person()),
        None => None,
    };
    let (marks, read) = match &physician {
        Some(p) => state.store.seen_by(group.id, p.id).await?,
        None => Default::default(),
    };
    let live = |p: &Post| p.deleted_at.is_none();
    let care_policies: Vec<Post> =
        posts.iter().filter(|p| live(p) && p.kind == PostKind::CarePolicy).cloned().collect();
    let seen_posts: Vec<SeenPost> = match &physician {
        Some(me) => posts
            .iter()
            .filter(|p| live(p) && p.author.profession != me.profession)
            .filter(|p| marks.contains_key(&p.seq) || p.seq <= read)
            .map(|p| SeenPost { post: p.clone(), seen_at: marks.get(&p.seq).copied() })
            .collect(),
        None => Vec::new(),
    };
    let consents = state.store.consents(group.id).await?;
    let (consent, consent_gap) = records::consent_for(&consents, month);
    let memberships = state.store.membership_history(group.id).await?;
    let organisations = records::organisations_during(&memberships, from, until);
    let gaps = records::gaps(!care_policies.is_empty(), !seen_posts.is_empty(), consent_gap);
    Ok(CareRecord {
        group_id: group.id,
        label: group.label.clone(),
        patient: group.patient.clone(),
        month: month.to_string(),
        generated_at: domain::now(),
        attending_physician: physician,
        complete: gaps.is_empty(),
        gaps,
        care_policies,
        seen_posts,
        consent: consent.cloned(),
        organisations,
    })
}

fn date(d: time::Date) -> String {
    d.format(time::macros::format_description!("[year]-[month]-[day]")).unwrap_or_default()
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "row",
    "month",
    "seq",
    "at",
    "author",
    "profession",
    "organisation",
    "next_visit_on",
    "policy_changed",
    "change_summary",
    "text",
    "seen_at",
];

/// The record as CSV: one row per care-policy post (`care_policy`), seen post (`seen_post`), consent
/// (`consent`: its version in `seq`, the date obtained in `at`, its kind in `text`), organisation
/// (`organisation`) and gap (`gap`), and a last `complete` row (`yes`/`no` in `text`).
fn render_csv(record: &CareRecord, zone: &Zone) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(&CSV_COLUMNS.join(","));
    out.push_str("\r\n");
    let mut row = |fields: [&str; 12]| {
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    };
    let m = record.month.as_str();
    for p in &record.care_policies {
        let policy = p.care_policy.as_ref();
        row([
            "care_policy",
            m,
            &p.seq.to_string(),
            &zone.minute(p.created_at),
            &p.author.display_name,
            p.author.profession.as_str(),
            &p.author.organisation,
            &policy.map(|c| date(c.next_visit_on)).unwrap_or_default(),
            policy.map_or("", |c| if c.policy_changed { "yes" } else { "no" }),
            policy.and_then(|c| c.change_summary.as_deref()).unwrap_or(""),
            p.body.as_deref().unwrap_or(""),
            "",
        ]);
    }
    for s in &record.seen_posts {
        let p = &s.post;
        row([
            "seen_post",
            m,
            &p.seq.to_string(),
            &zone.minute(p.created_at),
            &p.author.display_name,
            p.author.profession.as_str(),
            &p.author.organisation,
            "",
            "",
            "",
            p.body.as_deref().unwrap_or(""),
            &s.seen_at.map(|t| zone.minute(t)).unwrap_or_default(),
        ]);
    }
    if let Some(c) = &record.consent {
        row(["consent", m, &c.version.to_string(), &date(c.obtained_on), "", "", "", "", "", "", c.kind.as_str(), ""]);
    }
    for o in &record.organisations {
        row(["organisation", m, "", "", "", "", o, "", "", "", "", ""]);
    }
    for g in &record.gaps {
        row(["gap", m, "", "", "", "", "", "", "", "", g.as_str(), ""]);
    }
    row(["complete", m, "", "", "", "", "", "", "", "", if record.complete { "yes" } else { "no" }, ""]);
    out
}

fn escape(raw: &str) -> String {
    raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The record as a page to print and file with the patient's chart (Japanese, as the 加算's records are).
fn render_html(record: &CareRecord, zone: &Zone) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let title = format!("在宅医療情報連携加算 記録 {} {}", record.month, record.label);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:2em;line-height:1.5}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border:1px solid #888;padding:.3em;vertical-align:top;text-align:left}}\
         .gap{{color:#a00}}.ok{{color:#060}}pre{{white-space:pre-wrap;margin:0;font-family:inherit}}</style>\
         </head><body><h1>{}</h1>",
        escape(&title),
        escape(&title)
    );
    if let Some(p) = &record.patient {
        let _ = write!(out, "<p>患者: {}", escape(&p.full_name));
        if let Some(n) = &p.patient_number {
            let _ = write!(out, "（{}）", escape(n));
        }
        out.push_str("</p>");
    }
    if let Some(d) = &record.attending_physician {
        let _ = write!(out, "<p>主治医: {}（{}）</p>", escape(&d.display_name), escape(&d.organisation));
    }
    let _ = write!(out, "<p>作成日時: {}</p>", zone.minute(record.generated_at));
    if record.complete {
        out.push_str("<p class=\"ok\">この月の記録は揃っています。</p>");
    } else {
        out.push_str("<p class=\"gap\">この月の記録は揃っていません:</p><ul class=\"gap\">");
        for g in &record.gaps {
            let _ = write!(out, "<li>{}</li>", gap_text(*g));
        }
        out.push_str("</ul>");
    }
    out.push_str("<h2>診療方針</h2>");
    if record.care_policies.is_empty() {
        out.push_str("<p>なし</p>");
    } else {
        out.push_str(
            "<table><tr><th>日時</th><th>次回訪問日</th><th>方針の変更</th><th>変更の概要</th><th>留意事項</th></tr>",
        );
        for p in &record.care_policies {
            let c = p.care_policy.as_ref();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
                zone.minute(p.created_at),
                c.map(|c| date(c.next_visit_on)).unwrap_or_default(),
                if c.is_some_and(|c| c.policy_changed) { "あり" } else { "なし" },
                escape(c.and_then(|c| c.change_summary.as_deref()).unwrap_or("")),
                escape(p.body.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>他職種の記録（主治医が確認したもの）</h2>");
    if record.seen_posts.is_empty() {
        out.push_str("<p>なし</p>");
    } else {
        out.push_str("<table><tr><th>日時</th><th>記録者</th><th>内容</th><th>見ました</th></tr>");
        for s in &record.seen_posts {
            let p = &s.post;
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}（{}・{}）</td><td><pre>{}</pre></td><td>{}</td></tr>",
                zone.minute(p.created_at),
                escape(&p.author.display_name),
                p.author.profession.name(renkei_protocol::words::Lang::Ja),
                escape(&p.author.organisation),
                escape(p.body.as_deref().unwrap_or("")),
                s.seen_at.map(|t| zone.minute(t)).unwrap_or_else(|| "既読".into())
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>同意</h2>");
    match &record.consent {
        Some(c) => {
            let _ = write!(out, "<p>第{}版（{}、{}取得）</p>", c.version, c.kind.as_str(), date(c.obtained_on));
        }
        None => out.push_str("<p>なし</p>"),
    }
    let _ = write!(out, "<h2>連携する事業所（{}）</h2><ul>", record.organisations.len());
    for o in &record.organisations {
        let _ = write!(out, "<li>{}</li>", escape(o));
    }
    out.push_str("</ul></body></html>\n");
    out
}

fn gap_text(gap: renkei_protocol::RecordGap) -> &'static str {
    use renkei_protocol::RecordGap as G;
    match gap {
        G::NoCarePolicy => "この月の診療方針の投稿がありません",
        G::NoPostsSeen => "この月に確認した他職種の記録がありません",
        G::NoConsent => "この月の末日までに記録された同意がありません",
        G::ConsentWithdrawn => "同意がこの月の末日までに撤回されています",
    }
}
