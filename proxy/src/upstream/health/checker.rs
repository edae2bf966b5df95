//! The `ringway-health` thread: a small monoio runtime (epoll driver, off
//! the workers' cores' rings) that runs every due check as its own task,
//! so a slow endpoint delays only its own check.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{check, registry};
use crate::config::Config;

/// How often the thread looks for due checks.
const TICK: Duration = Duration::from_millis(50);
/// How often cells of endpoints that left the configuration are dropped.
const SWEEP: Duration = Duration::from_secs(10);

/// Where the checker reads the configuration in force.
pub type CurrentConfig = Arc<dyn Fn() -> Arc<Config> + Send + Sync>;

/// Start the checker; it ends when `stop` is set.
pub fn start(current: CurrentConfig, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringway-health".into())
        .spawn(move || {
            let built = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build();
            match built {
                Ok(mut rt) => rt.block_on(run(current, stop)),
                Err(e) => tracing::error!("health checks cannot run: {e}"),
            }
        })
}

/// When an endpoint is checked next, and whether a check is running.
struct Slot {
    next: Instant,
    running: Rc<Cell<bool>>,
}

async fn run(current: CurrentConfig, stop: Arc<AtomicBool>) {
    let mut slots: HashMap<(String, String), Slot> = HashMap::new();
    let mut rng = Rng::new();
    let mut last_sweep = Instant::now();
    while !stop.load(Ordering::Acquire) {
        let config = current();
        let now = Instant::now();
        for (ci, cluster) in config.clusters.iter().enumerate() {
            let Some(hc) = &cluster.health_check else {
                continue;
            };
            let Some(health) = registry().cluster(cluster) else {
                continue;
            };
            for (ei, endpoint) in cluster.endpoints.iter().enumerate() {
                let key = (cluster.name.clone(), endpoint.label.clone());
                let slot = slots.entry(key).or_insert_with(|| Slot {
                    // First checks spread over one interval.
                    next: now + rng.jitter(hc.interval),
                    running: Rc::new(Cell::new(false)),
                });
                if slot.running.get() || now < slot.next {
                    continue;
                }
                slot.next = now + hc.interval + rng.jitter(hc.jitter);
                slot.running.set(true);
                let running = slot.running.clone();
                let (config, cell) = (config.clone(), health.cells[ei].clone());
                monoio::spawn(async move {
                    let cluster = &config.clusters[ci];
                    let endpoint = &cluster.endpoints[ei];
                    let hc = cluster.health_check.as_ref().expect("checked above");
                    let result = check::run(cluster, endpoint).await;
                    let (passed, status) = match &result {
                        Ok(s) => (hc.expects(*s), *s),
                        Err(_) => (false, 0),
                    };
                    if let Some(up) =
                        cell.record(passed, status, hc.healthy_threshold, hc.unhealthy_threshold)
                    {
                        let why = match &result {
                            Ok(s) => format!("status {s}"),
                            Err(e) => e.clone(),
                        };
                        if up {
                            tracing::info!(cluster = %cluster.name, endpoint = %endpoint.label, "health check: endpoint healthy again ({why})");
                        } else {
                            tracing::warn!(cluster = %cluster.name, endpoint = %endpoint.label, "health check: endpoint unhealthy ({why})");
                        }
                    }
                    running.set(false);
                });
            }
        }
        if last_sweep.elapsed() >= SWEEP {
            registry().retain(&config);
            slots.retain(|(c, e), _| {
                config.clusters.iter().any(|k| {
                    k.name == *c
                        && k.health_check.is_some()
                        && k.endpoints.iter().any(|x| x.label == *e)
                })
            });
            last_sweep = Instant::now();
        }
        drop(config);
        monoio::time::sleep(TICK).await;
    }
}

/// xorshift64*: jitter only, not for anything secret.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Rng(seed | 1)
    }

    /// Uniform in `[0, max)`.
    fn jitter(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let nanos = max.as_nanos() as u64;
        if nanos == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(r % nanos)
        }
    }
}
