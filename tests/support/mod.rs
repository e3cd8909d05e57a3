//! The one harness of the integration tests; each test file says `mod support;` and uses the
//! part it needs:
//!
//! - [`process`]: the `nms` binary, child processes with a log that die with their handle, a
//!   running `nms server` and its agents, third-party daemons;
//! - [`sandbox`]: a temporary folder that owns a server and agents and prints their logs when
//!   a test fails;
//! - [`ports`]: free loopback ports; [`wait`]: polling with a bound;
//! - [`http`]: a small HTTP client for the API; [`fake_http`]: a stand-in for the API;
//! - [`fixtures`]: the end-to-end task files; [`golden`]: the golden packets;
//! - [`faults`]: fault proxies, network namespaces and delivery checks.
#![allow(dead_code)]

pub mod fake_http;
pub mod faults;
pub mod fixtures;
pub mod golden;
pub mod http;
pub mod ports;
pub mod process;
pub mod sandbox;
pub mod wait;
