//! Executor tests with real processes, real files and a local HTTP server.

mod downloads;
mod harness;
mod http;
mod installs;
mod packages;
mod processes;
mod system;
