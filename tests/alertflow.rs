//! AlertFlow end to end over real TCP on 127.0.0.1: agents' alerts reach the server's handler
//! exactly once across a down server, agent restarts, connections cut mid-frame, resends and
//! wrong keys.

use async_io::Timer;
use async_net::{TcpListener, TcpStream};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use nms::alertflow::{
    AlertClient, AlertClientConfig, AlertHandler, AlertSender, AlertServer, AlertServerConfig,
    Connection, ConnectionError, Destination, KeyLookup, ServerStats, StoreOutcome,
};
use nms::wire::{Alert, AlertType, Frame, FrameBody, Key, Severity};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Generous: only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(30);
const AGENT_ID: u32 = 42;

/// An in-memory alert store that, like the real one, stores each alert id once.
#[derive(Default)]
struct MemoryStore {
    stored: Mutex<HashMap<u64, Alert>>,
    calls: Mutex<Vec<u64>>,
    /// Fail this many `store` calls before succeeding.
    failures_left: AtomicUsize,
}

impl MemoryStore {
    fn failing(times: usize) -> MemoryStore {
        MemoryStore {
            failures_left: AtomicUsize::new(times),
            ..MemoryStore::default()
        }
    }

    fn stored_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.stored.lock().unwrap().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn calls_for(&self, id: u64) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|&&c| c == id)
            .count()
    }
}

impl AlertHandler for MemoryStore {
    fn store(
        &self,
        agent_id: u32,
        _peer: SocketAddr,
        alert: Alert,
    ) -> Result<StoreOutcome, Box<dyn std::error::Error + Send + Sync>> {
        assert_eq!(agent_id, AGENT_ID);
        self.calls.lock().unwrap().push(alert.alert_id);
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("disk full".into());
        }
        let mut stored = self.stored.lock().unwrap();
        if stored.contains_key(&alert.alert_id) {
            return Ok(StoreOutcome::Duplicate);
        }
        stored.insert(alert.alert_id, alert);
        Ok(StoreOutcome::Stored)
    }
}

fn alert(id: u64) -> Alert {
    Alert {
        alert_id: id,
        resolves: 0,
        agent: "edge-1".into(),
        task: "task-7".into(),
        alert_type: AlertType::PacketLoss,
        severity: Severity::Critical,
        value: 12.5,
        threshold: 5.0,
        time_ms: 1_700_000_000_000 + id,
        rule: "packet_loss".into(),
        message: format!("packet loss above 5% (alert {id})"),
        subject: String::new(),
    }
}

fn alert_frame(id: u64) -> Frame {
    Frame {
        keyed: false,
        agent_id: AGENT_ID,
        body: FrameBody::Alert(alert(id)),
    }
}

fn no_keys() -> KeyLookup {
    Arc::new(|_| Some(None))
}

/// The registration instance of the agent's session in these tests.
const INSTANCE: u64 = 0x5eed;

/// What the server tags and checks an agent's frames with: its session key.
fn session(byte: u8) -> Option<Option<Key>> {
    Some(Some(key(byte).session(INSTANCE)))
}

fn key(byte: u8) -> Key {
    Key::from_bytes(&[byte; 32]).unwrap()
}

/// A running server, stopped when dropped.
struct Server {
    addr: SocketAddr,
    stats: ServerStats,
    _stop: smol::channel::Sender<()>,
    _task: smol::Task<()>,
}

fn start_server_on(listener: TcpListener, store: Arc<MemoryStore>, keys: KeyLookup) -> Server {
    let addr = listener.local_addr().unwrap();
    let server = AlertServer::new(store, keys);
    let stats = server.stats();
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let task = smol::spawn(server.run(listener, async move {
        let _ = stopped.recv().await;
    }));
    Server {
        addr,
        stats,
        _stop: stop,
        _task: task,
    }
}

async fn start_server(store: Arc<MemoryStore>, keys: KeyLookup) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_server_on(listener, store, keys)
}

/// A loopback address nothing listens on (for now).
async fn unused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn client_config(dir: &Path) -> AlertClientConfig {
    let mut config = AlertClientConfig::new(dir);
    config.min_backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    config
}

fn destination(server: SocketAddr) -> Destination {
    Destination {
        server,
        agent_id: AGENT_ID,
        instance: INSTANCE,
    }
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    fut.or(async {
        Timer::after(PATIENCE).await;
        panic!("gave up waiting for {what}");
    })
    .await
}

async fn until(what: &str, condition: impl Fn() -> bool) {
    within(what, async {
        while !condition() {
            Timer::after(Duration::from_millis(10)).await;
        }
    })
    .await
}

