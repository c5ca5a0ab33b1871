//! The group over MPI (the `mpi` crate on the system's Open MPI): the process joins
//! `MPI_COMM_WORLD` when an MPI launcher started it as one of several ranks.

use std::sync::Mutex;

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use super::{Collective, GroupConfig};
use crate::error::{Error, Result};

/// MPI_COMM_WORLD, and the universe whose drop finalizes MPI.
struct World {
    universe: Option<Universe>,
    world: SimpleCommunicator,
}

/// The group over MPI: every call is made under the lock (MPI initialised `SERIALIZED`).
struct Mpi {
    world: Mutex<World>,
    rank: usize,
    size: usize,
}

// SAFETY: MPI's handles are process-wide values, not tied to the thread that made them; MPI was
// initialised with MPI_THREAD_SERIALIZED (checked in `join_mpi`), and every call is made while
// holding the one lock around them, so no two threads ever call MPI at once.
unsafe impl Send for Mpi {}
// SAFETY: as for `Send`: all access goes through the mutex.
unsafe impl Sync for Mpi {}

impl Mpi {
    fn with<T>(&self, f: impl FnOnce(&SimpleCommunicator) -> T) -> T {
        let w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        f(&w.world)
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, send: &[f32], recv: &mut [f32]) {
        self.with(|w| w.all_reduce_into(send, recv, SystemOperation::sum()));
    }

    fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
        let send = buf.to_vec();
        self.with(|w| w.all_reduce_into(&send[..], buf, SystemOperation::sum()));
    }

    fn broadcast_f64(&self, buf: &mut [f64]) {
        self.with(|w| w.process_at_rank(0).broadcast_into(buf));
    }

    fn leave(&self) {
        let mut w = self.world.lock().unwrap_or_else(|e| e.into_inner());
        drop(w.universe.take());
    }
}

/// Joins MPI_COMM_WORLD when this process was started by an MPI launcher as one of several
/// ranks; returns `(rank, size)`, or `None` for a process alone (nothing joined).
pub fn join_mpi(config: GroupConfig) -> Result<Option<(usize, usize)>> {
    if super::launched_as_rank().is_none_or(|(_, size)| size < 2) {
        return Ok(None);
    }
    let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| Error::Device("MPI was already initialised in this process".into()))?;
    if !matches!(threading, Threading::Serialized | Threading::Multiple) {
        return Err(Error::Device(format!(
            "this MPI library offers only {threading:?} threading; data-parallel training needs \
             Serialized"
        )));
    }
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let comm = Mpi {
        world: Mutex::new(World {
            universe: Some(universe),
            world,
        }),
        rank,
        size,
    };
    if !super::join(Box::new(comm), config) {
        return Err(Error::Device("this process already joined a group".into()));
    }
    Ok(Some((rank, size)))
}
