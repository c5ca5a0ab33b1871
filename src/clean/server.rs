//! The review page (the seed's method 2): a local axum server that shows one class and split at a
//! time, images by loss, with Keep / Delete (quarantine) / Relabel and Undo, every move journaled.
//!
//! Every request must carry the token, checked before its body is read; connections are capped
//! and given a deadline for their headers (`accept.rs`); nothing inside the quarantine
//! folder (the journal included) can be kept, deleted or relabelled.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::accept::{self, Limits};
use super::journal::{Action, Entry, Journal};
use super::safe_path::resolve_inside;
use crate::error::{Error, Result};
use crate::interpret::interpretation::Interpretation;

/// One image on the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewItem {
    /// Path relative to the dataset folder, `/`-separated.
    pub path: String,
    /// `train` or `valid`.
    pub split: String,
    /// Its class folder.
    pub class: String,
    /// The model's class.
    pub predicted: String,
    /// Probability of the model's class.
    pub prob: f32,
    /// Loss on the folder's label.
    pub loss: f32,
    /// What the reviewer did (`kept`, `quarantined`, `relabelled`), if anything.
    pub status: Option<String>,
}

/// Time a request with the right token has for its body and its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct AppState {
    journal: Journal,
    token: String,
    classes: Vec<String>,
    items: Mutex<Vec<ReviewItem>>,
}

/// A running review server; dropping it (or [`ReviewServer::stop`]) shuts it down.
pub struct ReviewServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The secret every request must carry as `?token=`.
    pub token: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The review items of a dataset: every image `interp` scored, with its split.
pub fn review_items(
    journal: &Journal,
    interp: &Interpretation,
    split_of: &dyn Fn(&Path) -> &'static str,
) -> Vec<ReviewItem> {
    interp
        .images
        .iter()
        .filter_map(|im| {
            let path = journal.relative(&im.path)?;
            Some(ReviewItem {
                class: class_of(&path),
                split: split_of(&im.path).to_string(),
                path,
                predicted: interp.vocab[im.predicted].clone(),
                prob: im.prob,
                loss: im.loss,
                status: None,
            })
        })
        .collect()
}

fn class_of(rel: &str) -> String {
    let mut parts = rel.rsplit('/');
    parts.next();
    parts.next().unwrap_or_default().to_string()
}

impl ReviewServer {
    /// Serves `items` of the dataset in `root` on `host:port` (port 0 = any free port) with a
    /// fresh random token.
    pub fn start(
        root: &Path,
        classes: Vec<String>,
        items: Vec<ReviewItem>,
        host: IpAddr,
        port: u16,
    ) -> Result<Self> {
        Self::start_with_limits(root, classes, items, host, port, Limits::default())
    }

    /// [`ReviewServer::start`] with other connection limits.
    fn start_with_limits(
        root: &Path,
        classes: Vec<String>,
        items: Vec<ReviewItem>,
        host: IpAddr,
        port: u16,
        limits: Limits,
    ) -> Result<Self> {
        let mut rng = rand::rng();
        let token: String = (0..32)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
            .collect();
        let state = Arc::new(AppState {
            journal: Journal::new(root)?,
            token: token.clone(),
            classes,
            items: Mutex::new(items),
        });
        let app = Router::new()
            .route("/", get(page))
            .route("/api/items", get(list_items))
            .route("/image", get(image))
            .route("/api/action", post(action))
            .route("/api/undo", post(undo))
            .layer(middleware::from_fn_with_state(state.clone(), check_token))
            .with_state(state);
        let listener = std::net::TcpListener::bind((host, port))
            .map_err(|e| Error::Config(format!("cannot listen on {host}:{port}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Config(e.to_string()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Config(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("tokio runtime: {e}")))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                accept::serve(listener, app, limits, rx).await;
            });
        });
        Ok(Self {
            addr,
            token,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The page's address, token included.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token)
    }

    /// Blocks until the server stops (the CLI runs until Ctrl-C).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Shuts the server down and waits for it.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ReviewServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Refuses every request whose `token` query parameter is not the server's, before anything reads
/// its body (this layer wraps every route, so the handlers' extractors run after it); a request
/// with the token gets [`REQUEST_TIMEOUT`] for its body and answer.
async fn check_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let ok = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .ok()
        .and_then(|q| q.get("token").map(|t| t == &state.token))
        .unwrap_or(false);
    if !ok {
        return (StatusCode::FORBIDDEN, "missing or wrong token").into_response();
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => error(StatusCode::REQUEST_TIMEOUT, "request took too long"),
    }
}

async fn page() -> Html<&'static str> {
    Html(include_str!("review.html"))
}

