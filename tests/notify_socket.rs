//! sd_notify messages, asserted on a `NOTIFY_SOCKET` this test creates: the notifying code runs
//! in a child process (this test binary again), so the environment of the test process is never
//! modified while other tests run.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use kafka_mirrord::runtime::notify;

const CHILD_ENV: &str = "KAFKA_MIRRORD_TEST_NOTIFY_CHILD";

/// CLOCK_BOOTTIME in µs, which is never behind CLOCK_MONOTONIC.
fn boottime_usec() -> u128 {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
    let seconds: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    (seconds * 1e6) as u128
}

fn run_child(
    socket: Option<&std::path::Path>,
    watchdog_usec: Option<&str>,
) -> std::process::Output {
    // `exec` keeps the shell's pid, so WATCHDOG_PID=$$ names the child as systemd would.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" child_sends_every_message --exact --nocapture --test-threads=1")
        .arg(std::env::current_exe().unwrap())
        .env(CHILD_ENV, "1")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC");
    if let Some(socket) = socket {
        command.env("NOTIFY_SOCKET", socket);
    }
    if let Some(usec) = watchdog_usec {
        command.env("WATCHDOG_USEC", usec);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn messages_arrive_exactly_as_systemd_expects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let before = boottime_usec();
    let output = run_child(Some(&path), Some("4000000"));
    let after = boottime_usec();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("watchdog interval: 2000000 µs"), "{stdout}");

    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    socket.set_nonblocking(true).unwrap();
    while let Ok(len) = socket.recv(&mut buffer) {
        messages.push(String::from_utf8(buffer[..len].to_vec()).unwrap());
    }
    assert_eq!(messages.len(), 7, "{messages:?}");
    assert_eq!(messages[0], "READY=1\n");
    // RELOADING=1 and MONOTONIC_USEC in one datagram (Type=notify-reload).
    let reloading: Vec<&str> = messages[1].lines().collect();
    assert_eq!(reloading[0], "RELOADING=1");
    let usec: u128 = reloading[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{reloading:?}"))
        .parse()
        .unwrap();
    assert!(
        usec > 0 && usec <= after + 1_000_000,
        "{usec} vs boot time {before}..{after}"
    );
    assert_eq!(reloading.len(), 2);
    assert_eq!(messages[2], "READY=1\n");
    assert_eq!(messages[3], "STATUS=3 flows running, lag 0 second line\n");
    assert_eq!(messages[4], "WATCHDOG=1\n");
    assert_eq!(messages[5], "EXTEND_TIMEOUT_USEC=90000000\n");
    assert_eq!(messages[6], "STOPPING=1\n");
}

#[test]
fn without_notify_socket_everything_is_a_no_op() {
    let output = run_child(None, None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("watchdog interval: none"), "{stdout}");
}

/// Runs in the child only (see `run_child`).
#[test]
fn child_sends_every_message() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    notify::ready();
    notify::reloading();
    notify::ready();
    notify::status("3 flows running, lag 0\nsecond line");
    match notify::watchdog_interval() {
        Some(interval) => {
            println!("watchdog interval: {} µs", interval.as_micros());
            notify::watchdog_ping();
        }
        None => println!("watchdog interval: none"),
    }
    notify::extend_timeout(Duration::from_secs(90));
    notify::stopping();
}
