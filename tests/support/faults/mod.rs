//! What the fault tests add to the harness: a seeded UDP fault proxy for NetTask ([`udp`]), a
//! TCP fault proxy for AlertFlow ([`tcp`]), their seeds ([`seed`]) and threads ([`threads`]),
//! what agents logged ([`agents`]), checking that what agents produced is what the server
//! stored ([`check`]), and commands and HTTP requests in network namespaces ([`netns`]).

pub mod agents;
pub mod check;
pub mod netns;
pub mod seed;
pub mod tcp;
pub mod threads;
pub mod udp;
