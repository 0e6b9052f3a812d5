//! The HTTP API under `/api/v1`: one module per resource, each with its own `router()`, plus the
//! operational endpoints. Every failure is an [`ApiError`] with the one `{code, message, fields}` body.

mod admin;
mod admin_audit;
mod admin_groups;
mod asyncapi;
mod attachments;
mod auth;
mod contract;
mod directory;
mod exports;
mod groups;
mod invitations;
mod me;
mod notifications;
mod offices;
pub(crate) mod ops;
pub(crate) mod posts;
mod records;
mod team;
mod web;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::{Router, middleware};
use renkei_protocol::API_PREFIX;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::domain::{Account, Login};
use crate::error::ApiError;
use crate::state::AppState;

/// Finds an account by id or login; `not_found` when there is none.
pub(crate) async fn resolve_user(state: &AppState, key: &str) -> Result<Account, ApiError> {
    let found = match uuid::Uuid::parse_str(key) {
        Ok(id) => state.store.account_by_id(id).await?,
        Err(_) => match Login::parse(key) {
            Ok(login) => state.store.account_by_login(login.as_str()).await?,
            Err(_) => None,
        },
    };
    found.ok_or(ApiError::NotFound)
}

/// A JSON body whose every rejection (syntax, wrong types, unknown fields, invalid UTF-8, missing
/// content type, too large) becomes a typed [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Malformed(rejection.body_text())
            }
        })?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            // JSON Schema counts `3.0` as an integer; serde does not. Only a body that failed is looked at
            // again, with every integral number written as an integer.
            Err(rejection @ JsonRejection::JsonDataError(_)) => {
                integral(&bytes).map(Self).ok_or_else(|| json_rejection(rejection))
            }
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `application/json`, or any `application/*+json`, parameters aside.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body read again with each integral number (`3.0`, `-2e3`) as an integer, when that makes it a `T`.
fn integral<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn fold(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
                if let Some(f) = n.as_f64()
                    && f.fract() == 0.0
                    && f.abs() < 9.0e15
                {
                    #[allow(clippy::cast_possible_truncation)]
                    let whole = f as i64;
                    *value = serde_json::Value::from(whole);
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(fold),
            serde_json::Value::Object(fields) => fields.values_mut().for_each(fold),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    fold(&mut value);
    serde_json::from_value(value).ok()
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonDataError(e) => ApiError::Malformed(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::Malformed(e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        other => ApiError::Malformed(other.body_text()),
    }
}

/// Query parameters whose every rejection becomes a typed [`ApiError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> axum::extract::FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::Malformed(rejection.body_text())),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "renkei API", description = "Closed messaging for the home-care team around a patient."),
    modifiers(&BearerAuth),
    components(schemas(renkei_protocol::ClientFrame, renkei_protocol::ServerFrame)),
    tags(
        (name = "auth", description = "Logging in and out, first password"),
        (name = "me", description = "The caller's own account, sessions and second factor"),
        (name = "groups", description = "Patient groups: consent, invitations, membership, handover"),
        (name = "posts", description = "Posting, history, edits, 「見ました」, read marks, availability"),
        (name = "admin", description = "Administrators: professionals, and metadata-only audit of groups"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        // The browser's session (`POST /auth/login` with `"session": "cookie"`); state-changing requests
        // carried by it need an allowed `Origin`.
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::new(crate::auth::cookie::SESSION_COOKIE),
            )),
        );
    }
}

/// Every documented endpoint, with the document describing it.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(me::router())
        .merge(notifications::router())
        .merge(admin::router())
        .merge(directory::router())
        .merge(groups::router())
        .merge(posts::router())
        .merge(attachments::router())
        .merge(exports::router())
        .merge(records::router())
        .merge(invitations::router())
        .merge(team::router())
        .merge(admin_groups::router())
        .merge(admin_audit::router())
        .merge(offices::router())
}

/// The OpenAPI document served at `/api/v1/openapi.json` (`renkei-server openapi` prints it; the web
/// client's types are generated from it).
pub fn openapi_document() -> serde_json::Value {
    document(crate::config::Config::default().max_post_chars)
}

/// The AsyncAPI document of the live protocol (`renkei-server asyncapi` prints it), served at
/// `/api/v1/asyncapi.json`.
pub fn asyncapi_document() -> serde_json::Value {
    asyncapi::document(&openapi_document())
}

/// The document with the input rules of a server whose posts hold at most `max_post_chars` characters.
fn document(max_post_chars: usize) -> serde_json::Value {
    let mut doc = serde_json::to_value(complete(api_router().split_for_parts().1)).expect("the document serialises");
    contract::constrain(&mut doc, max_post_chars);
    doc
}