async fn raise_all(sender: &AlertSender, ids: &[u64]) {
    for &id in ids {
        sender.raise(alert(id)).await.unwrap();
    }
}

#[test]
fn alerts_raised_while_the_server_is_down_are_delivered_when_it_starts() {
    smol::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let addr = unused_addr().await;
        let (sender, _client) = AlertClient::spawn(client_config(dir.path())).unwrap();
        sender.set_destination(destination(addr));
        raise_all(&sender, &[1, 2, 3]).await;
        within(
            "a failed connection attempt",
            sender.wait_until(|c| c.connection_failures >= 2),
        )
        .await;
        assert_eq!(sender.counts().pending, 3);
        assert_eq!(sender.counts().acknowledged, 0);

        let store = Arc::new(MemoryStore::default());
        let listener = TcpListener::bind(addr).await.unwrap();
        let _server = start_server_on(listener, store.clone(), no_keys());
        let counts = within("delivery", sender.wait_until_delivered()).await;
        assert_eq!(counts.acknowledged, 3);
        assert_eq!(store.stored_ids(), vec![1, 2, 3]);
        assert_eq!(store.stored.lock().unwrap()[&2], alert(2));
    });
}

#[test]
fn a_restarted_agent_resends_what_was_not_acknowledged() {
    smol::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // The first agent process stores alerts that the server fails to store: none acked.
        let failing = Arc::new(MemoryStore::failing(usize::MAX));
        let broken = start_server(failing.clone(), no_keys()).await;
        let (sender, client) = AlertClient::spawn(client_config(dir.path())).unwrap();
        sender.set_destination(destination(broken.addr));
        raise_all(&sender, &[10, 11]).await;
        until("both alerts to reach the failing store", || {
            failing.calls_for(10) >= 1 && failing.calls_for(11) >= 1
        })
        .await;
        assert_eq!(sender.counts().acknowledged, 0);
        // The agent process ends.
        client.cancel().await;
        drop(sender);

        let store = Arc::new(MemoryStore::default());
        let server = start_server(store.clone(), no_keys()).await;
        let (sender, _client) = AlertClient::spawn(client_config(dir.path())).unwrap();
        assert_eq!(sender.counts().pending, 2);
        sender.set_destination(destination(server.addr));
        within("delivery after restart", sender.wait_until_delivered()).await;
        assert_eq!(store.stored_ids(), vec![10, 11]);
        assert_eq!(failing.stored_ids(), Vec::<u64>::new());
        assert!(broken.stats.counts().store_errors >= 2);
    });
}

#[test]
fn a_connection_reset_mid_frame_loses_nothing_and_doubles_nothing() {
    smol::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = fake.local_addr().unwrap();
        let (sender, _client) = AlertClient::spawn(client_config(dir.path())).unwrap();
        sender.set_destination(destination(addr));
        sender.raise(alert(77)).await.unwrap();

        // A server that reads half of the frame and hangs up.
        let whole = alert_frame(77).encode(None).len();
        let (mut stream, _) = within("the agent to connect", fake.accept()).await.unwrap();
        let mut half = vec![0u8; whole / 2];
        within("half a frame", stream.read_exact(&mut half))
            .await
            .unwrap();
        drop(stream);
        drop(fake);
        within(
            "the agent to notice the reset",
            sender.wait_until(|c| c.connection_failures >= 1),
        )
        .await;
        assert_eq!(sender.counts().pending, 1);

        let store = Arc::new(MemoryStore::default());
        let listener = TcpListener::bind(addr).await.unwrap();
        let server = start_server_on(listener, store.clone(), no_keys());
        within("delivery", sender.wait_until_delivered()).await;
        assert_eq!(store.stored_ids(), vec![77]);
        assert_eq!(server.stats.counts().alerts_stored, 1);
        assert_eq!(sender.counts().acknowledged, 1);
    });
}

#[test]
fn the_same_alert_sent_twice_is_stored_once_and_acknowledged_twice() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        let server = start_server(store.clone(), no_keys()).await;
        let mut conn = Connection::new(TcpStream::connect(server.addr).await.unwrap());
        let frame = alert_frame(5);
        for _ in 0..2 {
            conn.write_frame(&frame, None).await.unwrap();
            let ack = within("an ack", conn.read_frame(|_| None)).await.unwrap();
            assert_eq!(
                ack.map(|f| f.body),
                Some(FrameBody::AlertAck { alert_id: 5 })
            );
        }
        assert_eq!(store.calls_for(5), 2);
        assert_eq!(store.stored_ids(), vec![5]);
        let counts = server.stats.counts();
        assert_eq!((counts.alerts_stored, counts.duplicates), (1, 1));
    });
}

