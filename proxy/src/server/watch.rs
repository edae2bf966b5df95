//! `[reload] watch = true`: reload when the config file changes.
//!
//! A plain thread polls the file's modification time, size and content hash
//! every `interval` (default 1 s). Polling needs no inotify watch limits and
//! works for files replaced by rename (editors, config management, k8s
//! ConfigMaps). A change is reloaded once the file has been stable for one
//! interval, so a file caught half-written is not loaded.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::reload::Control;

/// What identifies a version of the file.
pub(super) fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some((meta.modified().ok()?, meta.len(), h.finish()))
}

/// Start the watcher thread; it ends when `stop` is set.
pub fn spawn(
    control: Arc<Control>,
    path: PathBuf,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // The version the running configuration came from, taken now (not when
    // the thread first runs, which could be after the file changed).
    let mut seen = fingerprint(&path);
    std::thread::Builder::new()
        .name("ringway-watch".into())
        .spawn(move || {
            let mut pending: Option<(std::time::SystemTime, u64, u64)> = None;
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(interval);
                let now = fingerprint(&path);
                if now == seen {
                    pending = None;
                    continue;
                }
                // Changed: wait until it is the same for one more interval.
                if pending != now {
                    pending = now;
                    continue;
                }
                seen = now;
                pending = None;
                tracing::info!(file = %path.display(), "config file changed: reloading");
                match control.reload() {
                    Ok(r) => println!("{r}"),
                    Err(e) => {
                        tracing::error!("reload of {} failed:\n{e}", path.display());
                        eprintln!("{e}");
                    }
                }
            }
        })
}
