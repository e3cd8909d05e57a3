//! Helpers for tests that run real processes on loopback: the `nms` binary (server and agents)
//! and third-party daemons (Prometheus, Alertmanager). Every child is killed when its handle is
//! dropped, so a failing test leaves nothing running; each writes its output to a log file
//! that a failure message quotes.
#![allow(dead_code)]

use serde_json::Value;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a program the test needs; a missing one fails the test and says how to install
/// it (a test that passed without it would prove nothing).
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed: this test runs the real one. Install it with \
             `apt-get install {package}` (.ci/run installs it)"
        )
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for daemons that cannot report the
/// port they bound).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A running child process, killed on drop.
pub struct Process {
    pub name: String,
    child: std::process::Child,
    pub log: PathBuf,
}

impl Process {
    /// Starts `program args`, its standard output and error going to `dir/NAME.log`.
    pub fn start(name: &str, program: &Path, args: &[&str], dir: &Path) -> Process {
        Process::start_with_env(name, program, args, &[], dir)
    }

    /// [`Process::start`] with environment variables set.
    pub fn start_with_env(
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> Process {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create a log file");
        let err = out.try_clone().expect("clone the log file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Process {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// What the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics if the process has exited, quoting its output.
    pub fn check_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.name,
                tail(&self.output(), 60)
            );
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, once it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of a text.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Calls `probe` every 200 ms until it gives a value; after `limit`, panics with `what` and
/// the output of `processes`.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    processes: &mut [&mut Process],
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        for p in processes.iter_mut() {
            p.check_running();
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = processes
                .iter()
                .map(|p| format!("--- {} ---\n{}", p.name, tail(&p.output(), 40)))
                .collect();
            panic!(
                "{what}: not within {} s\n{}",
                limit.as_secs(),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running `nms server` on loopback, with the addresses it bound.
pub struct NmsServer {
    pub process: Process,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// `127.0.0.1:PORT` of NetTask, for `nms agent --server`.
    pub nettask: String,
}

impl NmsServer {
    /// Starts `nms server` on 127.0.0.1 with ports chosen by the system, data in `dir/server`,
    /// and `extra` flags; waits for it to listen.
    pub fn start(dir: &Path, extra: &[&str]) -> NmsServer {
        let data = dir.join("server");
        let data = data.to_str().expect("UTF-8 temp path");
        let mut args = vec![
            "server",
            "--listen",
            "127.0.0.1",
            "--nettask-port",
            "0",
            "--alertflow-port",
            "0",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ];
        args.extend_from_slice(extra);
        let mut process = Process::start("nms server", &nms(), &args, dir);
        let (nettask, http) = wait_for(
            "nms server listening",
            Duration::from_secs(30),
            &mut [&mut process],
            || {
                let out = std::fs::read_to_string(dir.join("nms server.log")).ok()?;
                let line = out.lines().find(|l| l.contains("nms server: NetTask"))?;
                let field = |prefix: &str| {
                    let start = line.find(prefix)? + prefix.len();
                    let rest = &line[start..];
                    Some(rest[..rest.find(',')?].to_string())
                };
                Some((field("udp/")?, field("HTTP ")?))
            },
        );
        NmsServer {
            process,
            http,
            nettask,
        }
    }

    /// Starts `nms agent --id NAME` against this server, its data in `dir/agent-NAME`.
    pub fn agent(&self, dir: &Path, name: &str) -> Process {
        let data = dir.join(format!("agent-{name}"));
        Process::start(
            &format!("nms agent {name}"),
            &nms(),
            &[
                "agent",
                "--server",
                &self.nettask,
                "--id",
                name,
                "--data-dir",
                data.to_str().expect("UTF-8 temp path"),
            ],
            dir,
        )
    }
}

/// `GET base + path` answered with JSON, or `None` on any failure (for polling).
pub fn get_json(base: &str, path: &str) -> Option<Value> {
    smol::block_on(nms::client::get_json(base, path)).ok()
}

/// `GET base + path` answered with text, or `None` on any failure (for polling).
pub fn get_text(base: &str, path: &str) -> Option<String> {
    smol::block_on(nms::client::get_text(base, path)).ok()
}

/// The `nms` binary under test.
pub fn nms() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nms"))
}

/// The address part of an `http://HOST:PORT` URL.
pub fn socket_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("an http://IP:PORT URL")
}

/// A task file for `devices`: CPU, RAM and a ping of 127.0.0.1 every second, plus `rules`
/// (rule files) for each device.
pub fn every_second_task(task_id: &str, devices: &[&str], rules: &[&str]) -> String {
    let devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            serde_json::json!({
                "device_id": d,
                "device_metrics": {"cpu_usage": true, "ram_usage": true, "interface_stats": ["lo"]},
                "link_metrics": {
                    "latency": {"tool": "ping", "destination": "127.0.0.1", "packet_count": 1, "frequency": 1}
                },
                "rules": rules,
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "task_id": task_id,
        "frequency": 1,
        "devices": devices,
    }))
    .expect("JSON")
}
