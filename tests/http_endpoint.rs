//! The admin HTTP endpoint over real TCP on an ephemeral loopback port: `/metrics`, `/live`,
//! `/ready`, `/status`, errors, shutdown, and responsiveness while another runtime is saturated.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_mirrord::http::{self, HttpError, HttpServer, HttpState};
use kafka_mirrord::metrics::Metrics;
use kafka_mirrord::plan::FlowId;
use kafka_mirrord::status::{FlowState, StatusBoard, StatusReport};

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP/1.1 request with `Connection: close`, read to the end.
fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path)
}

fn flow() -> FlowId {
    FlowId {
        source: "A".into(),
        target: "B".into(),
    }
}

struct Fixture {
    server: HttpServer,
    ready: Arc<AtomicBool>,
    metrics: Metrics,
    status: StatusBoard,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn start() -> Fixture {
    let metrics = Metrics::register(&prometheus::Registry::new()).unwrap();
    let status = StatusBoard::new();
    let ready = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState {
        metrics: metrics.clone(),
        status: status.clone(),
        ready: ready.clone(),
    };
    let server = http::serve("127.0.0.1:0".parse().unwrap(), state, async {
        let _ = stopped.await;
    })
    .unwrap();
    Fixture {
        server,
        ready,
        metrics,
        status,
        stop: Some(stop),
    }
}

#[test]
fn live_ready_and_errors() {
    let fixture = start();
    let addr = fixture.server.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(get(addr, "/live").status, 200);
    let not_ready = get(addr, "/ready");
    assert_eq!(not_ready.status, 503);
    fixture.ready.store(true, Ordering::Release);
    assert_eq!(get(addr, "/ready").status, 200);

    assert_eq!(get(addr, "/nope").status, 404);
    let post = request(addr, "POST", "/metrics");
    assert_eq!(post.status, 405);
    assert!(
        post.headers.contains("allow: get, head"),
        "{}",
        post.headers
    );
    let head = request(addr, "HEAD", "/metrics");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
    assert!(get(addr, "/").body.contains("/status"));
}

#[test]
fn metrics_have_mm2_names_and_lag_with_labels() {
    let fixture = start();
    let partition = fixture
        .metrics
        .source_partition(&flow(), "orders", "A.orders", 2);
    partition.record_replicated(512, 3, 8);
    partition.set_lag(17);
    fixture.metrics.tick();

    let reply = get(fixture.server.local_addr(), "/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .headers
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        reply.headers
    );
    let body = reply.body;
    let has = |line_start: &str, labels: &[&str], value: &str| {
        body.lines().any(|line| {
            line.starts_with(line_start)
                && labels.iter().all(|l| line.contains(l))
                && line.ends_with(&format!(" {value}"))
        })
    };
    let mm2 = [
        "source=\"A\"",
        "target=\"B\"",
        "topic=\"A.orders\"",
        "partition=\"2\"",
    ];
    assert!(
        has(
            "kafka_connect_mirror_mirrorsourceconnector_record_count{",
            &mm2,
            "1"
        ),
        "{body}"
    );
    assert!(has(
        "kafka_connect_mirror_mirrorsourceconnector_byte_count{",
        &mm2,
        "512"
    ));
    assert!(has(
        "kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms_max{",
        &mm2,
        "8"
    ));
    assert!(has(
        "kafka_mirrord_replication_lag_records{",
        &["flow=\"A->B\"", "topic=\"orders\"", "partition=\"2\""],
        "17"
    ));
    assert!(has(
        "kafka_consumer_fetch_manager_records_lag{",
        &["topic=\"orders\"", "partition=\"2\""],
        "17"
    ));
    assert!(body.contains("# TYPE kafka_mirrord_replication_latency_seconds histogram"));
    assert!(body.contains("process_resident_memory_bytes"));
}

#[test]
fn status_is_json_with_per_partition_lag() {
    let fixture = start();
    let handle = fixture.status.register_flow(&flow());
    handle.set_state(FlowState::Running, None);
    handle.set_measured(
        "orders",
        0,
        kafka_mirrord::status::Measured {
            end: 100,
            earliest: 0,
            stored_next: Some(50),
            last_write_unix_ms: None,
        },
    );
    handle.set_replicated("orders", 0, 60);
    let reply = get(fixture.server.local_addr(), "/status");
    assert_eq!(reply.status, 200);
    assert!(reply.headers.contains("content-type: application/json"));
    let report: StatusReport = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(report.summary.running, 1);
    assert_eq!(report.summary.lag, 40);
    let partition = &report.flows[0].topics[0].partitions[0];
    assert_eq!(partition.source_end_offset, Some(100));
    assert_eq!(partition.replicated_offset, Some(60));
    assert_eq!(partition.lag, Some(40));
}

#[test]
fn a_used_port_is_a_bind_error() {
    let fixture = start();
    let taken = fixture.server.local_addr();
    let state = HttpState {
        metrics: Metrics::register(&prometheus::Registry::new()).unwrap(),
        status: StatusBoard::new(),
        ready: Arc::new(AtomicBool::new(false)),
    };
    match http::serve(taken, state, std::future::pending()) {
        Err(HttpError::Bind { addr, .. }) => assert_eq!(addr, taken),
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[test]
fn shutdown_stops_the_server() {
    let mut fixture = start();
    let addr = fixture.server.local_addr();
    // An idle keep-alive connection must not hold the shutdown up.
    let _idle = TcpStream::connect(addr).unwrap();
    assert_eq!(get(addr, "/live").status, 200);
    fixture.stop.take().unwrap().send(()).unwrap();
    let started = Instant::now();
    while !fixture.server.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "server still running 5 s after shutdown"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    fixture.server.join();
    assert!(TcpStream::connect(addr).is_err(), "the port is closed");
}

#[test]
fn scrapes_answer_while_another_runtime_is_saturated_and_a_client_is_idle() {
    let fixture = start();
    let addr = fixture.server.local_addr();
    // A client that connects and sends nothing occupies no worker.
    let _silent = TcpStream::connect(addr).unwrap();
    // Every worker of a multi-threaded runtime blocked, as flows stuck in librdkafka would be.
    let busy = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for _ in 0..4 {
        busy.spawn(async { std::thread::sleep(Duration::from_secs(3)) });
    }
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(get(addr, "/metrics").status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "5 scrapes took {:?}",
        started.elapsed()
    );
    busy.shutdown_background();
}

/// Clients that connect and never send, or send a request and never read the answer, cannot
/// starve the endpoint: with every connection slot taken, the oldest is closed to make room and
/// a scrape is still answered at once.
#[test]
fn slow_clients_cannot_starve_the_endpoint() {
    let fixture = start();
    let addr = fixture.server.local_addr();
    // Make /metrics large enough that an unread answer fills the socket buffers.
    for partition in 0..400 {
        fixture
            .metrics
            .source_partition(&flow(), "orders", "A.orders", partition)
            .set_lag(1);
    }
    let mut idle = Vec::new();
    for index in 0..http::MAX_CONNECTIONS + 8 {
        let mut stream = TcpStream::connect(addr).unwrap();
        if index % 2 == 0 {
            // Sends a request and never reads the answer.
            write!(stream, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        } else {
            // Sends half a request line and stops.
            write!(stream, "GET /sta").unwrap();
        }
        idle.push(stream);
    }
    let started = std::time::Instant::now();
    let reply = get(addr, "/live");
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered in {:?} with every slot held by stalled clients",
        started.elapsed()
    );
    drop(idle);
}
