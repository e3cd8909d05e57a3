//! `nms decode`: read one raw NetTask packet or AlertFlow frame (bytes or hex text), verify its
//! tag, and show every field, as aligned text with units or as one JSON object.
//!
//! [`run`] is the whole subcommand over any reader and writer; [`parse_hex`], [`render_text`] and
//! [`to_json`] are its pure pieces, also used to generate the worked examples in PROTOCOL.md.

use crate::wire::alertflow::{self, AlertType, Frame, FrameBody, Severity};
use crate::wire::packet::{CAP_IPERF3, CAP_PING, PacketType, RefusalReason, VERSION};
use crate::wire::tag::KeyError;
use crate::wire::{
    AlertConditions, Body, DecodeError, Decoded, Key, LinkState, Message, MetricsReport,
    NoackReason, Packet, Sample, TAG_LEN, TaskAssignment, WorkItem,
};
use owo_colors::{OwoColorize, Style};
use std::fmt::Display;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest input accepted: a whole AlertFlow frame (length field included) is at most this big,
/// and a UDP datagram is smaller.
pub const MAX_INPUT_BYTES: usize = 4 + alertflow::MAX_FRAME_LEN;
/// Largest hex text accepted (two digits per byte, with generous room for spacing).
const MAX_HEX_TEXT: usize = 4 * MAX_INPUT_BYTES;
/// Largest key file read.
const MAX_KEY_FILE: u64 = 4096;

/// Where the packet comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    fn describe(&self) -> String {
        match self {
            Input::Stdin => "standard input".to_string(),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// How the decoded packet is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned `field  value` lines; ANSI colours when `color` is true.
    Text { color: bool },
    /// One JSON object on one line.
    Json,
}

/// Everything `nms decode` needs, validated from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub input: Input,
    /// The input is hex text rather than raw bytes.
    pub hex: bool,
    /// A file holding the pre-shared key as hex text, to verify keyed tags.
    pub key_file: Option<PathBuf>,
    /// The session's registration instance, which keyed tags are bound to (REGISTRATION,
    /// REGISTERED and REFUSED carry it themselves).
    pub instance: Option<u64>,
    pub output: Output,
}

/// Why hex text is not a sequence of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    #[error("{found:?} at character {position} is not a hex digit")]
    NotHexDigit { found: char, position: usize },
    #[error("{0} hex digits is an odd number: every byte needs two")]
    OddDigits(usize),
}

/// Why `nms decode` failed.
#[derive(Debug, Error)]
pub enum Error {
    #[error("cannot read {input}")]
    Read {
        input: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{input} holds more than {limit} bytes: one packet or frame is at most {MAX_INPUT_BYTES}"
    )]
    TooLarge { input: String, limit: usize },
    #[error("{input} is empty: expected one NetTask packet or AlertFlow frame")]
    Empty { input: String },
    #[error("{input} is not hex text")]
    Hex {
        input: String,
        #[source]
        source: HexError,
    },
    #[error("cannot read key file {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("key file {}", path.display())]
    BadKey {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    #[error("invalid {kind} ({size} bytes{hint})")]
    Invalid {
        kind: &'static str,
        size: usize,
        hint: &'static str,
        #[source]
        source: DecodeError,
    },
    #[error(
        "the {kind}'s keyed tag is bound to a session: pass --instance with the instance of the \
         REGISTRATION that started it (a NOACK `unknown agent` is bound to the packet it refuses \
         and cannot be verified alone)"
    )]
    NeedsInstance { kind: &'static str },
    #[error("cannot encode the packet as JSON")]
    Json(#[source] serde_json::Error),
    #[error("cannot write the output")]
    Write(#[source] io::Error),
}

/// Runs `nms decode`: reads the input (`stdin` when [`Input::Stdin`]), decodes and verifies it,
/// and writes the rendering to `out`. A closed pipe on `out` is not an error.
pub fn run(options: &Options, stdin: &mut dyn Read, out: &mut dyn Write) -> Result<(), Error> {
    let input = options.input.describe();
    let limit = if options.hex {
        MAX_HEX_TEXT
    } else {
        MAX_INPUT_BYTES
    };
    let raw = match &options.input {
        Input::Stdin => read_limited(stdin, limit),
        Input::File(path) => {
            std::fs::File::open(path).and_then(|mut f| read_limited(&mut f, limit))
        }
    }
    .map_err(|source| Error::Read {
        input: input.clone(),
        source,
    })?
    .ok_or_else(|| Error::TooLarge {
        input: input.clone(),
        limit,
    })?;
    let bytes = if options.hex {
        parse_hex(&String::from_utf8_lossy(&raw)).map_err(|source| Error::Hex {
            input: input.clone(),
            source,
        })?
    } else {
        raw
    };
    if bytes.is_empty() {
        return Err(Error::Empty { input });
    }
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Error::TooLarge {
            input,
            limit: MAX_INPUT_BYTES,
        });
    }
    let key = match options.key_file.as_deref().map(load_key).transpose()? {
        Some(psk) => Some(session_key(&bytes, &psk, options.instance)?),
        None => None,
    };
    let decoded =
        crate::wire::decode_any(&bytes, key.as_ref()).map_err(|source| Error::Invalid {
            kind: if bytes[0] == 0 {
                "AlertFlow frame"
            } else {
                "packet"
            },
            size: bytes.len(),
            hint: if !options.hex && looks_like_hex(&bytes) {
                " of what looks like hex text: pass --hex"
            } else {
                ""
            },
            source,
        })?;
    let text = match options.output {
        Output::Text { color } => render_text(&decoded, &bytes, color),
        Output::Json => {
            let mut line = to_json(&decoded, &bytes).map_err(Error::Json)?.to_string();
            line.push('\n');
            line
        }
    };
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(Error::Write),
    }
}

