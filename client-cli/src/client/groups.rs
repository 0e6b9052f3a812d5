//! Care teams over HTTP: patient groups, consent, invitations, membership; administrators' audit and
//! community groups.

use renkei_protocol::{
    API_PREFIX, AdminGroup, AdminGroupList, ConsentChange, ConsentHistory, CreateCommunityGroupRequest, ErrorBody,
    Group, GroupList, Invitation, InvitationList, MemberList, OpenGroupRequest, RecordConsentRequest, Sensitive,
    UserRef, WithdrawConsentRequest,
};
use reqwest::Method;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AuditSearch, Client, ClientError, Progress, path_segment, percent_decode};

/// Care teams: patient groups, consent, invitations, membership; administrators' audit and community groups.
impl Client {
    pub async fn open_group(&self, req: &OpenGroupRequest) -> Result<Group, ClientError> {
        self.call(Method::POST, "/groups", Some(req)).await
    }

    pub async fn groups(&self) -> Result<GroupList, ClientError> {
        self.call::<(), _>(Method::GET, "/groups", None).await
    }

    pub async fn group(&self, id: Uuid) -> Result<Group, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{id}"), None).await
    }

    pub async fn members(&self, id: Uuid) -> Result<MemberList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{id}/members"), None).await
    }

    pub async fn record_consent(&self, id: Uuid, req: &RecordConsentRequest) -> Result<ConsentChange, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/consents"), Some(req)).await
    }

    pub async fn withdraw_consent(&self, id: Uuid, req: &WithdrawConsentRequest) -> Result<ConsentChange, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/consents/withdraw"), Some(req)).await
    }

    pub async fn consents(&self, id: Uuid) -> Result<ConsentHistory, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{id}/consents"), None).await
    }

    /// `user` is an id or a login.
    pub async fn invite(&self, id: Uuid, user: &str) -> Result<Invitation, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/invitations"), Some(&UserRef { user: user.to_owned() })).await
    }

    pub async fn invitations(&self) -> Result<InvitationList, ClientError> {
        self.call::<(), _>(Method::GET, "/invitations", None).await
    }

    pub async fn accept_invitation(&self, invitation: Uuid) -> Result<Group, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/invitations/{invitation}/accept"), None).await
    }

    pub async fn decline_invitation(&self, invitation: Uuid) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::POST, &format!("/invitations/{invitation}/decline"), None).await
    }

    pub async fn remove_member(&self, id: Uuid, user: &str) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/groups/{id}/members/{}", path_segment(user)), None).await
    }

    pub async fn leave(&self, id: Uuid) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::POST, &format!("/groups/{id}/leave"), None).await
    }

    pub async fn handover(&self, id: Uuid, to: &str) -> Result<Group, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/handover"), Some(&UserRef { user: to.to_owned() })).await
    }

    pub async fn answer_handover(&self, id: Uuid, accept: bool) -> Result<Group, ClientError> {
        let verb = if accept { "accept" } else { "decline" };
        self.call::<(), _>(Method::POST, &format!("/groups/{id}/handover/{verb}"), None).await
    }

    pub async fn archive(&self, id: Uuid) -> Result<Group, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/groups/{id}/archive"), None).await
    }

    /// A registered professional, by id or login.
    pub async fn lookup_user(&self, user: &str) -> Result<renkei_protocol::Person, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/users/{}", path_segment(user)), None).await
    }

    /// The timeline for the medical record, as JSON (attending physician).
    pub async fn export_timeline(&self, group: Uuid) -> Result<renkei_protocol::TimelineExport, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/export"), None).await
    }

    /// Uploads a file to a group (to be named by a post), reporting the bytes sent to `progress`.
    pub async fn upload_attachment(
        &self,
        group: Uuid,
        name: &str,
        bytes: Vec<u8>,
        progress: Option<Progress>,
    ) -> Result<renkei_protocol::Attachment, ClientError> {
        use futures_util::StreamExt;
        let total = bytes.len() as u64;
        // A file past the limit is refused here, as the server would: not after megabytes were sent.
        let limits = self.attachment_limits().await?;
        if total > limits.max_bytes {
            let body = ErrorBody::new(renkei_protocol::ErrorCode::PayloadTooLarge, "the file is too large")
                .with_field("limit_bytes", limits.max_bytes.to_string());
            return Err(ClientError::Api { status: 413, body });
        }
        let chunks: Vec<Vec<u8>> = bytes.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
        let mut sent = 0u64;
        let stream = futures_util::stream::iter(chunks).map(move |chunk| {
            sent += chunk.len() as u64;
            if let Some(progress) = &progress {
                progress(sent, Some(total));
            }
            Ok::<_, std::io::Error>(chunk)
        });
        let url = reqwest::Url::parse_with_params(
            &format!("{}{API_PREFIX}/groups/{group}/attachments", self.base),
            &[("name", name)],
        )
        .map_err(|e| ClientError::Unexpected { status: 0, detail: e.to_string() })?;
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = Self::answer(request.send().await.map_err(ClientError::Transport)?).await?;
        let status = response.status().as_u16();
        let bytes = self.body(response).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// What the server accepts as attachments.
    pub async fn attachment_limits(&self) -> Result<renkei_protocol::AttachmentLimits, ClientError> {
        self.call::<(), _>(Method::GET, "/attachments/limits", None).await
    }

    /// A file's bytes (or its thumbnail's), with its name as the server gave it.
    pub async fn attachment(
        &self,
        group: Uuid,
        id: Uuid,
        thumbnail: bool,
    ) -> Result<(Vec<u8>, Option<String>), ClientError> {
        let suffix = if thumbnail { "/thumbnail" } else { "" };
        let response = self.send::<()>(Method::GET, &format!("/groups/{group}/attachments/{id}{suffix}"), None).await?;
        let name = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once("filename*=UTF-8''"))
            .and_then(|(_, encoded)| percent_decode(encoded));
        Ok((self.body(response).await?, name))
    }

    /// The timeline as a readable Markdown document, in Japanese.
    pub async fn export_timeline_markdown(&self, group: Uuid) -> Result<String, ClientError> {
        self.export_timeline_markdown_in(group, "ja").await
    }

    /// The timeline as a readable Markdown document in `language` (`ja` or `en`).
    pub async fn export_timeline_markdown_in(&self, group: Uuid, language: &str) -> Result<String, ClientError> {
        let path = format!("{}{API_PREFIX}/groups/{group}/export?format=markdown", self.base);
        let mut request = self.http.get(path).header(reqwest::header::ACCEPT_LANGUAGE, language);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = Self::answer(request.send().await.map_err(ClientError::Transport)?).await?;
        let status = response.status().as_u16();
        String::from_utf8(self.body(response).await?)
            .map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// Every office with rules of its own (administrators).
    pub async fn admin_offices(&self) -> Result<renkei_protocol::OfficeRulesList, ClientError> {
        self.call::<(), _>(Method::GET, "/admin/offices", None).await
    }

    /// Sets an office's rules (administrators).
    pub async fn admin_set_office_rules(
        &self,
        organisation: &str,
        rules: &renkei_protocol::OfficeRulesUpdate,
    ) -> Result<renkei_protocol::OfficeRules, ClientError> {
        self.call(Method::PUT, &format!("/admin/offices/{}", path_segment(organisation)), Some(rules)).await
    }

    /// A patient group's care record of a month (`YYYY-MM`; attending physician).
    pub async fn care_record(&self, group: Uuid, month: &str) -> Result<renkei_protocol::CareRecord, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/records/{}", path_segment(month)), None).await
    }

    /// The same record as `csv` or `html` (a page to print).
    pub async fn care_record_as(&self, group: Uuid, month: &str, format: &str) -> Result<String, ClientError> {
        let path = format!("/groups/{group}/records/{}?format={format}", path_segment(month));
        let response = self.send::<()>(Method::GET, &path, None).await?;
        let status = response.status().as_u16();
        String::from_utf8(self.body(response).await?)
            .map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// Every group I am the attending physician of, for a month: complete or not, and the organisations
    /// linked across them.
    pub async fn record_summary(&self, month: &str) -> Result<renkei_protocol::RecordSummary, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/records/{}", path_segment(month)), None).await
    }

    pub async fn access_report(&self, group: Uuid) -> Result<renkei_protocol::AccessReport, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/access-report"), None).await
    }

    /// A user's sessions with their durations (administrators).
    pub async fn admin_user_sessions(&self, user: &str) -> Result<renkei_protocol::SessionHistory, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/admin/users/{}/sessions", path_segment(user)), None).await
    }

    /// Audit entries, filtered by user (actor or target), group and action.
    pub async fn admin_audit(
        &self,
        user: Option<Uuid>,
        group: Option<Uuid>,
        action: Option<&str>,
    ) -> Result<renkei_protocol::AuditList, ClientError> {
        let search = AuditSearch { user, group, action: action.map(str::to_owned), ..AuditSearch::default() };
        self.admin_audit_search(&search).await
    }

    /// Audit entries matching `search`: the oldest first, or with `newest_first` the newest `limit`.
    pub async fn admin_audit_search(&self, search: &AuditSearch) -> Result<renkei_protocol::AuditList, ClientError> {
        let mut path = format!("/admin/audit?limit={}", search.limit.unwrap_or(10_000));
        let mut param = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                path.push_str(&format!("&{name}={}", path_segment(&value)));
            }
        };
        param("user", search.user.map(|u| u.to_string()));
        param("group", search.group.map(|g| g.to_string()));
        param("action", search.action.clone());
        let rfc3339 = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
        param("from", search.from.and_then(rfc3339));
        param("to", search.to.and_then(rfc3339));
        param("newest_first", search.newest_first.then(|| "true".to_owned()));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// The audit entries as a CSV (`csv`) or JSON (`json`) download; needs a recent sign-in.
    pub async fn admin_audit_export(&self, format: &str) -> Result<String, ClientError> {
        let path = format!("/admin/audit/export?format={}", path_segment(format));
        let response = self.send::<()>(Method::GET, &path, None).await?;
        let status = response.status().as_u16();
        String::from_utf8(self.body(response).await?)
            .map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// Verifies the audit chain on the server, against `anchor` (`SEQ HASH`) when given.
    pub async fn admin_audit_verification(
        &self,
        anchor: Option<&str>,
    ) -> Result<renkei_protocol::AuditVerification, ClientError> {
        let path = match anchor {
            Some(a) => format!("/admin/audit/verification?anchor={}", path_segment(a)),
            None => "/admin/audit/verification".to_owned(),
        };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Enters the password (and TOTP code) again, so administrator actions are allowed for another window.
    pub async fn reauthenticate(&self, password: &Sensitive, totp_code: Option<&str>) -> Result<(), ClientError> {
        let req = renkei_protocol::ReauthenticateRequest {
            password: password.clone(),
            totp_code: totp_code.map(str::to_owned),
        };
        self.call_empty(Method::POST, "/auth/reauthenticate", Some(&req)).await
    }

    /// The directory seen from a group: who is invitable, and why not (attending physician).
    pub async fn candidates(&self, group: Uuid, q: &str) -> Result<renkei_protocol::CandidateList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/candidates?q={}", path_segment(q)), None).await
    }

    /// A group's pending invitations (attending physician).
    pub async fn group_invitations(&self, group: Uuid) -> Result<InvitationList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/invitations"), None).await
    }

    /// What recording this consent would remove, without recording it.
    pub async fn preview_consent(
        &self,
        group: Uuid,
        req: &RecordConsentRequest,
    ) -> Result<renkei_protocol::ConsentPreview, ClientError> {
        self.call(Method::POST, &format!("/groups/{group}/consents/preview"), Some(req)).await
    }

    pub async fn admin_groups(&self) -> Result<AdminGroupList, ClientError> {
        self.call::<(), _>(Method::GET, "/admin/groups", None).await
    }

    pub async fn admin_group(&self, id: Uuid) -> Result<AdminGroup, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/admin/groups/{id}"), None).await
    }

    pub async fn admin_create_community_group(&self, label: &str) -> Result<AdminGroup, ClientError> {
        let req = CreateCommunityGroupRequest { label: label.to_owned() };
        self.call(Method::POST, "/admin/community-groups", Some(&req)).await
    }

    pub async fn admin_add_community_member(&self, id: Uuid, user: &str) -> Result<(), ClientError> {
        let req = UserRef { user: user.to_owned() };
        self.call_empty(Method::POST, &format!("/admin/community-groups/{id}/members"), Some(&req)).await
    }

    pub async fn admin_remove_community_member(&self, id: Uuid, user: &str) -> Result<(), ClientError> {
        let path = format!("/admin/community-groups/{id}/members/{}", path_segment(user));
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }
}
