//! `history`: the same runs on a database that holds years of posts. A bulk loader writes posts straight
//! into the database in large transactions (not through the API), interleaved over its groups as time
//! would interleave them; at each size throughput, latency, resume and a history page are measured again.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use renkei_cli::Client;
use renkei_protocol::{NewPost, PostKind};
use sqlx::{AnyConnection, Connection};
use uuid::Uuid;

use crate::population::provision;
use crate::report::{Goal, Report};
use crate::servers::Servers;

use super::{RateArgs, ResumeArgs, ThroughputArgs, rate, resume, throughput};

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct HistoryArgs {
    /// Stored posts to measure at, in increasing order (the loader adds what each step lacks).
    #[arg(long, value_delimiter = ',', default_value = "0,1000000,10000000")]
    pub steps: Vec<u64>,
    /// Groups the loaded posts are spread over.
    #[arg(long, default_value_t = 5000)]
    pub groups: usize,
    /// Measured seconds of each throughput and latency run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Skip the throughput and latency runs (only resume, the history page and the size).
    #[arg(long)]
    pub reads_only: bool,
    /// Posts a reader misses before each resume.
    #[arg(long, default_value_t = 10_000)]
    pub missed: usize,
}

/// Rows one statement of the loader inserts: posts for this many sequence numbers of every group.
const SEQS_PER_STATEMENT: u64 = 50;

/// The figures of one step, for the report and the cost curve.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// Posts the loader had written (the step).
    pub loaded_posts: u64,
    /// Posts in the database when measuring: the loaded ones and those of the runs before.
    pub stored_posts: u64,
    pub load_seconds: f64,
    pub database_bytes: u64,
    pub throughput_posts_per_second: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub resume_ms: Option<f64>,
    /// The template group's first page (its oldest 50 posts).
    pub history_page_ms: f64,
    /// Its page of 50 half-way back from the latest.
    pub deep_history_page_ms: f64,
}

pub async fn history(servers: &Servers, run: &str, args: &HistoryArgs, report: &mut Report) -> Result<()> {
    report.parameters = serde_json::to_value(args)?;
    let url =
        servers.database_url.clone().context("history loads the database directly: let the bench start the servers")?;
    if args.steps.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--steps must increase");
    }
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&url).await.context("the loader's database connection")?;
    let postgres = url.starts_with("postgres");

    // The template: one group opened through the API, its physician the author of every loaded post.
    let template = provision(&servers.admin, &format!("{run}h"), 1, 2, 1).await?.remove(0);
    let physician = template.members[0].client.clone();
    physician.post(template.id, &note("最初の記録")).await.context("the template's first post")?;
    let label = format!("ベンチ履歴 {run}");
    clone_groups(&mut db, postgres, template.id, &label, args.groups.saturating_sub(1)).await?;

    let mut steps = Vec::new();
    let mut loaded = 0u64;
    for (i, &target) in args.steps.iter().enumerate() {
        let started = Instant::now();
        if target > loaded {
            let per_group = (target - loaded) / args.groups as u64;
            load(&mut db, postgres, template.id, &label, per_group).await?;
            loaded += per_group * args.groups as u64;
            if postgres {
                // What autovacuum would have done over the years these posts took.
                sqlx::query("VACUUM ANALYZE posts").execute(&mut db).await?;
            }
        }
        let load_seconds = started.elapsed().as_secs_f64();
        let stored = count_posts(&mut db).await?;
        let database_bytes = database_bytes(&mut db, postgres, &url).await?;
        eprintln!("history: {stored} posts stored ({load_seconds:.0} s to load), {database_bytes} bytes");
        let sub = |name: &str| Report::new(name, &servers.backend, 1, serde_json::Value::Null);
        let (mut tp, mut lat) = (None, None);
        if !args.reads_only {
            let mut r = sub("throughput");
            let t = ThroughputArgs { groups: 64, window: 64, duration: args.duration, warmup: args.warmup };
            throughput(servers, &format!("{run}t{i}"), &t, &mut r).await?;
            tp = r.value("durable posts per second");
            let mut r = sub("latency");
            let l = RateArgs {
                groups: Some(125),
                group_size: Some(8),
                rate: Some(1000),
                duration: args.duration,
                warmup: args.warmup,
            };
            rate(servers, &format!("{run}l{i}"), &l, 1, &mut r).await?;
            lat = Some((r.value("post→delivery p50"), r.value("post→delivery p99")));
        }
        let mut r = sub("resume");
        resume(servers, &format!("{run}r{i}"), &ResumeArgs { missed: args.missed, rounds: 3 }, &mut r).await?;
        let resume_ms = r.figures.iter().find(|f| f.name.starts_with("resume with")).map(|f| f.value);
        let (page, deep) = history_pages(&physician, template.id).await?;
        steps.push(Step {
            loaded_posts: loaded,
            stored_posts: stored,
            load_seconds,
            database_bytes,
            throughput_posts_per_second: tp,
            latency_p50_ms: lat.and_then(|l| l.0),
            latency_p99_ms: lat.and_then(|l| l.1),
            resume_ms,
            history_page_ms: page,
            deep_history_page_ms: deep,
        });
    }

    let first = steps.first().context("no step")?.clone();
    for step in &steps {
        let at = format!("at {} loaded posts", step.loaded_posts);
        if let Some(tp) = step.throughput_posts_per_second {
            let goal = first.throughput_posts_per_second.map(|t| Goal::AtLeast(0.9 * t));
            report.figure(&format!("throughput {at}"), tp, "posts/s", goal);
        }
        if let Some(p99) = step.latency_p99_ms {
            let goal = first.latency_p99_ms.map(|p| Goal::AtMost(1.1 * p));
            report.figure(&format!("post→delivery p99 {at}"), p99, "ms", goal);
        }
        if let Some(ms) = step.resume_ms {
            report.figure(
                &format!("resume of {} {at}", args.missed),
                ms,
                "ms",
                first.resume_ms.map(|r| Goal::AtMost(1.1 * r)),
            );
        }
        let goal = Some(Goal::AtMost(1.1 * first.history_page_ms));
        report.figure(&format!("first history page {at}"), step.history_page_ms, "ms", goal);
        let goal = Some(Goal::AtMost(1.1 * first.deep_history_page_ms));
        report.figure(&format!("history page mid-way {at}"), step.deep_history_page_ms, "ms", goal);
        report.count(&format!("database bytes {at}"), step.database_bytes);
    }
    if let (Some(first), Some(last)) = (steps.first(), steps.last())
        && last.stored_posts > first.stored_posts
    {
        // Over every post added between the first and last measurement, the runs' own among them.
        let per_post = (last.database_bytes.saturating_sub(first.database_bytes)) as f64
            / (last.stored_posts - first.stored_posts) as f64;
        report.figure("database size per stored post", per_post, "bytes", None);
    }
    report.curve = Some(serde_json::to_value(&steps)?);
    Ok(())
}