/// What a status means, for responses whose handler did not say more.
fn status_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "204" => "Done; no body",
        "400" => "malformed_request: the body is not JSON of the expected shape, or a query parameter is invalid",
        "401" => "unauthenticated: no session, or it expired, was revoked or ended; sign in again",
        "403" => {
            "forbidden (this role may not; a cookie request from an origin not allowed), \
                  password_change_required or totp_enrollment_required (the session must do that first)"
        }
        "404" => "not_found: nothing here, or nothing the caller may know about",
        "409" => {
            "A conflict with the current state; the code says which (e.g. conflict, already_member, \
                  group_not_active when the group is archived, consent_required)"
        }
        "410" => "invitation_expired",
        "413" => "payload_too_large: the body exceeds max_body_bytes",
        "415" => "unsupported_media_type: send Content-Type: application/json",
        "422" => "validation_failed: `fields` names each invalid field and its problem (or a rule's refusal, by code)",
        "429" => "too_many_attempts (retry after `fields.retry_after_seconds`) or rate_limited",
        "500" => "internal: an unexpected fault, logged on the server; the request may be retried",
        "503" => "unavailable: the database could not be reached; retry shortly",
        _ => "See the error code",
    }
}

/// Completes what the handlers' annotations leave implicit, the same way for every operation, so the
/// document says every status the server can answer: the failures every authenticated operation can
/// meet (401, 403), those of every body (400, 413, 415, 422) and of every query (400), and the server's
/// own (500, 503); a description on every response; the browser's cookie beside the bearer token.
fn complete(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = || {
        ContentBuilder::new()
            .schema(Some(RefOr::<utoipa::openapi::schema::Schema>::Ref(Ref::from_schema_name("ErrorBody"))))
            .build()
    };
    for (path, item) in &mut doc.paths.paths {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in operations.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            if secured {
                let cookie_named = op
                    .security
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .is_some_and(|v| v.to_string().contains("\"cookie\""));
                if !cookie_named {
                    op.security
                        .get_or_insert_with(Vec::new)
                        .push(SecurityRequirement::new("cookie", Vec::<String>::new()));
                }
            }
            let has_query = op.parameters.as_ref().is_some_and(|ps| {
                ps.iter()
                    .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Query))
            });
            let mut needed: Vec<&str> = vec!["500", "503"];
            if secured {
                needed.extend(["401", "403"]);
            }
            if op.request_body.is_some() {
                needed.extend(["400", "413", "415", "422"]);
            }
            if has_query {
                needed.extend(["400", "422"]);
            }
            // Whatever acts in a group may meet it archived (`group_not_active`).
            if path.starts_with("/api/v1/groups/{id}") {
                needed.push("409");
            }
            for status in needed {
                op.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(status_description(status))
                            .content("application/json", error())
                            .build(),
                    )
                });
            }
            for (status, response) in &mut op.responses.responses {
                if let RefOr::T(r) = response
                    && r.description.trim().is_empty()
                {
                    r.description = status_description(status).to_owned();
                }
            }
        }
    }
    doc
}

/// The whole application router, with its OpenAPI document served at `/api/v1/openapi.json`.
pub fn router(state: AppState) -> Router {
    let api = api_router().split_for_parts().0;
    let openapi = std::sync::Arc::new(document(state.config.max_post_chars));
    let asyncapi = std::sync::Arc::new(asyncapi::document(&openapi));
    Router::new()
        .merge(api)
        .route(
            &format!("{API_PREFIX}/openapi.json"),
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .route(
            &format!("{API_PREFIX}/asyncapi.json"),
            axum::routing::get(move || {
                let asyncapi = asyncapi.clone();
                async move { axum::Json(asyncapi.as_ref().clone()) }
            }),
        )
        .merge(ops::router())
        .merge(crate::ws::router())
        .merge(web::router())
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn(crate::catalogue::language))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track))
        .layer(middleware::from_fn_with_state(state.clone(), web::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // Method and route template only: a query string may carry credentials, and neither
                    // it nor a body is ever logged.
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("(unrouted)", |p| p.as_str())
                        .to_owned();
                    tracing::info_span!(
                        "http",
                        method = %req.method(),
                        route = %route,
                        session = tracing::field::Empty
                    )
                })
                .on_request(())
                // The access log: one line per answer, with its status and duration.
                .on_response(|response: &axum::http::Response<_>, latency: std::time::Duration, _: &tracing::Span| {
                    tracing::info!(
                        target: "renkei_server::access",
                        status = response.status().as_u16(),
                        ms = latency.as_secs_f64() * 1000.0,
                        "answered"
                    );
                })
                .on_failure(()),
        )
        .with_state(state)
}

/// One CSV field, quoted when it must be (RFC 4180); a leading `=`, `+`, `-`, `@`, tab or carriage return is
/// prefixed with `'` so a spreadsheet never runs the text as a formula.
pub(super) fn csv_field(raw: &str) -> String {
    let safe = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{raw}") } else { raw.to_owned() };
    if safe.contains([',', '"', '\n', '\r']) { format!("\"{}\"", safe.replace('"', "\"\"")) } else { safe }
}