#[test]
fn a_store_failure_is_not_acknowledged_and_the_alert_comes_again() {
    smol::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemoryStore::failing(1));
        let server = start_server(store.clone(), no_keys()).await;
        let mut config = client_config(dir.path());
        config.ack_timeout = Duration::from_millis(300);
        let (sender, _client) = AlertClient::spawn(config).unwrap();
        sender.set_destination(destination(server.addr));
        sender.raise(alert(9)).await.unwrap();
        within("delivery", sender.wait_until_delivered()).await;
        assert!(store.calls_for(9) >= 2);
        assert_eq!(store.stored_ids(), vec![9]);
        assert_eq!(server.stats.counts().store_errors, 1);
    });
}

#[test]
fn a_server_with_another_key_drops_the_connection_and_stores_nothing() {
    smol::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let wrong_store = Arc::new(MemoryStore::default());
        let wrong_keys: KeyLookup = Arc::new(|_| session(0xbb));
        let wrong = start_server(wrong_store.clone(), wrong_keys).await;
        let mut config = client_config(dir.path());
        config.key = Some(key(0xaa));
        let (sender, _client) = AlertClient::spawn(config).unwrap();
        sender.set_destination(destination(wrong.addr));
        sender.raise(alert(1)).await.unwrap();
        until("the server to reject a frame", || {
            wrong.stats.counts().malformed_frames >= 2
        })
        .await;
        assert_eq!(wrong_store.calls_for(1), 0);
        assert_eq!(sender.counts().pending, 1);

        // The agent re-registers with a server that shares its key, at a new port.
        let store = Arc::new(MemoryStore::default());
        let right_keys: KeyLookup = Arc::new(|_| session(0xaa));
        let right = start_server(store.clone(), right_keys).await;
        sender.set_destination(destination(right.addr));
        within("delivery", sender.wait_until_delivered()).await;
        assert_eq!(store.stored_ids(), vec![1]);
        assert_eq!(wrong_store.stored_ids(), Vec::<u64>::new());
    });
}

#[test]
fn an_unkeyed_frame_is_rejected_where_a_key_is_configured() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        let keys: KeyLookup = Arc::new(|_| session(0xaa));
        let server = start_server(store.clone(), keys).await;
        let mut conn = Connection::new(TcpStream::connect(server.addr).await.unwrap());
        let frame = alert_frame(3);
        conn.write_frame(&frame, None).await.unwrap();
        // The server hangs up without an acknowledgement.
        let reply = within("the server to hang up", conn.read_frame(|_| None)).await;
        assert!(!matches!(reply, Ok(Some(_))), "{reply:?}");
        assert_eq!(store.calls_for(3), 0);
        assert_eq!(server.stats.counts().malformed_frames, 1);
    });
}

#[test]
fn frames_written_one_byte_at_a_time_still_parse() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        let server = start_server(store.clone(), no_keys()).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut bytes = Vec::new();
        for id in [21, 22] {
            let frame = alert_frame(id);
            bytes.extend(frame.encode(None));
        }
        for byte in &bytes {
            stream.write_all(std::slice::from_ref(byte)).await.unwrap();
            stream.flush().await.unwrap();
        }
        let mut conn = Connection::new(stream);
        for id in [21, 22] {
            let ack = within("an ack", conn.read_frame(|_| None)).await.unwrap();
            assert_eq!(
                ack.map(|f| f.body),
                Some(FrameBody::AlertAck { alert_id: id })
            );
        }
        assert_eq!(store.stored_ids(), vec![21, 22]);
    });
}

#[test]
fn end_of_stream_inside_a_frame_is_an_error_and_between_frames_a_clean_close() {
    smol::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frame = alert_frame(1).encode(None);
        for cut in [frame.len() - 1, frame.len(), 2 * frame.len()] {
            let mut writer = TcpStream::connect(addr).await.unwrap();
            let (reader, _) = listener.accept().await.unwrap();
            let mut bytes = frame.clone();
            bytes.extend_from_slice(&frame);
            writer.write_all(&bytes[..cut]).await.unwrap();
            drop(writer);
            let mut conn = Connection::new(reader);
            let mut frames = 0;
            let end = within("the end of the stream", async {
                loop {
                    match conn.read_frame(|_| None).await {
                        Ok(Some(_)) => frames += 1,
                        Ok(None) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            })
            .await;
            assert_eq!(frames, cut / frame.len());
            if cut % frame.len() == 0 {
                assert!(end.is_ok(), "{end:?}");
            } else {
                assert!(
                    matches!(end, Err(ConnectionError::TruncatedFrame { .. })),
                    "{end:?}"
                );
            }
        }
    });
}

