//! Attachments as stored: the cleaned bytes, their SHA-256 (checked on every read), a thumbnail for
//! images, and which post first shared the file (`post_seq`, set by the group commit).

use renkei_protocol::{Attachment, AttachmentType};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::BeginWrite;
use super::dialect::Steps;
use super::{NewAuditEntry, Store, StoreError, with_pool};
use crate::domain::{from_micros, to_micros};

/// A file ready to be stored: already cleaned (images) and checked.
#[derive(Debug)]
pub struct NewAttachment {
    pub id: Uuid,
    pub group_id: Uuid,
    pub uploader_id: Uuid,
    pub kind: AttachmentType,
    pub name: String,
    pub content: Vec<u8>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub thumbnail: Option<Vec<u8>>,
}

/// An attachment's description and ownership, without its bytes.
#[derive(Debug, Clone)]
pub struct AttachmentRecord {
    pub attachment: Attachment,
    pub group_id: Uuid,
    pub uploader_id: Uuid,
    pub created_at: OffsetDateTime,
    /// The post that first shared it; `None` while no post has.
    pub post_seq: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    group_id: Uuid,
    uploader_id: Uuid,
    kind: String,
    name: String,
    size: i64,
    width: Option<i32>,
    height: Option<i32>,
    created_at: i64,
    post_seq: Option<i64>,
}

/// Stored bytes and their SHA-256 (either may be absent: an image's thumbnail, a PDF's none).
type BytesAndHash = (Option<Vec<u8>>, Option<Vec<u8>>);

const COLUMNS: &str = "id, group_id, uploader_id, kind, name, size, width, height, created_at, post_seq";

impl TryFrom<Row> for AttachmentRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let kind = AttachmentType::parse(&r.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("attachment {}: unknown type", r.id)))?;
        Ok(Self {
            attachment: Attachment { id: r.id, name: r.name, kind, size: r.size, width: r.width, height: r.height },
            group_id: r.group_id,
            uploader_id: r.uploader_id,
            created_at: from_micros(r.created_at),
            post_seq: r.post_seq,
        })
    }
}

/// Bytes as read back, checked against the SHA-256 written with them.
fn checked(id: Uuid, bytes: Vec<u8>, sha256: &[u8]) -> Result<Vec<u8>, StoreError> {
    if Sha256::digest(&bytes)[..] == *sha256 {
        Ok(bytes)
    } else {
        Err(StoreError::Corrupt(format!("attachment {id}: content does not match its SHA-256")))
    }
}

impl Store {
    /// Stores a file with its audit entry, in one transaction.
    pub async fn insert_attachment(
        &self,
        new: &NewAttachment,
        audit: &NewAuditEntry,
        now: OffsetDateTime,
    ) -> Result<Attachment, StoreError> {
        let at = to_micros(now);
        let sha = Sha256::digest(&new.content).to_vec();
        let thumb_sha = new.thumbnail.as_ref().map(|t| Sha256::digest(t).to_vec());
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO attachments (id, group_id, uploader_id, kind, name, size, width, height, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(new.id)
            .bind(new.group_id)
            .bind(new.uploader_id)
            .bind(new.kind.as_str())
            .bind(&new.name)
            .bind(new.content.len() as i64)
            .bind(new.width)
            .bind(new.height)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO attachment_files (attachment_id, sha256, content, thumbnail, thumbnail_sha256) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new.id)
            .bind(&sha)
            .bind(&new.content)
            .bind(new.thumbnail.as_deref())
            .bind(thumb_sha.as_deref())
            .execute(&mut *tx)
            .await?;
            tx.append_audit(&self.audit_appender(), audit, at).await?;
            tx.commit().await?;
        });
        Ok(Attachment {
            id: new.id,
            name: new.name.clone(),
            kind: new.kind,
            size: new.content.len() as i64,
            width: new.width,
            height: new.height,
        })
    }

    /// The attachments of `group` with these ids (those that exist), without their bytes.
    pub async fn attachments(&self, group: Uuid, ids: &[Uuid]) -> Result<Vec<AttachmentRecord>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.attachment(group, *id).await? {
                found.push(record);
            }
        }
        Ok(found)
    }

    pub async fn attachment(&self, group: Uuid, id: Uuid) -> Result<Option<AttachmentRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM attachments WHERE group_id = $1 AND id = $2");
        let row: Option<Row> = with_pool!(self, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(group)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        row.map(AttachmentRecord::try_from).transpose()
    }

    /// Every stored file's id, oldest first (for checks and tests; ids are UUIDv7).
    pub async fn attachment_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar("SELECT id FROM attachments ORDER BY id").fetch_all(pool).await)?)
    }

    /// A file's bytes (or its thumbnail's), checked against their SHA-256; `None` if there is no such
    /// file or thumbnail.
    pub async fn attachment_bytes(&self, id: Uuid, thumbnail: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let sql = if thumbnail {
            "SELECT thumbnail, thumbnail_sha256 FROM attachment_files WHERE attachment_id = $1"
        } else {
            "SELECT content, sha256 FROM attachment_files WHERE attachment_id = $1"
        };
        let row: Option<BytesAndHash> =
            with_pool!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        match row {
            Some((Some(bytes), Some(sha))) => checked(id, bytes, &sha).map(Some),
            _ => Ok(None),
        }
    }

    /// Removes every file uploaded before `cutoff` that no post shares, with its audit entry (a count only)
    /// in the same transaction.
    pub async fn remove_unreferenced_attachments(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let now = to_micros(crate::domain::now());
        let mut entry = NewAuditEntry {
            action: renkei_protocol::audit_action::ATTACHMENTS_REMOVED,
            actor_id: None,
            group_id: None,
            target_user_id: None,
            client_addr: None,
            session_id: None,
            details: serde_json::json!({}),
        };
        let audit = &mut entry;
        let removed = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let out = {
                let removed = sqlx::query("DELETE FROM attachments WHERE post_seq IS NULL AND created_at < $1")
                    .bind(to_micros(cutoff))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if removed == 0 {
                    return Ok(0);
                }
                audit.detail("count", removed);
                removed
            };
            tx.append_audit(&self.audit_appender(), &*audit, now).await?;
            tx.commit().await?;
            out
        });
        Ok(removed)
    }
}
