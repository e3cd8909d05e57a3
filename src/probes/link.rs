//! An interface's operational state, from what Linux shows in `/sys/class/net/IF/`: `flags`
//! (whether the interface is set up, `IFF_UP`), `carrier` (whether the link beneath it works)
//! and `operstate` (RFC 2863's summary). [`parse`] is a pure function over those three texts;
//! [`read`] reads them.
//!
//! The kernel refuses to read `carrier` of an interface that is set down (`EINVAL`), and shows
//! `operstate` `unknown` for interfaces that do not track a carrier (loopback): so `flags` comes
//! first, then `carrier`, then `operstate`.

use crate::wire::LinkState;
use std::path::Path;

/// `IFF_UP` in `flags`: the interface is set up (`ip link set IF up`).
const IFF_UP: u64 = 0x1;

/// The link state from the contents of `flags`, `carrier` and `operstate` (each `None` when it
/// could not be read).
pub fn parse(flags: Option<&str>, carrier: Option<&str>, operstate: Option<&str>) -> LinkState {
    let flags = flags.and_then(|f| {
        let f = f.trim();
        u64::from_str_radix(f.strip_prefix("0x").unwrap_or(f), 16).ok()
    });
    if flags.is_some_and(|f| f & IFF_UP == 0) {
        return LinkState::Down;
    }
    match carrier.map(str::trim) {
        Some("0") => return LinkState::NoCarrier,
        Some("1") => return LinkState::Up,
        _ => {}
    }
    match operstate.map(str::trim) {
        Some("up" | "unknown") if flags.is_some() => LinkState::Up,
        Some("up") => LinkState::Up,
        Some("down") if flags.is_none() => LinkState::Down,
        Some("down" | "lowerlayerdown" | "notpresent" | "dormant") => LinkState::NoCarrier,
        _ if flags.is_some() => LinkState::Up,
        _ => LinkState::Unknown,
    }
}

/// Reads the state of interface `name` from `sysfs` (normally `/sys/class/net`).
pub fn read(sysfs: &Path, name: &str) -> LinkState {
    if name.contains('/') || name == "." || name == ".." {
        return LinkState::Unknown;
    }
    let dir = sysfs.join(name);
    let file = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    parse(
        file("flags").as_deref(),
        file("carrier").as_deref(),
        file("operstate").as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(flags, carrier, operstate)` as read from real interfaces (`None`: the read failed,
    /// as the kernel refuses `carrier` of an interface that is set down).
    #[test]
    fn captured_states() {
        let cases = [
            // loopback, set down and set up (no carrier tracking: operstate "unknown")
            (Some("0x8\n"), None, Some("down\n"), LinkState::Down),
            (Some("0x9\n"), Some("1\n"), Some("unknown\n"), LinkState::Up),
            // a veth pair: both down; this end up and the peer down; both up
            (Some("0x1002\n"), None, Some("down\n"), LinkState::Down),
            (
                Some("0x1003\n"),
                Some("0\n"),
                Some("lowerlayerdown\n"),
                LinkState::NoCarrier,
            ),
            (Some("0x1003\n"), Some("1\n"), Some("up\n"), LinkState::Up),
        ];
        for (flags, carrier, operstate, expected) in cases {
            assert_eq!(
                parse(flags, carrier, operstate),
                expected,
                "{flags:?} {carrier:?} {operstate:?}"
            );
        }
    }

    #[test]
    fn partial_or_missing_information() {
        assert_eq!(parse(None, None, None), LinkState::Unknown);
        assert_eq!(parse(None, None, Some("up")), LinkState::Up);
        assert_eq!(parse(None, None, Some("down")), LinkState::Down);
        assert_eq!(
            parse(Some("garbage"), None, Some("dormant")),
            LinkState::NoCarrier
        );
        assert_eq!(parse(Some("0x1003"), None, None), LinkState::Up);
        assert_eq!(read(Path::new("/nonexistent"), "eth0"), LinkState::Unknown);
        assert_eq!(
            read(Path::new("/sys/class/net"), "../x"),
            LinkState::Unknown
        );
    }
}
