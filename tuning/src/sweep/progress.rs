//! Progress of a sweep on stderr: a bar over every phase of every run
//! (warm-up, closed loop, fixed rate) when stderr is a terminal, one plain
//! line per run otherwise (logs, CI).

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The phases of one measured run.
pub const PHASES: u64 = 3;

pub enum Progress {
    Bar(ProgressBar),
    Lines,
}

impl Progress {
    /// `runs` measured runs of [`PHASES`] phases each.
    pub fn new(runs: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::Lines;
        }
        let bar = ProgressBar::with_draw_target(Some(runs * PHASES), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "[{elapsed_precise}] [{bar:30}] {pos}/{len} phases, eta {eta}  {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress::Bar(bar)
    }

    /// A run starts: `what` says which.
    pub fn run(&self, what: &str) {
        match self {
            Progress::Bar(b) => b.set_message(what.to_string()),
            Progress::Lines => eprintln!("ringway-tune sweep: {what}"),
        }
    }

    /// A phase of the current run starts (`warm-up`, `closed loop`, …).
    pub fn phase(&self, what: &str) {
        if let Progress::Bar(b) = self {
            let msg = b.message();
            let base = msg.split(" — ").next().unwrap_or("").to_string();
            b.set_message(format!("{base} — {what}"));
        }
    }

    /// A phase ended (or was skipped: a run that failed early ticks the
    /// phases it did not reach, so the bar still ends full).
    pub fn done(&self, phases: u64) {
        if let Progress::Bar(b) = self {
            b.inc(phases);
        }
    }

    /// A line that must stay visible (printed above the bar).
    pub fn note(&self, line: &str) {
        match self {
            Progress::Bar(b) => b.println(format!("ringway-tune sweep: {line}")),
            Progress::Lines => eprintln!("ringway-tune sweep: {line}"),
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}
