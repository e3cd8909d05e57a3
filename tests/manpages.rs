//! The man pages in docs/man/ are generated from the same clap definitions as the command line
//! (src/cli/). This test regenerates them and fails when the committed ones differ.
//! Regenerate with: `NMS_REGENERATE_MAN=1 cargo test --test manpages`.
//! Install with: `install -m 0644 docs/man/*.1 /usr/local/share/man/man1/`.

#[allow(dead_code, unused_imports)]
#[path = "../src/cli/mod.rs"]
mod cli;

use clap::CommandFactory;
use std::path::Path;

#[test]
fn man_pages_match_the_command_line() {
    let out = tempfile::tempdir().expect("temp dir");
    clap_mangen::generate_to(cli::Cli::command(), out.path()).expect("man pages render");
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let regenerate = std::env::var_os("NMS_REGENERATE_MAN").is_some();
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .expect("generated pages")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"nms.1".to_string()) && names.contains(&"nms-server.1".to_string()));
    for name in &names {
        let fresh = std::fs::read(out.path().join(name)).expect("generated page");
        let path = committed.join(name);
        if regenerate {
            std::fs::create_dir_all(&committed).expect("docs/man");
            std::fs::write(&path, &fresh).expect("write page");
            continue;
        }
        let old = std::fs::read(&path).unwrap_or_default();
        assert!(
            old == fresh,
            "{} is out of date: run `NMS_REGENERATE_MAN=1 cargo test --test manpages`",
            path.display()
        );
    }
}
