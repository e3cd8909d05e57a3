//! The server under test: an `nms server` child process the bench starts in a temporary data
//! directory (so its CPU time and memory can be read from `/proc`), or a running server given
//! with `--server`. Either way the bench's task files (one device per simulated agent) are
//! handed to it, and its counters are read from the HTTP API.

use super::BenchError;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kernel clock ticks per second of `/proc/PID/stat` CPU times (USER_HZ: 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// Devices in one generated task (the task file limit).
const DEVICES_PER_TASK: usize = crate::task::MAX_DEVICES;
/// Tasks in one generated file, which keeps each file well under the 1 MiB limit.
const TASKS_PER_FILE: usize = 16;

/// A server the bench talks to.
#[derive(Debug)]
pub struct Target {
    pub nettask: SocketAddr,
    pub http: SocketAddr,
    child: Option<Child>,
    /// How the child was started (to start it again after killing it).
    launch: Option<Launch>,
    /// The HTTP API's token, for a running server's writes.
    token: Option<String>,
    /// The server's data directory, when the bench started it.
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
struct Launch {
    exe: PathBuf,
    args: Vec<std::ffi::OsString>,
    log_path: PathBuf,
}

/// CPU time and memory of the server process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

/// The task files naming every simulated agent: arrays of tasks of 256 devices each, every
/// device gathering CPU, RAM and two interfaces each second and pinging the loopback address.
pub fn task_files(prefix: &str, names: &[String]) -> Vec<String> {
    let tasks: Vec<String> = names
        .chunks(DEVICES_PER_TASK)
        .enumerate()
        .map(|(i, chunk)| {
            let devices: Vec<String> = chunk
                .iter()
                .map(|name| {
                    format!(
                        r#"{{"device_id":"{name}","device_metrics":{{"cpu_usage":true,"ram_usage":true,"interface_stats":["eth0","eth1"]}},"link_metrics":{{"latency":{{"tool":"ping","destination":"127.0.0.1","packet_count":1,"frequency":1}}}}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"task_id":"{prefix}-{i:04}","frequency":1,"devices":[{}]}}"#,
                devices.join(",")
            )
        })
        .collect();
    tasks
        .chunks(TASKS_PER_FILE)
        .map(|chunk| format!("[{}]", chunk.join(",\n")))
        .collect()
}

/// A free port on the loopback interface (bound, read and released).
fn free_port(udp: bool) -> Result<u16, BenchError> {
    let port = if udp {
        std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    }
    .map_err(|source| BenchError::Io {
        what: "finding a free loopback port".into(),
        source,
    })?;
    Ok(port.port())
}

impl Target {
    /// Starts `exe server` on loopback ports with its data in `work_dir/server`, loading the
    /// task files and asking agents for a heartbeat every `heartbeat_ms`, and waits until its
    /// HTTP API answers.
    pub fn start(
        exe: &Path,
        work_dir: &Path,
        tasks: &[String],
        heartbeat_ms: u64,
        remote_write: Option<&str>,
    ) -> Result<Target, BenchError> {
        let io = |what: String| move |source| BenchError::Io { what, source };
        let data_dir = work_dir.join("server");
        std::fs::create_dir_all(&data_dir)
            .map_err(io(format!("creating {}", data_dir.display())))?;
        let nettask = SocketAddr::from(([127, 0, 0, 1], free_port(true)?));
        let http = SocketAddr::from(([127, 0, 0, 1], free_port(false)?));
        let mut args: Vec<std::ffi::OsString> = [
            "server".to_string(),
            "--listen".into(),
            "127.0.0.1".into(),
            "--nettask-port".into(),
            nettask.port().to_string(),
            "--alertflow-port".into(),
            free_port(false)?.to_string(),
            "--http".into(),
            http.to_string(),
            "--heartbeat-ms".into(),
            heartbeat_ms.to_string(),
            // Thousands of simulated agents register at once, without keys.
            "--max-agents".into(),
            "1000000".into(),
            "--new-agents-per-second".into(),
            "1000000".into(),
            "--data-dir".into(),
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        args.push(data_dir.clone().into_os_string());
        if let Some(url) = remote_write {
            args.push("--remote-write".into());
            args.push(url.into());
        }
        for (i, text) in tasks.iter().enumerate() {
            let path = work_dir.join(format!("bench-tasks-{i:03}.json"));
            std::fs::write(&path, text).map_err(io(format!("writing {}", path.display())))?;
            args.push("--config".into());
            args.push(path.into_os_string());
        }
        let launch = Launch {
            exe: exe.to_path_buf(),
            args,
            log_path: work_dir.join("server.log"),
        };
        let mut target = Target {
            nettask,
            http,
            child: None,
            launch: Some(launch),
            token: None,
            data_dir: Some(data_dir),
        };
        target.spawn(Duration::from_secs(60 + tasks.len() as u64))?;
        Ok(target)
    }

    /// Starts the child server (appending to its log) and waits until its HTTP API answers.
    fn spawn(&mut self, patience: Duration) -> Result<(), BenchError> {
        let io = |what: String| move |source| BenchError::Io { what, source };
        let Some(launch) = self.launch.clone() else {
            return Ok(());
        };
        let log_path = &launch.log_path;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(io(format!("creating {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(io(format!("opening {}", log_path.display())))?;
        let child = Command::new(&launch.exe)
            .args(&launch.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io(format!("starting {} server", launch.exe.display())))?;
        self.child = Some(child);
        let http = self.http;
        let target = self;
        let deadline = Instant::now() + patience;
        loop {
            if target.status().is_ok() {
                return Ok(());
            }
            if let Some(child) = target.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(BenchError::Server(format!(
                    "the server exited ({status}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            if Instant::now() > deadline {
                return Err(BenchError::Server(format!(
                    "the server's HTTP API on {http} did not answer within a minute (see {})",
                    log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A running server; the task files are posted to its HTTP API.
    pub fn remote(
        nettask: SocketAddr,
        http: SocketAddr,
        token: Option<String>,
        tasks: &[String],
    ) -> Result<Target, BenchError> {
        let target = Target {
            nettask,
            http,
            child: None,
            launch: None,
            token,
            data_dir: None,
        };
        for text in tasks {
            let reply = target.request("POST", "/api/tasks", Some(text))?;
            if reply.get("error").is_some() {
                return Err(BenchError::Server(format!(
                    "the server refused the bench's task: {}",
                    reply["error"]
                )));
            }
        }
        Ok(target)
    }

    /// Kills the child server with SIGKILL (no chance to finish anything) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the child server with SIGKILL and starts it again on the same ports and data.
    pub fn restart(&mut self) -> Result<(), BenchError> {
        self.kill();
        self.spawn(Duration::from_secs(60))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `GET /api/status`.
    pub fn status(&self) -> Result<Value, BenchError> {
        self.request("GET", "/api/status", None)
    }

    /// Metrics the store holds (new records since it started).
    pub fn metrics_stored(&self) -> Result<u64, BenchError> {
        let status = self.status()?;
        status["store"]["metrics_stored"]
            .as_u64()
            .ok_or_else(|| BenchError::Server("/api/status has no store.metrics_stored".into()))
    }

    fn request(&self, method: &str, path: &str, body: Option<&str>) -> Result<Value, BenchError> {
        http_json(self.http, self.token.as_deref(), method, path, body)
    }

    /// CPU time used so far and resident memory now, read from `/proc` (child servers only).
    pub fn sample(&self) -> Option<ProcessSample> {
        process_sample(self.pid()?)
    }
}

/// One HTTP/1.0 exchange (no keep-alive, no chunked bodies) with a server's API; the answer's
/// body as JSON.
pub fn http_json(
    http: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<Value, BenchError> {
    let json = http_body(http, token, method, path, body)?;
    serde_json::from_str(&json)
        .map_err(|e| BenchError::Server(format!("{method} {path}: not JSON: {e}")))
}

/// One HTTP/1.0 exchange with a server's API; the answer's body, read to its end.
pub fn http_body(
    http: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<String, BenchError> {
    let io = |source| BenchError::Io {
        what: format!("{method} http://{http}{path}"),
        source,
    };
    let mut stream = TcpStream::connect_timeout(&http, Duration::from_secs(5)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {http}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{body}",
        body.len(),
        token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"))
    )
    .map_err(io)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(io)?;
    let text = String::from_utf8_lossy(&reply);
    let Some((_, json)) = text.split_once("\r\n\r\n") else {
        return Err(BenchError::Server(format!(
            "{method} {path}: no HTTP answer"
        )));
    };
    Ok(json.to_string())
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU seconds (user + system) and RSS of a process, from `/proc/PID/stat` and
/// `/proc/PID/status`.
pub fn process_sample(pid: u32) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(ProcessSample {
        cpu_seconds: (utime + stime) as f64 / CLOCK_TICKS,
        rss_bytes: rss_kib * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_task_files_are_valid_and_name_every_agent() {
        let names: Vec<String> = (0..600).map(|i| format!("bench-{i:06}")).collect();
        let files = task_files("bench", &names);
        let mut devices = Vec::new();
        for text in &files {
            for task in crate::task::parse("bench.json", text, Path::new(".")).unwrap() {
                devices.extend(task.devices.into_iter().map(|d| d.device_id));
            }
        }
        assert_eq!(devices, names);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = process_sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
    }
}