#[derive(Deserialize)]
struct View {
    split: Option<String>,
    class: Option<String>,
}

#[derive(Serialize)]
struct ItemsReply {
    classes: Vec<String>,
    split: String,
    class: String,
    items: Vec<ReviewItem>,
}

async fn list_items(State(state): State<Arc<AppState>>, Query(v): Query<View>) -> Response {
    let split = v.split.unwrap_or_else(|| "train".into());
    let class = v
        .class
        .or_else(|| state.classes.first().cloned())
        .unwrap_or_default();
    let mut items: Vec<ReviewItem> = match state.items.lock() {
        Ok(all) => all
            .iter()
            .filter(|i| i.split == split && i.class == class)
            .cloned()
            .collect(),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned"),
    };
    items.sort_by(|a, b| b.loss.total_cmp(&a.loss));
    Json(ItemsReply {
        classes: state.classes.clone(),
        split,
        class,
        items,
    })
    .into_response()
}

#[derive(Deserialize)]
struct ImageQuery {
    path: String,
}

async fn image(State(state): State<Arc<AppState>>, Query(q): Query<ImageQuery>) -> Response {
    let path = match resolve_inside(state.journal.root(), &q.path) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::FORBIDDEN, &e.to_string()),
    };
    let mime = match path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        _ => "application/octet-stream",
    };
    // A regular file only (never a FIFO that would hold a thread), no larger than any image.
    let read = tokio::task::spawn_blocking(move || {
        crate::io::read_limited(&path, crate::data::decode::MAX_FILE_BYTES, "an image")
    })
    .await;
    match read {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, &format!("{}: {e}", q.path)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct ActionRequest {
    path: String,
    action: String,
    to: Option<String>,
}

#[derive(Serialize)]
struct ActionReply {
    entry: Option<Entry>,
}

fn error(code: StatusCode, message: &str) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

/// Applies an undo or action's effect on the listed items.
fn update_items(state: &AppState, entry: &Entry) {
    let Ok(mut items) = state.items.lock() else {
        return;
    };
    if let Some(item) = items.iter_mut().find(|i| i.path == entry.from) {
        item.status = match entry.action {
            Action::Keep => Some("kept".into()),
            Action::Quarantine => Some("quarantined".into()),
            Action::Relabel => Some("relabelled".into()),
            Action::Undo => None,
        };
        item.path = entry.to.clone();
        if !entry.to.starts_with(super::journal::QUARANTINE_DIR) {
            item.class = class_of(&entry.to);
        }
    }
}

async fn action(State(state): State<Arc<AppState>>, Json(req): Json<ActionRequest>) -> Response {
    let j = &state.journal;
    let result = match (req.action.as_str(), req.to.as_deref()) {
        ("keep", _) => j.keep(&req.path),
        ("delete", _) => j.quarantine(&req.path),
        ("relabel", Some(to)) if state.classes.iter().any(|c| c == to) => j.relabel(&req.path, to),
        ("relabel", _) => Err(Error::Config(
            "relabel needs a known class in \"to\"".into(),
        )),
        (other, _) => Err(Error::Config(format!("unknown action {other:?}"))),
    };
    match result {
        Ok(entry) => {
            update_items(&state, &entry);
            Json(ActionReply { entry: Some(entry) }).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn undo(State(state): State<Arc<AppState>>) -> Response {
    match state.journal.undo_last() {
        Ok(entry) => {
            if let Some(e) = &entry {
                update_items(&state, e);
            }
            Json(ActionReply { entry }).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    /// Sends `raw` on a new connection; the reply's status (0 if none) and text, read until the
    /// server closes the connection or 5 s pass.
    fn send(addr: SocketAddr, raw: &str) -> (u16, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply).into_owned();
        (
            reply.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0),
            reply,
        )
    }

    fn get(addr: SocketAddr, target: &str) -> u16 {
        send(
            addr,
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .0
    }

    fn post(addr: SocketAddr, target: &str, body: &str) -> (u16, String) {
        let head = "Host: x\r\nConnection: close\r\nContent-Type: application/json";
        let len = body.len();
        send(
            addr,
            &format!("POST {target} HTTP/1.1\r\n{head}\r\nContent-Length: {len}\r\n\r\n{body}"),
        )
    }

    fn local(root: &Path, classes: &[&str], limits: Limits) -> ReviewServer {
        let classes = classes.iter().map(|c| c.to_string()).collect();
        let host = IpAddr::from([127, 0, 0, 1]);
        ReviewServer::start_with_limits(root, classes, Vec::new(), host, 0, limits).unwrap()
    }

    /// Whether the server has closed `s` (or is closing it after an error reply).
    fn closed_by_server(mut s: &TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        // Bytes (an error reply before closing) or the end of the stream: closing either way.
        s.read(&mut [0u8; 512]).map_or_else(
            |e| !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            |_bytes| true,
        )
    }

    #[test]
    fn half_sent_requests_cannot_lock_a_real_one_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("train/cat")).unwrap();
        let server = local(dir.path(), &["cat"], Limits::default());
        let half: Vec<TcpStream> = (0..200)
            .map(|_| {
                let mut s = TcpStream::connect(server.addr).unwrap();
                s.write_all(b"GET /api/ite").unwrap();
                s
            })
            .collect();
        let start = Instant::now();
        let t = &server.token;
        let (code, reply) = send(
            server.addr,
            &format!("GET /api/items?token={t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(code, 200, "{reply}");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(300));
        let closed = half.iter().filter(|s| closed_by_server(s)).count();
        let cap = Limits::default().max_connections;
        assert!(
            closed >= 200 - cap,
            "{closed} of 200 half-sent requests closed"
        );
        drop(half);
        server.stop();
    }

    #[test]
    fn a_half_sent_request_and_an_idle_connection_are_closed_after_the_header_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_connections: 4,
            header_timeout: Duration::from_secs(1),
        };
        let server = local(dir.path(), &[], limits);
        let t = server.token.clone();
        // Half a request line (closed, perhaps with a 408), then a keep-alive request left idle.
        let requests: [(String, &[u16]); 2] = [
            ("GET /?token=".to_string(), &[0, 408]),
            (
                format!("GET /?token={t} HTTP/1.1\r\nHost: x\r\n\r\n"),
                &[200],
            ),
        ];
        for (raw, codes) in requests {
            let start = Instant::now();
            let (code, reply) = send(server.addr, &raw);
            let waited = start.elapsed();
            assert!(codes.contains(&code), "{raw}: {reply}");
            assert!(
                waited > Duration::from_millis(800),
                "{raw}: closed after {waited:?}"
            );
            assert!(
                waited < Duration::from_secs(4),
                "{raw}: open after {waited:?}"
            );
        }
    }

    #[test]
    fn a_wrong_token_is_refused_before_the_body_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let server = local(dir.path(), &[], Limits::default());
        for target in ["/api/action?token=wrong", "/api/undo"] {
            let start = Instant::now();
            let head = "Host: x\r\nConnection: close\r\nContent-Type: application/json";
            let raw =
                format!("POST {target} HTTP/1.1\r\n{head}\r\nContent-Length: 1000000000\r\n\r\n{{");
            let (code, reply) = send(server.addr, &raw);
            assert_eq!(code, 403, "{target}: {reply}");
            assert!(start.elapsed() < Duration::from_secs(3), "{target}");
        }
    }

    #[test]
    fn the_page_refuses_actions_on_the_quarantine_folder_and_undo_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("train/cat")).unwrap();
        std::fs::create_dir_all(root.join("train/dog")).unwrap();
        std::fs::write(root.join("train/cat/a.png"), b"a").unwrap();
        let server = local(root, &["cat", "dog"], Limits::default());
        let (addr, t) = (server.addr, server.token.clone());
        let action = format!("/api/action?token={t}");
        let delete = r#"{"path": "train/cat/a.png", "action": "delete"}"#;
        assert_eq!(post(addr, &action, delete).0, 200);
        let journal_path = root.join(".fastvision-quarantine/journal.jsonl");
        let journal = std::fs::read(&journal_path).unwrap();
        for path in [
            ".fastvision-quarantine/journal.jsonl",
            "./.fastvision-quarantine/journal.jsonl",
            ".fastvision-quarantine",
            ".fastvision-quarantine/train/cat/a.png",
        ] {
            for (act, to) in [("delete", None), ("keep", None), ("relabel", Some("dog"))] {
                let body = serde_json::json!({ "path": path, "action": act, "to": to });
                let (code, reply) = post(addr, &action, &body.to_string());
                assert_eq!(code, 400, "{act} {path}: {reply}");
                assert!(reply.contains("quarantine folder"), "{act} {path}: {reply}");
            }
        }
        assert_eq!(std::fs::read(&journal_path).unwrap(), journal);
        let (code, reply) = post(addr, &format!("/api/undo?token={t}"), "");
        assert_eq!(code, 200, "{reply}");
        assert!(reply.contains(r#""undoes":0"#), "{reply}");
        assert_eq!(std::fs::read(root.join("train/cat/a.png")).unwrap(), b"a");
        server.stop();
        let journal = Journal::new(root).unwrap();
        assert!(
            journal.undo_last().unwrap().is_none(),
            "nothing left for an undo"
        );
    }

    #[test]
    fn requests_without_the_token_or_outside_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/train/cat")).unwrap();
        std::fs::write(dir.path().join("data/train/cat/a b.png"), b"png").unwrap();
        std::fs::write(dir.path().join("secret.png"), b"no").unwrap();
        let root = dir.path().join("data");
        let server = ReviewServer::start(
            &root,
            vec!["cat".into()],
            Vec::new(),
            IpAddr::from([127, 0, 0, 1]),
            0,
        )
        .unwrap();
        assert!(server.addr.ip().is_loopback());
        let t = server.token.clone();
        assert_eq!(t.len(), 32);
        assert_eq!(get(server.addr, "/"), 403);
        assert_eq!(get(server.addr, "/api/items?token=nope"), 403);
        assert_eq!(
            get(
                server.addr,
                &format!("/image?path=train/cat/a%20b.png&token=x{t}")
            ),
            403
        );
        assert_eq!(get(server.addr, &format!("/?token={t}")), 200);
        assert_eq!(get(server.addr, &format!("/api/items?token={t}")), 200);
        assert_eq!(
            get(
                server.addr,
                &format!("/image?token={t}&path=train/cat/a%20b.png")
            ),
            200
        );
        assert_eq!(
            get(server.addr, &format!("/image?token={t}&path=../secret.png")),
            403
        );
        assert_eq!(
            get(
                server.addr,
                &format!("/image?token={t}&path=%2Fetc%2Fpasswd")
            ),
            403
        );
        let other = ReviewServer::start(
            &root,
            Vec::new(),
            Vec::new(),
            IpAddr::from([127, 0, 0, 1]),
            0,
        )
        .unwrap();
        assert_ne!(other.token, t, "a fresh token per server");
        server.stop();
    }
}
