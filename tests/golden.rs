//! Golden packets: the files in `tests/fixtures/packets/` are the reference bytes of every
//! NetTask message and AlertFlow frame. These tests check that the decoder reads each one and the
//! encoder writes it back byte for byte, that the sizes the protocol promises hold, that every
//! single-bit flip and every truncation is refused, and that PROTOCOL.md's worked examples are
//! the files' bytes.
//!
//! After a deliberate change to the wire format, regenerate the files and PROTOCOL.md's examples:
//! `NMS_REGENERATE_GOLDEN=1 cargo test --test golden -- --ignored`.

mod support;

use nms::wire::{Decoded, decode_any};
use std::collections::BTreeSet;
use std::path::PathBuf;
use support::golden::{Golden, golden_dir, golden_packets};

const BEGIN: &str = "<!-- BEGIN GOLDEN EXAMPLES";
const END: &str = "<!-- END GOLDEN EXAMPLES -->";

fn protocol_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("PROTOCOL.md")
}

fn by_name(name: &str) -> Golden {
    golden_packets()
        .into_iter()
        .find(|g| g.file == name)
        .unwrap_or_else(|| panic!("no golden packet {name}"))
}

#[test]
fn each_golden_file_decodes_and_encodes_back_to_the_same_bytes() {
    for golden in golden_packets() {
        let bytes = golden.read_file();
        let key = golden.key();
        let decoded =
            decode_any(&bytes, key.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", golden.file));
        assert_eq!(
            decoded.encode(key.as_ref()),
            bytes,
            "{}: re-encoding changed the bytes",
            golden.file
        );
        assert_eq!(
            golden.encode(),
            bytes,
            "{}: the file no longer holds the packet tests/util describes",
            golden.file
        );
    }
}

#[test]
fn every_file_in_the_fixture_directory_is_a_known_golden_packet() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(golden_dir())
        .expect("tests/fixtures/packets")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".bin"))
        .collect();
    let known: BTreeSet<String> = golden_packets()
        .iter()
        .map(|g| g.file.to_string())
        .collect();
    assert_eq!(on_disk, known);
}

#[test]
fn acknowledgements_fit_in_18_bytes_and_a_typical_report_in_136() {
    for name in ["ack.bin", "ack_multi.bin", "keyed_ack.bin", "noack.bin"] {
        let size = by_name(name).read_file().len();
        assert!(size <= 18, "{name} is {size} bytes");
    }
    // CPU, RAM, two interfaces with their rates and 14 raw counters (eth0's in the tens of
    // gigabytes), and a ping run with its two counters: 96 bytes without the counters' varints.
    let size = by_name("metrics_typical.bin").read_file().len();
    assert!(size <= 136, "metrics_typical.bin is {size} bytes");
}

#[test]
fn a_keyed_packet_is_refused_without_its_key_and_a_plain_one_with_a_key() {
    let keyed = by_name("keyed_ack.bin");
    let bytes = keyed.read_file();
    assert!(decode_any(&bytes, None).is_err());
    assert!(decode_any(&bytes, keyed.key().as_ref()).is_ok());
    let plain = by_name("ack.bin").read_file();
    assert!(decode_any(&plain, Some(&support::golden::test_key())).is_err());
}

#[test]
fn every_single_bit_flip_of_every_golden_packet_is_refused() {
    for golden in golden_packets() {
        let bytes = golden.read_file();
        let key = golden.key();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 0x80 >> (bit % 8);
            if let Ok(d) = decode_any(&flipped, key.as_ref()) {
                panic!("{}: flipping bit {bit} still decodes: {d:?}", golden.file);
            }
        }
    }
}

#[test]
fn every_truncation_and_extension_of_every_golden_packet_is_refused() {
    for golden in golden_packets() {
        let bytes = golden.read_file();
        let key = golden.key();
        for len in 0..bytes.len() {
            assert!(
                decode_any(&bytes[..len], key.as_ref()).is_err(),
                "{}: the first {len} bytes still decode",
                golden.file
            );
        }
        for extra in [0x00, 0xff] {
            let mut longer = bytes.clone();
            longer.push(extra);
            assert!(
                decode_any(&longer, key.as_ref()).is_err(),
                "{}: a trailing {extra:#04x} still decodes",
                golden.file
            );
        }
    }
}

