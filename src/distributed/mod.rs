//! Data parallelism across processes: the process group this process trains in, when it is one
//! of several ranks (started by `mpirun`), and the few collective operations data-parallel
//! training needs — a sum of gradients over the ranks, a broadcast of rank 0's validation.
//!
//! A process joins a group once, at start ([`join`]); everything below reads it from here, as
//! `torch.distributed`'s default process group is read: the training loaders take their rank's
//! share of every global batch, the learner all-reduces each step's gradients and loss, BatchNorm
//! synchronises its statistics when asked, and the run driver lets rank 0 alone write the run
//! folder. A process that joined nothing is a group of one, and nothing changes.

#[cfg(feature = "distributed")]
mod over_mpi;

use std::sync::OnceLock;

use crate::error::{Error, Result};

#[cfg(feature = "distributed")]
pub use self::over_mpi::join_mpi;

/// The collective operations of a group of processes training one model.
pub trait Collective: Send + Sync {
    /// This process's rank, 0 to `size() - 1`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Writes into `recv` on every rank the element-wise sum over the ranks of their `send`
    /// (two buffers: the bindings do not offer MPI's in-place form, and a copy of a model's
    /// gradients costs milliseconds).
    fn all_reduce_sum(&self, send: &[f32], recv: &mut [f32]);
    /// Replaces `buf` on every rank by its element-wise sum over the ranks, in f64 (statistics
    /// that need its range).
    fn all_reduce_sum_f64(&self, buf: &mut [f64]);
    /// Replaces `buf` on every rank by rank 0's.
    fn broadcast_f64(&self, buf: &mut [f64]);
    /// Leaves the group (MPI's finalize); no collective may follow.
    fn leave(&self);
}

/// How the group trains: settings every rank shares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupConfig {
    /// BatchNorm's batch statistics over the whole global batch (PyTorch's `SyncBatchNorm`)
    /// instead of each rank's share (DDP's default).
    pub sync_batchnorm: bool,
}

struct Group {
    comm: Box<dyn Collective>,
    config: GroupConfig,
}

static GROUP: OnceLock<Group> = OnceLock::new();

/// Makes `comm` this process's group for the rest of its life; `false` when it already had one.
pub fn join(comm: Box<dyn Collective>, config: GroupConfig) -> bool {
    GROUP.set(Group { comm, config }).is_ok()
}

/// The group, when this process is one of several ranks.
pub fn group() -> Option<&'static dyn Collective> {
    GROUP
        .get()
        .filter(|g| g.comm.size() > 1)
        .map(|g| g.comm.as_ref())
}

/// This process's rank (0 alone).
pub fn rank() -> usize {
    group().map_or(0, |g| g.rank())
}

/// The number of ranks (1 alone).
pub fn size() -> usize {
    group().map_or(1, |g| g.size())
}

/// Whether this process writes the run folder and reports: rank 0, or a process alone.
pub fn is_main() -> bool {
    rank() == 0
}

/// Whether BatchNorm synchronises its statistics over the ranks.
pub fn sync_batchnorm() -> bool {
    group().is_some() && GROUP.get().is_some_and(|g| g.config.sync_batchnorm)
}

/// Leaves the group, if any (at the end of the process: MPI wants its finalize).
pub fn leave() {
    if let Some(g) = GROUP.get() {
        g.comm.leave();
    }
}

/// The part `rank` of `size` takes of `n` items: contiguous, sizes differing by one at most.
pub fn share(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    (n * rank / size)..(n * (rank + 1) / size)
}

/// Refuses a global batch of `bs` items that the ranks cannot share (each needs one at least).
pub fn check_batch(bs: usize) -> Result<()> {
    match size() {
        n if bs < n => Err(Error::Config(format!(
            "`bs` {bs} is smaller than the {n} data-parallel ranks: each rank trains a share of \
             every batch"
        ))),
        _ => Ok(()),
    }
}

/// Whether this process was started by an MPI launcher as one of several ranks (Open MPI's,
/// MPICH's or Slurm's environment), so that a build without MPI can refuse to train alone
/// where it was meant to train together.
pub fn launched_as_rank() -> Option<(usize, usize)> {
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok()?.parse::<usize>().ok())
    };
    let size = var(&["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"])?;
    let rank = var(&["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]).unwrap_or(0);
    Some((rank, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_item_once_and_differ_by_one_at_most() {
        for n in [0, 1, 7, 64, 65] {
            for size in 1..5 {
                let parts: Vec<_> = (0..size).map(|r| share(n, r, size)).collect();
                assert_eq!(parts[0].start, 0);
                assert_eq!(parts[size - 1].end, n);
                for w in parts.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let lens: Vec<_> = parts.iter().map(|p| p.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn a_process_alone_is_rank_0_of_1() {
        assert_eq!(
            (rank(), size(), is_main(), sync_batchnorm()),
            (0, 1, true, false)
        );
    }
}
