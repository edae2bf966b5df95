//! The writer thread: receives full buffers from the workers and writes them
//! to stdout or a file. SIGUSR1 (via [`AccessLogSink::reopen`]) reopens the
//! file, for log rotation.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::AccessLogTarget;

enum Output {
    Stdout(io::Stdout),
    File(File, PathBuf),
}

fn open(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

pub struct AccessLogSink {
    tx: Option<Sender<Vec<u8>>>,
    reopen: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AccessLogSink {
    /// Open the target (so a bad path fails at start-up) and start the
    /// writer thread.
    pub fn start(target: &AccessLogTarget) -> io::Result<Self> {
        let output = match target {
            AccessLogTarget::Stdout => Output::Stdout(io::stdout()),
            AccessLogTarget::File(p) => Output::File(open(p)?, p.clone()),
        };
        let (tx, rx) = channel::<Vec<u8>>();
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        let thread = std::thread::Builder::new()
            .name("ringway-log".into())
            .spawn(move || writer(rx, output, flag))?;
        Ok(AccessLogSink {
            tx: Some(tx),
            reopen,
            thread: Some(thread),
        })
    }

    /// A sender for one worker.
    pub fn sender(&self) -> Sender<Vec<u8>> {
        self.tx.clone().expect("sink is running")
    }

    /// Ask the writer to reopen its file (SIGUSR1).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
    }

    /// Wait until every worker's sender is gone and everything is written.
    pub fn finish(mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer(rx: Receiver<Vec<u8>>, mut output: Output, reopen: Arc<AtomicBool>) {
    loop {
        let batch = rx.recv_timeout(Duration::from_millis(500));
        if reopen.swap(false, Ordering::AcqRel) {
            if let Output::File(f, path) = &mut output {
                let _ = f.flush();
                match open(path) {
                    Ok(new) => *f = new,
                    Err(e) => tracing::error!("access log: cannot reopen {}: {e}", path.display()),
                }
            }
        }
        match batch {
            Ok(buf) => {
                let res = match &mut output {
                    Output::Stdout(s) => s.lock().write_all(&buf).and_then(|_| s.lock().flush()),
                    Output::File(f, _) => f.write_all(&buf),
                };
                if let Err(e) = res {
                    tracing::error!("access log: write failed: {e}");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Output::File(f, _) = &mut output {
        let _ = f.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reopens() {
        let dir = std::env::temp_dir().join(format!("ringway-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let sink = AccessLogSink::start(&AccessLogTarget::File(path.clone())).unwrap();
        let tx = sink.sender();
        tx.send(b"one\n".to_vec()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let rotated = dir.join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.reopen();
        std::thread::sleep(Duration::from_millis(700));
        tx.send(b"two\n".to_vec()).unwrap();
        drop(tx);
        sink.finish();
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