/// The key a keyed packet or frame is tagged with: the session key of its instance (read from
/// the body of REGISTRATION, REGISTERED and REFUSED, else `instance`). Bytes that cannot be
/// read that far get the session key of instance 0, so the decoder reports what is wrong.
fn session_key(bytes: &[u8], psk: &Key, instance: Option<u64>) -> Result<Key, Error> {
    let kind = if bytes.first() == Some(&0) {
        "AlertFlow frame"
    } else {
        "packet"
    };
    let own = crate::wire::Header::decode(bytes)
        .ok()
        .filter(|h| bytes[0] != 0 && h.packet_type.is_unnumbered_message())
        .map(|h| match h.decode_body(bytes) {
            Ok(Packet {
                body: Body::Reliable { message, .. },
                ..
            }) => match message {
                Message::Registration(m) => m.instance,
                Message::Registered(m) => m.instance,
                Message::Refused(m) => m.instance,
                _ => 0,
            },
            _ => 0,
        });
    let keyed = match bytes.first() {
        Some(0) => bytes.get(4).is_some_and(|b| b & 0x10 != 0),
        Some(b) => b & 0x10 != 0,
        None => false,
    };
    // Only a whole, readable frame or header needs the instance; anything else gets a key of
    // instance 0, so that the decoder names what is wrong with it.
    let readable = if bytes.first() == Some(&0) {
        matches!(alertflow::check(bytes), Ok(Some(n)) if n == bytes.len())
    } else {
        crate::wire::Header::decode(bytes).is_ok()
    };
    match own.or(instance) {
        Some(instance) => Ok(psk.session(instance)),
        None if keyed && readable => Err(Error::NeedsInstance { kind }),
        None => Ok(psk.session(0)),
    }
}

/// Parses a registration instance given as hex (`0x5f3a91c20be47d16` or without `0x`).
pub fn parse_instance(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    u64::from_str_radix(digits, 16)
        .map_err(|_| format!("{text:?} is not an instance: give up to 16 hex digits"))
}

/// Reads everything, or `None` when there is more than `limit` bytes.
fn read_limited(reader: &mut dyn Read, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut buf)?;
    Ok((buf.len() <= limit).then_some(buf))
}

/// Reads a key file (hex text, surrounding whitespace ignored).
pub fn load_key(path: &Path) -> Result<Key, Error> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE).read_to_string(&mut text))
        .map_err(|source| Error::ReadKey {
            path: path.to_path_buf(),
            source,
        })?;
    Key::from_hex(&text).map_err(|source| Error::BadKey {
        path: path.to_path_buf(),
        source,
    })
}

fn looks_like_hex(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace() || *b == b'x' || *b == b'X')
}

