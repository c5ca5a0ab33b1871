//! The review server's accept loop: a fixed number of connections, each with a deadline for its
//! request headers, so that half-sent requests can neither exhaust file handles nor lock the page
//! out. A new connection beyond the cap closes the oldest one that has no request in progress (a
//! half-sent request or an idle keep-alive connection); one that finds every connection busy with
//! a request is closed at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// How many connections the server keeps open, and how long each has for a request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers; also how long an idle keep-alive connection stays open.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// How long a stopping server lets requests in progress finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed accept (out of file handles, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// One open connection: whether a request is in progress, and (dropped) what closes it.
struct Slot {
    busy: Arc<AtomicBool>,
    _close: oneshot::Sender<()>,
}

type Slots = Arc<Mutex<BTreeMap<u64, Slot>>>;

/// Takes a slot for connection `id`, closing the oldest connection without a request in progress
/// when all `max` are taken; `None` when every connection has a request in progress.
fn admit(slots: &Slots, id: u64, max: usize) -> Option<(Arc<AtomicBool>, oneshot::Receiver<()>)> {
    let mut open = slots.lock().unwrap_or_else(PoisonError::into_inner);
    while open.len() >= max.max(1) {
        let oldest_idle = open
            .iter()
            .find(|(_, s)| !s.busy.load(Ordering::Acquire))
            .map(|(id, _)| *id)?;
        // Dropping its sender ends the connection's task, which closes the socket.
        open.remove(&oldest_idle);
    }
    let busy = Arc::new(AtomicBool::new(false));
    let (close, closed) = oneshot::channel();
    open.insert(
        id,
        Slot {
            busy: busy.clone(),
            _close: close,
        },
    );
    Some((busy, closed))
}

/// Frees a connection's slot when its task ends, however it ends.
struct Release {
    slots: Slots,
    id: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut open = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(&self.id);
    }
}

/// Marks a connection busy while one of its requests is handled.
struct Busy(Arc<AtomicBool>);

impl Busy {
    fn new(flag: &Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::Release);
        Self(flag.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Serves `app` on `listener` within `limits` until `stop` fires (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: oneshot::Receiver<()>,
) {
    let slots: Slots = Arc::default();
    let (closing, closing_rx) = watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        next_id += 1;
        let Some((busy, mut evicted)) = admit(&slots, next_id, limits.max_connections) else {
            // Every connection is busy with a request: this one is closed at once.
            continue;
        };
        let release = Release {
            slots: slots.clone(),
            id: next_id,
        };
        let router = TowerToHyperService::new(app.clone());
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let busy = Busy::new(&busy);
            let reply = router.call(req);
            async move {
                let reply = reply.await;
                drop(busy);
                reply
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let _release = release;
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = &mut evicted => return,
                _ = closing.changed() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(closing_rx);
    let _ = closing.send(());
    // Requests in progress finish (bounded); the runtime's shutdown drops whatever is left.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, closing.closed()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_server_closes_the_oldest_idle_connection_and_never_a_busy_one() {
        let slots: Slots = Arc::default();
        let (first_busy, mut first_closed) = admit(&slots, 1, 2).unwrap();
        let (_, mut second_closed) = admit(&slots, 2, 2).unwrap();
        first_busy.store(true, Ordering::Release);
        let (third_busy, _third_closed) = admit(&slots, 3, 2).unwrap();
        assert_eq!(
            first_closed.try_recv(),
            Err(oneshot::error::TryRecvError::Empty),
            "the busy one stays open"
        );
        assert_eq!(
            second_closed.try_recv(),
            Err(oneshot::error::TryRecvError::Closed),
            "the idle one is closed"
        );
        third_busy.store(true, Ordering::Release);
        assert!(admit(&slots, 4, 2).is_none(), "every connection busy");
        assert_eq!(slots.lock().unwrap().len(), 2);
        drop(Release {
            slots: slots.clone(),
            id: 1,
        });
        assert!(admit(&slots, 5, 2).is_some(), "a freed slot is taken");
    }
}
