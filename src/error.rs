//! The library's error type: every failure names the file or setting at fault.

use std::path::PathBuf;

/// Errors returned by fastvision's library functions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A dataset folder is not laid out as expected.
    #[error("{path}: {message}")]
    Dataset {
        /// The folder at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An image could not be decoded.
    #[error("{path}: {message}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// Why it was refused.
        message: String,
    },
    /// A model bundle, checkpoint or weight file is missing or malformed.
    #[error("{path}: {message}")]
    Model {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A download failed or its file did not verify.
    #[error("{url}: {message}")]
    Download {
        /// The address.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A table (CSV) is malformed at a line and column, or does not fit the model.
    #[error("{path}{location}: {message}")]
    Table {
        /// The file at fault.
        path: PathBuf,
        /// `:LINE` and/or `, column "NAME"` (empty when the whole file is at fault).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A run failed after its first checkpoint: its folder is kept.
    #[error("{source} (the run folder {} keeps its finished epochs: resume it, or remove it)", run.display())]
    RunKept {
        /// The run folder.
        run: PathBuf,
        /// What went wrong.
        source: Box<Error>,
    },
    /// Training was cancelled (Ctrl-C, a notebook's stop button) after a batch; the run folder
    /// keeps its last finished epoch.
    #[error("cancelled")]
    Cancelled,
    /// The requested compute device cannot be used.
    #[error("{0}")]
    Device(String),
    /// Training diverged: a loss stopped being finite (the message says where and why).
    #[error("{0}")]
    Diverged(String),
    /// A setting is out of range or inconsistent.
    #[error("invalid setting: {0}")]
    Config(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A model/bundle error naming its file.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Error {
    /// A setting refused while reading the file `path` (a run's settings, a model's
    /// configuration): said as that file's field, in its own quotes, not as a setting to pass.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            Error::Config(m) => Error::model(path, m.replace('`', "\"")),
            e => e,
        }
    }

    /// A table error at `line` (1-based, as an editor counts) and `column`, when known.
    pub fn table(
        path: impl Into<PathBuf>,
        line: Option<u64>,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        let mut location = String::new();
        if let Some(l) = line {
            location.push_str(&format!(":{l}"));
        }
        if let Some(c) = column {
            location.push_str(&format!(", column \"{c}\""));
        }
        Error::Table {
            path: path.into(),
            location,
            message: message.into(),
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Error;

    /// Whether `line` names a command-line flag (two dashes and a lowercase letter) or a command
    /// line (`fastvision` and a lowercase word).
    fn speaks_cli(line: &str) -> bool {
        let b = line.as_bytes();
        let flag = b
            .windows(3)
            .any(|w| w[0] == b'-' && w[1] == b'-' && w[2].is_ascii_lowercase());
        let command = line
            .match_indices("fastvision ")
            .any(|(i, m)| b.get(i + m.len()).is_some_and(u8::is_ascii_lowercase));
        flag || command
    }

    /// Every line outside comments of the `.rs` files under `dir` (but not `skip`) that speaks
    /// the CLI's language, as `path:line: text`.
    fn cli_lines(dir: &Path, skip: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                if path != skip {
                    cli_lines(&path, skip, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    // A comment line (`//`, `///`, `//!`) may name flags and commands.
                    let comment = code.strip_prefix('/').is_some_and(|c| c.starts_with('/'));
                    if !comment && speaks_cli(code) {
                        out.push(format!("{}:{}: {code}", path.display(), i + 1));
                    }
                }
            }
        }
    }

    #[test]
    fn library_strings_name_settings_never_flags_or_command_lines() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        cli_lines(&src, &src.join("cli"), &mut found);
        assert!(
            found.is_empty(),
            "name the setting in backticks (the CLI turns it into its flag), and no command \
             line outside src/cli/:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn bad_settings_are_refused_by_their_backticked_name() {
        use crate::ensemble::train::{Variation, plan};
        use crate::gan::GanConfig;
        use crate::models::Arch;
        use crate::tabular::TabularConfig;
        use crate::vision::TrainConfig;
        let train = TrainConfig::default();
        let cases: Vec<(&str, Error)> = vec![
            (
                "`epochs`",
                TrainConfig {
                    epochs: 0,
                    ..train.clone()
                }
                .validate()
                .unwrap_err(),
            ),
            (
                "`bs`",
                TrainConfig {
                    bs: 0,
                    ..train.clone()
                }
                .validate()
                .unwrap_err(),
            ),
            (
                "`cycle_len`",
                TrainConfig {
                    schedule: crate::vision::ScheduleKind::Sgdr,
                    cycle_len: 0,
                    ..train.clone()
                }
                .validate()
                .unwrap_err(),
            ),
            (
                "`bs`",
                TabularConfig {
                    bs: 1,
                    ..TabularConfig::new("t.csv", "y")
                }
                .validate()
                .unwrap_err(),
            ),
            (
                "`bs`",
                GanConfig {
                    bs: 1,
                    ..GanConfig::default()
                }
                .validate()
                .unwrap_err(),
            ),
            ("`size`", crate::models::gan::check_size(20).unwrap_err()),
            (
                "`folds`",
                plan(&train, &[(Arch::Resnet18, None)], 1, Variation::Folds(1)).unwrap_err(),
            ),
            ("`name`", crate::run_dir::check_name("../x").unwrap_err()),
        ];
        for (setting, e) in cases {
            let text = e.to_string();
            assert!(
                text.contains(setting) && !text.contains("--"),
                "{setting}: {text}"
            );
        }
    }
}
