//! Running programs as child processes: the `nms` binary cargo built ([`nms_binary`], and
//! [`nms_in`], [`nms_output`] and [`nms_with_input`] for one command), a [`Process`] whose standard output and error
//! go to a log file and that is killed when dropped, a running `nms server` and its agents
//! ([`NmsServer`]), and third-party daemons the tests need ([`require`]).

use super::wait::wait_for_processes;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The `nms` binary cargo built for this test run.
pub fn nms_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nms"))
}

/// `nms` to be run in `dir`, colours off and no `NMS_SERVER` from the caller's environment;
/// the caller adds the arguments and runs it.
pub fn nms_in(dir: &Path) -> Command {
    let mut command = Command::new(nms_binary());
    command
        .current_dir(dir)
        .env_remove("NMS_SERVER")
        .env("NO_COLOR", "1");
    command
}

/// Runs `nms ARGS` in `dir` (as [`nms_in`] sets it up) and returns what it printed.
pub fn nms_output(dir: &Path, args: &[&str]) -> Output {
    nms_in(dir).args(args).output().expect("run nms")
}

/// Runs `nms ARGS` with `stdin` as its standard input, its colours as it chooses them when
/// not on a terminal (`NO_COLOR` removed), and returns what it printed.
pub fn nms_with_input(args: &[impl AsRef<OsStr>], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(nms_binary())
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nms");
    let mut input = child.stdin.take().expect("stdin");
    // nms may exit before reading everything (bad arguments): a broken pipe is not our concern.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("wait for nms")
}

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

/// A running child process, killed (and reaped) when dropped.
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Child,
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
        Process::spawn(name, program, args, env, dir.join(format!("{name}.log")))
    }

    /// Starts `program args...` with `env` added, standard error and output to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[impl AsRef<OsStr>],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Process {
        let file = std::fs::File::create(&log).expect("create a log file");
        let out = file.try_clone().expect("clone the log file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", program.display()));
        Process {
            name: name.to_string(),
            log,
            child,
        }
    }

    /// What the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The complete lines logged so far.
    pub fn log_text(&self) -> String {
        let text = self.output();
        match text.rfind('\n') {
            Some(end) => text[..=end].to_string(),
            None => String::new(),
        }
    }

    /// The last lines of the complete lines logged, for failure messages.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log_text(), lines)
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

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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
        let mut process = Process::start("nms server", &nms_binary(), &args, dir);
        let (nettask, http) = wait_for_processes(
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
            &nms_binary(),
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