/// The generated part of PROTOCOL.md: for each golden file, its hex dump and what `nms decode`
/// prints for it.
fn examples_section() -> String {
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push_str(
        ": generated from tests/fixtures/packets by \
         `NMS_REGENERATE_GOLDEN=1 cargo test --test golden -- --ignored`; do not edit -->\n",
    );
    let examples: Vec<(Golden, Vec<u8>, Decoded)> = golden_packets()
        .into_iter()
        .map(|golden| {
            let bytes = golden.read_file();
            let decoded = decode_any(&bytes, golden.key().as_ref())
                .unwrap_or_else(|e| panic!("{}: {e}", golden.file));
            (golden, bytes, decoded)
        })
        .collect();
    out.push_str("\n| File | Message | Bytes |\n|---|---|---|\n");
    for (golden, bytes, decoded) in &examples {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            golden.file,
            message_name(decoded),
            bytes.len()
        ));
    }
    for (golden, bytes, decoded) in &examples {
        out.push_str(&format!(
            "\n#### `{}`: {}, {} bytes{}\n\n```text\n",
            golden.file,
            message_name(decoded),
            bytes.len(),
            if golden.keyed {
                " (keyed with test.key)"
            } else {
                ""
            },
        ));
        for (i, line) in bytes.chunks(16).enumerate() {
            let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!("{:4}  {}\n", i * 16, hex.join(" ")));
        }
        out.push_str("```\n\n```text\n");
        out.push_str(&nms::decode::render_text(decoded, bytes, false));
        out.push_str("```\n");
    }
    out.push_str(END);
    out
}

fn message_name(decoded: &Decoded) -> String {
    match decoded {
        Decoded::NetTask(p) => format!("NetTask {}", p.packet_type().name()),
        Decoded::AlertFlow(f) => match f.body {
            nms::wire::FrameBody::Alert(_) => "AlertFlow ALERT".to_string(),
            nms::wire::FrameBody::AlertAck { .. } => "AlertFlow ALERT_ACK".to_string(),
        },
    }
}

/// The text between (and including) the markers of PROTOCOL.md.
fn current_section(doc: &str) -> Option<(usize, usize)> {
    let start = doc.find(BEGIN)?;
    let end = doc[start..].find(END)? + start + END.len();
    Some((start, end))
}

#[test]
fn protocol_md_examples_are_the_golden_files() {
    let doc = std::fs::read_to_string(protocol_md()).expect("PROTOCOL.md");
    let (start, end) = current_section(&doc).expect("PROTOCOL.md has the golden examples markers");
    let expected = examples_section();
    let current = &doc[start..end];
    if let Some((line, (have, want))) = current
        .lines()
        .zip(expected.lines())
        .enumerate()
        .find(|(_, (have, want))| have != want)
    {
        panic!(
            "PROTOCOL.md's worked examples differ from tests/fixtures/packets at line {} of the \
             section:\n  PROTOCOL.md: {have}\n  expected:    {want}\nregenerate with \
             `NMS_REGENERATE_GOLDEN=1 cargo test --test golden -- --ignored`",
            line + 1
        );
    }
    assert_eq!(
        current.lines().count(),
        expected.lines().count(),
        "PROTOCOL.md's worked examples have a different length; regenerate with \
         `NMS_REGENERATE_GOLDEN=1 cargo test --test golden -- --ignored`"
    );
}

#[test]
fn readme_examples_are_the_golden_files() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    let multi = by_name("ack_multi.bin").read_file();
    let decoded = decode_any(&multi, None).expect("ack_multi.bin");
    let shown = nms::decode::render_text(&decoded, &multi, false);
    assert!(readme.contains(&shown), "README.md should show:\n{shown}");
    let ack = by_name("ack.bin").read_file();
    let hex: Vec<String> = ack.iter().map(|b| format!("{b:02x}")).collect();
    let hex = format!("0x{}", hex.join(" "));
    assert!(readme.contains(&hex), "README.md should show the hex {hex}");
}

/// Writes the golden files from tests/util and the worked examples into PROTOCOL.md.
#[test]
#[ignore = "writes tests/fixtures/packets and PROTOCOL.md; run with NMS_REGENERATE_GOLDEN=1"]
fn regenerate_golden_files() {
    if std::env::var_os("NMS_REGENERATE_GOLDEN").is_none() {
        eprintln!("NMS_REGENERATE_GOLDEN is not set: nothing regenerated");
        return;
    }
    for golden in golden_packets() {
        let path = golden_dir().join(golden.file);
        std::fs::write(&path, golden.encode())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let path = protocol_md();
    let doc = std::fs::read_to_string(&path).expect("PROTOCOL.md");
    let (start, end) = current_section(&doc).expect("PROTOCOL.md has the golden examples markers");
    let updated = format!("{}{}{}", &doc[..start], examples_section(), &doc[end..]);
    std::fs::write(&path, updated).expect("write PROTOCOL.md");
}
