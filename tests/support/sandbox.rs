//! A [`Sandbox`]: a fresh temporary folder that owns every `nms` process started in it (servers
//! and agents), kills them with SIGKILL when dropped and, when the test failed, prints each
//! one's log. Every process gets `--data-dir` inside the sandbox and runs without `HOME`, so
//! nothing depends on (or writes to) the home directory of whoever runs the tests.

use super::http::{HttpResponse, http_get, http_request_as};
use super::ports::Ports;
use super::process::nms_binary;
use super::wait::{WAIT, wait_for};
use serde_json::Value;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A process started in a sandbox.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

/// What a server is started with; kept so that it can be restarted the same way.
#[derive(Debug, Clone)]
pub struct Server {
    /// The sandbox's name of the running process (`server`, then `server-2`, ...).
    pub name: String,
    pub ports: Ports,
    pub data_dir: PathBuf,
    pub task_files: Vec<PathBuf>,
    pub extra_args: Vec<String>,
}

impl Server {
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.http))
    }

    /// The `--server` argument of an agent.
    pub fn nettask_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.nettask)
    }

    /// `GET path`, answered with 200 and JSON; `None` while the server does not answer.
    pub fn try_get(&self, path: &str) -> Option<Value> {
        let response = http_get(self.http_addr(), path).ok()?;
        (response.status == 200).then(|| response.json())
    }

    /// `GET path`, which must answer 200 with JSON.
    pub fn get(&self, path: &str) -> Value {
        let response = http_get(self.http_addr(), path)
            .unwrap_or_else(|e| panic!("GET {path} from {}: {e}", self.http_addr()));
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.json()
    }

    /// `GET path` as text (the Prometheus exposition).
    pub fn get_text(&self, path: &str) -> String {
        let response = http_get(self.http_addr(), path)
            .unwrap_or_else(|e| panic!("GET {path} from {}: {e}", self.http_addr()));
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.body
    }

    /// The API token the server generated in its data folder (it listens on loopback).
    pub fn token(&self) -> String {
        let path = self.data_dir.join("api-token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// `POST path` with the server's API token.
    pub fn post(&self, path: &str, body: &str) -> HttpResponse {
        http_request_as(
            self.http_addr(),
            Some(&self.token()),
            "POST",
            path,
            Some(body),
        )
        .unwrap_or_else(|e| panic!("POST {path} to {}: {e}", self.http_addr()))
    }

    /// The agents the server lists, as (name, status).
    pub fn agent_statuses(&self) -> Option<Vec<(String, String)>> {
        let agents = self.try_get("/api/agents")?;
        Some(
            agents
                .as_array()?
                .iter()
                .map(|a| {
                    (
                        a["name"].as_str().unwrap_or_default().to_string(),
                        a["status"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        )
    }

    /// Whether every one of `names` is listed with `status` (`up` or `down`).
    pub fn agents_are(&self, names: &[&str], status: &str) -> bool {
        self.agent_statuses().is_some_and(|list| {
            names
                .iter()
                .all(|n| list.iter().any(|(name, s)| name == n && s == status))
        })
    }

    /// The stored metrics records of one agent (up to 100 000).
    pub fn metrics(&self, agent: &str) -> Vec<Value> {
        self.try_get(&format!("/api/metrics?agent={agent}&limit=100000"))
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// Every stored alert (up to 100 000).
    pub fn alerts(&self) -> Vec<Value> {
        self.try_get("/api/alerts?limit=100000")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }
}

/// A fresh temporary folder and the processes started in it. Dropping it kills them all
/// (SIGKILL, then wait); if the test is failing, it prints the log of each process.
pub struct Sandbox {
    dir: tempfile::TempDir,
    processes: Vec<Process>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("nms-e2e-")
                .tempdir()
                .expect("cannot create a temporary folder"),
            processes: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `value` as a JSON file in the sandbox and returns its path.
    pub fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.path().join(name);
        let text = serde_json::to_string_pretty(value).expect("JSON serializes");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Starts `nms ARGS` as the process `name`; its standard error and output go to `name.log`.
    pub fn spawn(&mut self, name: &str, args: &[OsString]) {
        assert!(
            self.processes.iter().all(|p| p.name != name),
            "a process named {name} was started before"
        );
        let log = self.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let out = file.try_clone().expect("a log file handle");
        let child = Command::new(nms_binary())
            .args(args)
            .current_dir(self.path())
            .env_remove("HOME")
            .env_remove("XDG_DATA_HOME")
            .env("NO_COLOR", "1")
            // Agents log each report and alert they produce, for delivery checks.
            .env("NMS_LOG_REPORTS", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", nms_binary().display()));
        self.processes.push(Process {
            name: name.to_string(),
            child,
            log,
            exited: None,
        });
    }

    fn process(&mut self, name: &str) -> &mut Process {
        self.processes
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process named {name}"))
    }

    /// The exit status of process `name` if it has ended.
    pub fn exit_status(&mut self, name: &str) -> Option<ExitStatus> {
        let p = self.process(name);
        if p.exited.is_none() {
            p.exited = p.child.try_wait().ok().flatten();
        }
        p.exited
    }

    /// Waits (up to [`WAIT`]) for process `name` to end by itself; returns its status.
    pub fn wait_exit(&mut self, name: &str) -> ExitStatus {
        wait_for(WAIT, &format!("{name} to exit"), || self.exit_status(name))
    }

    /// Kills process `name` with SIGKILL and waits for it.
    pub fn kill(&mut self, name: &str) {
        let p = self.process(name);
        if p.exited.is_none() {
            let _ = p.child.kill();
            p.exited = p.child.wait().ok();
        }
    }

    /// The process id of process `name`.
    pub fn pid(&mut self, name: &str) -> u32 {
        self.process(name).child.id()
    }

    /// Sends SIGTERM to process `name` (as `kill PID` or a service manager stopping it does)
    /// and waits for it to end.
    pub fn terminate(&mut self, name: &str) -> ExitStatus {
        let pid = self.pid(name).to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -TERM {pid} ({name})");
        self.wait_exit(name)
    }

    /// What process `name` wrote so far.
    pub fn log(&self, name: &str) -> String {
        self.processes
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| std::fs::read_to_string(&p.log).ok())
            .unwrap_or_default()
    }

    /// Starts a server on free loopback ports, its data in `data/server`, and waits until its
    /// HTTP API answers. `extra_args` are added to the command line (e.g. `--heartbeat-ms`).
    pub fn start_server(&mut self, task_files: &[PathBuf], extra_args: &[&str]) -> Server {
        let data_dir = self.path().join("data/server");
        // A port picked free can be taken by someone else before the server binds it: try again.
        for attempt in 1..=5 {
            let server = Server {
                name: if attempt == 1 {
                    "server".to_string()
                } else {
                    format!("server-try{attempt}")
                },
                ports: Ports::pick(),
                data_dir: data_dir.clone(),
                task_files: task_files.to_vec(),
                extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            };
            if self.launch_server(&server) {
                return server;
            }
            if !self.log(&server.name).contains("cannot bind") {
                break;
            }
        }
        panic!("the server did not start (see its log below)");
    }

    /// Starts `server` again (after [`Sandbox::kill`]) with the same ports, data and tasks;
    /// returns the new process's handle.
    pub fn restart_server(&mut self, server: &Server) -> Server {
        let count = self
            .processes
            .iter()
            .filter(|p| p.name.starts_with("server"))
            .count();
        let again = Server {
            name: format!("server-{}", count + 1),
            ..server.clone()
        };
        // The old ports are freed by the kernel at once for UDP and the listening sockets, but
        // a bind may race with the exit of the old process: retry a few times.
        for attempt in 1..=20 {
            let name = if attempt == 1 {
                again.name.clone()
            } else {
                format!("{}-try{attempt}", again.name)
            };
            let this = Server {
                name,
                ..again.clone()
            };
            if self.launch_server(&this) {
                return this;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the server did not restart (see its logs below)");
    }

    /// Spawns a server and waits for its API; false if it exited first.
    fn launch_server(&mut self, server: &Server) -> bool {
        let mut args: Vec<OsString> = vec!["--color".into(), "never".into(), "server".into()];
        for f in &server.task_files {
            args.push("--config".into());
            args.push(f.into());
        }
        for (flag, value) in [
            ("--listen", "127.0.0.1".to_string()),
            ("--nettask-port", server.ports.nettask.to_string()),
            ("--alertflow-port", server.ports.alertflow.to_string()),
            ("--http", server.http_addr().to_string()),
        ] {
            args.push(flag.into());
            args.push(value.into());
        }
        args.push("--data-dir".into());
        args.push(server.data_dir.clone().into());
        args.push("-v".into());
        args.extend(server.extra_args.iter().map(OsString::from));
        self.spawn(&server.name, &args);
        let name = server.name.clone();
        wait_for(WAIT, &format!("the HTTP API of {name}"), || {
            if self.exit_status(&name).is_some() {
                return Some(false);
            }
            server.try_get("/api/status").map(|_| true)
        })
    }

    /// Starts agent `id` talking to `server`, its data in `data/agents/ID`.
    pub fn start_agent(&mut self, id: &str, server: &Server) {
        self.start_agent_as(id, id, server);
    }

    /// Starts agent `id` as the process `name` (an agent started again needs a new name).
    pub fn start_agent_as(&mut self, name: &str, id: &str, server: &Server) {
        let data_dir = self.path().join("data/agents").join(id);
        let args: Vec<OsString> = vec![
            "--color".into(),
            "never".into(),
            "agent".into(),
            "--server".into(),
            server.nettask_addr().into(),
            "--id".into(),
            id.into(),
            "--data-dir".into(),
            data_dir.into(),
        ];
        self.spawn(name, &args);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for p in &mut self.processes {
            if p.exited.is_none() {
                let _ = p.child.kill();
                p.exited = p.child.wait().ok();
            }
        }
        if std::thread::panicking() {
            for p in &self.processes {
                let text = std::fs::read_to_string(&p.log).unwrap_or_default();
                let status = p.exited.map_or_else(|| "?".to_string(), |s| s.to_string());
                eprintln!("----- log of {} ({status}) -----\n{text}", p.name);
            }
            eprintln!("----- (sandbox {}) -----", self.path().display());
        }
    }
}
