//! The shell completion scripts shipped in `completions/` are exactly what `nms completions SHELL`
//! prints, so they never fall behind the command line.
//!
//! After changing the command line (a new subcommand or flag), regenerate them with:
//!
//! ```text
//! NMS_REGENERATE_COMPLETIONS=1 cargo test --test completions
//! ```

mod support;

use std::path::Path;
use std::process::Command;

/// Each shell and the file its script is kept in.
const SCRIPTS: [(&str, &str); 3] = [
    ("bash", "completions/nms.bash"),
    ("zsh", "completions/_nms"),
    ("fish", "completions/nms.fish"),
];

/// What `nms completions SHELL` prints.
fn script(shell: &str) -> Vec<u8> {
    let output = Command::new(support::process::nms_binary())
        .args(["completions", shell])
        .env_remove("NMS_SERVER")
        .output()
        .expect("run nms completions");
    assert!(
        output.status.success(),
        "nms completions {shell}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.stdout.is_empty(),
        "nms completions {shell} printed nothing"
    );
    output.stdout
}

#[test]
fn shipped_completion_scripts_match_the_binary() {
    let regenerate = std::env::var_os("NMS_REGENERATE_COMPLETIONS").is_some_and(|v| !v.is_empty());
    let mut stale = Vec::new();
    for (shell, file) in SCRIPTS {
        let generated = script(shell);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        if regenerate {
            std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else if std::fs::read(&path).ok().as_deref() != Some(generated.as_slice()) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "{} differ from `nms completions`; regenerate with\n  NMS_REGENERATE_COMPLETIONS=1 cargo test --test completions",
        stale.join(", ")
    );
}

#[test]
fn every_subcommand_is_completed_in_every_shell() {
    for (shell, _) in SCRIPTS {
        let script = String::from_utf8(script(shell)).expect("a script is text");
        for subcommand in ["decode", "send-task", "inspect", "completions", "agents"] {
            assert!(
                script.contains(subcommand),
                "{shell} script lacks {subcommand}"
            );
        }
    }
}