#[test]
fn a_backlog_larger_than_the_window_is_delivered_once_each() {
    smol::block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<u64> = (1000..1300).collect();
        {
            // Spooled by an agent that never reached a server.
            let (sender, client) = AlertClient::spawn(client_config(dir.path())).unwrap();
            raise_all(&sender, &ids).await;
            client.cancel().await;
        }
        let store = Arc::new(MemoryStore::default());
        let server = start_server(store.clone(), no_keys()).await;
        let mut config = client_config(dir.path());
        config.window = 16;
        let (sender, _client) = AlertClient::spawn(config).unwrap();
        assert_eq!(sender.counts().pending, ids.len() as u64);
        sender.set_destination(destination(server.addr));
        let counts = within("delivery", sender.wait_until_delivered()).await;
        assert_eq!(counts.acknowledged, ids.len() as u64);
        assert_eq!(store.stored_ids(), ids);
        assert_eq!(server.stats.counts().duplicates, 0);
    });
}

/// A server with small limits, so that tests can reach them.
async fn start_limited_server(store: Arc<MemoryStore>, config: AlertServerConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = AlertServer::new(store, no_keys()).with_config(config);
    let stats = server.stats();
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let task = smol::spawn(server.run(listener, async move {
        let _ = stopped.recv().await;
    }));
    Server {
        addr,
        stats,
        _stop: stop,
        _task: task,
    }
}

fn small_limits() -> AlertServerConfig {
    AlertServerConfig {
        max_connections: 64,
        max_per_address: 16,
        max_unauthenticated: 8,
        handshake_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        partial_frame_memory: 64 * 1024,
    }
}

/// Opens `n` connections from `ip` (any 127.0.0.0/8 address) that never send anything.
fn idle_connections(ip: &str, server: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .filter_map(|_| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
            let local: SocketAddr = format!("{ip}:0").parse().ok()?;
            socket.bind(&local.into()).ok()?;
            socket.connect(&server.into()).ok()?;
            Some(socket.into())
        })
        .collect()
}

/// Whether the server closed `stream` (a read sees the end, or an error).
fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn idle_connections_do_not_lock_agents_out() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        let server = start_limited_server(store.clone(), small_limits()).await;
        // Someone opens far more connections than may wait for a first frame, from many
        // addresses.
        let mut idle = Vec::new();
        for host in 2..6 {
            idle.extend(idle_connections(
                &format!("127.0.0.{host}"),
                server.addr,
                10,
            ));
        }
        until(
            "the oldest waiting connections to be closed for newer ones",
            || server.stats.counts().evicted_unauthenticated >= 40 - 8,
        )
        .await;
        // An agent still gets its alert through, at once.
        let dir = tempfile::tempdir().unwrap();
        let (sender, _client) = AlertClient::spawn(client_config(dir.path())).unwrap();
        sender.set_destination(destination(server.addr));
        sender.raise(alert(1)).await.unwrap();
        within(
            "delivery past the idle connections",
            sender.wait_until_delivered(),
        )
        .await;
        assert_eq!(store.stored_ids(), vec![1]);
        // Connections that never send a frame are closed once the handshake deadline passed.
        let idle = Mutex::new(idle);
        until(
            "the handshake deadline to close the idle connections",
            || idle.lock().unwrap().iter_mut().all(closed_by_server),
        )
        .await;
        assert!(server.stats.counts().handshake_timeouts > 0);
        // And the agent's idle connection is closed after the idle timeout, without harm: the
        // next alert goes through on a new connection.
        until("the idle timeout", || server.stats.counts().idle_closed > 0).await;
        sender.raise(alert(2)).await.unwrap();
        within(
            "delivery on a new connection",
            sender.wait_until_delivered(),
        )
        .await;
        assert_eq!(store.stored_ids(), vec![1, 2]);
    });
}

#[test]
fn one_address_cannot_hold_more_than_its_share_of_connections() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        let mut config = small_limits();
        config.max_unauthenticated = 64;
        let server = start_limited_server(store.clone(), config).await;
        let _idle = idle_connections("127.0.0.2", server.addr, 20);
        until("the per-address limit", || {
            server.stats.counts().refused_per_address == 4
        })
        .await;
        // Another address (the agent's) is not affected.
        let dir = tempfile::tempdir().unwrap();
        let (sender, _client) = AlertClient::spawn(client_config(dir.path())).unwrap();
        sender.set_destination(destination(server.addr));
        sender.raise(alert(3)).await.unwrap();
        within("delivery", sender.wait_until_delivered()).await;
        assert_eq!(store.stored_ids(), vec![3]);
    });
}

