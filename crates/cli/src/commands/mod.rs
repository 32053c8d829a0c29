pub mod profile;
pub mod search;
pub mod spec;
