//! Reports: PNG plots of a run.

pub mod plot;
