//! A validated measurement destination: a host name or an IP literal that is safe to hand to
//! `ping` or `iperf3` as one argument. Server-supplied text becomes a [`Destination`] before any
//! program sees it, so it can never be read as an option or reach a shell.

use super::error::DestinationError;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// Longest host name (RFC 1035: 253 characters without the trailing dot).
pub const MAX_DESTINATION_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;
const MAX_ZONE_LEN: usize = 15;

/// A host name (`probe-3.example.net`, `localhost`) or an IP literal (`127.0.0.1`, `::1`,
/// `fe80::1%eth0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination(String);

impl Destination {
    /// Checks `input`: 1 to 253 characters, no leading `-`, and either an IP literal (IPv6 with an
    /// optional `%zone`) or dot-separated labels of letters, digits, `-` and `_`, each 1 to 63
    /// characters and not starting with `-`; one trailing dot is allowed.
    pub fn new(input: &str) -> Result<Self, DestinationError> {
        let refuse = |reason| DestinationError {
            input: input.chars().take(80).collect(),
            reason,
        };
        if input.is_empty() {
            return Err(refuse("empty"));
        }
        if input.len() > MAX_DESTINATION_LEN {
            return Err(refuse("longer than 253 characters"));
        }
        if input.starts_with('-') {
            return Err(refuse("starts with '-'"));
        }
        if input.parse::<IpAddr>().is_ok() {
            return Ok(Destination(input.to_owned()));
        }
        if let Some((address, zone)) = input.split_once('%') {
            if address.parse::<Ipv6Addr>().is_err() {
                return Err(refuse("a '%' zone is only allowed after an IPv6 address"));
            }
            if zone.is_empty()
                || zone.len() > MAX_ZONE_LEN
                || !zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(refuse("invalid IPv6 zone (interface name)"));
            }
            return Ok(Destination(input.to_owned()));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(refuse(if c.is_whitespace() {
                "contains whitespace"
            } else if c == ':' {
                "not a valid IPv6 address"
            } else {
                "contains a character not allowed in a host name"
            }));
        }
        let name = input.strip_suffix('.').unwrap_or(input);
        for label in name.split('.') {
            if label.is_empty() {
                return Err(refuse("empty label (two dots in a row, or a leading dot)"));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(refuse("a label is longer than 63 characters"));
            }
            if label.starts_with('-') {
                return Err(refuse("a label starts with '-'"));
            }
        }
        Ok(Destination(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The IP address, when the destination is an IP literal (without a zone).
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }
}

impl FromStr for Destination {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Destination::new(s)
    }
}

impl TryFrom<&str> for Destination {
    type Error = DestinationError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Destination::new(s)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Destination {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_literals() {
        for ok in [
            "127.0.0.1",
            "::1",
            "fe80::1%eth0",
            "localhost",
            "probe-3.example.net",
            "example.net.",
            "_sip._udp.example.net",
            &"a".repeat(63),
        ] {
            assert!(Destination::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_options_shell_text_and_oversize() {
        let long = format!("{}.net", vec!["a".repeat(60); 5].join("."));
        for bad in [
            "",
            "-f",
            "--help",
            "host; rm -rf /",
            "a b",
            "host\n",
            "$(id)",
            "`id`",
            "a|b",
            "a..b",
            ".a",
            "a.-b",
            "1.2.3.4%eth0",
            "fe80::1%",
            "fe80::1%eth 0",
            "::g",
            &"a".repeat(64),
            &long,
        ] {
            assert!(Destination::new(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
