//! Process signals → run-loop events: SIGHUP asks for a reload; SIGTERM/SIGINT ask for a graceful
//! shutdown; a second SIGTERM/SIGINT, or SIGQUIT, asks to quit at once.
//!
//! Reload and shutdown requests travel on separate channels, and [`Signals::recv`] always looks
//! at the shutdown channel first, so no number of SIGHUPs can delay a shutdown. Reload requests
//! coalesce into at most one pending request (a capacity-1 channel): a burst of SIGHUPs yields one
//! reload, which reads the newest file anyway. The shutdown state is a `watch` value the drain
//! code can also observe through [`ShutdownWatch`].
//!
//! Keep the [`Signals`] value alive for the life of the process: tokio never restores the default
//! disposition, so once it is dropped SIGTERM is ignored.

use std::io;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What the run loop is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGHUP (or, merged by the caller, a configuration file change).
    Reload,
    /// `immediate = false`: drain and store progress within the deadline; `true`: exit now.
    Shutdown { immediate: bool },
}

/// How far shutdown has been requested; only ever moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShutdownState {
    Running,
    Graceful,
    Immediate,
}

/// A signal as the dispatcher sees it (also what [`SignalInjector`] sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSignal {
    Hangup,
    Terminate,
    Interrupt,
    Quit,
}

/// Turns raw signals into state: shared by the OS signal tasks and the injector.
#[derive(Debug)]
struct Dispatch {
    reload: mpsc::Sender<()>,
    shutdown: watch::Sender<ShutdownState>,
}

impl Dispatch {
    fn on(&self, raw: RawSignal) {
        match raw {
            RawSignal::Hangup => {
                // Full means a reload is already pending, which will read the newest file: the
                // request is merged into it. Closed means nobody listens any more.
                let _ = self.reload.try_send(());
            }
            RawSignal::Terminate | RawSignal::Interrupt => {
                self.shutdown.send_if_modified(|state| {
                    let next = match *state {
                        ShutdownState::Running => ShutdownState::Graceful,
                        ShutdownState::Graceful | ShutdownState::Immediate => {
                            ShutdownState::Immediate
                        }
                    };
                    let changed = next != *state;
                    *state = next;
                    changed
                });
            }
            RawSignal::Quit => {
                self.shutdown.send_if_modified(|state| {
                    let changed = *state != ShutdownState::Immediate;
                    *state = ShutdownState::Immediate;
                    changed
                });
            }
        }
    }
}

/// The run loop's view of signals. See the module documentation.
#[derive(Debug)]
pub struct Signals {
    reload: mpsc::Receiver<()>,
    shutdown: watch::Receiver<ShutdownState>,
    /// The furthest shutdown state already returned by `recv`.
    reported: ShutdownState,
    reload_open: bool,
    shutdown_open: bool,
    tasks: Vec<JoinHandle<()>>,
}

/// Feeds signals into a [`Signals`] made by [`Signals::manual`] (tests, an in-process harness, or
/// the run loop turning an internal fatal condition into a shutdown). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SignalInjector {
    dispatch: Arc<Dispatch>,
}

impl SignalInjector {
    pub fn send(&self, raw: RawSignal) {
        self.dispatch.on(raw);
    }
}

/// A read-only view of the shutdown state for code that drains (flows, the deadline logger).
#[derive(Debug, Clone)]
pub struct ShutdownWatch {
    state: watch::Receiver<ShutdownState>,
}

impl ShutdownWatch {
    pub fn state(&self) -> ShutdownState {
        *self.state.borrow()
    }

    /// Resolves once any shutdown was requested.
    pub async fn requested(&mut self) {
        self.reached(ShutdownState::Graceful).await
    }

    /// Resolves once an immediate exit was requested.
    pub async fn immediate(&mut self) {
        self.reached(ShutdownState::Immediate).await
    }

    async fn reached(&mut self, wanted: ShutdownState) {
        if self.state.wait_for(|state| *state >= wanted).await.is_err() {
            // Every sender is gone: nothing can request a shutdown any more.
            std::future::pending::<()>().await;
        }
    }
}

