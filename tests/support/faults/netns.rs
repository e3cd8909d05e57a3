//! What the tests in network namespaces share: running a command (with its standard error
//! when it fails) and a GET from an HTTP API that listens on 127.0.0.1 inside a namespace
//! (bash's /dev/tcp makes the request there, so nothing is added to the host's own namespace).

use serde_json::Value;
use std::process::{Command, Stdio};

/// Runs a command, with `input` on its standard input; its standard output, or its standard
/// error on failure.
pub fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| format!("{program}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// GET `path` from the HTTP API on 127.0.0.1:`port` in `namespace`; the JSON of a 200 answer.
pub fn api(namespace: &str, port: u16, path: &str) -> Result<Value, String> {
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} && \
         printf 'GET {path} HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && \
         cat <&3"
    );
    let text = run(
        "timeout",
        &["5", "ip", "netns", "exec", namespace, "bash", "-c", &script],
        None,
    )?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end in {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {head}"));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {path}: {e}"))
}
