//! Stapled OCSP responses kept fresh: a plain thread re-reads every
//! listener's `tls.ocsp` file when its modification time changes (checked
//! every `interval`) and swaps the new response into the certificate that
//! handshakes load. An unreadable or empty file keeps the last good
//! response and is reported once per change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::stats::StatsRegistry;

/// How often the OCSP files are looked at.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Start the refresher; it ends when `stop` is set. It reads the listeners
/// of the current configuration generation each round, so a reload that
/// adds or removes OCSP files is followed.
pub fn spawn(
    registry: Arc<StatsRegistry>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringway-ocsp".into())
        .spawn(move || {
            let mut last_error: Option<String> = None;
            while !stop.load(Ordering::Acquire) {
                let config = registry.load().config.clone();
                for l in &config.listeners {
                    for key in &l.ocsp {
                        match key.refresh_ocsp() {
                            Ok(true) => tracing::info!(
                                listener = %l.name,
                                file = ?key.ocsp_file,
                                "new OCSP response stapled"
                            ),
                            Ok(false) => {}
                            Err(e) => {
                                if last_error.as_deref() != Some(e.as_str()) {
                                    tracing::warn!(listener = %l.name, "OCSP response not updated: {e}");
                                    last_error = Some(e);
                                }
                            }
                        }
                    }
                }
                // Sleep in short steps so a shutdown is not held up.
                let mut slept = Duration::ZERO;
                while slept < interval && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                    slept += Duration::from_millis(100);
                }
            }
        })
}
