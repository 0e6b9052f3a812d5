//! `--help` from the message catalogue: every command, argument and heading described in the user's
//! language.

/// The catalogue key of a command's description (`cli-help-renkei-group-open`) or, with `--ID`, of one of
/// its arguments (`cli-help-renkei-group-open--label`). clap's own `--help`, `--version` and `help` share
/// one key each.
fn help_key(path: &str, arg: Option<&clap::Arg>) -> String {
    match arg.map(|a| (a.get_id().as_str(), a.is_global_set())) {
        Some(("help", _)) => "cli-help-flag".to_owned(),
        Some(("version", _)) => "cli-help-version-flag".to_owned(),
        Some((id, true)) => format!("cli-help-global--{id}"),
        Some((id, false)) => format!("cli-help-{path}--{id}"),
        None => format!("cli-help-{path}"),
    }
}

/// The command tree with every description, argument help and heading from the message catalogue, in
/// `lang` (`LANG=ja_JP.UTF-8 renkei --help` is Japanese throughout).
pub fn localized(mut cmd: clap::Command, lang: renkei_cli::i18n::Lang) -> clap::Command {
    // Built first, so that clap's own `--help`, `--version` and `help` exist to be described too.
    cmd.build();
    localize(cmd, "renkei", lang)
}

fn localize(mut cmd: clap::Command, path: &str, lang: renkei_cli::i18n::Lang) -> clap::Command {
    use renkei_cli::i18n::text;
    let about =
        if cmd.get_name() == "help" && path != "renkei" { "cli-help-help".to_owned() } else { help_key(path, None) };
    cmd = cmd.about(text(lang, &about)).long_about(None::<&str>);
    let args: Vec<(String, bool, String)> = cmd
        .get_arguments()
        .map(|a| (a.get_id().as_str().to_owned(), a.is_positional(), help_key(path, Some(a))))
        .collect();
    for (id, positional, key) in args {
        let help = if cmd.get_name() == "help" && path != "renkei" && id != "help" {
            text(lang, "cli-help-help--command")
        } else {
            text(lang, &key)
        };
        let heading = text(lang, if positional { "cli-heading-arguments" } else { "cli-heading-options" });
        cmd = cmd.mut_arg(id, |a| a.help(help).long_help(None::<&str>).help_heading(heading));
    }
    let template = format!(
        "{{before-help}}{{about-with-newline}}\n{} {{usage}}\n\n{{all-args}}{{after-help}}",
        text(lang, "cli-heading-usage")
    );
    cmd = cmd.subcommand_help_heading(text(lang, "cli-heading-commands")).help_template(template);
    let subcommands: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_owned()).collect();
    for name in subcommands {
        let sub_path = format!("{path}-{name}");
        cmd = cmd.mut_subcommand(&name, |c| localize(c, &sub_path, lang));
    }
    cmd
}

#[cfg(test)]
/// Every catalogue key the command tree needs, with the English help the code gives it (to write the
/// catalogue from).
fn help_entries(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
    if cmd.get_name() == "help" && path != "renkei" {
        return;
    }
    out.push((help_key(path, None), cmd.get_about().map(ToString::to_string).unwrap_or_default()));
    for arg in cmd.get_arguments() {
        out.push((help_key(path, Some(arg)), arg.get_help().map(ToString::to_string).unwrap_or_default()));
    }
    for sub in cmd.get_subcommands() {
        help_entries(sub, &format!("{path}-{}", sub.get_name()), out);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every option says what it is for in `--help`.
    fn undocumented(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        let here = format!("{path} {}", cmd.get_name());
        if cmd.get_about().is_none() && !path.is_empty() {
            missing.push(format!("{here} (the command)"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.get_help().is_none() && !matches!(id, "help" | "version") {
                missing.push(format!("{here} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            undocumented(sub, &here, missing);
        }
    }

    #[test]
    fn every_command_and_option_has_a_sentence() {
        let mut missing = Vec::new();
        undocumented(&crate::args::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without help:\n{}", missing.join("\n"));
    }

    /// The help `renkei` prints comes from the catalogue, which has every command and option in both
    /// languages.
    #[test]
    fn every_command_and_option_is_in_the_catalogue_in_both_languages() {
        use renkei_cli::i18n::{Lang, has};
        let mut cmd = crate::args::Cli::command();
        cmd.build();
        let mut entries = Vec::new();
        super::help_entries(&cmd, "renkei", &mut entries);
        for key in [
            "cli-help-help",
            "cli-help-help--command",
            "cli-heading-usage",
            "cli-heading-commands",
            "cli-heading-options",
            "cli-heading-arguments",
        ] {
            entries.push((key.to_owned(), String::new()));
        }
        entries.sort();
        entries.dedup_by(|a, b| a.0 == b.0);
        for lang in [Lang::Ja, Lang::En] {
            let missing: Vec<String> =
                entries.iter().filter(|(k, _)| !has(lang, k)).map(|(k, v)| format!("{k} = {v}")).collect();
            assert!(missing.is_empty(), "{lang:?} catalogue lacks:\n{}", missing.join("\n"));
        }
    }

    #[test]
    fn japanese_help_is_japanese_throughout() {
        let mut cmd = super::localized(crate::args::Cli::command(), renkei_cli::i18n::Lang::Ja);
        let help = cmd.render_help().to_string();
        assert!(help.contains("使い方:") && help.contains("コマンド:") && help.contains("オプション:"), "{help}");
        assert!(!help.contains("Usage") && !help.contains("Print help"), "{help}");
        let group = cmd.find_subcommand_mut("group").expect("group");
        let help = group.render_help().to_string();
        assert!(!help.contains("Options:") && !help.contains("Commands:"), "{help}");
    }
}