/// A nurse's note through the API.
fn note(text: &str) -> NewPost {
    NewPost {
        kind: PostKind::Update,
        body: text.to_owned(),
        reply_to: None,
        client_msg_id: format!("bench-history-{}", Uuid::new_v4().simple()),
        confirm_not_emergency: false,
        attachments: Vec::new(),
        care_policy: None,
    }
}

/// The first page of 50 (the oldest) and the page of 50 half-way back, in milliseconds, each the best of
/// five (the figure is the query's cost, not the machine's noise). Each read is audited, as every read
/// of a patient group's posts is: the time includes that write.
async fn history_pages(client: &Client, group: Uuid) -> Result<(f64, f64)> {
    let mut first = f64::INFINITY;
    let mut deep = f64::INFINITY;
    let last = client.posts(group, None, None, 1).await?.last_seq;
    for _ in 0..5 {
        let started = Instant::now();
        let page = client.posts(group, Some(0), None, 50).await?;
        first = first.min(started.elapsed().as_secs_f64() * 1000.0);
        if page.posts.is_empty() {
            bail!("the template group's history is empty");
        }
        let started = Instant::now();
        client.posts(group, None, Some(last / 2 + 1), 50).await?;
        deep = deep.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((first, deep))
}

async fn count_posts(db: &mut AnyConnection) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM posts").fetch_one(&mut *db).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The database's size on disk: SQLite's file and its write-ahead log, PostgreSQL's database.
async fn database_bytes(db: &mut AnyConnection, postgres: bool, url: &str) -> Result<u64> {
    if postgres {
        let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&mut *db).await?;
        return Ok(u64::try_from(n).unwrap_or(0));
    }
    let path = url.trim_start_matches("sqlite://");
    let size = |p: String| std::fs::metadata(p).map_or(0, |m| m.len());
    Ok(size(path.to_owned()) + size(format!("{path}-wal")))
}

/// `count` copies of the template group, labelled `<label> <n>`, without members: posts are loaded into
/// them, nobody reads them.
async fn clone_groups(db: &mut AnyConnection, postgres: bool, template: Uuid, label: &str, count: usize) -> Result<()> {
    let columns: Vec<String> = if postgres {
        sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'groups' \
             AND table_schema = current_schema() ORDER BY ordinal_position",
        )
        .fetch_all(&mut *db)
        .await?
    } else {
        sqlx::query_scalar("SELECT name FROM pragma_table_info('groups')").fetch_all(&mut *db).await?
    };
    let values: Vec<String> = columns
        .iter()
        .map(|c| match c.as_str() {
            "id" if postgres => "gen_random_uuid()".to_owned(),
            "id" => "randomblob(16)".to_owned(),
            "label" if postgres => "$1 || ' ' || n.i".to_owned(),
            "label" => "?1 || ' ' || n.i".to_owned(),
            "last_seq" => "0".to_owned(),
            other => format!("t.{other}"),
        })
        .collect();
    let list = columns.join(", ");
    let values = values.join(", ");
    let sql = if postgres {
        format!(
            "INSERT INTO groups ({list}) SELECT {values} FROM generate_series(1, $2) n(i), groups t \
             WHERE t.id = $3::uuid"
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
             INSERT INTO groups ({list}) SELECT {values} FROM n, groups t WHERE t.id = ?3"
        )
    };
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(label.to_owned()).bind(i64::try_from(count)?);
    TemplateId::of(template, postgres).bind(query).execute(&mut *db).await.context("cloning the template group")?;
    Ok(())
}

