//! Watches the properties file and the files it references (`${file:...}`, `${dir:...}`) and asks
//! for a reload when their content changed, once per burst of changes.
//!
//! Robust to the ways files get replaced:
//! - editors and config management write a temporary file and rename it over the original, which
//!   ends a watch on the file itself: we watch the **parent directories** instead (and, for a
//!   symlink, the directory of its target), and filter events by file name;
//! - Kubernetes-style `..data` symlink swaps: events on `..`-prefixed names count too, and the
//!   symlink targets are re-resolved after every burst;
//! - a directory that is missing or was re-created: its watch is re-added after every burst and
//!   retried every few seconds while it fails.
//!
//! Events only arm a timer; when no event came for the debounce period (~1 s), the files are
//! fingerprinted (content hash, or size/mtime/inode for large files) and compared with the last
//! fingerprints: only a real change sends a request, so `touch`, reads, or unrelated files in the
//! same directory cause no reload. A stream of events that never goes quiet still fires after
//! [`MAX_DELAY_FACTOR`] debounce periods. The request channel has capacity 1, so requests the run
//! loop has not taken yet coalesce into one.
//!
//! Fingerprints are updated when a change is reported, not when the run loop reads the file, so a
//! change made while a reload is in progress is reported again afterwards (possibly one reload too
//! many, never one too few). Start the watcher on the properties file *before* the first load.
//!
//! The watcher runs on its own thread (notify's callback thread feeds it); it needs no runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The debounce used by the daemon.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_secs(1);

/// A burst of events longer than this many debounce periods is checked anyway.
pub const MAX_DELAY_FACTOR: u32 = 10;

/// How often directories that could not be watched are retried.
const RETRY_WATCH: Duration = Duration::from_secs(5);

/// Files bigger than this are fingerprinted by metadata instead of content.
const HASH_LIMIT: u64 = 4 * 1024 * 1024;

/// Handle of the watcher thread; dropping it stops the thread.
#[derive(Debug)]
pub struct ConfigWatcher {
    commands: std_mpsc::Sender<Message>,
    changes_reported: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
enum Message {
    Fs(notify::Result<notify::Event>),
    SetPaths(Vec<PathBuf>),
    Stop,
}

impl ConfigWatcher {
    /// Watches `paths` (the properties file first, then `Config::referenced_files`). Fails only
    /// when the OS file watching facility cannot be set up; missing directories are retried.
    pub fn start(
        paths: Vec<PathBuf>,
        debounce: Duration,
    ) -> notify::Result<(ConfigWatcher, mpsc::Receiver<()>)> {
        let (commands, inbox) = std_mpsc::channel();
        let from_notify = commands.clone();
        let fs_watcher = notify::recommended_watcher(move |event| {
            let _ = from_notify.send(Message::Fs(event));
        })?;
        let (requests, receiver) = mpsc::channel(1);
        let changes_reported = Arc::new(AtomicU64::new(0));
        let mut state = State {
            fs_watcher,
            requests,
            debounce,
            paths: Vec::new(),
            fingerprints: BTreeMap::new(),
            watched: BTreeMap::new(),
            failed: BTreeSet::new(),
            changes_reported: changes_reported.clone(),
        };
        state.set_paths(paths);
        let thread = std::thread::Builder::new()
            .name("config-watcher".into())
            .spawn(move || state.run(inbox))
            .map_err(notify::Error::io)?;
        Ok((
            ConfigWatcher {
                commands,
                changes_reported,
                thread: Some(thread),
            },
            receiver,
        ))
    }

    /// Replaces the watched files after a reload (the new config may reference other files).
    /// Files already watched keep their fingerprints; new ones are fingerprinted now.
    pub fn set_paths(&self, paths: Vec<PathBuf>) {
        let _ = self.commands.send(Message::SetPaths(paths));
    }

