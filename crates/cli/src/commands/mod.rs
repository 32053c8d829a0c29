pub mod export;
pub mod measure;
pub mod predict;
pub mod profile;
pub mod run;
pub mod search;
pub mod spec;
pub mod validate;
