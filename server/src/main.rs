//! `renkei-server`: serve (the default), migrate, print-config, openapi, create-admin, backup, restore,
//! audit, dev-cert.

// No `unwrap` outside tests (clippy.toml allows it there), and a cast that may cut a number says so
// (`try_from`); the test crates are exempt.
#![warn(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

/// mimalloc, not glibc's allocator: a post's frames, rows and bindings are allocated on one thread and
/// freed on another, and glibc's malloc and free took a fifth of the server's CPU at maximum throughput
/// (figures: docs/decisions/0004-the-post-path.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use renkei_protocol::Sensitive;
use renkei_server::store::Store;
use renkei_server::{Application, Config, admin_cli, app, telemetry};

#[derive(Debug, Parser)]
#[command(name = "renkei-server", version, about = "renkei: closed messaging for the home-care team")]
struct Cli {
    /// TOML configuration file; `RENKEI_*` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    PrintConfig,
    /// Print the OpenAPI document of the HTTP API (as served at /api/v1/openapi.json).
    Openapi,
    /// Print the AsyncAPI document of the live protocol (as served at /api/v1/asyncapi.json).
    Asyncapi,
    /// Print the error catalogue (docs/errors.md): every error code, its HTTP status, fields and remedy.
    Errors,
    /// Create an administrator. The password is read from stdin when piped, prompted for otherwise.
    CreateAdmin {
        #[arg(long)]
        login: String,
        #[arg(long)]
        display_name: String,
        #[arg(long, default_value = "renkei administration")]
        organisation: String,
    },
    /// Back up the SQLite database (consistent while the server runs) into DEST, keeping generations.
    Backup {
        dest: PathBuf,
        /// How many generations to keep in DEST.
        #[arg(long, default_value_t = 14)]
        keep: usize,
    },
    /// Restore the SQLite database from a backup (refused while a server uses it).
    Restore { backup: PathBuf },
    /// The audit log: verify the hash chain, or print the latest entry as an anchor.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Retention (rule 7): purge the content of archived patient groups past `purge_archived_after_days`,
    /// as the housekeeping sweep does; with --dry-run, list them and change nothing.
    Purge {
        #[arg(long)]
        dry_run: bool,
    },
    /// Exit 0 if this configuration's server answers /healthz on this machine (over TLS when it has a
    /// certificate): the container image's health check.
    Healthcheck,
    /// Write a self-signed development certificate and key (never for production).
    DevCert {
        #[arg(long, default_value = "renkei-dev-cert.pem")]
        cert: PathBuf,
        #[arg(long, default_value = "renkei-dev-key.pem")]
        key: PathBuf,
        /// Host names and addresses the certificate is valid for.
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1"])]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; report the first entry changed, deleted, inserted or reordered, a tail cut
    /// off before the anchor (the server's anchor file, or `--anchor FILE`: a line `SEQ HASH` from `audit
    /// anchor`), and, where the audit key file is readable, any entry without its MAC (forged).
    Verify {
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
    },
    /// Print the latest entry as `SEQ HASH`, to keep in a separate place (a file, another system's log).
    Anchor,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("renkei-server: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("renkei-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            telemetry::init(&config);
            let app = Application::build(config).await?;
            tracing::info!(url = %app.base_url(), backend = ?app.store().backend(), "renkei-server listening");
            app.run_until_stopped(app::shutdown_signal()).await
        }
        Command::Migrate => {
            let store = Store::connect(&config.effective_database_url(), 1).await?;
            store.migrate().await?;
            store.close().await;
            println!("migrations applied ({:?})", store.backend());
            Ok(())
        }
        Command::PrintConfig => {
            print!("{}", config.to_redacted_toml());
            Ok(())
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&renkei_server::http::openapi_document())?);
            Ok(())
        }
        Command::Asyncapi => {
            println!("{}", serde_json::to_string_pretty(&renkei_server::http::asyncapi_document())?);
            Ok(())
        }
        Command::Errors => {
            print!("{}", renkei_protocol::ErrorCode::catalogue_markdown());
            Ok(())
        }
        Command::CreateAdmin { login, display_name, organisation } => {
            let password = read_password()?;
            let user = admin_cli::create_admin(&config, &login, &display_name, &organisation, &password).await?;
            println!("administrator {} created ({})", user.login, user.id);
            Ok(())
        }
        Command::Backup { dest, keep } => {
            let file = admin_cli::backup(&config, &dest, keep).await?;
            println!("backed up to {} (integrity and audit chain verified)", file.display());
            Ok(())
        }
        Command::Restore { backup } => {
            let entries = admin_cli::restore(&config, &backup).await?;
            println!("restored from {} ({entries} audit entries verified)", backup.display());
            Ok(())
        }
        Command::Audit(cmd) => {
            let store = Store::connect(&config.effective_database_url(), 1).await?;
            store.migrate().await?;
            // The key, when this machine has it, checks every entry's MAC too; verify never makes one.
            let key_file = config.effective_audit_key_file();
            let store = match std::fs::read_to_string(&key_file) {
                Ok(text) => store.with_audit_key(
                    renkei_server::domain::audit::AuditKey::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", key_file.display()))?,
                ),
                Err(_) => store,
            };
            let result = audit_command(&config, &store, cmd).await;
            store.close().await;
            result
        }
        Command::Purge { dry_run } => {
            match config.purge_archived_after_days {
                Some(days) => println!("retention: {days} days after archiving, unless an office sets its own"),
                None => println!("retention: only offices that set their own (purge_archived_after_days is unset)"),
            }
            let groups = admin_cli::purge(&config, dry_run).await?;
            let verb = if dry_run { "due (dry run: nothing changed)" } else { "purged" };
            println!("archived patient groups {verb}: {}", groups.len());
            for (group, purged) in groups {
                let archived = group.archived_at.map(|t| t.date().to_string()).unwrap_or_default();
                match purged {
                    Some(p) => println!(
                        "  {} archived {archived}: {} posts, {} files",
                        group.reference(),
                        p.posts,
                        p.attachments
                    ),
                    None => println!("  {} archived {archived}", group.reference()),
                }
            }
            Ok(())
        }
        Command::Healthcheck => admin_cli::healthcheck(&config).await,
        Command::DevCert { cert, key, names } => {
            admin_cli::dev_cert(&cert, &key, names)?;
            println!("wrote {} and {} (key mode 0600)", cert.display(), key.display());
            Ok(())
        }
    }
}