#[test]
fn half_sent_large_frames_hold_bounded_memory_that_comes_back() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        let server = start_limited_server(store.clone(), small_limits()).await;
        // Ten connections each announce a 65,000-byte frame and send 60,000 bytes of it:
        // 64 KiB of partial-frame memory holds one.
        let mut partial = 65_000u32.to_be_bytes().to_vec();
        partial.extend(std::iter::repeat_n(0x21, 60_000));
        let mut streams = Vec::new();
        for _ in 0..10 {
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(&partial).await.unwrap();
            streams.push(s);
        }
        until("the memory bound to refuse the rest", || {
            server.stats.counts().memory_full >= 8
        })
        .await;
        // They close; the memory is given back, and a whole large frame is taken again.
        drop(streams);
        until("the connections to be gone", || {
            server.stats.counts().connections_open == 0
        })
        .await;
        let mut conn = Connection::new(TcpStream::connect(server.addr).await.unwrap());
        // A whole frame of 12 KB (as large as an ALERT gets) needs memory of the budget.
        let mut large = alert_frame_with_message(8, &"y".repeat(4000));
        if let FrameBody::Alert(a) = &mut large.body {
            a.task = "t".repeat(4000);
            a.rule = "r".repeat(4000);
        }
        conn.write_frame(&large, None).await.unwrap();
        let reply = within("the acknowledgement", conn.read_frame(|_| None)).await;
        assert!(matches!(
            reply,
            Ok(Some(Frame {
                body: FrameBody::AlertAck { alert_id: 8 },
                ..
            }))
        ));
    });
}

fn alert_frame_with_message(id: u64, message: &str) -> Frame {
    let mut a = alert(id);
    a.message = message.to_string();
    Frame {
        keyed: false,
        agent_id: AGENT_ID,
        body: FrameBody::Alert(a),
    }
}

#[test]
fn a_frame_of_another_agent_on_a_connection_closes_it_and_an_unknown_id_is_refused() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        // Agent 42 is registered; every other id is not.
        let keys: KeyLookup = Arc::new(|id| (id == AGENT_ID).then_some(None));
        let server = start_server(store.clone(), keys).await;
        let mut conn = Connection::new(TcpStream::connect(server.addr).await.unwrap());
        conn.write_frame(&alert_frame(1), None).await.unwrap();
        let ack = within("the first acknowledgement", conn.read_frame(|_| None)).await;
        assert!(matches!(ack, Ok(Some(_))));
        let mut other = alert_frame(2);
        other.agent_id = AGENT_ID + 1;
        conn.write_frame(&other, None).await.unwrap();
        let reply = within("the server to hang up", conn.read_frame(|_| None)).await;
        assert!(!matches!(reply, Ok(Some(_))), "{reply:?}");
        let c = server.stats.counts();
        assert_eq!(c.refused_alerts + c.unknown_agents, 1, "{c:?}");
        // A connection that starts with the unregistered id gets nowhere either.
        let mut conn = Connection::new(TcpStream::connect(server.addr).await.unwrap());
        conn.write_frame(&other, None).await.unwrap();
        let reply = within("the server to hang up", conn.read_frame(|_| None)).await;
        assert!(!matches!(reply, Ok(Some(_))), "{reply:?}");
        let after = server.stats.counts();
        assert_eq!(after.unknown_agents, c.unknown_agents + 1, "{after:?}");
        assert_eq!(store.stored_ids(), vec![1]);
    });
}

#[test]
fn an_alert_the_spool_cannot_take_is_kept_in_memory_and_delivered() {
    smol::block_on(async {
        let store = Arc::new(MemoryStore::default());
        let server = start_server(store.clone(), no_keys()).await;
        let dir = tempfile::tempdir().unwrap();
        let (sender, _client) = AlertClient::spawn(client_config(dir.path())).unwrap();
        // The spool's temporary file for alert 5 cannot be written (a directory is in the
        // way), as when the disk is full.
        let blocker = dir.path().join(format!("{:016x}.json.tmp", 5));
        std::fs::create_dir(&blocker).unwrap();
        let pushed = sender.raise(alert(5)).await.unwrap();
        assert!(pushed.kept_in_memory.is_some(), "{pushed:?}");
        assert_eq!(sender.counts().pending, 1);
        sender.set_destination(destination(server.addr));
        within("delivery from memory", sender.wait_until_delivered()).await;
        assert_eq!(store.stored_ids(), vec![5]);
    });
}
