//! `/api/v1/users/{user}`: the professionals' directory. renkei is a closed network of registered,
//! verified professionals, so each may look up another's name, profession and organisation — what a
//! physician needs to name someone in a consent or an invitation. Nothing else about the account shows.

use axum::extract::{Path, State};
use renkei_protocol::{ErrorBody, Person};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::resolve_user;
use crate::auth::Member;
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(lookup))
}

/// A registered professional, by id or login.
#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "groups", security(("bearer" = [])),
    params(("user" = String, Path, description = "user id or login")),
    responses((status = 200, body = Person), (status = 404, body = ErrorBody)))]
async fn lookup(
    State(state): State<AppState>,
    _caller: Member,
    Path(user): Path<String>,
) -> Result<axum::Json<Person>, ApiError> {
    let account = resolve_user(&state, &user).await?;
    if !account.is_active() {
        return Err(ApiError::NotFound);
    }
    Ok(axum::Json(account.person()))
}
