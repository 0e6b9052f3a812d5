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

// No `unwrap` outside tests (clippy.toml allows it there), and a cast that may cut a number says so
// (`try_from`); the test crates are exempt.
#![warn(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod admin;
mod args;
mod care;
mod commands;
mod messages;
mod output;
mod records;
mod settings;

use renkei_cli::i18n::Lang;

/// Like every Unix tool, output into a closed pipe (`renkei admin audit | head`) ends the process by
/// SIGPIPE, quietly, instead of Rust's failed write that panics with a backtrace. Only there: SIGPIPE stays
/// ignored for everything else, since a socket the server closed must be an error the CLI reports (a
/// vectored write cannot ask for no signal, and SIGPIPE at its default silently killed `renkei` talking
/// HTTPS to a plain-HTTP server).
fn end_quietly_on_a_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            // With SIGPIPE at its default, one more write into the closed pipe ends the process by it.
            sigpipe::reset();
            let mut stdout = std::io::stdout();
            let _ = std::io::Write::write_all(&mut stdout, b"\n").and_then(|()| std::io::Write::flush(&mut stdout));
            std::process::exit(128 + 13);
        }
        default_hook(info);
    }));
}

fn main() -> std::process::ExitCode {
    end_quietly_on_a_closed_stdout();
    let lang = Lang::detect();
    let matches = args::localized(<args::Cli as clap::CommandFactory>::command(), lang).get_matches();
    let cli = match <args::Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let Some(zone) = renkei_protocol::zone::Zone::parse(&cli.time_zone) else {
        eprintln!(
            "renkei: --time-zone {}: expected an IANA name like Asia/Tokyo, or an offset like +09:00",
            cli.time_zone
        );
        return std::process::ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("renkei: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let out = output::Output::new(lang, cli.json, zone);
    match runtime.block_on(commands::run(cli, &out)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