/// `per_group` more posts in every loaded group and the template's, by the template's author, written
/// `SEQS_PER_STATEMENT` sequence numbers at a time across all groups (so a group's posts are spread over
/// the table as time spreads them), each statement its own transaction, and the groups' sequences
/// advanced with them. Ids are time-ordered, as the server's (UUIDv7).
async fn load(db: &mut AnyConnection, postgres: bool, template: Uuid, label: &str, per_group: u64) -> Result<()> {
    let columns = "id, group_id, seq, author_id, author_name, author_profession, author_organisation, kind, body, \
                   reply_to, client_msg_id, consent_version, created_at, version, edited_at, deleted_at, \
                   attachments, care_policy";
    let (insert, advance) = if postgres {
        (
            format!(
                "INSERT INTO posts ({columns}) \
                 SELECT (lpad(to_hex(($1::bigint + s.i) * 65536 + g.n), 16, '0') \
                         || lpad(to_hex((random() * 9.0e18)::bigint), 16, '0'))::uuid, \
                   g.id, g.last_seq + s.i, t.author_id, t.author_name, t.author_profession, t.author_organisation, \
                   'update', '訪問しました。血圧 124/72、体温 36.5 度、食事は8割摂取。記録 ' || (g.last_seq + s.i), \
                   NULL, 'history-' || g.id::text || '-' || (g.last_seq + s.i), t.consent_version, \
                   $2::bigint + s.i * 1000000, 1, NULL, NULL, NULL, NULL \
                 FROM generate_series(1, $3) s(i), \
                   (SELECT id, last_seq, row_number() OVER (ORDER BY id) AS n FROM groups \
                    WHERE label LIKE $4 OR id = $5::uuid) g, \
                   (SELECT * FROM posts WHERE group_id = $5::uuid AND seq = 1) t \
                 ORDER BY s.i, g.n"
            ),
            "UPDATE groups SET last_seq = last_seq + $1 WHERE label LIKE $2 OR id = $3::uuid",
        )
    } else {
        (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?3) \
                 INSERT INTO posts ({columns}) \
                 SELECT unhex(printf('%016x%016x', (?1 + s.i) * 65536 + g.n, random() & 9223372036854775807)), \
                   g.id, g.last_seq + s.i, t.author_id, t.author_name, t.author_profession, t.author_organisation, \
                   'update', '訪問しました。血圧 124/72、体温 36.5 度、食事は8割摂取。記録 ' || (g.last_seq + s.i), \
                   NULL, 'history-' || hex(g.id) || '-' || (g.last_seq + s.i), t.consent_version, \
                   ?2 + s.i * 1000000, 1, NULL, NULL, NULL, NULL \
                 FROM s, \
                   (SELECT id, last_seq, row_number() OVER (ORDER BY id) AS n FROM groups \
                    WHERE label LIKE ?4 OR id = ?5) g, \
                   (SELECT * FROM posts WHERE group_id = ?5 AND seq = 1) t \
                 ORDER BY s.i, g.n"
            ),
            "UPDATE groups SET last_seq = last_seq + ?1 WHERE label LIKE ?2 OR id = ?3",
        )
    };
    let pattern = format!("{label} %");
    let template = TemplateId::of(template, postgres);
    let now = time::OffsetDateTime::now_utc();
    let (now_ms, now_us) =
        (i64::try_from(now.unix_timestamp_nanos() / 1_000_000)?, i64::try_from(now.unix_timestamp_nanos() / 1000)?);
    let per = i64::try_from(per_group)?;
    let mut done = 0i64;
    while done < per {
        let seqs = i64::try_from(SEQS_PER_STATEMENT)?.min(per - done);
        // A UUIDv7's first 48 bits are its millisecond: one per round here, before now, then the group.
        let ms = now_ms - per + done;
        let created = now_us - (per - done) * 1_000_000;
        let mut tx = db.begin().await?;
        let q =
            sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind(ms).bind(created).bind(seqs).bind(pattern.clone());
        template.bind(q).execute(&mut *tx).await.context("loading posts")?;
        let q = sqlx::query(sqlx::AssertSqlSafe(advance)).bind(seqs).bind(pattern.clone());
        template.bind(q).execute(&mut *tx).await.context("advancing the groups")?;
        tx.commit().await?;
        done += seqs;
    }
    Ok(())
}

/// The template group's id as each database takes it through the `Any` driver.
enum TemplateId {
    Text(String),
    Bytes(Vec<u8>),
}

impl TemplateId {
    fn of(id: Uuid, postgres: bool) -> Self {
        if postgres { Self::Text(id.to_string()) } else { Self::Bytes(id.as_bytes().to_vec()) }
    }

    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        match self {
            Self::Text(t) => query.bind(t.clone()),
            Self::Bytes(b) => query.bind(b.clone()),
        }
    }
}
