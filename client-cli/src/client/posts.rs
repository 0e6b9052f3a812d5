//! Posts over HTTP, availability and notification settings.

use renkei_protocol::{
    AddressedList, Availability, EditPost, NewPost, Post, PostHistory, PostPage, PostReceipt, ReadMark, SeenList,
    SeenMark, UnreadList,
};
use reqwest::Method;
use uuid::Uuid;

use super::{Client, ClientError};

/// Posts over HTTP (the live connection is in [`crate::live`]).
impl Client {
    /// Posts and waits until it is durably committed; a retried `client_msg_id` returns the original.
    pub async fn post(&self, group: Uuid, post: &NewPost) -> Result<Post, ClientError> {
        Ok(self.post_receipt(group, post).await?.post)
    }

    /// Like [`Client::post`], with who of the addressees is off hours (rule 5).
    pub async fn post_receipt(&self, group: Uuid, post: &NewPost) -> Result<PostReceipt, ClientError> {
        self.call(Method::POST, &format!("/groups/{group}/posts"), Some(post)).await
    }

    /// Questions addressed to me that I have neither answered nor marked seen.
    pub async fn addressed(&self) -> Result<AddressedList, ClientError> {
        self.call::<(), _>(Method::GET, "/addressed", None).await
    }

    pub async fn availability(&self) -> Result<Availability, ClientError> {
        self.call::<(), _>(Method::GET, "/me/availability", None).await
    }

    pub async fn set_availability(&self, availability: &Availability) -> Result<Availability, ClientError> {
        self.call(Method::PUT, "/me/availability", Some(availability)).await
    }

    /// My notification settings, the server's VAPID key and my push devices.
    pub async fn notifications(&self) -> Result<renkei_protocol::NotificationsView, ClientError> {
        self.call::<(), _>(Method::GET, "/me/notifications", None).await
    }

    pub async fn set_notifications(
        &self,
        settings: &renkei_protocol::NotificationSettings,
    ) -> Result<renkei_protocol::NotificationsView, ClientError> {
        self.call(Method::PUT, "/me/notifications", Some(settings)).await
    }

    pub async fn add_push_device(
        &self,
        subscription: &renkei_protocol::NewPushSubscription,
    ) -> Result<renkei_protocol::PushDevice, ClientError> {
        self.call(Method::POST, "/me/notifications/devices", Some(subscription)).await
    }

    pub async fn remove_push_device(&self, id: Uuid) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/me/notifications/devices/{id}"), None).await
    }

    /// A page of history: after `after` going forward, or before `before` going backward.
    pub async fn posts(
        &self,
        group: Uuid,
        after: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<PostPage, ClientError> {
        let mut path = format!("/groups/{group}/posts?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn edit_post(&self, group: Uuid, seq: i64, body: &str) -> Result<Post, ClientError> {
        self.edit_post_confirmed(group, seq, body, false).await
    }

    /// Edits, confirming the new text is not an emergency although it reads like one (rule 6).
    pub async fn edit_post_confirmed(
        &self,
        group: Uuid,
        seq: i64,
        body: &str,
        confirm_not_emergency: bool,
    ) -> Result<Post, ClientError> {
        let edit = EditPost { body: body.to_owned(), confirm_not_emergency, attachments: None, care_policy: None };
        self.call(Method::PATCH, &format!("/groups/{group}/posts/{seq}"), Some(&edit)).await
    }

    /// Edits a post's text and the files it shares from now on (earlier versions keep theirs).
    pub async fn edit_post_files(
        &self,
        group: Uuid,
        seq: i64,
        body: &str,
        files: &[Uuid],
    ) -> Result<Post, ClientError> {
        let edit = EditPost {
            body: body.to_owned(),
            confirm_not_emergency: false,
            attachments: Some(files.to_vec()),
            care_policy: None,
        };
        self.call(Method::PATCH, &format!("/groups/{group}/posts/{seq}"), Some(&edit)).await
    }

    /// Edits a care policy: the cautions for care and its record from now on.
    pub async fn edit_care_policy(
        &self,
        group: Uuid,
        seq: i64,
        cautions: &str,
        policy: &renkei_protocol::CarePolicy,
    ) -> Result<Post, ClientError> {
        let edit = EditPost {
            body: cautions.to_owned(),
            confirm_not_emergency: false,
            attachments: None,
            care_policy: Some(policy.clone()),
        };
        self.call(Method::PATCH, &format!("/groups/{group}/posts/{seq}"), Some(&edit)).await
    }

    pub async fn delete_post(&self, group: Uuid, seq: i64) -> Result<Post, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("/groups/{group}/posts/{seq}"), None).await
    }

    pub async fn post_history(&self, group: Uuid, seq: i64) -> Result<PostHistory, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/posts/{seq}/history"), None).await
    }

    /// 「見ました」.
    pub async fn mark_seen(&self, group: Uuid, seq: i64) -> Result<SeenMark, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/groups/{group}/posts/{seq}/seen"), None).await
    }

    pub async fn seen(&self, group: Uuid, seq: i64) -> Result<SeenList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/posts/{seq}/seen"), None).await
    }

    /// Moves my read position forward; returns the position kept.
    pub async fn mark_read(&self, group: Uuid, seq: i64) -> Result<i64, ClientError> {
        let mark: ReadMark = self.call(Method::POST, &format!("/groups/{group}/read"), Some(&ReadMark { seq })).await?;
        Ok(mark.seq)
    }

    pub async fn unread(&self) -> Result<UnreadList, ClientError> {
        self.call::<(), _>(Method::GET, "/unread", None).await
    }
}
