//! Turning what an operator gives (flags, settings files, key and token files) into validated
//! configuration: key files, the per-agent keys file, the HTTP API's token, settings files,
//! default data directories and the default agent name, server lists, retentions and sizes.

mod error;
mod secrets;
mod settings;
mod values;

pub use error::ConfigError;
pub use secrets::{
    API_TOKEN_FILE, MIN_TOKEN_LEN, client_token, generated_token, read_key, read_token,
    readable_by_others, server_keys, warn_if_readable_by_others,
};
pub use settings::{
    AgentSettings, OneOrMany, RemoteWriteSettings, ServerSettings, load_settings, relative_to,
    settings_candidates,
};
pub use values::{
    byte_size, check_agent_name, default_data_dir, host_name, retention, server_list,
    spread_servers,
};

#[cfg(test)]
mod tests;