/// Parses hex text: pairs of hex digits, with whitespace anywhere and an optional `0x` in front
/// of each whitespace-separated group (`0x2107 0412`, `21 07 04 12`, `xxd -p` output).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut nibbles = Vec::with_capacity(text.len() / 2);
    let mut chars = text.chars().enumerate().peekable();
    let mut group_start = true;
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            group_start = true;
            continue;
        }
        if group_start && c == '0' && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
            chars.next();
            group_start = false;
            continue;
        }
        group_start = false;
        let nibble = c.to_digit(16).ok_or(HexError::NotHexDigit {
            found: c,
            position: i + 1,
        })?;
        nibbles.push(nibble as u8);
    }
    if nibbles.len() % 2 != 0 {
        return Err(HexError::OddDigits(nibbles.len()));
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|p| (p[0] << 4) | p[1])
        .collect())
}

/// The decoded packet as one JSON object: the serde form of [`Decoded`] (NaN values are `null`)
/// plus `version`, `type`, `size` (bytes on the wire), `tag` (hex) and `tag_algorithm`; an ACK
/// also lists every sequence number it `acknowledged`.
pub fn to_json(decoded: &Decoded, bytes: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::to_value(decoded)?;
    shorten_f32(&mut value);
    if let Some(object) = value.as_object_mut() {
        let (type_name, keyed) = match decoded {
            Decoded::NetTask(p) => (p.packet_type().name(), p.keyed),
            Decoded::AlertFlow(f) => (frame_type_name(f), f.keyed),
        };
        object.insert("version".into(), VERSION.into());
        object.insert("type".into(), type_name.into());
        object.insert("size".into(), bytes.len().into());
        object.insert("tag".into(), hex::encode(tag_of(bytes)).into());
        object.insert("tag_algorithm".into(), tag_algorithm(keyed).into());
        if let Decoded::NetTask(Packet {
            body: Body::Ack(ack),
            ..
        }) = decoded
        {
            let acknowledged: Vec<u16> = ack.acknowledged().collect();
            object.insert("acknowledged".into(), acknowledged.into());
        }
    }
    Ok(value)
}

/// Writes every number that is exactly an `f32` (the wire's measured values) in that `f32`'s
/// shortest decimal form: `0.42`, not `0.41999998688697815`.
fn shorten_f32(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(v) = n.as_f64()
                && f64::from(v as f32) == v
                && let Some(short) = serde_json::Number::from_f64(crate::schema::widen(v as f32))
            {
                *n = short;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(shorten_f32),
        serde_json::Value::Object(map) => map.values_mut().for_each(shorten_f32),
        _ => {}
    }
}

fn tag_of(bytes: &[u8]) -> &[u8] {
    &bytes[bytes.len().saturating_sub(TAG_LEN)..]
}

fn tag_algorithm(keyed: bool) -> &'static str {
    if keyed {
        "HMAC-SHA-256/96"
    } else {
        "SHA-256/96"
    }
}

fn frame_type_name(frame: &Frame) -> &'static str {
    match frame.body {
        FrameBody::Alert(_) => "ALERT",
        FrameBody::AlertAck { .. } => "ALERT_ACK",
    }
}

/// The decoded packet as aligned text: a summary line, the header, then every body field with
/// its unit. `bytes` are the bytes it was decoded from (for the size and tag). With `color`,
/// field names are dimmed and the type, severity and verification are coloured.
pub fn render_text(decoded: &Decoded, bytes: &[u8], color: bool) -> String {
    let mut doc = Doc::new(color);
    match decoded {
        Decoded::NetTask(p) => render_packet(&mut doc, p, bytes),
        Decoded::AlertFlow(f) => render_frame(&mut doc, f, bytes),
    }
    doc.finish()
}

fn type_style(kind: PacketType) -> Style {
    match kind {
        PacketType::Noack => Style::new().bold().red(),
        PacketType::Ack => Style::new().bold().green(),
        _ => Style::new().bold().cyan(),
    }
}

/// What the first lines say about a packet or frame.
struct HeaderView<'a> {
    /// "NetTask" or "AlertFlow".
    protocol: &'static str,
    type_name: &'a str,
    type_code: u8,
    type_style: Style,
    keyed: bool,
    agent_id: u32,
    size: usize,
}

fn render_header(doc: &mut Doc, h: &HeaderView<'_>) {
    let verified = doc.paint("verified", Style::new().green());
    let type_name = doc.paint(h.type_name, h.type_style);
    doc.title(format!(
        "{} {type_name} {}, {} bytes, tag {verified} ({})",
        h.protocol,
        if h.protocol == "NetTask" {
            "packet"
        } else {
            "frame"
        },
        h.size,
        tag_algorithm(h.keyed),
    ));
    doc.section("header");
    doc.field(1, "protocol", format!("{}, version {VERSION}", h.protocol));
    doc.field(1, "type", format!("{type_name} ({})", h.type_code));
    doc.field(
        1,
        "keyed",
        if h.keyed {
            "yes: HMAC-SHA-256 tag with the session key"
        } else {
            "no: plain SHA-256 tag"
        },
    );
    doc.field(
        1,
        "agent id",
        if h.agent_id == 0 {
            "0 (not registered yet)".to_string()
        } else {
            h.agent_id.to_string()
        },
    );
}