fn channels() -> (Arc<Dispatch>, Signals) {
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let (shutdown_tx, shutdown_rx) = watch::channel(ShutdownState::Running);
    let dispatch = Arc::new(Dispatch {
        reload: reload_tx,
        shutdown: shutdown_tx,
    });
    let signals = Signals {
        reload: reload_rx,
        shutdown: shutdown_rx,
        reported: ShutdownState::Running,
        reload_open: true,
        shutdown_open: true,
        tasks: Vec::new(),
    };
    (dispatch, signals)
}

impl Signals {
    /// Installs handlers for SIGHUP, SIGTERM, SIGINT and SIGQUIT. Must run inside a tokio runtime;
    /// install early (before connecting to clusters) so a SIGTERM during start-up is honoured.
    pub fn install() -> io::Result<Signals> {
        let (dispatch, mut signals) = channels();
        // Create every stream before spawning, so failures are reported here.
        let mut hangup = signal(SignalKind::hangup())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut quit = signal(SignalKind::quit())?;

        let reload_dispatch = dispatch.clone();
        signals.tasks.push(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                reload_dispatch.on(RawSignal::Hangup);
            }
        }));
        // A separate task: even if the reload side were slow, shutdown signals are seen at once.
        signals.tasks.push(tokio::spawn(async move {
            loop {
                let raw = tokio::select! {
                    Some(()) = terminate.recv() => RawSignal::Terminate,
                    Some(()) = interrupt.recv() => RawSignal::Interrupt,
                    Some(()) = quit.recv() => RawSignal::Quit,
                    else => break,
                };
                dispatch.on(raw);
            }
        }));
        Ok(signals)
    }

    /// No OS handlers: events come only from the returned injector.
    pub fn manual() -> (Signals, SignalInjector) {
        let (dispatch, signals) = channels();
        (signals, SignalInjector { dispatch })
    }

    /// The next event, shutdown first. Each shutdown step (graceful, immediate) is returned once;
    /// reloads keep coming (the caller decides to ignore them while shutting down).
    pub async fn recv(&mut self) -> Event {
        loop {
            if !self.reload_open && !self.shutdown_open {
                return std::future::pending().await;
            }
            tokio::select! {
                biased;
                changed = self.shutdown.changed(), if self.shutdown_open => {
                    if changed.is_err() {
                        self.shutdown_open = false;
                        continue;
                    }
                    let state = *self.shutdown.borrow_and_update();
                    if state > self.reported {
                        self.reported = state;
                        return Event::Shutdown {
                            immediate: state == ShutdownState::Immediate,
                        };
                    }
                }
                request = self.reload.recv(), if self.reload_open => {
                    match request {
                        Some(()) => return Event::Reload,
                        None => self.reload_open = false,
                    }
                }
            }
        }
    }

    pub fn shutdown_watch(&self) -> ShutdownWatch {
        ShutdownWatch {
            state: self.shutdown.clone(),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn next(signals: &mut Signals) -> Option<Event> {
        tokio::time::timeout(Duration::from_millis(200), signals.recv())
            .await
            .ok()
    }

    #[tokio::test]
    async fn a_flood_of_reloads_never_delays_shutdown_and_coalesces() {
        let (mut signals, injector) = Signals::manual();
        let flood = injector.clone();
        std::thread::spawn(move || {
            for _ in 0..100_000 {
                flood.send(RawSignal::Hangup);
            }
            flood.send(RawSignal::Terminate);
        })
        .join()
        .unwrap();
        assert_eq!(
            next(&mut signals).await,
            Some(Event::Shutdown { immediate: false }),
            "shutdown comes before the pending reload"
        );
        assert_eq!(next(&mut signals).await, Some(Event::Reload));
        assert_eq!(
            next(&mut signals).await,
            None,
            "100000 SIGHUPs were one reload"
        );
    }

    #[tokio::test]
    async fn shutdown_escalates_once_and_only_forward() {
        let (mut signals, injector) = Signals::manual();
        let mut watch = signals.shutdown_watch();
        assert_eq!(watch.state(), ShutdownState::Running);
        injector.send(RawSignal::Interrupt);
        assert_eq!(
            next(&mut signals).await,
            Some(Event::Shutdown { immediate: false })
        );
        tokio::time::timeout(Duration::from_secs(1), watch.requested())
            .await
            .unwrap();
        injector.send(RawSignal::Terminate);
        assert_eq!(
            next(&mut signals).await,
            Some(Event::Shutdown { immediate: true })
        );
        tokio::time::timeout(Duration::from_secs(1), watch.immediate())
            .await
            .unwrap();
        injector.send(RawSignal::Terminate);
        injector.send(RawSignal::Quit);
        assert_eq!(next(&mut signals).await, None, "nothing beyond immediate");
        assert_eq!(watch.state(), ShutdownState::Immediate);
    }

    #[tokio::test]
    async fn sigquit_is_immediate_at_once() {
        let (mut signals, injector) = Signals::manual();
        injector.send(RawSignal::Quit);
        assert_eq!(
            next(&mut signals).await,
            Some(Event::Shutdown { immediate: true })
        );
        // A SIGTERM after that changes nothing.
        injector.send(RawSignal::Terminate);
        assert_eq!(next(&mut signals).await, None);
    }

    #[tokio::test]
    async fn reloads_keep_coming_after_each_is_taken() {
        let (mut signals, injector) = Signals::manual();
        for _ in 0..3 {
            injector.send(RawSignal::Hangup);
            assert_eq!(next(&mut signals).await, Some(Event::Reload));
        }
        assert_eq!(next(&mut signals).await, None);
    }

    const CHILD_ENV: &str = "KAFKA_MIRRORD_TEST_SIGNALS_CHILD";

    /// Real signals go to a child process running `child_receives_real_signals`, so that this
    /// test binary keeps its default signal dispositions (Ctrl-C still stops `cargo test`).
    #[test]
    fn real_signals_in_a_child_process() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "runtime::signals::tests::child_receives_real_signals",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        );
        assert!(stdout.contains("child: shutdown seen during SIGHUP flood"));
    }

    #[test]
    fn child_receives_real_signals() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return; // only meaningful in the child process started above
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut signals = Signals::install().unwrap();
            let pid = std::process::id().to_string();
            let kill = |name: &str| {
                let status = std::process::Command::new("kill")
                    .args([format!("-{name}"), pid.clone()])
                    .status()
                    .unwrap();
                assert!(status.success());
            };
            let within = |seconds| Duration::from_secs(seconds);

            kill("HUP");
            let event = tokio::time::timeout(within(5), signals.recv()).await;
            assert_eq!(event.ok(), Some(Event::Reload));

            // A shell floods SIGHUP (bounded; it stops by itself when this process is gone).
            let mut flood = std::process::Command::new("sh")
                .args([
                    "-c",
                    "i=0; while [ $i -lt 200000 ] && kill -HUP $0 2>/dev/null; do i=$((i+1)); done",
                    &pid,
                ])
                .spawn()
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            kill("TERM");
            let shutdown = tokio::time::timeout(within(5), async {
                loop {
                    if let Event::Shutdown { immediate } = signals.recv().await {
                        return immediate;
                    }
                }
            })
            .await;
            assert_eq!(
                shutdown.ok(),
                Some(false),
                "graceful shutdown despite the flood"
            );
            println!("child: shutdown seen during SIGHUP flood");

            kill("TERM");
            let second = tokio::time::timeout(within(5), async {
                loop {
                    if let Event::Shutdown { immediate } = signals.recv().await {
                        return immediate;
                    }
                }
            })
            .await;
            assert_eq!(second.ok(), Some(true), "a second SIGTERM is immediate");
            let _ = flood.kill();
            let _ = flood.wait();
        });
    }
}
