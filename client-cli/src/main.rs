//! `renkei`: the command-line client. Parses arguments, runs one command through the client library,
//! prints a table (or JSON with `--json`), and exits with a documented code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other error (invalid input, conflict, server fault) |
//! | 2 | usage error (bad arguments) |
//! | 3 | authentication failed (not logged in, wrong password or code, disabled, throttled) |
//! | 4 | not found |
//! | 5 | refused by a rule or permission (not an administrator, password policy, pending step) |
//! | 6 | the server cannot be reached |

mod args;
mod care;
mod commands;
mod messages;
mod output;

use clap::Parser;
use renkei_cli::i18n::Lang;

fn main() -> std::process::ExitCode {
    // Like every Unix tool: output into a closed pipe (`renkei admin audit | head`) ends the process
    // quietly, instead of Rust's default of a failed write that panics with a backtrace.
    sigpipe::reset();
    let cli = args::Cli::parse();
    let lang = Lang::detect();
    // Read the local UTC offset while the process has one thread; later it is not reliably available.
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("renkei: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let out = output::Output::new(lang, cli.json, offset);
    match runtime.block_on(commands::run(cli, &out)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
