//! Validated options built from the raw command line (`cli/`) and the settings file, as
//! ripgrep keeps its raw and high-level arguments apart: a flag given on the command line wins
//! over the settings file, which wins over the flag's default; every value is checked here, so
//! the library is handed options that are already known to be good.

mod agent;
mod bench;
mod server;

pub use agent::agent_options;
pub use bench::{bench_options, store_bench_options};
pub use server::server_options;

use clap::ArgMatches;
use clap::parser::ValueSource;

/// Whether a flag was given on the command line (not defaulted), so that it wins over the
/// settings file.
fn given(matches: Option<&ArgMatches>, id: &str) -> bool {
    matches.is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine))
}

/// `value`, or an error naming `flag` when it is outside `min..=max`.
fn within<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    value: T,
    min: T,
    max: T,
) -> anyhow::Result<T> {
    if value < min || value > max {
        anyhow::bail!("{flag} {value}: must be between {min} and {max}");
    }
    Ok(value)
}

/// The API token a client sends (see [`nms::config::client_token`]).
pub fn client_token(args: &crate::cli::TokenArgs) -> anyhow::Result<Option<String>> {
    Ok(nms::config::client_token(
        args.api_token_file.as_deref(),
        std::env::var("NMS_API_TOKEN").ok(),
        args.settings.as_deref(),
    )?)
}
