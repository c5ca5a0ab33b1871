//! The integration tests, one test binary (one link of the library instead of one per file):
//! each module drives the library or the built `fastvision` on tiny data.

mod common;

mod augment;
mod clean;
mod cli;
mod cli_apps;
mod data;
#[cfg(feature = "distributed")]
mod distributed;
mod ensemble;
mod finetune;
mod gan;
mod gpu;
mod hardening;
mod hub;
mod limits;
mod old_runs;
mod ops;
mod playbook;
mod pretrained;
mod real_weights;
mod review_page;
mod schedules;
mod tabular;
mod train;
mod untrusted;
