//! systemd readiness protocol (`sd_notify`): `READY=1`, `RELOADING=1` + `MONOTONIC_USEC`,
//! `STOPPING=1`, `STATUS=`, `EXTEND_TIMEOUT_USEC=` and watchdog pings, over the `sd-notify` crate.
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is unset (not started by systemd with
//! `Type=notify`/`notify-reload`), and never fails the caller: a notification that cannot be
//! sent is logged at debug level, because the daemon must keep mirroring either way.
//!
//! The environment is read at every call and never modified (child processes are not started,
//! so there is nothing to hide it from).

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(false, states) {
        debug!(?states, "sd_notify failed: {error}");
    }
}

/// Start-up (or a reload) finished: every flow runs or is retrying.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// A reload begins. `Type=notify-reload` (systemd ≥ 253) requires `MONOTONIC_USEC` in the same
/// message, or it considers the reload failed; follow with [`ready`] when done.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(error) => {
            debug!("cannot read CLOCK_MONOTONIC: {error}");
            send(&[NotifyState::Reloading]);
        }
    }
}

/// A shutdown begins.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// A one-line summary shown by `systemctl status` (e.g. `StatusBoard::summary_line`).
/// Newlines would end the field, so they are replaced by spaces.
pub fn status(line: &str) {
    let line = line.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&line)]);
}

/// Asks systemd for more time to start or stop (e.g. while waiting for an unreachable cluster or
/// draining): the start/stop timeout is extended to `extra` from now.
pub fn extend_timeout(extra: Duration) {
    let usec = u32::try_from(extra.as_micros()).unwrap_or(u32::MAX);
    send(&[NotifyState::ExtendTimeoutUsec(usec)]);
}

/// The watchdog timeout systemd enforces (`WatchdogSec=`), if enabled for this process
/// (`WATCHDOG_USEC` set and `WATCHDOG_PID` naming us).
pub fn watchdog_timeout() -> Option<Duration> {
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec))
    } else {
        None
    }
}

/// How often to call [`watchdog_ping`]: half the timeout, as sd_watchdog_enabled(3) advises.
/// `None` when the watchdog is off.
pub fn watchdog_interval() -> Option<Duration> {
    watchdog_timeout().map(|timeout| timeout / 2)
}

/// `WATCHDOG=1`. Send only while the main loop is healthy, so that a hung loop gets restarted.
pub fn watchdog_ping() {
    send(&[NotifyState::Watchdog]);
}