    /// How many changes were reported so far (including ones merged into a pending request).
    pub fn changes_reported(&self) -> u64 {
        self.changes_reported.load(Ordering::Relaxed)
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        let _ = self.commands.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a file looked like at the last check.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Missing,
    Content { len: u64, hash: u64 },
    Metadata { len: u64, mtime_ns: i128, ino: u64 },
    Unreadable(String),
}

fn fingerprint(path: &Path) -> Fingerprint {
    // Follows symlinks: the content is what counts.
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Fingerprint::Missing,
        Err(error) => return Fingerprint::Unreadable(error.kind().to_string()),
    };
    if metadata.len() > HASH_LIMIT || !metadata.is_file() {
        return Fingerprint::Metadata {
            len: metadata.len(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            ino: metadata.ino(),
        };
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut hasher = DefaultHasher::new();
            bytes.hash(&mut hasher);
            Fingerprint::Content {
                len: bytes.len() as u64,
                hash: hasher.finish(),
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Fingerprint::Missing,
        Err(error) => Fingerprint::Unreadable(error.kind().to_string()),
    }
}

/// The watcher thread's state.
struct State {
    fs_watcher: notify::RecommendedWatcher,
    requests: mpsc::Sender<()>,
    debounce: Duration,
    paths: Vec<PathBuf>,
    fingerprints: BTreeMap<PathBuf, Fingerprint>,
    /// Directory → file names in it that matter (the watched paths and their symlink targets).
    watched: BTreeMap<PathBuf, BTreeSet<std::ffi::OsString>>,
    /// Directories whose watch could not be added (missing, permissions); retried.
    failed: BTreeSet<PathBuf>,
    changes_reported: Arc<AtomicU64>,
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn split(path: &Path) -> Option<(PathBuf, std::ffi::OsString)> {
    let name = path.file_name()?.to_os_string();
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some((dir, name))
}

impl State {
    fn run(mut self, inbox: std_mpsc::Receiver<Message>) {
        // When the current burst of events started / is considered over.
        let mut burst: Option<(Instant, Instant)> = None;
        loop {
            let now = Instant::now();
            let timeout = match burst {
                Some((first, last)) => {
                    let quiet_at = last + self.debounce;
                    let cap = first + self.debounce * MAX_DELAY_FACTOR;
                    Some(quiet_at.min(cap).saturating_duration_since(now))
                }
                None if !self.failed.is_empty() => Some(RETRY_WATCH),
                None => None,
            };
            let message = match timeout {
                Some(timeout) => inbox.recv_timeout(timeout),
                None => inbox
                    .recv()
                    .map_err(|_| std_mpsc::RecvTimeoutError::Disconnected),
            };
            match message {
                Ok(Message::Fs(Ok(event))) => {
                    if self.is_relevant(&event) {
                        let now = Instant::now();
                        burst = Some(burst.map_or((now, now), |(first, _)| (first, now)));
                    }
                }
                Ok(Message::Fs(Err(error))) => {
                    // E.g. the kernel's event queue overflowed: check everything soon.
                    warn!("file watching reported an error: {error}; checking the files");
                    let now = Instant::now();
                    burst = Some(burst.map_or((now, now), |(first, _)| (first, now)));
                }
                Ok(Message::SetPaths(paths)) => self.set_paths(paths),
                Ok(Message::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    let quiet = burst.is_some_and(|(first, last)| {
                        let now = Instant::now();
                        now >= last + self.debounce
                            || now >= first + self.debounce * MAX_DELAY_FACTOR
                    });
                    if quiet {
                        burst = None;
                        self.rewatch();
                        if !self.check() {
                            return; // nobody listens any more
                        }
                    } else if burst.is_none() && !self.failed.is_empty() {
                        let before = self.failed.len();
                        self.rewatch();
                        if self.failed.len() < before && !self.check() {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn is_relevant(&self, event: &notify::Event) -> bool {
        if event.need_rescan() {
            return true;
        }
        // Opening and reading (including our own fingerprinting) changes nothing; a completed
        // write also shows up as a modification.
        if let EventKind::Access(_) = event.kind {
            return false;
        }
        event.paths.iter().any(|path| {
            if self.watched.contains_key(path) {
                return true; // the directory itself was removed or moved
            }
            let Some((dir, name)) = split(path) else {
                return false;
            };
            match self.watched.get(&dir) {
                Some(names) => names.contains(&name) || name.to_string_lossy().starts_with(".."),
                None => false,
            }
        })
    }

    fn set_paths(&mut self, paths: Vec<PathBuf>) {
        let paths: Vec<PathBuf> = paths.iter().map(|p| absolute(p)).collect();
        let kept: BTreeMap<PathBuf, Fingerprint> = paths
            .iter()
            .map(|path| {
                let fp = self
                    .fingerprints
                    .get(path)
                    .cloned()
                    .unwrap_or_else(|| fingerprint(path));
                (path.clone(), fp)
            })
            .collect();
        self.fingerprints = kept;
        self.paths = paths;
        self.rewatch();
    }

    /// Recomputes which directories to watch (symlink targets may have moved) and adds or
    /// removes watches accordingly; re-adds every watch, which is harmless for live ones and
    /// revives ones that died with their directory.
    fn rewatch(&mut self) {
        let mut wanted: BTreeMap<PathBuf, BTreeSet<std::ffi::OsString>> = BTreeMap::new();
        for path in &self.paths {
            let mut candidates = vec![path.clone()];
            if let Ok(real) = std::fs::canonicalize(path) {
                if &real != path {
                    candidates.push(real);
                }
            }
            for candidate in candidates {
                if let Some((dir, name)) = split(&candidate) {
                    wanted.entry(dir).or_default().insert(name);
                }
            }
        }
        for dir in self.watched.keys() {
            if !wanted.contains_key(dir) {
                let _ = self.fs_watcher.unwatch(dir);
            }
        }
        let previously_failed = std::mem::take(&mut self.failed);
        for dir in wanted.keys() {
            if let Err(error) = self.fs_watcher.watch(dir, RecursiveMode::NonRecursive) {
                // Changes there go unseen until the watch works: say so once, retry quietly.
                if !previously_failed.contains(dir) {
                    warn!(
                        dir = %dir.display(),
                        "cannot watch the directory (retrying every {} s): {error}",
                        RETRY_WATCH.as_secs()
                    );
                }
                self.failed.insert(dir.clone());
            }
        }
        self.watched = wanted;
    }

    /// Compares fingerprints; reports a change. Returns false when the receiver is gone.
    fn check(&mut self) -> bool {
        let mut changed = Vec::new();
        for (path, previous) in self.fingerprints.iter_mut() {
            let current = fingerprint(path);
            if &current != previous {
                changed.push(path.display().to_string());
                *previous = current;
            }
        }
        if changed.is_empty() {
            return !self.requests.is_closed();
        }
        info!(files = ?changed, "configuration files changed; requesting a reload");
        self.changes_reported.fetch_add(1, Ordering::Relaxed);
        match self.requests.try_send(()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(())) => true,
            Err(mpsc::error::TrySendError::Closed(())) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(500);

    /// Waits for one request; then makes sure no second one follows within a few debounce periods.
    async fn expect_one(watcher: &ConfigWatcher, rx: &mut mpsc::Receiver<()>, what: &str) {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "{what}: no reload request");
        expect_none(rx, what).await;
        assert_eq!(watcher.changes_reported(), 1, "{what}: one change reported");
    }

    async fn expect_none(rx: &mut mpsc::Receiver<()>, what: &str) {
        let extra = tokio::time::timeout(DEBOUNCE * 4, rx.recv()).await;
        assert!(extra.is_err(), "{what}: unexpected extra reload request");
    }

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    #[tokio::test]
    async fn a_write_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mm2.properties");
        write(&file, "clusters=A\n");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();
        write(&file, "clusters=A, B\n");
        expect_one(&watcher, &mut rx, "write").await;
    }

    #[tokio::test]
    async fn a_burst_of_20_writes_is_one_request() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mm2.properties");
        write(&file, "v=0\n");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();
        for i in 1..=20 {
            write(&file, &format!("v={i}\n"));
        }
        expect_one(&watcher, &mut rx, "burst").await;
    }

    #[tokio::test]
    async fn rename_over_the_file_is_reported_and_watching_continues() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mm2.properties");
        write(&file, "v=1\n");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();
        let temp = dir.path().join(".mm2.properties.tmp123");
        write(&temp, "v=2\n");
        fs::rename(&temp, &file).unwrap();
        expect_one(&watcher, &mut rx, "rename").await;
        // The new file (new inode) is still watched.
        write(&file, "v=3\n");
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "write after rename");
        assert_eq!(watcher.changes_reported(), 2);
    }

    #[tokio::test]
    async fn touch_and_unrelated_files_are_not_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mm2.properties");
        write(&file, "v=1\n");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();
        // Same content rewritten (mtime changes), a read, and another file in the directory.
        write(&file, "v=1\n");
        let _ = fs::read(&file).unwrap();
        write(&dir.path().join("other.properties"), "x=1\n");
        expect_none(&mut rx, "no content change").await;
        assert_eq!(watcher.changes_reported(), 0);
    }

    #[tokio::test]
    async fn referenced_secret_in_another_directory_and_set_paths() {
        let config_dir = tempfile::tempdir().unwrap();
        let secret_dir = tempfile::tempdir().unwrap();
        let file = config_dir.path().join("mm2.properties");
        let secret = secret_dir.path().join("secrets.properties");
        let later = secret_dir.path().join("later.properties");
        write(&file, "x=${file:secrets}\n");
        write(&secret, "password=old\n");
        write(&later, "a=1\n");
        let (watcher, mut rx) =
            ConfigWatcher::start(vec![file.clone(), secret.clone()], DEBOUNCE).unwrap();
        write(&secret, "password=new\n");
        expect_one(&watcher, &mut rx, "secret").await;

        // After a reload the config references another file instead of the secret.
        watcher.set_paths(vec![file.clone(), later.clone()]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        write(&secret, "password=newer\n");
        expect_none(&mut rx, "no longer referenced").await;
        write(&later, "a=2\n");
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "newly referenced file");
    }

    #[tokio::test]
    async fn delete_then_recreate_like_some_editors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mm2.properties");
        write(&file, "v=1\n");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();
        fs::remove_file(&file).unwrap();
        write(&file, "v=2\n");
        expect_one(&watcher, &mut rx, "delete + create").await;
    }

    #[tokio::test]
    async fn kubernetes_style_symlink_swap() {
        // config.properties -> ..data/config.properties, ..data -> ..v1; an update creates ..v2
        // and renames a new ..data symlink over the old one.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("..v1")).unwrap();
        write(&root.join("..v1/config.properties"), "v=1\n");
        std::os::unix::fs::symlink("..v1", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/config.properties", root.join("config.properties"))
            .unwrap();
        let file = root.join("config.properties");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();

        fs::create_dir(root.join("..v2")).unwrap();
        write(&root.join("..v2/config.properties"), "v=2\n");
        std::os::unix::fs::symlink("..v2", root.join("..data_tmp")).unwrap();
        fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        fs::remove_dir_all(root.join("..v1")).unwrap();
        expect_one(&watcher, &mut rx, "symlink swap").await;
        assert_eq!(fs::read_to_string(&file).unwrap(), "v=2\n");
    }

    #[tokio::test]
    async fn a_missing_directory_is_watched_once_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("later");
        let file = sub.join("secret.properties");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();
        fs::create_dir(&sub).unwrap();
        write(&file, "password=x\n");
        // Picked up by the retry (every few seconds), which then sees a new file.
        let got = tokio::time::timeout(RETRY_WATCH * 3, rx.recv()).await;
        assert!(
            matches!(got, Ok(Some(()))),
            "file in a directory created later"
        );
        assert_eq!(watcher.changes_reported(), 1);
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mm2.properties");
        write(&file, "v=1\n");
        let (watcher, mut rx) = ConfigWatcher::start(vec![file.clone()], DEBOUNCE).unwrap();
        drop(watcher); // joins the thread
        assert_eq!(rx.recv().await, None, "the request channel closes");
    }
}
