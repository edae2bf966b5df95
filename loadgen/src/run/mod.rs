//! `ringload run`: start the workers, show progress, merge their results
//! and print the report.

pub mod client;
pub mod closed_loop;
pub mod open_loop;
pub mod report;
pub mod request;
pub mod response;
pub mod stats;
pub mod tls;
pub mod worker;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{RunConfig, Stop};
use crate::runtime::{self, DriverUsed};
use report::Summary;
use stats::{new_histogram, WorkerStats};
use worker::{Ctx, Interval, Plan, ProgressSlot, WorkerOutput};

/// Run the benchmark; returns the exit code.
pub fn run(cfg: RunConfig) -> i32 {
    match run_inner(cfg) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("ringload: {message}");
            1
        }
    }
}

fn run_inner(cfg: RunConfig) -> Result<i32, String> {
    let addr = cfg.target.resolve()?;
    let tls = match &cfg.tls {
        None => None,
        Some(trust) => Some((
            tls::client_config(trust, cfg.tls_resumption, cfg.client_identity.as_ref())?,
            tls::server_name(&cfg.target.host)?,
        )),
    };
    let request = request::serialize(&cfg);
    let shares = worker::shares(
        cfg.connections,
        cfg.workers,
        match cfg.stop {
            Stop::Requests(n) => Some(n),
            Stop::After(_) => None,
        },
    );
    let workers = cfg.workers;
    let plan = Arc::new(Plan {
        cfg,
        addr,
        request,
        tls,
    });
    let cfg = &plan.cfg;
    let progress: Arc<[ProgressSlot]> = (0..workers).map(|_| ProgressSlot::default()).collect();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<DriverUsed, String>>();
    let (hdr_tx, hdr_rx) = mpsc::channel::<Interval>();
    let mut start_txs = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    runtime::catch_ctrl_c();

    for (index, share) in shares.into_iter().enumerate() {
        let (start_tx, start_rx) = mpsc::channel::<Option<Instant>>();
        start_txs.push(start_tx);
        let plan = plan.clone();
        let progress = progress.clone();
        let ready_tx = ready_tx.clone();
        let hdr = plan.cfg.hdr_log.is_some().then(|| hdr_tx.clone());
        let core = runtime::core_for(index, plan.cfg.cores.as_deref());
        let thread = std::thread::Builder::new()
            .name(format!("ringload-{index}"))
            .spawn(move || -> Option<WorkerOutput> {
                runtime::pin_to(core);
                let driver = plan.cfg.driver;
                let entries = plan.cfg.ring_entries;
                runtime::run_on_driver(
                    driver,
                    entries,
                    move || async move {
                        // Wait for every worker's runtime before starting.
                        let start = start_rx.recv().ok().flatten()?;
                        let with_hdr = hdr.is_some();
                        let ctx = Rc::new(Ctx::new(plan, &share, start, with_hdr));
                        Some(worker::worker_main(ctx, share, progress, index, hdr).await)
                    },
                    |used| {
                        let _ = ready_tx.send(used);
                    },
                )
                .flatten()
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        threads.push(thread);
    }
    drop(ready_tx);
    drop(hdr_tx);

    let mut drivers = Vec::with_capacity(workers);
    let mut failure = None;
    for _ in 0..workers {
        match ready_rx.recv() {
            Ok(Ok(d)) => drivers.push(d),
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a worker thread died while starting".into()),
        }
    }
    let started_wall = SystemTime::now();
    let start = Instant::now();
    for tx in &start_txs {
        let _ = tx.send(if failure.is_none() { Some(start) } else { None });
    }
    if let Some(e) = failure {
        for t in threads {
            let _ = t.join();
        }
        return Err(e);
    }
    let measure_start = start + cfg.warmup;

    let bar = progress_bar(cfg);
    let mut intervals: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    let collect = |intervals: &mut BTreeMap<u64, Histogram<u64>>, i: Interval| {
        intervals
            .entry(i.index)
            .or_insert_with(new_histogram)
            .add(&i.histogram)
            .expect("equal histogram bounds");
    };
    let done = |p: &ProgressSlot| p.finished.load(std::sync::atomic::Ordering::Acquire);
    while !progress.iter().all(done) {
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(i) = hdr_rx.try_recv() {
            collect(&mut intervals, i);
        }
        if let Some(bar) = &bar {
            update_bar(bar, cfg, &progress, start, measure_start);
        }
        // A worker thread that ended without finishing has died.
        if progress
            .iter()
            .zip(&threads)
            .any(|(p, t)| t.is_finished() && !done(p))
        {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let mut total = WorkerStats::default();
    let mut end = measure_start;
    for t in threads {
        match t.join() {
            Ok(Some(out)) => {
                total.merge(&out.stats);
                end = end.max(out.end);
            }
            _ => return Err("a worker thread failed".into()),
        }
    }
    for i in hdr_rx.try_iter() {
        collect(&mut intervals, i);
    }
    let duration = end.saturating_duration_since(measure_start);

    let summary = Summary {
        url: cfg.url.clone(),
        method: cfg.method.clone(),
        connections: cfg.connections,
        workers,
        pipeline: cfg.pipeline,
        rate: cfg.rate,
        driver: describe_drivers(&drivers),
        planned: match cfg.stop {
            Stop::After(d) => format!("{} test", crate::units::format_duration(d)),
            Stop::Requests(n) => format!("{n} requests"),
        },
        duration,
        interrupted: runtime::interrupted(),
        stats: total,
    };
    if let Some(path) = &cfg.hdr_log {
        let started = started_wall + cfg.warmup;
        report::write_hdr_log(path, started, &intervals, duration, worker::HDR_INTERVAL)?;
    }
    if cfg.json {
        println!("{}", summary.json_text());
    } else {
        print!("{}", summary.text());
    }
    let failed = summary.stats.responses == 0 && summary.stats.error_total() > 0;
    Ok(if failed { 1 } else { 0 })
}

fn describe_drivers(drivers: &[DriverUsed]) -> String {
    let first = drivers.first().map(|d| d.to_string()).unwrap_or_default();
    if drivers.iter().all(|d| d.to_string() == first) {
        first
    } else {
        drivers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// A live progress line on stderr, only when it is a terminal.
fn progress_bar(cfg: &RunConfig) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let (len, template) = match cfg.stop {
        Stop::After(d) => (
            (cfg.warmup + d).as_millis() as u64,
            "[{elapsed_precise}] [{bar:20}] {msg}",
        ),
        Stop::Requests(n) => (
            n,
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}",
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

fn update_bar(
    bar: &ProgressBar,
    cfg: &RunConfig,
    progress: &[ProgressSlot],
    start: Instant,
    measure_start: Instant,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let done: u64 = progress.iter().map(|p| p.done.load(Relaxed)).sum();
    let errors: u64 = progress.iter().map(|p| p.errors.load(Relaxed)).sum();
    let now = Instant::now();
    match cfg.stop {
        Stop::After(_) => bar.set_position(now.duration_since(start).as_millis() as u64),
        Stop::Requests(_) => bar.set_position(done),
    }
    if now < measure_start {
        bar.set_message("warming up");
    } else {
        let secs = now.duration_since(measure_start).as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        bar.set_message(match cfg.stop {
            Stop::After(_) => format!("{done} req, {rate:.0} req/s, {errors} err"),
            Stop::Requests(_) => format!("{rate:.0} req/s, {errors} err"),
        });
    }
}
