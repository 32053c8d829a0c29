pub mod search;
pub mod spec;
