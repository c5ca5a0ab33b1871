//! The playbook: the whole recipe on the user's data within a time budget — measure,
//! plan, train with progressive resizing and one-cycle, judge confusing images, test-time
//! augmentation, diverse members and a selected ensemble — each step an ordinary run folder,
//! and a table of what each step bought.

pub mod output;
pub mod plan;
pub mod run;
pub mod state;
pub mod steps;
pub mod thresholds;

pub use output::table;
pub use plan::{Plan, Step};
pub use run::{beside_steps, make_plan, plan_text, resume, run, run_beside, run_main, start};
pub use state::{PlaybookConfig, PlaybookState, StepResult};
