use std::path::PathBuf;
use std::time::Duration;

use super::verdict::{decide, Objective};
use super::{
    baseline, parse_duration, run_config, tuned_text, variants, Run, Sample, Sweep, Variant,
};
use crate::probe::{FixedProbe, RingFlag};

fn variant(workers: u32, entries: u32, flags: &[&str]) -> Variant {
    Variant {
        workers,
        ring_entries: entries,
        flags: flags.iter().map(|s| s.to_string()).collect(),
        sqpoll_idle: None,
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
        objective: Objective::Cpu,
        placement: vec!["made up".into()],
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

/// A run with closed-loop `rps` and fixed-rate `p99_us`.
fn run_rps(variant: usize, rps: f64, p99_us: u64) -> Run {
    let closed = Sample {
        rps,
        p99_us: 2 * p99_us,
        errors: 0,
        cpu_us_per_req: 10.0,
    };
    let fixed = Sample {
        rps: 1000.0,
        p99_us,
        errors: 0,
        cpu_us_per_req: 10.0,
    };
    Run {
        variant,
        closed: Some(closed),
        fixed: Some(fixed),
        error: None,
    }
}

#[test]
fn throughput_objective_picks_the_fastest_within_the_slo() {
    let mut s = sweep(vec![
        run_rps(0, 10_000.0, 3_000),
        run_rps(1, 14_000.0, 4_000),
        run_rps(2, 20_000.0, 9_000), // fastest, but over the 5 ms SLO
        run_rps(0, 10_200.0, 3_000),
        run_rps(1, 14_100.0, 4_500),
        run_rps(2, 20_500.0, 8_000),
    ]);
    s.objective = Objective::Throughput {
        p99_slo: Duration::from_millis(5),
    };
    let v = decide(&s);
    assert_eq!((v.best, v.chosen), (Some(1), 1));
    assert!(v.stats[2].eligible && !v.stats[2].candidate());
    let md = super::verdict::markdown(&s, &v);
    assert!(md.contains("most closed-loop req/s"), "{md}");
    assert!(md.contains("within the SLO of 5.00 ms"), "{md}");
    assert!(
        md.contains("excluded: p99 8.50 ms over the SLO of 5.00 ms"),
        "{md}"
    );
    assert!(md.contains("#1 (workers 1, ring_entries 256"), "{md}");
    // The same numbers under the CPU objective: all tie at 10 µs/req, the
    // current settings are kept.
    s.objective = Objective::Cpu;
    let v = decide(&s);
    assert_eq!(v.chosen, 0);
}

#[test]
fn throughput_objective_with_no_setting_within_the_slo_keeps_the_current() {
    let mut s = sweep(vec![
        run_rps(0, 10_000.0, 6_000),
        run_rps(1, 14_000.0, 7_000),
        run_rps(2, 20_000.0, 9_000),
    ]);
    s.objective = Objective::Throughput {
        p99_slo: Duration::from_millis(5),
    };
    let v = decide(&s);
    assert_eq!((v.best, v.chosen), (None, 0));
    let md = super::verdict::markdown(&s, &v);
    assert!(
        md.contains("no setting met the objective's p99 SLO at the fixed rate"),
        "{md}"
    );
    assert!(
        md.contains("keeps the current settings (workers 1, ring_entries 1024"),
        "{md}"
    );
}

#[test]
fn sqpoll_variants_only_in_the_full_sweep_and_when_accepted() {
    let base = variant(1, 1024, &["single_issuer", "coop_taskrun"]);
    let sq = |v: &Variant| v.sqpoll_idle.is_some();
    let accepts = FixedProbe::default();
    // --quick: never.
    assert!(!variants(&base, 2, true, &accepts).iter().any(sq));
    // Full: two SQPOLL variants per workers × ring_entries, with
    // single_issuer and with no flag (the kernel refuses COOP_TASKRUN and
    // DEFER_TASKRUN with SQPOLL).
    let full = variants(&base, 2, false, &accepts);
    let with: Vec<&Variant> = full.iter().filter(|v| sq(v)).collect();
    assert_eq!(with.len(), 2 * 3 * 2, "{full:?}");
    assert!(with
        .iter()
        .all(|v| (v.flags == ["single_issuer"] || v.flags.is_empty())
            && v.sqpoll_idle.as_deref() == Some(super::SQPOLL_IDLE)));
    // The kernel refuses SQPOLL: none.
    let refuses = FixedProbe {
        refused: vec![RingFlag::Sqpoll],
        ..FixedProbe::default()
    };
    assert!(!variants(&base, 2, false, &refuses).iter().any(sq));
    // The run's configuration and the labels carry it.
    let v = with[0];
    let cfg = run_config(v, &[1], 8080, "127.0.0.1:9000", 9901);
    assert!(cfg.contains("\nsqpoll_idle = \"100ms\"\n"), "{cfg}");
    let t: toml::Table = toml::from_str(&cfg).unwrap();
    assert_eq!(&baseline(&t, 9).unwrap(), v);
    assert!(v.label().ends_with(", sqpoll_idle 100ms"));
    assert!(v.flags_text().ends_with(" + sqpoll (idle 100ms)"));
    let cfg = run_config(&base, &[1], 8080, "127.0.0.1:9000", 9901);
    assert!(!cfg.contains("sqpoll"), "{cfg}");
}

#[test]
fn tuned_file_sets_or_turns_off_sqpoll_idle() {
    let mut v = variant(1, 256, &["single_issuer", "coop_taskrun"]);
    v.sqpoll_idle = Some("100ms".into());
    let out = tuned_text("[runtime]\nworkers = 1\n", &v);
    let t: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(baseline(&t, 9).unwrap(), v);
    assert!(
        out.contains("sqpoll_idle = \"100ms\"   # ringway-tune sweep\n"),
        "{out}"
    );
    // The chosen variant has no SQPOLL: the file's line is commented out.
    let plain = variant(1, 256, &[]);
    let out = tuned_text("[runtime]\nsqpoll_idle = \"2s\"\nworkers = 1\n", &plain);
    let t: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(baseline(&t, 9).unwrap(), plain);
    assert!(
        out.contains("# sqpoll_idle = \"2s\"   # off: ringway-tune sweep\n"),
        "{out}"
    );
}

mod placement {
    use super::super::placement::{irq_heavy, place};
    use crate::facts::{Cpu, Facts, Irq, Nic};

    /// `n` CPUs; `smt`: CPUs i and i + n/2 are siblings; `irqs`: per-CPU
    /// interrupt counts of one NIC's two lines (split evenly).
    fn facts(n: u32, smt: bool, irqs: &[u64]) -> Facts {
        let cpus = (0..n)
            .map(|id| Cpu {
                id,
                siblings: if smt {
                    let a = id % (n / 2);
                    vec![a, a + n / 2]
                } else {
                    vec![id]
                },
                node: Some(0),
                governor: None,
            })
            .collect();
        let line = |k: u64| Irq {
            irq: format!("{}", 30 + k),
            name: format!("eth0-q{k}"),
            per_cpu: irqs.iter().map(|x| x / 2).collect(),
            affinity: None,
        };
        Facts {
            kernel: Some("6.8.0".into()),
            online_cpus: (0..n).collect(),
            cpus,
            numa_nodes: vec![],
            isolated_cpus: vec![],
            nics: vec![Nic {
                name: "eth0".into(),
                device: Some("virtio1".into()),
                numa_node: None,
                rx_queues: vec![],
                tx_queues: vec![],
                irqs: vec![line(0), line(1)],
            }],
            sysctl: Default::default(),
            io_uring: vec![],
            nofile: None,
            memlock: None,
        }
    }

    #[test]
    fn neither_smt_nor_irq_concentration_is_the_upper_half_and_says_so() {
        // Like the build VM: 2 CPUs, 55 % of the interrupts on CPU 1.
        let p = place(&facts(2, false, &[7000, 8600]));
        assert_eq!((p.ringway, p.clients), (vec![1], vec![0]));
        assert_eq!(p.why.len(), 1);
        assert!(p.why[0].starts_with("no SMT siblings and no CPU takes a concentrated share"));
        let p = place(&facts(8, false, &[0; 8]));
        assert_eq!((p.ringway, p.clients), (vec![4, 5, 6, 7], vec![0, 1, 2, 3]));
    }

    #[test]
    fn smt_siblings_are_split_between_ringway_and_the_clients() {
        // 8 threads on 4 cores: 0+4, 1+5, 2+6, 3+7. The upper half would
        // be 4–7, one thread of each core: fine. Siblings never both ringway.
        let p = place(&facts(8, true, &[0; 8]));
        assert_eq!(p.ringway, vec![4, 5, 6, 7]);
        assert!(
            p.why[0].contains("each on a different physical core"),
            "{:?}",
            p.why
        );
        // Siblings 0+1, 2+3 (as on many hosts): the upper half 2,3 would
        // be one core; ringway gets 1 and 3 instead.
        let mut f = facts(4, false, &[0; 4]);
        for c in &mut f.cpus {
            c.siblings = if c.id < 2 { vec![0, 1] } else { vec![2, 3] };
        }
        let p = place(&f);
        assert_eq!((p.ringway, p.clients), (vec![1, 3], vec![0, 2]));
    }

    #[test]
    fn irq_heavy_cpus_are_avoided() {
        // 4 CPUs, CPU 3 takes 95 % of 20,000 interrupts.
        let f = facts(4, false, &[400, 300, 300, 19000]);
        assert_eq!(irq_heavy(&f), vec![(3, 95)]);
        let p = place(&f);
        assert_eq!((p.ringway, p.clients), (vec![1, 2], vec![0, 3]));
        assert!(
            p.why
                .iter()
                .any(|w| w
                    .contains("NIC interrupts concentrated on CPU 3 (95 %): ringway avoids them")),
            "{:?}",
            p.why
        );
        // Too few interrupts to judge: nothing is heavy.
        assert!(irq_heavy(&facts(4, false, &[10, 10, 10, 900])).is_empty());
        // 2 CPUs, all interrupts on CPU 1: ringway on CPU 0.
        let p = place(&facts(2, false, &[0, 5000]));
        assert_eq!((p.ringway, p.clients), (vec![0], vec![1]));
    }
}
