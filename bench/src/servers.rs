//! The servers a benchmark drives: spawned here (a throwaway SQLite directory, or nodes on a given
//! PostgreSQL URL) or already running (`--url`), and what /proc says about their CPU and memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use renkei_cli::Client;
use renkei_protocol::Sensitive;
use serde::Serialize;

/// Where the servers are and how to reach them as an administrator.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// A running server to drive (repeat for several nodes). Without it, the benchmark starts its own.
    #[arg(long = "url", global = true)]
    pub urls: Vec<String>,
    /// The administrator to provision with, on `--url` servers (the password comes from
    /// RENKEI_BENCH_ADMIN_PASSWORD).
    #[arg(long, global = true, default_value = "admin")]
    pub admin: String,
    /// PIDs of `--url` servers, to report their CPU and memory from /proc.
    #[arg(long = "server-pid", global = true)]
    pub server_pids: Vec<u32>,
    /// `renkei-server` to start (default: the one beside this program).
    #[arg(long, global = true)]
    pub server_bin: Option<PathBuf>,
    /// Database for the servers this program starts (default: SQLite in a temporary directory).
    /// A PostgreSQL URL lets several nodes share it.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Extra settings for started servers, as RENKEI_NAME=value (repeatable).
    #[arg(long = "server-env", global = true, value_parser = parse_env)]
    pub server_env: Vec<(String, String)>,
    /// PEM file of roots to trust for https servers.
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Keep the started servers' data directory and logs.
    #[arg(long, global = true)]
    pub keep: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected NAME=value")?;
    if !k.starts_with("RENKEI_") {
        return Err("only RENKEI_* settings".into());
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// One server node.
#[derive(Debug)]
pub struct Node {
    pub url: String,
    pub pid: Option<u32>,
    child: Option<Child>,
}

/// The nodes of one benchmark run and an administrator's client on the first.
#[derive(Debug)]
pub struct Servers {
    pub nodes: Vec<Node>,
    pub admin: Client,
    pub backend: String,
    /// The database the started servers use (`sqlite://…` or the PostgreSQL URL); `None` for `--url`
    /// servers.
    pub database_url: Option<String>,
    dir: Option<PathBuf>,
    keep: bool,
}

impl Servers {
    /// Starts `nodes` servers, or attaches to `--url` servers.
    pub async fn start(args: &ServerArgs, nodes: usize, run: &str) -> Result<Self> {
        if !args.urls.is_empty() {
            return Self::attach(args, nodes).await;
        }
        let bin = match &args.server_bin {
            Some(bin) => bin.clone(),
            None => std::env::current_exe()?.with_file_name("renkei-server"),
        };
        if !bin.exists() {
            bail!(
                "{} not found: build it (cargo build --release -p renkei-server) or pass --server-bin",
                bin.display()
            );
        }
        let is_postgres = args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres"));
        if nodes > 1 && !is_postgres {
            bail!("several nodes need a shared PostgreSQL: pass --database-url postgres://...");
        }
        let dir = std::env::temp_dir().join(format!("renkei-bench-{run}"));
        std::fs::create_dir_all(&dir)?;
        let mut env: Vec<(String, String)> = vec![("RENKEI_LOG_FILTER".into(), "warn".into())];
        if let Some(url) = &args.database_url {
            env.push(("RENKEI_DATABASE_URL".into(), url.clone()));
            // Runs share a database: they must share the key its audit log is sealed with, kept beside
            // the temporary directories under a name derived from the database's address.
            use sha2::Digest;
            let tag = hex_prefix(&sha2::Sha256::digest(url.as_bytes()));
            let key = std::env::temp_dir().join(format!("renkei-bench-audit-{tag}.key"));
            env.push(("RENKEI_AUDIT_KEY_FILE".into(), key.to_string_lossy().into_owned()));
            // And the Web Push key, which every node of a database must share too.
            let vapid = std::env::temp_dir().join(format!("renkei-bench-vapid-{tag}.key"));
            env.push(("RENKEI_VAPID_KEY_FILE".into(), vapid.to_string_lossy().into_owned()));
        }
        env.extend(args.server_env.iter().cloned());

        let admin_login = format!("bench-admin-{run}");
        let password = Sensitive::new(format!("bench-admin-{}", uuid::Uuid::new_v4().simple()));
        let node_env = |i: usize| {
            let mut env = env.clone();
            env.push(("RENKEI_DATA_DIR".into(), dir.join(format!("node{i}")).to_string_lossy().into_owned()));
            env
        };
        let mut create = Command::new(&bin)
            .env_clear()
            .args(["create-admin", "--login", &admin_login, "--display-name", "ベンチ管理者"])
            .envs(node_env(1))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run renkei-server create-admin")?;
        if let Some(mut stdin) = create.stdin.take() {
            use std::io::Write;
            writeln!(stdin, "{}", password.expose())?;
        }
        let out = create.wait_with_output()?;
        if !out.status.success() {
            bail!("create-admin failed: {}", String::from_utf8_lossy(&out.stderr));
        }

        let mut started = Vec::new();
        for i in 1..=nodes {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let log = std::fs::File::create(dir.join(format!("node{i}.log")))?;
            // Only the settings given here: this program's own RENKEI_BENCH_* would be unknown settings.
            let child = Command::new(&bin)
                .env_clear()
                .arg("serve")
                .envs(node_env(i))
                .env("RENKEI_LISTEN", format!("127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("cannot start renkei-server")?;
            let pid = child.id();
            started.push(Node { url: format!("http://127.0.0.1:{port}"), pid: Some(pid), child: Some(child) });
        }
        let first = started[0].url.clone();
        // Built before waiting, so that a failure stops the nodes already started (Drop).
        let mut servers = Self {
            nodes: started,
            admin: Client::new(&first, None)?,
            backend: if is_postgres { "postgres".into() } else { "sqlite".into() },
            database_url: Some(match &args.database_url {
                Some(url) => url.clone(),
                None => format!("sqlite://{}", dir.join("node1").join("renkei.sqlite3").display()),
            }),
            dir: Some(dir),
            keep: args.keep,
        };
        for node in &servers.nodes {
            wait_ready(&node.url).await?;
        }
        servers.admin.login(&admin_login, &password, None).await.context("administrator login")?;
        Ok(servers)
    }

    async fn attach(args: &ServerArgs, nodes: usize) -> Result<Self> {
        if args.urls.len() < nodes {
            bail!("this scenario needs {nodes} nodes: pass --url once per node");
        }
        let password = std::env::var("RENKEI_BENCH_ADMIN_PASSWORD")
            .context("set RENKEI_BENCH_ADMIN_PASSWORD to the administrator's password")?;
        let mut admin = Client::new(&args.urls[0], args.ca_cert.as_deref())?;
        admin.login(&args.admin, &Sensitive::new(password), None).await.context("administrator login")?;
        let nodes = args
            .urls
            .iter()
            .enumerate()
            .map(|(i, url)| Node { url: url.clone(), pid: args.server_pids.get(i).copied(), child: None })
            .collect();
        Ok(Self { nodes, admin, backend: "unknown (--url)".into(), database_url: None, dir: None, keep: false })
    }

    /// Where started servers keep their data and logs.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Connections every node dropped behind its hub (`renkei_lagged_connections_total`, summed); `None`
    /// when a node's /metrics cannot be read.
    pub async fn lagged_connections(&self) -> Option<u64> {
        let mut total = 0;
        for node in &self.nodes {
            total += self.metric(&node.url, "renkei_lagged_connections_total").await?;
        }
        Some(total)
    }

    /// One integer counter from a node's /metrics.
    pub async fn metric(&self, url: &str, name: &str) -> Option<u64> {
        let text = reqwest::get(format!("{url}/metrics")).await.ok()?.text().await.ok()?;
        let value = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?;
        value.trim().parse::<u64>().ok()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child {
                // SIGTERM lets the server drain; it is a throwaway database either way.
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(dir) = &self.dir
            && !self.keep
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn wait_ready(url: &str) -> Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http.get(format!("{url}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} did not become ready within 20 s")
}

/// CPU time and memory of one process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU time, in clock ticks (100 per second on Linux).
    pub cpu_ticks: u64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

const TICKS_PER_SECOND: f64 = 100.0;

impl ProcSample {
    /// `pid` of `None` reads this process.
    pub fn read(pid: Option<u32>) -> Option<Self> {
        let base = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
        let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
        // Fields after the command name (which may contain spaces): state is [0], utime [11], stime [12].
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let cpu_ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("{base}/status")).ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Some(Self { cpu_ticks, rss_kib: kib("VmRSS:"), hwm_kib: kib("VmHWM:") })
    }
}

/// What one process (or a set of them) used over a measured interval.
#[derive(Debug, Clone, Serialize)]
pub struct ProcFigure {
    pub process: String,
    pub pid: Option<u32>,
    pub cpu_seconds: f64,
    /// Of one core: 200 % is both cores of this machine.
    pub cpu_percent: f64,
    /// Memory of one process; none for the rows that add several up (their shared memory would count
    /// once per process).
    pub rss_start_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
}

/// What a row of [`ProcWatch`] follows.
#[derive(Debug)]
enum Watched {
    /// One process; `None` is this one.
    Process(Option<u32>),
    /// Every process on this machine with this command name, added up (PostgreSQL's backends, which come
    /// and go; one that ended during the interval is left out).
    Named(&'static str),
    /// All cores, busy (not idle or waiting on I/O), from /proc/stat.
    Machine,
}

impl Watched {
    /// CPU ticks so far and, for one process, its memory.
    fn sample(&self) -> Option<(u64, Option<ProcSample>)> {
        match self {
            Self::Process(pid) => ProcSample::read(*pid).map(|s| (s.cpu_ticks, Some(s))),
            Self::Named(name) => {
                let mut ticks = 0;
                for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                    let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
                    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    if comm.trim_end() == *name {
                        ticks += ProcSample::read(Some(pid)).map_or(0, |s| s.cpu_ticks);
                    }
                }
                Some((ticks, None))
            }
            Self::Machine => {
                let stat = std::fs::read_to_string("/proc/stat").ok()?;
                let ticks: Vec<u64> =
                    stat.lines().next()?.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal …: busy is all but idle and iowait.
                let busy = ticks.iter().sum::<u64>() - ticks.get(3)? - ticks.get(4)?;
                Some((busy, None))
            }
        }
    }
}

/// Samples the servers, this process, PostgreSQL's processes (when the servers run on PostgreSQL) and the
/// whole machine at the start of a measured interval.
#[derive(Debug)]
pub struct ProcWatch {
    started: Instant,
    rows: Vec<(String, Watched, u64, Option<ProcSample>)>,
}

impl ProcWatch {
    pub fn start(servers: &Servers) -> Self {
        let mut watched = Vec::new();
        for (i, node) in servers.nodes.iter().enumerate() {
            if let Some(pid) = node.pid {
                watched.push((format!("server node{}", i + 1), Watched::Process(Some(pid))));
            }
        }
        watched.push(("renkei-bench".into(), Watched::Process(None)));
        if servers.backend == "postgres" {
            watched.push(("postgres (all local processes)".into(), Watched::Named("postgres")));
        }
        watched.push(("whole machine, busy".into(), Watched::Machine));
        let rows = watched
            .into_iter()
            .filter_map(|(name, w)| w.sample().map(|(ticks, sample)| (name, w, ticks, sample)))
            .collect();
        Self { started: Instant::now(), rows }
    }

    pub fn finish(&self) -> Vec<ProcFigure> {
        let wall = self.started.elapsed().as_secs_f64();
        self.rows
            .iter()
            .filter_map(|(name, watched, start_ticks, start)| {
                let (end_ticks, end) = watched.sample()?;
                let cpu_seconds = end_ticks.saturating_sub(*start_ticks) as f64 / TICKS_PER_SECOND;
                Some(ProcFigure {
                    process: name.clone(),
                    pid: match watched {
                        Watched::Process(pid) => Some(pid.unwrap_or_else(std::process::id)),
                        _ => None,
                    },
                    cpu_seconds,
                    cpu_percent: 100.0 * cpu_seconds / wall.max(1e-9),
                    rss_start_kib: start.map(|s| s.rss_kib),
                    rss_end_kib: end.map(|s| s.rss_kib),
                    rss_peak_kib: end.map(|s| s.hwm_kib),
                })
            })
            .collect()
    }
}

/// The first 8 bytes of a digest, in hex.
fn hex_prefix(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
