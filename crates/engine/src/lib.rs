//! The provisioning pipeline: source → detect → map → plan → apply → state.
//!
//! `detect`, `map` and `plan` are pure: no I/O and no clock, so they are tested with fixtures in
//! and plan text out. `source` only reads the data store, `apply` is the only stage that writes to
//! the target, and `state` (the `scimbridge-state` crate) defines the [`state::Store`] every
//! backend implements. `cycle` wires one cycle of one channel together, stage by stage.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]

pub mod apply;
pub mod audit;
pub mod clock;
pub mod cycle;
pub mod detect;
pub mod latency;
pub mod map;
pub mod plan;
pub mod secret;
pub mod source;

/// The state store interface lives in its own crate, so that backends need not build the engine.
pub use scimbridge_state as state;

pub use cycle::{
    ChannelPlan, CycleError, CycleReport, NoProgress, PlanStream, Progress, plan_channel_streamed,
    run_cycle,
};
