//! Probes: the measurements an agent runs. `ping` and `iperf3` are system programs started with
//! typed, validated arguments (never through a shell) and parsed by pure functions over their
//! output; CPU, RAM and interface rates come from sysinfo. Every probe produces
//! [`Sample`](crate::wire::Sample)s, NaN meaning "not measured", or a [`ProbeError`] that the
//! agent raises as an ERROR or TIMEOUT alert.

pub mod destination;
pub mod error;
pub mod guard;
pub mod iperf;
pub mod link;
pub mod ping;
pub mod runner;
pub mod system;

pub use destination::{Destination, MAX_DESTINATION_LEN};
pub use error::{DestinationError, ProbeError};
pub use iperf::{IperfResult, IperfRole, run_iperf_client, run_iperf_server};
pub use ping::{PingResult, run_ping};
pub use runner::Tools;
pub use system::SystemSampler;
