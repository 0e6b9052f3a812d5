//! `renkei-server`: serve (the default), migrate, print-config, create-admin, dev-cert.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

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
    /// Create an administrator. The password is read from stdin when piped, prompted for otherwise.
    CreateAdmin {
        #[arg(long)]
        login: String,
        #[arg(long)]
        display_name: String,
        #[arg(long, default_value = "renkei administration")]
        organisation: String,
    },
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
        Command::CreateAdmin { login, display_name, organisation } => {
            let password = read_password()?;
            let user = admin_cli::create_admin(&config, &login, &display_name, &organisation, &password).await?;
            println!("administrator {} created ({})", user.login, user.id);
            Ok(())
        }
        Command::DevCert { cert, key, names } => {
            admin_cli::dev_cert(&cert, &key, names)?;
            println!("wrote {} and {} (key mode 0600)", cert.display(), key.display());
            Ok(())
        }
    }
}

/// One line from stdin when piped; a hidden prompt, asked twice, on a terminal.
fn read_password() -> anyhow::Result<Sensitive> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 13 characters): ")?;
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
