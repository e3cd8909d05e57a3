//! Running the real `nms` binary for the fault tests: free ports, child processes whose
//! standard error goes to a log file (killed when dropped), a minimal HTTP GET for the API, and
//! reading what an agent logged under `NMS_LOG_REPORTS=1`.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn nms_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nms"))
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind an ephemeral UDP port")
        .port()
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind an ephemeral TCP port")
        .port()
}

/// A child process; killed (and reaped) when dropped.
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Process {
    /// Starts `program args...` with `env` added, standard error and output to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Process {
        let file = std::fs::File::create(&log).expect("create a log file");
        let out = file.try_clone().expect("clone the log file");
        let mut command = Command::new(program);
        command
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(file));
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        Process {
            name: name.to_string(),
            log,
            child,
        }
    }

    /// The complete lines logged so far.
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        match text.rfind('\n') {
            Some(end) => text[..=end].to_string(),
            None => String::new(),
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the log, for failure messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GET `path` from the HTTP API at `addr` and parse the JSON body.
pub fn http_get_json(addr: SocketAddr, path: &str) -> Result<Value, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end in {text:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {head}"));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {path}: {e}: {body:?}"))
}

/// Calls `ready` every 200 ms until it returns true or `limit` passes; says whether it did.
pub fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What an agent logged: its reports, raised alerts, registration and tasks.
#[derive(Debug, Default, Clone)]
pub struct AgentLog {
    /// `(task, time_ms)` of each report, from `REPORT` lines.
    pub reports: Vec<(String, u64)>,
    /// Alert ids (16 hex digits) from `RAISED` lines.
    pub raised: Vec<String>,
    pub registered: bool,
    /// Task ids from `TASK` lines.
    pub tasks: Vec<String>,
}

impl AgentLog {
    /// Reads the lines `TIME LEVEL KIND TEXT...` the agent writes.
    pub fn parse(text: &str) -> AgentLog {
        let mut log = AgentLog::default();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [_, _, "REPORT", task, time] => {
                    if let Ok(t) = time.parse() {
                        log.reports.push((task.to_string(), t));
                    }
                }
                [_, _, "RAISED", id, ..] => log.raised.push(id.to_string()),
                [_, _, "REGISTERED", ..] => log.registered = true,
                [_, _, "TASK", task, ..] => log.tasks.push(task.to_string()),
                _ => {}
            }
        }
        log
    }

    /// The report times of one task.
    pub fn report_times(&self, task: &str) -> Vec<u64> {
        self.reports
            .iter()
            .filter(|(t, _)| t == task)
            .map(|(_, time)| *time)
            .collect()
    }
}

/// Writes a task file for `agents`: CPU and RAM every second, a RAM condition that fires at
/// once, and a rule (`flip.rhai`, written next to it) that raises an alert every other report,
/// so that alerts keep flowing during the run. Returns the task file's path.
pub fn write_task(dir: &Path, task_id: &str, agents: &[&str]) -> PathBuf {
    let rule = "// An alert on every other report (raised, resolved, raised...).\n\
                state.n = (state.n ?? 0) + 1;\n\
                if state.n % 2 == 0 && measured(cpu_percent) {\n    \
                    alert(\"cpu\", 0.0, cpu_percent, `report ${state.n}: every other report`);\n\
                }\n";
    std::fs::write(dir.join("flip.rhai"), rule).expect("write the rule file");
    let devices: Vec<Value> = agents
        .iter()
        .map(|a| {
            serde_json::json!({
                "device_id": a,
                "device_metrics": {"cpu_usage": true, "ram_usage": true},
                "alertflow_conditions": {"ram_usage": 1},
                "rules": ["flip.rhai"],
            })
        })
        .collect();
    let task = serde_json::json!({"task_id": task_id, "frequency": 1, "devices": devices});
    let path = dir.join(format!("{task_id}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&task).expect("task JSON"))
        .expect("write the task file");
    path
}

/// Writes a key file of 32 random bytes in hex.
pub fn write_key(path: &Path) -> PathBuf {
    let mut rng = fastrand::Rng::new();
    let key: String = (0..32).map(|_| format!("{:02x}", rng.u8(..))).collect();
    std::fs::write(path, key).expect("write the key file");
    path.to_path_buf()
}
