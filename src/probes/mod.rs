//! Probes: the measurements an agent runs. `ping` and `iperf3` are system programs started with
//! typed, validated arguments (never through a shell) and parsed by pure functions over their
//! output; CPU, RAM and interface rates come from sysinfo. Every probe produces
//! [`Sample`](crate::wire::Sample)s, NaN meaning "not measured", or a [`ProbeError`] that the
//! agent raises as an ERROR or TIMEOUT alert.

pub mod destination;
pub mod dns;
pub mod error;
pub mod guard;
pub mod iperf;
pub mod link;
pub mod ping;
pub mod probe;
pub mod runner;
pub mod system;

pub use destination::{Destination, MAX_DESTINATION_LEN};
pub use error::{DestinationError, ProbeError};
pub use iperf::{IperfResult, IperfRole, run_iperf_client, run_iperf_server};
pub use ping::{PingResult, run_ping};
pub use probe::{ParamDef, ParamKind, ProbeDef};
pub use runner::Tools;
pub use system::SystemSampler;

/// Every pluggable probe ([`probe`]); a new one is a module and a line here.
pub static PROBES: &[&ProbeDef] = &[&dns::PROBE];

/// The probe named `name` (`dns`).
pub fn by_name(name: &str) -> Option<&'static ProbeDef> {
    PROBES.iter().copied().find(|p| p.name == name)
}

/// The probe numbered `number` on the wire.
pub fn by_number(number: u8) -> Option<&'static ProbeDef> {
    PROBES.iter().copied().find(|p| p.number == number)
}
