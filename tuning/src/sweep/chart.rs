//! The report's SVG charts: one horizontal bar per setting (the median of
//! its repetitions) with a min–max whisker, for closed-loop throughput,
//! fixed-rate p99 latency and CPU time per request. Hand-written SVG, no
//! dependency.

use std::fmt::Write as _;

const WIDTH: f64 = 860.0;
const LABEL_W: f64 = 380.0;
const PANEL_W: f64 = 360.0;
const BAR_H: f64 = 16.0;
const ROW_H: f64 = 22.0;
const TOP: f64 = 52.0;

/// One bar: its label, and (median, min, max) when measured.
pub struct Bar {
    pub label: String,
    pub value: Option<(f64, f64, f64)>,
    /// Drawn in the accent colour (the chosen setting).
    pub chosen: bool,
    /// Drawn grey (excluded by the objective).
    pub excluded: bool,
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
            c if (c as u32) < 0x20 => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn num(x: f64, digits: usize) -> String {
    if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.digits$}")
    }
}

/// A chart titled `title`, values in `unit` printed with `digits` decimals.
/// Every bar is one `<rect>` (a setting without a value gets one of width
/// 0), so a reader can count them.
pub fn svg(title: &str, unit: &str, digits: usize, bars: &[Bar]) -> String {
    let height = TOP + ROW_H * bars.len() as f64 + 12.0;
    let max = bars
        .iter()
        .filter_map(|b| b.value.map(|(_, _, hi)| hi))
        .filter(|x| x.is_finite())
        .fold(0.0f64, f64::max);
    let scale = |x: f64| {
        if max > 0.0 && x.is_finite() {
            PANEL_W * x / max
        } else {
            0.0
        }
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        o,
        r#"<text x="10" y="20" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = writeln!(
        o,
        r##"<text x="10" y="40" fill="#555555">{} — bar: median of the repetitions; whisker: min–max</text>"##,
        esc(unit)
    );
    let x0 = LABEL_W;
    let mut y = TOP;
    for b in bars {
        let ty = y + BAR_H - 3.0;
        let fill = if b.excluded {
            "#bbbbbb"
        } else if b.chosen {
            "#d62728"
        } else {
            "#1f77b4"
        };
        let _ = writeln!(o, r#"<text x="10" y="{ty}">{}</text>"#, esc(&b.label));
        let (w, tip) = match b.value {
            Some((m, lo, hi)) => (
                scale(m),
                format!(
                    "{} {} (min {}, max {})",
                    num(m, digits),
                    unit,
                    num(lo, digits),
                    num(hi, digits)
                ),
            ),
            None => (0.0, "not measured".to_string()),
        };
        let _ = writeln!(
            o,
            r#"<rect x="{x0}" y="{y}" width="{w:.1}" height="{BAR_H}" fill="{fill}"><title>{}</title></rect>"#,
            esc(&tip)
        );
        let mut text_x = x0 + w;
        if let Some((m, lo, hi)) = b.value {
            let (a, c) = (x0 + scale(lo), x0 + scale(hi));
            let mid = y + BAR_H / 2.0;
            let _ = writeln!(
                o,
                r#"<line x1="{a:.1}" y1="{mid}" x2="{c:.1}" y2="{mid}" stroke="black"/><line x1="{a:.1}" y1="{0}" x2="{a:.1}" y2="{1}" stroke="black"/><line x1="{c:.1}" y1="{0}" x2="{c:.1}" y2="{1}" stroke="black"/>"#,
                y + 3.0,
                y + BAR_H - 3.0
            );
            text_x = text_x.max(c);
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{ty}">{}</text>"#,
                text_x + 4.0,
                esc(&num(m, digits))
            );
        } else {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{ty}" fill="#888888">not measured</text>"##,
                text_x + 4.0
            );
        }
        y += ROW_H;
    }
    o.push_str("</svg>\n");
    o
}

/// The report's file name without `.md`; the charts are `STEM-NAME.svg`.
pub const REPORT_STEM: &str = "ringway-tune-sweep";

/// The chart files' suffixes and what each shows, in report order.
pub const CHARTS: [(&str, &str); 3] = [
    ("throughput", "closed-loop throughput"),
    ("p99", "p99 latency at the fixed rate"),
    ("cpu", "ringway CPU time per request at the fixed rate"),
];

/// (median, min, max).
type Range = Option<(f64, f64, f64)>;

/// `(file name, SVG)` for each chart of a sweep.
pub fn charts(s: &super::Sweep, v: &super::verdict::Verdict) -> Vec<(String, String)> {
    let bars = |f: &dyn Fn(&super::verdict::Stats) -> Range| -> Vec<Bar> {
        s.variants
            .iter()
            .enumerate()
            .map(|(i, var)| Bar {
                label: format!(
                    "#{i}{} w{} e{} {}",
                    if i == s.baseline { " (current)" } else { "" },
                    var.workers,
                    var.ring_entries,
                    var.flags_text()
                ),
                value: f(&v.stats[i]),
                chosen: i == v.chosen,
                excluded: !v.stats[i].candidate(),
            })
            .collect()
    };
    let ms = |t: Range| t.map(|(m, lo, hi)| (m / 1e3, lo / 1e3, hi / 1e3));
    let [t, p, c] = CHARTS;
    vec![
        (
            format!("{REPORT_STEM}-{}.svg", t.0),
            svg(
                &format!("ringway-tune sweep: {}", t.1),
                "req/s",
                0,
                &bars(&|st| st.closed_rps),
            ),
        ),
        (
            format!("{REPORT_STEM}-{}.svg", p.0),
            svg(
                &format!("ringway-tune sweep: {} ({} req/s)", p.1, s.rate),
                "ms",
                2,
                &bars(&|st| ms(st.fixed_p99)),
            ),
        ),
        (
            format!("{REPORT_STEM}-{}.svg", c.0),
            svg(
                &format!("ringway-tune sweep: {} ({} req/s)", c.1, s.rate),
                "CPU µs/request",
                1,
                &bars(&|st| st.cpu),
            ),
        ),
    ]
}