async fn audit_command(config: &Config, store: &Store, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Anchor => {
            match renkei_server::audit::anchor(store).await? {
                Some((seq, hash)) => println!("{seq} {hash}"),
                None => println!("0 {}", renkei_server::domain::audit::GENESIS),
            }
            Ok(())
        }
        AuditCommand::Verify { anchor } => {
            let anchor = match anchor {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                    Some(renkei_server::audit::parse_anchor(&text).context("anchor: expected one line `SEQ HASH`")?)
                }
                None => renkei_server::audit::configured_anchor(config)?,
            };
            match renkei_server::audit::verify(store, anchor.clone()).await? {
                Ok(last) => {
                    let against =
                        anchor.map_or("no anchor yet".to_owned(), |(seq, _)| format!("anchor at entry {seq}"));
                    let keyed = store.audit_key().map_or("MACs not checked: no audit key here".to_owned(), |k| {
                        format!("MACs checked from entry {}", k.keyed_from)
                    });
                    println!("audit log intact: {last} entries ({against}; {keyed})");
                    Ok(())
                }
                Err(broken) => anyhow::bail!("audit log TAMPERED: {broken}"),
            }
        }
    }
}

/// One line from stdin when piped; a hidden prompt, asked twice, on a terminal.
fn read_password() -> anyhow::Result<Sensitive> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 13 characters): ")?;
        // Say what is wrong before asking to type it again.
        if let Err(problem) = renkei_server::policy::check_new_password(&first, false) {
            anyhow::bail!("password rejected by the policy: {problem} (at least 13 characters, at most 256)");
        }
        let again = rpassword::prompt_password("Repeat: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        Ok(Sensitive::new(first))
    } else {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).context("reading the password from stdin")?;
        let line = input.lines().next().unwrap_or_default().to_owned();
        Ok(Sensitive::new(line))
    }
}
