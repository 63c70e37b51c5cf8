//! The `triggers` command's library: configuration and the wiring of adapters into the running
//! roles. `main.rs` only parses the command line; integration tests call [`serve::run`] directly
//! with listeners on port 0.

pub mod adapters;
pub mod data_dir;
pub mod serve;
pub mod settings;
