//! Test support for the fault tests: a seeded UDP fault proxy for NetTask ([`udp`]), a TCP
//! fault proxy for AlertFlow ([`tcp`]), running the real binary ([`process`]), checking that
//! what agents produced is what the server stored ([`check`]), and commands and HTTP requests
//! in network namespaces ([`netns`]).
//!
//! Each test crate that says `mod support_faults;` uses only part of this module.
#![allow(dead_code)]

pub mod check;
pub mod netns;
pub mod process;
pub mod seed;
pub mod tcp;
pub mod threads;
pub mod udp;