fn render_tag(doc: &mut Doc, bytes: &[u8], keyed: bool) {
    doc.field(1, "size", format!("{} bytes", bytes.len()));
    let verified = doc.paint("verified", Style::new().green());
    doc.field(
        1,
        "tag",
        format!(
            "{} ({verified}, {} of the {} bytes before it)",
            hex::encode(tag_of(bytes)),
            tag_algorithm(keyed),
            bytes.len().saturating_sub(TAG_LEN),
        ),
    );
}

fn render_packet(doc: &mut Doc, p: &Packet, bytes: &[u8]) {
    let kind = p.packet_type();
    render_header(
        doc,
        &HeaderView {
            protocol: "NetTask",
            type_name: kind.name(),
            type_code: kind as u8,
            type_style: type_style(kind),
            keyed: p.keyed,
            agent_id: p.agent_id,
            size: bytes.len(),
        },
    );
    let seq = match &p.body {
        Body::Ack(a) => format!("{} (the packet acknowledged)", a.seq),
        Body::Noack(n) => format!("{} (the packet refused)", n.seq),
        Body::Reliable { seq, .. } => seq.to_string(),
    };
    doc.field(1, "seq", seq);
    render_tag(doc, bytes, p.keyed);
    doc.section(kind.name());
    match &p.body {
        Body::Ack(ack) => {
            let list: Vec<String> = ack.acknowledged().map(|s| s.to_string()).collect();
            doc.field(1, "acknowledged", list.join(", "));
            doc.field(
                1,
                "bitmap",
                if ack.earlier == 0 {
                    "none (0 bytes)".to_string()
                } else {
                    format!("{:#b} ({} byte(s))", ack.earlier, bitmap_bytes(ack.earlier))
                },
            );
        }
        Body::Noack(noack) => {
            let (name, meaning) = match noack.reason {
                NoackReason::BadTag => ("bad tag", "the tag did not match: retransmit at once"),
                NoackReason::UnknownAgent => (
                    "unknown agent",
                    "no registered agent has this id: register again",
                ),
                NoackReason::Malformed => ("malformed", "the body could not be decoded"),
            };
            let reason = doc.paint(name, Style::new().red());
            doc.field(
                1,
                "reason",
                format!("{reason} ({}): {meaning}", noack.reason as u8),
            );
        }
        Body::Reliable { message, .. } => render_message(doc, message),
    }
}

fn bitmap_bytes(earlier: u32) -> usize {
    (32 - earlier.leading_zeros() as usize).div_ceil(8)
}

