use std::path::PathBuf;
use std::time::Duration;

use super::verdict::decide;
use super::{baseline, parse_duration, tuned_text, variants, Run, Sample, Sweep, Variant};
use crate::probe::{FixedProbe, RingFlag};

fn variant(workers: u32, entries: u32, flags: &[&str]) -> Variant {
    Variant {
        workers,
        ring_entries: entries,
        flags: flags.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn tuned_file_replaces_only_the_swept_keys() {
    let original = "# my proxy\n[runtime]\nworkers = \"auto\"   # all cores\nring_flags = [\n  \"single_issuer\",\n  \"coop_taskrun\",\n]\nlog_level = \"info\"\n\n[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:8080\"\n";
    let v = variant(2, 256, &["single_issuer", "defer_taskrun"]);
    let out = tuned_text(original, &v);
    assert_eq!(
        out,
        "# my proxy\n[runtime]\nworkers = 2   # ringway-tune sweep\nring_flags = [\"single_issuer\", \"defer_taskrun\"]   # ringway-tune sweep\nlog_level = \"info\"\nring_entries = 256   # ringway-tune sweep\n\n[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:8080\"\n"
    );
    let t: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(baseline(&t, 9).unwrap(), v);
    // No [runtime]: one is appended.
    let out = tuned_text("[[listener]]\nname = \"a\"\n", &variant(1, 1024, &[]));
    let t: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(baseline(&t, 9).unwrap(), variant(1, 1024, &[]));
    assert!(out.starts_with("[[listener]]\nname = \"a\"\n\n# ringway-tune sweep\n[runtime]\n"));
}

#[test]
fn baseline_defaults_and_variants() {
    let t: toml::Table = toml::from_str("[runtime]\nworkers = \"auto\"\n").unwrap();
    let base = baseline(&t, 3).unwrap();
    assert_eq!(base, variant(3, 1024, &["single_issuer", "coop_taskrun"]));
    // The kernel refuses DEFER_TASKRUN: no variant asks for it.
    let probe = FixedProbe {
        refused: vec![RingFlag::DeferTaskrun],
        ..FixedProbe::default()
    };
    let vs = variants(&base, 1, true, &probe);
    assert_eq!(vs[0], base);
    assert!(vs
        .iter()
        .all(|v| !v.flags.contains(&"defer_taskrun".to_string())));
    assert_eq!(
        vs[1..],
        [
            variant(1, 256, &["single_issuer", "coop_taskrun"]),
            variant(1, 256, &[]),
            variant(1, 1024, &["single_issuer", "coop_taskrun"]),
            variant(1, 1024, &[]),
        ]
    );
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
    assert!(parse_duration("3").is_err());
}

fn run(variant: usize, cpu: f64, errors: u64) -> Run {
    let s = Sample {
        rps: 1000.0,
        p99_us: 900,
        errors,
        cpu_us_per_req: cpu,
    };
    Run {
        variant,
        closed: Some(s),
        fixed: Some(s),
        error: None,
    }
}

fn sweep(runs: Vec<Run>) -> Sweep {
    Sweep {
        config: PathBuf::from("ringway.toml"),
        variants: vec![
            variant(1, 1024, &["single_issuer", "coop_taskrun"]),
            variant(1, 256, &["single_issuer", "coop_taskrun"]),
            variant(1, 256, &[]),
        ],
        baseline: 0,
        runs,
        rate: 1000,
        duration: Duration::from_secs(1),
        reps: 2,
        connections: 50,
        ringway_cores: vec![1],
        client_cores: vec![0],
        ringway_bin: PathBuf::from("ringway"),
        kernel: "6.8".into(),
        notes: vec![],
    }
}

#[test]
fn a_clear_winner_is_chosen() {
    // #1 is 20 µs/req, the current settings 30 ± 1: beyond the noise.
    let s = sweep(vec![
        run(0, 30.0, 0),
        run(1, 20.0, 0),
        run(2, 25.0, 0),
        run(0, 31.0, 0),
        run(1, 20.5, 0),
        run(2, 40.0, 1),
    ]);
    let v = decide(&s);
    assert_eq!((v.best, v.chosen), (Some(1), 1));
    assert!(!v.stats[2].eligible);
    let md = super::verdict::markdown(&s, &v);
    assert!(md.contains("**Objective**"), "{md}");
    assert!(md.contains("#1 (workers 1, ring_entries 256, ring_flags [single_issuer, coop_taskrun]) beats the current settings"), "{md}");
    assert!(md.contains("excluded: 1 failed requests"), "{md}");
}

#[test]
fn within_noise_keeps_the_current_settings() {
    // #1's median is 1 µs better, but the current settings spread over 4.
    let s = sweep(vec![
        run(0, 28.0, 0),
        run(1, 27.0, 0),
        run(2, 35.0, 0),
        run(0, 32.0, 0),
        run(1, 29.0, 0),
        run(2, 36.0, 0),
    ]);
    let v = decide(&s);
    assert_eq!(v.best, Some(1));
    assert_eq!(v.chosen, 0);
    assert_eq!(v.within_noise, vec![0]);
    let md = super::verdict::markdown(&s, &v);
    assert!(
        md.contains("less than the measured run-to-run noise"),
        "{md}"
    );
}

#[test]
fn charts_have_one_bar_per_setting_and_escaped_labels() {
    let mut s = sweep(vec![
        run(0, 30.0, 0),
        run(1, 20.0, 0),
        run(2, 25.0, 0),
        run(0, 31.0, 0),
        run(1, 20.5, 0),
    ]);
    // A label with characters XML must escape.
    s.variants[2].flags = vec!["a<b>&\"c\"".into()];
    let v = decide(&s);
    let charts = super::chart::charts(&s, &v);
    let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ringway-tune-sweep-throughput.svg",
            "ringway-tune-sweep-p99.svg",
            "ringway-tune-sweep-cpu.svg"
        ]
    );
    for (name, svg) in &charts {
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{name}"
        );
        assert!(svg.trim_end().ends_with("</svg>"), "{name}");
        assert_eq!(svg.matches("<rect").count(), 3, "{name}: {svg}");
        assert_eq!(svg.matches("<rect").count(), svg.matches("</rect>").count());
        assert!(svg.contains("a&lt;b&gt;&amp;&quot;c&quot;"), "{name}");
        assert!(!svg.contains("a<b>"), "{name}");
        // Every tag opened is closed: as many `<` as `>`.
        assert_eq!(svg.matches('<').count(), svg.matches('>').count(), "{name}");
    }
    // The CPU chart: #1 is chosen (red); whiskers from 20 to 20.5.
    let cpu = &charts[2].1;
    assert!(cpu.contains("#d62728"), "{cpu}");
    assert!(
        cpu.contains("20.2 CPU µs/request (min 20.0, max 20.5)"),
        "{cpu}"
    );
    let md = super::verdict::markdown(&s, &v);
    assert!(
        md.contains("[`ringway-tune-sweep-cpu.svg`](ringway-tune-sweep-cpu.svg)"),
        "{md}"
    );
}
