//! nms: a network monitoring system. A central server hands measurement tasks to agents, which
//! report metrics over NetTask (reliable datagrams on UDP) and raise alerts over AlertFlow
//! (acknowledged frames on TCP).
#![forbid(unsafe_code)]

pub mod alertflow;
pub mod nettask;
pub mod wire;