fn render_message(doc: &mut Doc, message: &Message) {
    match message {
        Message::Registration(m) => {
            doc.field(1, "name", &m.name);
            doc.field(1, "instance", format!("{:#018x}", m.instance));
            doc.field(1, "time", utc_time(m.time_ms));
            let mut tools = Vec::new();
            if m.capabilities & CAP_PING != 0 {
                tools.push("ping");
            }
            if m.capabilities & CAP_IPERF3 != 0 {
                tools.push("iperf3");
            }
            if m.capabilities & !(CAP_PING | CAP_IPERF3) != 0 {
                tools.push("unknown bits");
            }
            let tools = if tools.is_empty() {
                "none".to_string()
            } else {
                tools.join(", ")
            };
            doc.field(
                1,
                "capabilities",
                format!("{tools} ({:#04x})", m.capabilities),
            );
            doc.field(1, "software", &m.software);
        }
        Message::Registered(m) => {
            doc.field(1, "instance", format!("{:#018x}", m.instance));
            doc.field(1, "AlertFlow port", m.alertflow_port.to_string());
            doc.field(1, "heartbeat", format!("every {} ms", m.heartbeat_ms));
            doc.field(1, "timeout", format!("{} ms", m.timeout_ms));
            doc.field(
                1,
                "retransmissions",
                format!("{} before the peer is lost", m.max_retransmissions),
            );
            doc.field(1, "server time", utc_time(m.server_time_ms));
        }
        Message::Task(task) => render_task(doc, task),
        Message::Metrics(report) => render_metrics(doc, report),
        Message::Heartbeat(m) => {
            doc.field(1, "time", utc_time(m.time_ms));
            doc.field(1, "pending reports", m.pending_reports.to_string());
        }
        Message::Fragment(m) => {
            doc.field(1, "message id", m.message_id.to_string());
            doc.field(
                1,
                "index",
                format!("{} (fragment {} of {})", m.index, m.index + 1, m.count),
            );
            doc.field(1, "count", m.count.to_string());
            doc.field(
                1,
                "inner type",
                format!("{} ({})", m.inner_type.name(), m.inner_type as u8),
            );
            doc.field(1, "chunk", format!("{} bytes", m.chunk.len()));
            for line in m.chunk.chunks(16) {
                doc.field(2, "", hex_spaced(line));
            }
        }
        Message::Cancel(m) => doc.field(1, "task number", m.task_number.to_string()),
        Message::Refused(m) => {
            doc.field(1, "instance", format!("{:#018x}", m.instance));
            let reason = doc.paint(
                match m.reason {
                    RefusalReason::Clock => "clock",
                    RefusalReason::NotNewer => "not newer",
                    RefusalReason::Full => "full",
                },
                Style::new().red(),
            );
            doc.field(
                1,
                "reason",
                format!("{reason} ({}): {}", m.reason as u8, m.reason.describe()),
            );
            doc.field(1, "server time", utc_time(m.server_time_ms));
            doc.field(
                1,
                "last accepted",
                if m.last_accepted_ms == 0 {
                    "0 (none)".to_string()
                } else {
                    utc_time(m.last_accepted_ms)
                },
            );
        }
    }
}

fn hex_spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn every(seconds: u32) -> String {
    format!("every {seconds} s")
}

fn render_task(doc: &mut Doc, task: &TaskAssignment) {
    doc.field(1, "task number", task.task_number.to_string());
    doc.field(1, "task id", &task.task_id);
    doc.field(1, "work items", task.items.len().to_string());
    for (i, item) in task.items.iter().enumerate() {
        let label = format!("item {}", i + 1);
        match item {
            WorkItem::Probe(p) => {
                doc.field(1, &label, "PROBE");
                doc.field(2, "probe", &p.probe);
                for param in &p.params {
                    doc.field(2, &param.name, param.value.to_string());
                }
                doc.field(2, "frequency", every(p.frequency_s));
            }
            WorkItem::MetricsGathering {
                cpu,
                ram,
                interfaces,
                frequency_s,
            } => {
                doc.field(1, &label, "METRICSGATHERING");
                doc.field(2, "cpu", yes_no(*cpu));
                doc.field(2, "ram", yes_no(*ram));
                doc.field(
                    2,
                    "interfaces",
                    if interfaces.is_empty() {
                        "none".to_string()
                    } else {
                        interfaces.join(", ")
                    },
                );
                doc.field(2, "frequency", every(*frequency_s));
            }
            WorkItem::Ping {
                destination,
                packet_count,
                interval_ms,
                frequency_s,
            } => {
                doc.field(1, &label, "PING");
                doc.field(2, "destination", destination);
                doc.field(2, "packet count", packet_count.to_string());
                doc.field(
                    2,
                    "interval",
                    format!("{interval_ms} ms between echo requests"),
                );
                doc.field(2, "frequency", every(*frequency_s));
            }
            WorkItem::IperfClient {
                server_address,
                port,
                duration_s,
                transport,
                rate_bps,
                offset_ms,
                frequency_s,
            } => {
                doc.field(1, &label, "IPERFCLIENT");
                doc.field(
                    2,
                    "server address",
                    if server_address.is_empty() {
                        "(filled in by the server)"
                    } else {
                        server_address
                    },
                );
                doc.field(2, "port", port.to_string());
                doc.field(2, "duration", format!("{duration_s} s"));
                doc.field(2, "transport", transport_name(*transport));
                doc.field(
                    2,
                    "rate",
                    if *rate_bps == 0 {
                        "iperf3's default (TCP: as fast as the link allows)".to_string()
                    } else {
                        format!(
                            "{rate_bps} bps ({})",
                            crate::wire::task::rate_text(*rate_bps)
                        )
                    },
                );
                doc.field(2, "frequency", every(*frequency_s));
                doc.field(
                    2,
                    "slot",
                    format!("starts {offset_ms} ms into each period of the server's clock"),
                );
            }
            WorkItem::IperfServer {
                port,
                duration_s,
                transport,
                frequency_s,
            } => {
                doc.field(1, &label, "IPERFSERVER");
                doc.field(2, "port", port.to_string());
                doc.field(2, "duration", format!("{duration_s} s"));
                doc.field(2, "transport", transport_name(*transport));
                doc.field(2, "frequency", every(*frequency_s));
            }
        }
    }
    render_conditions(doc, &task.conditions);
    doc.field(1, "rules", task.rules.len().to_string());
    for (i, rule) in task.rules.iter().enumerate() {
        doc.field(1, &format!("rule {}", i + 1), &rule.name);
        let mut lines = rule.source.lines();
        doc.field(2, "source", lines.next().unwrap_or(""));
        for line in lines {
            doc.field(2, "", line);
        }
    }
}

