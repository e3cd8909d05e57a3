//! nms: a network monitoring system. A central server hands measurement tasks to agents, which
//! report metrics over NetTask (reliable datagrams on UDP) and raise alerts over AlertFlow
//! (acknowledged frames on TCP).
#![forbid(unsafe_code)]

pub mod act;
pub mod agent;
pub mod alertflow;
pub mod bench;
pub mod client;
pub mod config;
pub mod decode;
pub mod history;
pub mod inspect;
pub mod limits;
pub mod log;
pub mod nettask;
pub mod notify;
pub mod output;
pub mod persist;
pub mod probes;
pub mod rules;
pub mod schema;
pub mod send_task;
pub mod server;
pub mod store;
pub mod task;
pub mod wire;
