//! What each subcommand does once its options are validated (`options/`): the daemons run
//! until signalled, the operator's commands talk to a server's HTTP API, the tools print.
//! The work itself is the library's; this folder connects it to standard output and signals.

pub mod agent;
pub mod history;
pub mod operator;
pub mod server;
pub mod tools;