fn render_conditions(doc: &mut Doc, c: &AlertConditions) {
    let conditions = [
        ("cpu usage above", c.cpu_usage, "%"),
        ("ram usage above", c.ram_usage, "%"),
        ("interface stats above", c.interface_stats, "packets/s"),
        ("packet loss above", c.packet_loss, "%"),
        ("jitter above", c.jitter, "ms"),
    ];
    if conditions.iter().all(|(_, v, _)| v.is_none()) {
        doc.field(1, "alert conditions", "none");
        return;
    }
    doc.field(1, "alert conditions", "");
    for (name, value, unit) in conditions {
        if let Some(v) = value {
            doc.field(2, name, format!("{v} {unit}"));
        }
    }
}

fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

fn transport_name(t: crate::wire::Transport) -> &'static str {
    match t {
        crate::wire::Transport::Tcp => "tcp",
        crate::wire::Transport::Udp => "udp",
    }
}

fn render_metrics(doc: &mut Doc, report: &MetricsReport) {
    doc.field(1, "task number", report.task_number.to_string());
    doc.field(1, "time", utc_time(report.time_ms));
    doc.field(1, "samples", report.samples.len().to_string());
    for sample in &report.samples {
        match sample {
            Sample::Probe(p) => {
                let name = crate::probes::by_number(p.probe)
                    .map_or_else(|| format!("probe {}", p.probe), |d| d.name.to_string());
                doc.field(1, &name, "");
                let mut defs = crate::schema::probe_fields(p.probe);
                for (i, v) in p.values.iter().enumerate() {
                    let (label, unit) = defs.next().map_or((format!("value {}", i + 1), ""), |d| {
                        (d.label.to_string(), d.unit)
                    });
                    let v = doc.measured(*v, unit);
                    doc.field(2, &label, v);
                }
            }
            Sample::Cpu { percent } | Sample::Ram { percent } => {
                let name = if matches!(sample, Sample::Cpu { .. }) {
                    "cpu"
                } else {
                    "ram"
                };
                let v = doc.measured(*percent, "%");
                doc.field(1, name, v);
            }
            Sample::Interface {
                name,
                state,
                packets_per_sec,
                bytes_per_sec,
                errors_per_sec,
                counters,
            } => {
                doc.field(1, "interface", name);
                let shown = match state {
                    LinkState::Up => doc.paint("up (1)", Style::new().green()),
                    LinkState::Down => doc.paint("down (2): set down", Style::new().red()),
                    LinkState::NoCarrier => doc.paint(
                        "no carrier (3): set up, but the link beneath it is down",
                        Style::new().red(),
                    ),
                    LinkState::Unknown => "not known (0)".to_string(),
                };
                doc.field(2, "state", shown);
                let v = doc.measured(*packets_per_sec, "packets/s");
                doc.field(2, "packets", v);
                let v = doc.rate(*bytes_per_sec, "B/s");
                doc.field(2, "bytes", v);
                let v = doc.measured(*errors_per_sec, "errors/s");
                doc.field(2, "errors", v);
                let shown = |v: Option<u64>, unit: &str| match v {
                    Some(v) => format!("{v} {unit}"),
                    None => "not measured".to_string(),
                };
                for (name, v, unit) in [
                    ("rx bytes", counters.rx_bytes, "B"),
                    ("tx bytes", counters.tx_bytes, "B"),
                    ("rx packets", counters.rx_packets, "packets"),
                    ("tx packets", counters.tx_packets, "packets"),
                    ("rx errors", counters.rx_errors, "errors"),
                    ("tx errors", counters.tx_errors, "errors"),
                    ("rx dropped", counters.rx_dropped, "packets"),
                    ("tx dropped", counters.tx_dropped, "packets"),
                ] {
                    doc.field(2, name, shown(v, unit));
                }
            }
            Sample::Ping {
                rtt_min_ms,
                rtt_avg_ms,
                rtt_max_ms,
                jitter_ms,
                loss_percent,
                sent,
                received,
            } => {
                doc.field(1, "ping", "");
                for (name, v, unit) in [
                    ("rtt min", rtt_min_ms, "ms"),
                    ("rtt avg", rtt_avg_ms, "ms"),
                    ("rtt max", rtt_max_ms, "ms"),
                    ("jitter", jitter_ms, "ms"),
                    ("packet loss", loss_percent, "%"),
                ] {
                    let v = doc.measured(*v, unit);
                    doc.field(2, name, v);
                }
                doc.field(2, "sent", format!("{sent} echo requests (so far)"));
                doc.field(2, "received", format!("{received} replies (so far)"));
            }
            Sample::Iperf {
                transport,
                bandwidth_bps,
                offered_bps,
                jitter_ms,
                loss_percent,
            } => {
                doc.field(1, "iperf", transport_name(*transport));
                let v = doc.rate(*bandwidth_bps, "bps");
                doc.field(2, "bandwidth", v);
                let v = doc.rate(*offered_bps, "bps");
                doc.field(2, "offered", v);
                let v = doc.measured(*jitter_ms, "ms");
                doc.field(2, "jitter", v);
                let v = doc.measured(*loss_percent, "%");
                doc.field(2, "packet loss", v);
            }
        }
    }
}

