//! Alert raisers: a few simulated agents hold AlertFlow connections and raise alerts at a steady
//! rate while the reports flow; each alert's latency is the time from writing its ALERT frame
//! to reading the server's ALERT_ACK, which the server sends only once the alert is stored.

use super::fleet::{Control, Phase};
use super::latency::Latencies;
use crate::wire::alertflow::check;
use crate::wire::{Alert, AlertType, Frame, FrameBody, Key, Severity};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the raisers did.
#[derive(Debug, Default)]
pub struct AlertResult {
    pub latencies: Latencies,
    pub raised: u64,
    pub acknowledged: u64,
    pub errors: u64,
}

/// Raises `rate` alerts per second in total, round robin over up to `connections` registered
/// agents, while the phase is `Measure`.
pub fn run(
    server: SocketAddr,
    control: Arc<Control>,
    rate: f64,
    connections: usize,
    key: Option<Key>,
) -> AlertResult {
    let mut result = AlertResult::default();
    let mut streams = connect(server, &control, connections, key.as_ref(), &mut result);
    if streams.is_empty() {
        return result;
    }
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut next = Instant::now();
    let mut turn = 0usize;
    let mut rng = fastrand::Rng::new();
    while control.phase() == Phase::Measure {
        let now = Instant::now();
        if next > now {
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
            continue;
        }
        next += period;
        let count = streams.len();
        let (agent_id, name, key, stream) = &mut streams[turn % count];
        turn += 1;
        let alert = cpu_alert(name, rng.u64(..));
        let frame = Frame {
            keyed: key.is_some(),
            agent_id: *agent_id,
            body: FrameBody::Alert(alert.clone()),
        };
        let started = Instant::now();
        result.raised += 1;
        match exchange(stream, &frame.encode(key.as_ref()), key.as_ref()) {
            Ok(FrameBody::AlertAck { alert_id }) if alert_id == alert.alert_id => {
                result.latencies.record(started.elapsed());
                result.acknowledged += 1;
            }
            _ => result.errors += 1,
        }
    }
    result
}

/// One AlertFlow connection per registered agent (up to `connections`), each with the key of
/// the agent's session for keyed frames. Connections that fail count as errors.
fn connect(
    server: SocketAddr,
    control: &Control,
    connections: usize,
    key: Option<&Key>,
    result: &mut AlertResult,
) -> Vec<(u32, String, Option<Key>, TcpStream)> {
    let agents: Vec<(u32, String, u64)> = control
        .registered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .take(connections.max(1))
        .cloned()
        .collect();
    let port = control
        .alertflow_port
        .load(std::sync::atomic::Ordering::Relaxed);
    let address = SocketAddr::new(server.ip(), port);
    // Keyed frames carry the key of each agent's session.
    let mut streams: Vec<(u32, String, Option<Key>, TcpStream)> = Vec::new();
    for (id, name, instance) in agents {
        let session_key = key.map(|k| k.session(instance));
        match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                streams.push((id, name, session_key, s));
            }
            Err(_) => result.errors += 1,
        }
    }
    streams
}

/// The alert every raiser sends: CPU usage above its threshold.
fn cpu_alert(name: &str, alert_id: u64) -> Alert {
    Alert {
        alert_id,
        resolves: 0,
        agent: name.to_string(),
        task: "bench".into(),
        alert_type: AlertType::Cpu,
        severity: Severity::Warning,
        value: 97.5,
        threshold: 90.0,
        time_ms: crate::log::now_ms(),
        rule: "condition:cpu_usage".into(),
        message: "bench: cpu usage 97.5% above 90%".into(),
        subject: String::new(),
    }
}

/// Writes one frame and reads the answer.
fn exchange(stream: &mut TcpStream, frame: &[u8], key: Option<&Key>) -> std::io::Result<FrameBody> {
    stream.write_all(frame)?;
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    loop {
        let invalid =
            |e: crate::wire::DecodeError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        if let Some(len) = check(&buf).map_err(invalid)? {
            return Frame::decode(&buf[..len], key)
                .map(|f| f.body)
                .map_err(invalid);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
