//! The library's messages in the CLI's words: the library names a setting in backticks
//! (`` `bs` ``, `` `cycle_len` ``), the CLI prints the flag that sets it (`--bs`, `--cycle-len`).

use std::path::Path;

/// Every setting name the library's messages use, and the flag that sets it. Names not listed
/// (file names, values, settings without a flag) keep their backticks.
const FLAGS: &[(&str, &str)] = &[
    ("bs", "--bs"),
    ("classes", "--classes"),
    ("clip", "--clip"),
    ("cutmix", "--cutmix"),
    ("cycle_len", "--cycle-len"),
    ("cycle_mult", "--cycle-mult"),
    ("cycles", "--cycles"),
    ("delimiter", "--delimiter"),
    ("device", "--device"),
    ("embed_p", "--embed-p"),
    ("epochs", "--epochs"),
    ("extra_fraction", "--extra-fraction"),
    ("folds", "--folds"),
    ("label_smoothing", "--label-smoothing"),
    ("layers", "--layers"),
    ("lr", "--lr"),
    ("min_scale", "--min-scale"),
    ("mixup", "--mixup"),
    ("n_crit", "--n-crit"),
    ("n_features", "--n-features"),
    ("name", "--name"),
    ("out", "--out"),
    ("precision", "--precision"),
    ("ps", "--ps"),
    ("schedule", "--schedule"),
    ("seed", "--seed"),
    ("size", "--size"),
    ("size_epochs", "--epochs"),
    ("sizes", "--sizes"),
    ("snapshots", "--snapshots"),
    ("valid_pct", "--valid-pct"),
    ("ValidSpec::Pct", "--valid-pct"),
    ("width", "--width"),
    ("y_range", "--y-range"),
];

/// `text` (a library error or note) with each backticked setting of [`FLAGS`] written as its
/// flag; everything else is left as it is.
pub fn to_cli(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('`') {
        let Some((name, tail)) = after.split_once('`') else {
            break;
        };
        out.push_str(before);
        match FLAGS.iter().find(|(setting, _)| *setting == name) {
            Some((_, flag)) => out.push_str(flag),
            None => out.push_str(&format!("`{name}`")),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The error and its causes on one line, as `{e:#}` writes them, without a cause the message
/// already quotes (the library's errors name their source in their own text).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// The error of a run that `command` (e.g. `fastvision train --resume`) continues in the folder
/// `dir`: when the run kept its folder, it ends with how to continue it.
pub fn resumable(e: fastvision::Error, command: &str, dir: &Path) -> anyhow::Error {
    match e {
        fastvision::Error::RunKept { .. } => {
            anyhow::anyhow!("{e}; continue with `{command} {}`", dir.display())
        }
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn backticked_settings_become_flags_and_anything_else_stays() {
        assert_eq!(
            to_cli("`bs` 1: at least 2; lower `size` or `bs`"),
            "--bs 1: at least 2; lower --size or --bs"
        );
        assert_eq!(
            to_cli("`cycles`, `cycle_len` and `cycle_mult`: each at least 1"),
            "--cycles, --cycle-len and --cycle-mult: each at least 1"
        );
        assert_eq!(
            to_cli("`lr` auto: the LR finder suggests 1e-3"),
            "--lr auto: the LR finder suggests 1e-3"
        );
        assert_eq!(
            to_cli("`ValidSpec::Pct` 2: a fraction"),
            "--valid-pct 2: a fraction"
        );
        for kept in [
            "build it with the cargo feature `gpu`",
            "`noise`: at least 1",
            "run `bash x.sh` first",
            "a lone ` stays",
            "",
        ] {
            assert_eq!(to_cli(kept), kept);
        }
    }

    #[test]
    fn every_flag_of_the_table_is_a_flag_of_the_cli() {
        fn longs(cmd: &clap::Command, out: &mut Vec<String>) {
            out.extend(
                cmd.get_arguments()
                    .filter_map(|a| a.get_long().map(|l| format!("--{l}"))),
            );
            cmd.get_subcommands().for_each(|c| longs(c, out));
        }
        let mut all = Vec::new();
        longs(&super::super::Cli::command(), &mut all);
        for (setting, flag) in FLAGS {
            assert!(all.iter().any(|f| f == flag), "{setting}: no {flag} flag");
        }
    }

    #[test]
    fn a_cause_the_message_quotes_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::from(fastvision::Error::io("runs/x/config.json", io));
        assert_eq!(one_line(&e), "runs/x/config.json: No such file");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&e), "outer: inner");
    }

    #[test]
    fn a_kept_run_says_which_command_continues_it() {
        let kept = fastvision::Error::RunKept {
            run: "runs/e/members/m0".into(),
            source: Box::new(fastvision::Error::Config("`bs` 1: at least 2".into())),
        };
        let e = resumable(
            kept,
            "fastvision ensemble train --resume",
            Path::new("runs/e"),
        );
        let text = to_cli(&format!("{e:#}"));
        assert!(
            text.starts_with("invalid setting: --bs 1: at least 2")
                && text.ends_with("; continue with `fastvision ensemble train --resume runs/e`"),
            "{text}"
        );
        let other = resumable(
            fastvision::Error::Config("x".into()),
            "fastvision train --resume",
            Path::new("runs/r"),
        );
        assert_eq!(format!("{other:#}"), "invalid setting: x");
    }
}
