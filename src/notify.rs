//! systemd's readiness protocol (`Type=notify`, `sd_notify(3)`): a datagram of `KEY=VALUE`
//! lines to the Unix socket `$NOTIFY_SOCKET` names (a path, or `@name` in the abstract
//! namespace). Without the variable (not started by systemd) every call does nothing.
//!
//! The protocol is a dozen lines over `std`'s Unix datagram socket, so it needs no crate (and
//! no `unsafe`): [`ready`] once the sockets are bound and serving, [`reloading`] and [`ready`]
//! around a reload (`ExecReload=` sends SIGHUP), [`stopping`] when a shutdown begins.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to the service manager, if there
/// is one. A failure is returned, never fatal to the caller.
pub fn notify(state: &str) -> std::io::Result<()> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => send(&socket, state),
        None => Ok(()),
    }
}

/// Sends `state` to the socket `socket` names (`$NOTIFY_SOCKET`'s value).
fn send(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    let address = socket_address(socket)?;
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &address)?;
    Ok(())
}

/// The address `$NOTIFY_SOCKET` names: `@name` is abstract (Linux), anything else a path.
fn socket_address(value: &std::ffi::OsStr) -> std::io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = value.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            return SocketAddr::from_abstract_name(name);
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::Error::other(
                "NOTIFY_SOCKET names an abstract socket, which only Linux has",
            ));
        }
    }
    SocketAddr::from_pathname(std::path::Path::new(value))
}

fn logged(state: &str) {
    if let Err(e) = notify(state) {
        crate::log::event(
            crate::log::Level::Warn,
            "SYSTEMD",
            format_args!("cannot tell the service manager {state:?}: {e}"),
        );
    }
}

/// Tells systemd the service is up (`READY=1`) with a status line.
pub fn ready(status: &str) {
    logged(&format!("READY=1\nSTATUS={status}"));
}

/// Tells systemd a reload has begun (`RELOADING=1`, with the monotonic time systemd asks for).
pub fn reloading() {
    let usec = monotonic_usec();
    logged(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// Tells systemd the service is stopping.
pub fn stopping() {
    logged("STOPPING=1");
}

/// CLOCK_MONOTONIC in microseconds, from /proc/uptime's precision when nothing better is at
/// hand without `unsafe` (systemd only compares it with the time it sent SIGHUP).
fn monotonic_usec() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |s| (s * 1e6) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_and_an_abstract_name_are_told_apart() {
        let path = socket_address(std::ffi::OsStr::new("/run/systemd/notify")).unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let abstract_name = socket_address(std::ffi::OsStr::new("@nms-test")).unwrap();
            assert_eq!(abstract_name.as_abstract_name(), Some(&b"nms-test"[..]));
        }
    }

    #[test]
    fn the_state_arrives_on_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1\nSTATUS=serving").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }
}