fn render_frame(doc: &mut Doc, frame: &Frame, bytes: &[u8]) {
    let type_name = frame_type_name(frame);
    let style = match &frame.body {
        FrameBody::Alert(a) => severity_style(a.severity),
        FrameBody::AlertAck { .. } => Style::new().bold().green(),
    };
    render_header(
        doc,
        &HeaderView {
            protocol: "AlertFlow",
            type_name,
            type_code: frame.frame_type() as u8,
            type_style: style,
            keyed: frame.keyed,
            agent_id: frame.agent_id,
            size: bytes.len(),
        },
    );
    doc.field(
        1,
        "length field",
        format!("{} (bytes after it)", bytes.len().saturating_sub(4)),
    );
    render_tag(doc, bytes, frame.keyed);
    doc.section(type_name);
    match &frame.body {
        FrameBody::Alert(a) => {
            doc.field(1, "alert id", format!("{:#018x}", a.alert_id));
            if a.resolves != 0 {
                doc.field(
                    1,
                    "resolves",
                    format!("{:#018x} (stopped firing)", a.resolves),
                );
            }
            doc.field(1, "agent", &a.agent);
            doc.field(1, "task", &a.task);
            doc.field(
                1,
                "alert type",
                format!("{} ({})", a.alert_type.name(), a.alert_type as u8),
            );
            let severity = doc.paint(severity_name(a.severity), severity_style(a.severity));
            doc.field(1, "severity", format!("{severity} ({})", a.severity as u8));
            let unit = alert_unit(a.alert_type);
            let v = doc.measured(a.value, unit);
            doc.field(1, "value", v);
            let v = doc.measured(a.threshold, unit);
            doc.field(1, "threshold", v);
            doc.field(1, "time", utc_time(a.time_ms));
            doc.field(1, "rule", &a.rule);
            doc.field(1, "message", &a.message);
        }
        FrameBody::AlertAck { alert_id } => {
            doc.field(1, "alert id", format!("{alert_id:#018x}"));
        }
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Info => Style::new().bold().blue(),
        Severity::Warning => Style::new().bold().yellow(),
        Severity::Critical => Style::new().bold().red(),
    }
}

/// The unit of an alert's value and threshold.
fn alert_unit(t: AlertType) -> &'static str {
    match t {
        AlertType::Cpu | AlertType::Ram | AlertType::PacketLoss => "%",
        AlertType::Jitter | AlertType::Latency | AlertType::Timeout => "ms",
        AlertType::InterfaceStats => "packets/s",
        AlertType::Bandwidth => "bps",
        AlertType::Error | AlertType::AgentDown | AlertType::AgentUp | AlertType::Custom => "",
    }
}

/// Unix milliseconds as `1764236400000 (2025-11-27 09:40:00.000 UTC)`.
pub fn utc_time(ms: u64) -> String {
    // Up to the end of year 9999; later values are shown as the bare number.
    if !crate::log::writable_time(ms) {
        return format!("{ms} ms since 1970");
    }
    format!(
        "{ms} ({} UTC)",
        crate::log::time_text(ms, crate::log::TimeText::Millis)
    )
}

