pub mod apply;
pub mod channels;
pub mod check;
pub mod export;
pub mod plan;
pub mod quickstart;
pub mod sync;
pub mod target;
