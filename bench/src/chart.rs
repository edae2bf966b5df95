//! A hand-written SVG chart: for each scenario, one horizontal bar per
//! contender for closed-loop req/s (left) and p99 latency (right).

use std::fmt::Write as _;

use crate::report::ScenarioSummary;

const WIDTH: f64 = 980.0;
const LABEL_W: f64 = 90.0;
const PANEL_W: f64 = 330.0;
const GAP: f64 = 110.0;
const BAR_H: f64 = 16.0;
const ROW_H: f64 = 22.0;
const HEADER_H: f64 = 28.0;
const BLOCK_PAD: f64 = 14.0;
const TOP: f64 = 56.0;

pub fn color(name: &str) -> &'static str {
    match name {
        "ringway" => "#1f77b4",
        "nginx" => "#2ca02c",
        "haproxy" => "#ff7f0e",
        "direct" => "#8c8c8c",
        _ => "#9467bd",
    }
}

/// Escape text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn short(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.2}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn latency(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

pub fn svg(title: &str, scenarios: &[ScenarioSummary]) -> String {
    let height: f64 = TOP
        + scenarios
            .iter()
            .map(|s| HEADER_H + ROW_H * s.contenders.len() as f64 + BLOCK_PAD)
            .sum::<f64>()
        + 10.0;
    let x1 = LABEL_W;
    let x2 = LABEL_W + PANEL_W + GAP;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        o,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        o,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = writeln!(
        o,
        r#"<text x="{x1}" y="44" font-weight="bold">req/s (closed loop, median; whisker = min–max)</text><text x="{x2}" y="44" font-weight="bold">p99 latency (closed loop, median)</text>"#
    );
    let mut y = TOP;
    for s in scenarios {
        let _ = writeln!(
            o,
            r#"<text x="10" y="{}" font-weight="bold">{} — placement {}, {} worker(s)</text>"#,
            y + 16.0,
            esc(&s.name),
            esc(&s.placement),
            s.workers
        );
        let _ = writeln!(
            o,
            r##"<line x1="10" y1="{0}" x2="{1}" y2="{0}" stroke="#dddddd"/>"##,
            y + HEADER_H - 4.0,
            WIDTH - 10.0
        );
        y += HEADER_H;
        let max_rps = s
            .contenders
            .iter()
            .filter_map(|c| c.rps_spread.map(|[_, hi]| hi).or(c.rps))
            .fold(0.0f64, f64::max);
        let max_p99 = s
            .contenders
            .iter()
            .filter_map(|c| c.p99_us)
            .fold(0.0f64, f64::max);
        for c in &s.contenders {
            let ty = y + BAR_H - 3.0;
            let _ = writeln!(o, r#"<text x="10" y="{ty}">{}</text>"#, esc(&c.name));
            match (c.status, c.rps, c.p99_us) {
                ("ok", Some(rps), Some(p99)) => {
                    let w = if max_rps > 0.0 {
                        PANEL_W * rps / max_rps
                    } else {
                        0.0
                    };
                    let _ = writeln!(
                        o,
                        r#"<rect x="{x1}" y="{y}" width="{w:.1}" height="{BAR_H}" fill="{}"><title>{} req/s</title></rect>"#,
                        color(&c.name),
                        rps.round()
                    );
                    if let (Some([lo, hi]), true) = (c.rps_spread, max_rps > 0.0) {
                        let (a, b) = (x1 + PANEL_W * lo / max_rps, x1 + PANEL_W * hi / max_rps);
                        let m = y + BAR_H / 2.0;
                        let _ = writeln!(
                            o,
                            r#"<line x1="{a:.1}" y1="{m}" x2="{b:.1}" y2="{m}" stroke="black" stroke-width="1"/>"#
                        );
                    }
                    let _ = writeln!(
                        o,
                        r#"<text x="{:.1}" y="{ty}">{}</text>"#,
                        x1 + w.max(
                            PANEL_W * (c.rps_spread.map_or(0.0, |[_, hi]| hi) / max_rps.max(1.0))
                        ) + 4.0,
                        short(rps)
                    );
                    let w = if max_p99 > 0.0 {
                        PANEL_W * p99 / max_p99
                    } else {
                        0.0
                    };
                    let _ = writeln!(
                        o,
                        r#"<rect x="{x2}" y="{y}" width="{w:.1}" height="{BAR_H}" fill="{}" fill-opacity="0.7"><title>p99 {} µs</title></rect>"#,
                        color(&c.name),
                        p99.round()
                    );
                    let _ = writeln!(
                        o,
                        r#"<text x="{:.1}" y="{ty}">{}</text>"#,
                        x2 + w + 4.0,
                        latency(p99)
                    );
                }
                (status, _, _) => {
                    let why = c.reason.as_deref().unwrap_or("");
                    let why: String = why.chars().take(110).collect();
                    let _ = writeln!(
                        o,
                        r##"<text x="{x1}" y="{ty}" fill="#888888">{}: {}</text>"##,
                        esc(status),
                        esc(&why)
                    );
                }
            }
            y += ROW_H;
        }
        y += BLOCK_PAD;
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{summarize_scenario, ContenderRuns, RunRecord, ScenarioRuns};

    fn scenarios() -> Vec<ScenarioSummary> {
        let run = |rps: f64| RunRecord {
            mode: "closed",
            rps,
            p99_us: 1500.0,
            ..Default::default()
        };
        let sc = ScenarioRuns {
            name: "small-get-keepalive <&>".into(),
            placement: "A".into(),
            workers: 1,
            contenders: vec![
                ContenderRuns {
                    name: "ringway".into(),
                    runs: vec![run(12000.0), run(11000.0)],
                    ..Default::default()
                },
                ContenderRuns {
                    name: "haproxy".into(),
                    skipped: Some("haproxy is not installed & \"apt\" failed".into()),
                    ..Default::default()
                },
                ContenderRuns {
                    name: "direct".into(),
                    runs: vec![run(0.0)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        vec![summarize_scenario(&sc), summarize_scenario(&sc)]
    }

    #[test]
    fn well_formed_svg() {
        let s = svg("ringway vs <peers>", &scenarios());
        let doc = roxmltree::Document::parse(&s).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let bars = root
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(color("ringway")))
            .count();
        assert_eq!(bars, 4, "2 scenarios × (req/s + p99) bars");
        let text: String = root.descendants().filter_map(|n| n.text()).collect();
        assert!(text.contains("skipped: haproxy is not installed & \"apt\" failed"));
        assert!(text.contains("small-get-keepalive <&>"));
        for n in root.descendants().filter(|n| n.has_tag_name("rect")) {
            let w: f64 = n.attribute("width").unwrap().parse().unwrap();
            assert!(w.is_finite() && w >= 0.0);
        }
    }

    #[test]
    fn empty_chart_is_well_formed() {
        roxmltree::Document::parse(&svg("nothing", &[])).unwrap();
    }

    #[test]
    fn escaping_and_units() {
        assert_eq!(esc("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(esc("x\u{1}y"), "x y");
        assert_eq!(short(12345.0), "12.3k");
        assert_eq!(short(1500.0), "1.50k");
        assert_eq!(short(2_500_000.0), "2.50M");
        assert_eq!(latency(950.0), "950 µs");
        assert_eq!(latency(1500.0), "1.50 ms");
    }
}
