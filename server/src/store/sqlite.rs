//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, so an acknowledged write survives a
//! power cut, and foreign keys enforced.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use std::collections::HashMap;

use uuid::Uuid;

use super::StoreError;
use super::dialect::Dialect;
use super::group_rows::{MembershipRow, group_columns, membership_columns};
use super::posts::rows::{
    BatchKeys, GroupStateRow, NewRow, POST_ROWS_PER_STATEMENT, PostRequest, PostRow, care_managers_of_group,
    post_columns, post_columns_json_array,
};
use crate::policy::posts::Advance;

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

pub(super) async fn connect(path: &Path, max_connections: u32) -> Result<SqlitePool, StoreError> {
    // Patient data: a new directory 0700, the database and its journal files 0600 (SQLite gives the -wal
    // and -shm files the database file's permissions when it creates them). The data directory itself is
    // tightened at start (`Application::build`).
    let io = |e| StoreError::Unavailable(sqlx::Error::Io(e));
    if let Some(dir) = path.parent() {
        crate::private_files::create_private_dir(dir).map_err(io)?;
    }
    crate::private_files::private_file(path).map_err(io)?;
    for suffix in ["-wal", "-shm"] {
        crate::private_files::tighten_if_present(Path::new(&format!("{}{suffix}", path.display()))).map_err(io)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    Ok(SqlitePoolOptions::new().max_connections(max_connections.max(1)).connect_with(options).await?)
}

/// `?, ?, …`: `count` anonymous SQLite placeholders. SQLite binds a numbered parameter (`$N`, `?N`) only
/// after looking its name up in a list, so numbered ones cost the square of a multi-row insert's
/// parameters (docs/decisions/0004-the-post-path.md).
pub(super) fn marks(count: usize) -> String {
    vec!["?"; count].join(", ")
}

impl Dialect for sqlx::SqliteConnection {
    async fn lock_groups(&mut self, keys: &BatchKeys) -> Result<(Vec<GroupStateRow>, Vec<MembershipRow>), sqlx::Error> {
        // The write transaction (BEGIN IMMEDIATE) already excludes every other writer.
        let sql = format!(
            "SELECT {}, last_seq, (SELECT MAX(c.version) FROM consents c WHERE c.group_id = groups.id) \
             AS consent_version, CASE WHEN id IN ({}) THEN {} END AS care_managers, NULL AS state_version \
             FROM groups WHERE id IN ({}) ORDER BY id",
            group_columns!(),
            marks(keys.care_plan.len()),
            care_managers_of_group!(),
            marks(keys.groups.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in keys.care_plan.iter().chain(&keys.groups) {
            query = query.bind(*id);
        }
        let groups = query.fetch_all(&mut *self).await?;
        let sql = format!(
            "SELECT {} FROM memberships m WHERE m.group_id IN ({}) AND m.user_id IN ({}) AND m.state = 'active'",
            membership_columns!(),
            marks(keys.groups.len()),
            marks(keys.authors.len())
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in keys.groups.iter().chain(&keys.authors) {
            query = query.bind(*id);
        }
        Ok((groups, query.fetch_all(&mut *self).await?))
    }

    async fn originals(&mut self, batch: &[PostRequest]) -> Result<Vec<PostRow>, sqlx::Error> {
        let mut rows = Vec::new();
        for chunk in batch.chunks(POST_ROWS_PER_STATEMENT) {
            let terms = vec!["(author_id = ? AND client_msg_id = ?)"; chunk.len()].join(" OR ");
            let sql = format!("SELECT {} FROM posts WHERE {terms}", post_columns!());
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for req in chunk {
                query = query.bind(req.author.id).bind(&req.post.client_msg_id);
            }
            rows.extend(query.fetch_all(&mut *self).await?);
        }
        Ok(rows)
    }

    async fn insert_and_advance(
        &mut self,
        rows: &[NewRow<'_>],
        now: i64,
        groups: &[Advance],
    ) -> Result<Option<HashMap<Uuid, i64>>, sqlx::Error> {
        // The write transaction holds the lock since before the read: the bases are as decided.
        let bases: HashMap<Uuid, i64> = groups.iter().map(|g| (g.id, g.base)).collect();
        for chunk in rows.chunks(POST_ROWS_PER_STATEMENT) {
            let values = vec![format!("({}, 1, NULL, NULL, ?, ?)", marks(13)); chunk.len()].join(", ");
            let sql = format!("INSERT INTO posts ({}) VALUES {values}", post_columns!());
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for NewRow { id, req, offset, consent_version } in chunk {
                let seq = bases.get(&req.group_id).map_or(*offset, |base| base + offset);
                insert = insert
                    .bind(*id)
                    .bind(req.group_id)
                    .bind(seq)
                    .bind(req.author.id)
                    .bind(&req.author.display_name)
                    .bind(req.author.profession.as_str())
                    .bind(&req.author.organisation)
                    .bind(req.post.kind.as_str())
                    .bind(&req.post.body)
                    .bind(req.post.reply_to)
                    .bind(&req.post.client_msg_id)
                    .bind(*consent_version)
                    .bind(now)
                    .bind(req.attachments_json())
                    .bind(req.care_policy_json());
            }
            insert.execute(&mut *self).await?;
        }
        // The files the new posts share become theirs: one statement for the batch's files, if any.
        let linked: Vec<(Uuid, i64)> = rows
            .iter()
            .flat_map(|NewRow { req, offset, .. }| {
                let seq = bases.get(&req.group_id).map_or(*offset, |base| base + offset);
                req.attachments.iter().map(move |a| (a.id, seq))
            })
            .collect();
        for chunk in linked.chunks(POST_ROWS_PER_STATEMENT) {
            let cases = " WHEN ? THEN ?".repeat(chunk.len());
            let sql = format!(
                "UPDATE attachments SET post_seq = CASE id{cases} END WHERE id IN ({}) AND post_seq IS NULL",
                marks(chunk.len())
            );
            let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (id, seq) in chunk {
                update = update.bind(*id).bind(*seq);
            }
            for (id, _) in chunk {
                update = update.bind(*id);
            }
            update.execute(&mut *self).await?;
        }
        let cases = " WHEN ? THEN ?".repeat(groups.len());
        let sql = format!(
            "UPDATE groups SET last_seq = CASE id{cases} ELSE last_seq END WHERE id IN ({})",
            marks(groups.len())
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
        for group in groups {
            update = update.bind(group.id).bind(group.base + group.count);
        }
        for group in groups {
            update = update.bind(group.id);
        }
        update.execute(&mut *self).await?;
        Ok(Some(bases))
    }

    async fn lock_audit(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn lock_login(&mut self, _login: &str) -> Result<(), sqlx::Error> {
        Ok(())
    }

    /// The page comes as one JSON value built inside SQLite: sqlx hands each row across from its worker
    /// thread, copying every value (docs/decisions/0004-the-post-path.md, "A catch-up page on SQLite").
    async fn posts_after(&mut self, group: Uuid, after: i64, limit: i64) -> Result<Vec<PostRow>, StoreError> {
        let sql = concat!(
            "SELECT json_group_array(",
            post_columns_json_array!(),
            " ORDER BY seq) FROM (SELECT ",
            post_columns!(),
            " FROM posts WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT $3)"
        );
        let page: String = sqlx::query_scalar(sql).bind(group).bind(after).bind(limit).fetch_one(&mut *self).await?;
        serde_json::from_str(&page).map_err(|e| StoreError::Corrupt(format!("posts page: {e}")))
    }

    /// A single node never replays; a range at a time is enough here.
    async fn posts_in_ranges(&mut self, ranges: &[(Uuid, i64, i64)]) -> Result<Vec<PostRow>, StoreError> {
        let mut posts = Vec::new();
        for &(group, from, to) in ranges {
            posts.extend(self.posts_after(group, from - 1, to - from + 1).await?);
        }
        Ok(posts)
    }

    async fn notify(&mut self, _payloads: &[String]) -> Result<(), sqlx::Error> {
        Ok(())
    }

    /// `VACUUM INTO`: one read transaction, so writers may carry on.
    async fn backup_into(&mut self, path: &Path) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO $1").bind(path.display().to_string()).execute(&mut *self).await?;
        Ok(())
    }
}