/// A decimal (SI) rendering: 94300000 -> "94.3 M".
fn si(v: f64) -> Option<String> {
    let (div, prefix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(div, _)| v.abs() >= *div)?;
    let scaled = v / div;
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    Some(format!("{text} {prefix}"))
}

/// The text being built: lines of `name  value`, aligned when finished.
struct Doc {
    color: bool,
    lines: Vec<Line>,
}

enum Line {
    Title(String),
    Section(String),
    Field {
        depth: usize,
        name: String,
        value: String,
    },
}

impl Doc {
    fn new(color: bool) -> Doc {
        Doc {
            color,
            lines: Vec::new(),
        }
    }

    fn paint(&self, text: impl Display, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_string()
        }
    }

    fn title(&mut self, text: String) {
        self.lines.push(Line::Title(text));
    }

    fn section(&mut self, name: &str) {
        let name = self.paint(name, Style::new().bold());
        self.lines.push(Line::Section(name));
    }

    fn field(&mut self, depth: usize, name: &str, value: impl Into<String>) {
        self.lines.push(Line::Field {
            depth,
            name: name.to_string(),
            value: value.into(),
        });
    }

    /// A measured value with its unit, or "not measured" for NaN.
    fn measured(&self, v: impl Into<f64> + Display + Copy, unit: &str) -> String {
        if v.into().is_nan() {
            self.paint("not measured", Style::new().yellow())
        } else if unit.is_empty() {
            v.to_string()
        } else {
            format!("{v} {unit}")
        }
    }

    /// A rate with its unit, followed by the SI-scaled value when it is large.
    fn rate(&self, v: f32, unit: &str) -> String {
        let plain = self.measured(v, unit);
        match si(v.into()) {
            Some(scaled) if !v.is_nan() => {
                let unit = if unit == "bps" { "bit/s" } else { unit };
                format!("{plain} ({scaled}{unit})")
            }
            _ => plain,
        }
    }

    fn finish(self) -> String {
        let width = self
            .lines
            .iter()
            .filter_map(|l| match l {
                Line::Field { depth, name, .. } => Some(2 * depth + name.chars().count()),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            + 2;
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Title(text) | Line::Section(text) => {
                    out.push_str(text);
                }
                Line::Field { depth, name, value } => {
                    let indent = 2 * depth;
                    let padded = format!("{:indent$}{name:<w$}", "", w = width - indent);
                    let padded = if name.is_empty() {
                        padded
                    } else {
                        self.paint(padded, Style::new().dimmed())
                    };
                    out.push_str(&padded);
                    out.push_str(value);
                }
            }
            let trimmed = out.trim_end_matches(' ').len();
            out.truncate(trimmed);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_accepts_spacing_and_0x_prefixes() {
        assert_eq!(
            parse_hex("0x2107 04 12\n"),
            Ok(vec![0x21, 0x07, 0x04, 0x12])
        );
        assert_eq!(parse_hex("0X21\t0x07"), Ok(vec![0x21, 0x07]));
        assert_eq!(parse_hex("  "), Ok(vec![]));
        assert_eq!(parse_hex("abc"), Err(HexError::OddDigits(3)));
        assert_eq!(
            parse_hex("21 0g"),
            Err(HexError::NotHexDigit {
                found: 'g',
                position: 5
            })
        );
        // "0x" only counts at the start of a group.
        assert!(parse_hex("210x07").is_err());
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_time(0), "0 (1970-01-01 00:00:00.000 UTC)");
        assert_eq!(
            utc_time(1_764_236_400_123),
            "1764236400123 (2025-11-27 09:40:00.123 UTC)"
        );
        assert_eq!(
            utc_time(951_782_400_000),
            "951782400000 (2000-02-29 00:00:00.000 UTC)"
        );
        assert_eq!(utc_time(u64::MAX), format!("{} ms since 1970", u64::MAX));
    }

    #[test]
    fn large_rates_are_also_scaled() {
        let doc = Doc::new(false);
        assert_eq!(doc.rate(94_300_000.0, "bps"), "94300000 bps (94.3 Mbit/s)");
        assert_eq!(doc.rate(512.0, "B/s"), "512 B/s");
        assert_eq!(doc.rate(f32::NAN, "bps"), "not measured");
    }
}
