//! Cancellation from outside the fit loop (Ctrl-C, a notebook's stop button): a shared flag the
//! loop reads after every batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag that ends a fit after the current batch: the unfinished epoch is neither validated nor
/// checkpointed (a run keeps its last checkpoint), and the fit returns
/// [`Error::Cancelled`](crate::Error::Cancelled). Give it
/// to a run with [`Listen::cancelled_by`](super::Listen::cancelled_by), or to a learner as a
/// callback.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the fit holding this flag (or a clone of it) to stop after its current batch.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears the flag, so the next fit runs.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl super::Listener for Cancel {
    fn cancelled(&mut self) -> bool {
        self.is_cancelled()
    }
}

impl<B> super::Callback<B> for Cancel {}
