//! `nms decode` as a user runs it: the real binary on the golden packets (raw, hex, JSON, keyed)
//! and on damaged copies of them, checking exit status, output and error messages.

mod support;

use nms::wire::Decoded;
use std::path::Path;
use std::process::Output;
use support::golden::{Golden, golden_packets, test_key_path};
use support::process::nms_with_input;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that nms failed with one `nms: ...` line mentioning a byte offset.
fn assert_refused(out: &Output, what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{what}: printed {}",
        text(&out.stdout)
    );
    assert!(stderr.starts_with("nms: "), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
    assert!(
        stderr.contains("byte") || stderr.contains("no key was given"),
        "{what}: {stderr}"
    );
}

/// `decode`, with the test key for a keyed golden packet.
fn decode_args(golden: &Golden) -> Vec<String> {
    let mut args = vec!["decode".to_string()];
    if golden.keyed {
        args.push("--key-file".to_string());
        args.push(test_key_path().display().to_string());
        args.push("--instance".to_string());
        args.push(format!("{:#x}", support::golden::INSTANCE));
    }
    args
}

#[test]
fn every_golden_packet_decodes_as_text_and_as_json() {
    for golden in golden_packets() {
        let bytes = golden.read_file();
        let owned = decode_args(&golden);
        let mut args: Vec<&str> = owned.iter().map(String::as_str).collect();

        let out = nms_with_input(&args, &bytes);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            golden.file,
            text(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("{} bytes, tag verified", bytes.len())),
            "{}: {stdout}",
            golden.file
        );
        assert!(
            !stdout.contains('\x1b'),
            "{}: colour in a pipe",
            golden.file
        );

        args.push("--json");
        let out = nms_with_input(&args, &bytes);
        assert!(
            out.status.success(),
            "{}: {}",
            golden.file,
            text(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", golden.file, text(&out.stdout)));
        assert_eq!(json["size"], bytes.len(), "{}", golden.file);
        assert_eq!(json["keyed"], golden.keyed, "{}", golden.file);
        let (protocol, agent_id) = match &golden.value {
            Decoded::NetTask(p) => ("nettask", p.agent_id),
            Decoded::AlertFlow(f) => ("alertflow", f.agent_id),
        };
        assert_eq!(json["agent_id"], agent_id, "{}", golden.file);
        assert_eq!(
            json["tag"],
            hex::encode(&bytes[bytes.len() - 12..]),
            "{}",
            golden.file
        );
        assert_eq!(json["protocol"], protocol, "{}", golden.file);
        assert!(json["type"].is_string(), "{}", golden.file);
    }
}

#[test]
fn fields_are_shown_with_units_and_unmeasured_values_are_named() {
    let dir = support::golden::golden_dir();
    let out = nms_with_input(
        &["decode"],
        &std::fs::read(dir.join("metrics_typical.bin")).unwrap(),
    );
    let stdout = text(&out.stdout);
    for expected in [
        "METRICS",
        "37.5 %",
        "eth0",
        "eth1",
        "packets/s",
        "B/s",
        "ms",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    let out = nms_with_input(
        &["decode"],
        &std::fs::read(dir.join("metrics_ping_lost.bin")).unwrap(),
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("not measured"), "{stdout}");
    assert!(stdout.contains("100 %"), "{stdout}");

    let out = nms_with_input(
        &["decode", "--json"],
        &std::fs::read(dir.join("metrics_ping_lost.bin")).unwrap(),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sample = &json["message"]["samples"][0];
    assert!(sample["rtt_avg_ms"].is_null(), "{json}");
    assert_eq!(sample["loss_percent"], 100.0);
}

#[test]
fn colour_is_used_only_when_asked_and_no_color_is_unset() {
    let bytes = std::fs::read(support::golden::golden_dir().join("alertflow_alert.bin")).unwrap();
    let out = nms_with_input(&["--color", "always", "decode"], &bytes);
    assert!(text(&out.stdout).contains('\x1b'));
    let out = nms_with_input(&["--color", "never", "decode"], &bytes);
    assert!(!text(&out.stdout).contains('\x1b'));
}

#[test]
fn hex_input_and_files_are_accepted() {
    let path = support::golden::golden_dir().join("ack_multi.bin");
    let bytes = std::fs::read(&path).unwrap();
    let spaced: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hex = format!("0x{}\n", spaced.join(" "));
    let from_hex = nms_with_input(&["decode", "--hex", "--json"], hex.as_bytes());
    assert!(from_hex.status.success(), "{}", text(&from_hex.stderr));
    let from_file = nms_with_input(&["decode", "--json", "--file", path.to_str().unwrap()], b"");
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    assert_eq!(from_hex.stdout, from_file.stdout);
    let json: serde_json::Value = serde_json::from_slice(&from_hex.stdout).unwrap();
    assert_eq!(
        json["acknowledged"],
        serde_json::json!([1042, 1041, 1039, 1033])
    );

    // Hex text fed as raw bytes gets a hint.
    let out = nms_with_input(&["decode"], hex.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--hex"), "{}", text(&out.stderr));
}

#[test]
fn damaged_packets_are_refused_with_the_byte_offset() {
    for golden in golden_packets() {
        let bytes = golden.read_file();
        let owned = decode_args(&golden);
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        // A sample: a bit in the header, one in the middle, one in the tag; three truncations.
        let len = bytes.len();
        for bit in [3, len * 4 + 1, len * 8 - 1] {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 0x80 >> (bit % 8);
            let what = format!("{} with bit {bit} flipped", golden.file);
            assert_refused(&nms_with_input(&args, &flipped), &what);
        }
        for cut in [1, len / 2, len - 1] {
            let what = format!("{} cut to {cut} bytes", golden.file);
            assert_refused(&nms_with_input(&args, &bytes[..cut]), &what);
        }
    }
}

#[test]
fn unusable_input_gets_one_clear_error() {
    let cases: [(&[&str], &[u8], &str); 4] = [
        (&["decode"], b"", "empty"),
        (&["decode", "--hex"], b" \n", "empty"),
        (&["decode", "--hex"], b"21 0g", "not a hex digit"),
        (&["decode", "--hex"], b"210", "odd number"),
    ];
    for (args, stdin, expected) in cases {
        let out = nms_with_input(args, stdin);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("nms: ") && stderr.contains(expected),
            "{stderr}"
        );
    }
    let missing = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-packet.bin");
    let out = nms_with_input(&["decode", "--file", missing.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no-such-packet.bin"));
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = nms_with_input(&["completions", shell], b"");
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("decode"), "{shell}");
    }
}
