//! Named checkpoints download themselves: against a local axum server serving a fixture
//! checkpoint (never the internet): the happy path, resume after a cut connection, a wrong hash,
//! a 404, and offline mode.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fastvision::weights::hub::{self, Checkpoint};
use http_body::Frame;

fn fixture() -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resnet18_w8.pth"))
        .unwrap()
}

/// A body that sends `data`, waits for it to reach the client, then breaks the connection, as
/// a dropped download does.
struct CutBody(Option<Bytes>, Pin<Box<tokio::time::Sleep>>);

impl http_body::Body for CutBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(d) = self.0.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        match self.1.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::other("connection cut")))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// (route, Range header) of every request.
type RequestLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Clone, Default)]
struct Served {
    requests: RequestLog,
}

async fn serve(
    State(s): State<Served>,
    UrlPath(route): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.requests
        .lock()
        .unwrap()
        .push((route.clone(), range.clone()));
    let data = fixture();
    let from = range
        .as_deref()
        .and_then(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    match route.as_str() {
        "ok" | "cut" => {}
        _ => return StatusCode::NOT_FOUND.into_response(),
    }
    if route == "cut" && from == 0 {
        // The whole length announced, a third of it sent, then the connection drops.
        let third = Bytes::from(data[..data.len() / 3].to_vec());
        return Response::builder()
            .header(header::CONTENT_LENGTH, data.len())
            .body(Body::new(CutBody(
                Some(third),
                Box::pin(tokio::time::sleep(std::time::Duration::from_millis(200))),
            )))
            .unwrap();
    }
    let status = if from > 0 {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = (status, data[from..].to_vec()).into_response();
    if from > 0 {
        let range = format!("bytes {from}-{}/{}", data.len() - 1, data.len());
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, range.parse().unwrap());
    }
    response
}

/// Starts the server on a free loopback port; returns its base address and request log.
fn start() -> (String, Served) {
    let served = Served::default();
    let app = Router::new()
        .route("/{route}/resnet18_w8.pth", get(serve))
        .with_state(served.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            })
    });
    (format!("http://{addr}"), served)
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn checkpoint(url: String, sha256: Option<&'static str>) -> Checkpoint {
    Checkpoint {
        name: "fixture",
        arch: "resnet18",
        file: "resnet18_w8.pth",
        urls: Box::leak(vec![leak(url)].into_boxed_slice()),
        sha256,
        license: "test",
        trained_on: "nothing",
        manual: "",
    }
}

fn full_sha() -> &'static str {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resnet18_w8.pth");
    leak(hub::sha256_file(&path).unwrap())
}

#[test]
fn downloads_verifies_and_renames_into_place() {
    let (base, served) = start();
    let cache = tempfile::tempdir().unwrap();
    // The 8-digit prefix torchvision puts in its file names is what is checked, as torch.hub does.
    let c = checkpoint(
        format!("{base}/ok/resnet18_w8.pth"),
        Some(leak(full_sha()[..8].to_string())),
    );
    let path = c.fetch(cache.path()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), fixture());
    assert!(!cache.path().join("resnet18_w8.pth.part").exists());
    // Second call: cached, no request.
    let n = served.requests.lock().unwrap().len();
    c.fetch(cache.path()).unwrap();
    assert_eq!(served.requests.lock().unwrap().len(), n);
}

#[test]
fn resumes_after_a_cut_connection() {
    let (base, served) = start();
    let cache = tempfile::tempdir().unwrap();
    let c = checkpoint(format!("{base}/cut/resnet18_w8.pth"), Some(full_sha()));
    let err = c.fetch(cache.path()).unwrap_err().to_string();
    assert!(
        err.contains("interrupted") && err.contains("run again to resume"),
        "{err}"
    );
    let part = cache.path().join("resnet18_w8.pth.part");
    let kept = std::fs::metadata(&part).unwrap().len() as usize;
    assert!(
        kept > 0 && kept < fixture().len(),
        "a partial file is kept: {kept} bytes"
    );
    assert!(!cache.path().join("resnet18_w8.pth").exists());
    let path = c.fetch(cache.path()).unwrap();
    assert_eq!(
        std::fs::read(path).unwrap(),
        fixture(),
        "resumed file is whole and exact"
    );
    let requests = served.requests.lock().unwrap().clone();
    assert_eq!(
        requests.last().unwrap().1.as_deref(),
        Some(format!("bytes={kept}-").as_str()),
        "{requests:?}"
    );
}

#[test]
fn a_wrong_hash_deletes_the_partial_file() {
    let (base, _) = start();
    let cache = tempfile::tempdir().unwrap();
    let c = checkpoint(format!("{base}/ok/resnet18_w8.pth"), Some("deadbeef"));
    let err = c.fetch(cache.path()).unwrap_err().to_string();
    assert!(
        err.contains("SHA-256 mismatch: expected deadbeef") && err.contains("was deleted"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing left in the cache"
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (base, _) = start();
    let cache = tempfile::tempdir().unwrap();
    let c = checkpoint(format!("{base}/gone/resnet18_w8.pth"), Some(full_sha()));
    let err = c.fetch(cache.path()).unwrap_err().to_string();
    assert!(
        err.contains("/gone/resnet18_w8.pth") && err.contains("404"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn offline_never_touches_the_network() {
    // From the command line as a user would: FASTVISION_OFFLINE=1 and an empty cache. The real
    // catalog address is never contacted (there is no network here either way): the error is
    // the helpful one naming the file and where it is published.
    let cache = tempfile::tempdir().unwrap();
    for offline in [vec![], vec!["--offline"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastvision"))
            .args(["weights", "fetch", "resnet18"])
            .args(&offline)
            .env("FASTVISION_HOME", cache.path())
            .env(
                "FASTVISION_OFFLINE",
                if offline.is_empty() { "1" } else { "0" },
            )
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            text.contains("resnet18-f37072fd.pth")
                && text.contains("(offline)")
                && text.contains("https://download.pytorch.org/models/resnet18-f37072fd.pth"),
            "{text}"
        );
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastvision"))
        .args(["weights", "list"])
        .env("FASTVISION_HOME", cache.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("resnet50_places365") && text.contains("sha256: f37072fd47e89c5e"),
        "{text}"
    );
}
