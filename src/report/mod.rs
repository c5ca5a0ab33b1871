//! Reports: PNG plots and image grids of a run.

pub mod grid;
pub mod html;
pub mod plot;
