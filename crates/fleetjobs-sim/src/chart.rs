//! The SVG chart of a run: executions by status (and connected devices) over time, drawn by
//! hand from the timeline's samples: one polyline per series, axes, a legend, and a marker
//! where the job was created.

use std::fmt::Write;

use crate::stats::Sample;

const W: f64 = 900.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// What the chart shows besides the samples.
pub struct ChartInput<'a> {
    pub title: &'a str,
    pub samples: &'a [Sample],
    /// The number of executions (the fleet size when a job was created), for the QUEUED line.
    pub executions: Option<u64>,
    /// When the job was created, ms since the start.
    pub job_created_ms: Option<u64>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The chart as a standalone SVG document.
pub fn svg(input: &ChartInput) -> String {
    let samples = input.samples;
    let t_max = samples.last().map_or(1, |s| s.t_ms).max(1) as f64;
    let y_max = samples
        .iter()
        .map(|s| (s.connected.max(0) as u64).max(s.terminal()).max(s.in_progress.max(0) as u64))
        .chain(input.executions)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: u64| LEFT + t as f64 / t_max * pw;
    let y = |v: f64| TOP + ph - v / y_max * ph;

    let queued = |s: &Sample| -> Option<f64> {
        let (n, created) = (input.executions?, input.job_created_ms?);
        (s.t_ms >= created).then(|| n.saturating_sub(s.terminal()).saturating_sub(s.in_progress.max(0) as u64) as f64)
    };
    type Series<'f> = (&'static str, &'static str, Box<dyn Fn(&Sample) -> Option<f64> + 'f>);
    let series: Vec<Series> = vec![
        ("connected", "#9e9e9e", Box::new(|s: &Sample| Some(s.connected as f64))),
        ("QUEUED", "#1f77b4", Box::new(queued)),
        ("IN_PROGRESS", "#ff7f0e", Box::new(|s: &Sample| Some(s.in_progress as f64))),
        ("SUCCEEDED", "#2ca02c", Box::new(|s: &Sample| Some(s.succeeded as f64))),
        ("FAILED", "#d62728", Box::new(|s: &Sample| Some(s.failed as f64))),
        ("REJECTED", "#9467bd", Box::new(|s: &Sample| Some(s.rejected as f64))),
    ];

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="{LEFT}" y="24" font-size="15">{}</text>"#, escape(input.title));
    // Axes, with five ticks each.
    let _ = writeln!(out, r#"<path d="M{LEFT},{TOP} V{} H{}" fill="none" stroke="black"/>"#, TOP + ph, LEFT + pw);
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let t = t_max * f64::from(i) / 5.0;
        let (label_x, gy, end) = (LEFT - 6.0, y(v), LEFT + pw);
        let _ = writeln!(
            out,
            r##"<text x="{label_x}" y="{:.1}" text-anchor="end">{}</text><line x1="{LEFT}" x2="{end}" y1="{gy:.1}" y2="{gy:.1}" stroke="#eee"/>"##,
            gy + 4.0,
            v.round()
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.1}</text>"#,
            x(t as u64),
            TOP + ph + 18.0,
            t / 1000.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since start</text>"#,
        LEFT + pw / 2.0,
        H - 10.0
    );
    if let Some(created) = input.job_created_ms {
        let _ = writeln!(
            out,
            r##"<line x1="{0}" x2="{0}" y1="{TOP}" y2="{1}" stroke="#555" stroke-dasharray="4 3"/><text x="{2}" y="{3}">create-job</text>"##,
            x(created),
            TOP + ph,
            x(created) + 4.0,
            TOP + 12.0
        );
    }
    for (i, (name, color, value)) in series.iter().enumerate() {
        let points: Vec<String> =
            samples.iter().filter_map(|s| value(s).map(|v| format!("{:.1},{:.1}", x(s.t_ms), y(v)))).collect();
        if points.is_empty() {
            continue;
        }
        let _ =
            writeln!(out, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, points.join(" "));
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + pw + 15.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_series_and_the_create_marker() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample { t_ms: i * 100, connected: 5, in_progress: 1, succeeded: i, failed: 0, rejected: 0 })
            .collect();
        let out =
            svg(&ChartInput { title: "a <b>", samples: &samples, executions: Some(10), job_created_ms: Some(300) });
        assert!(out.starts_with("<svg"));
        assert!(out.trim_end().ends_with("</svg>"));
        assert_eq!(out.matches("<polyline").count(), 6);
        assert!(out.contains("create-job"));
        assert!(out.contains("a &lt;b&gt;"));
        // Grid lines sit at their tick's height: the top one at TOP, the bottom one on the axis.
        assert!(out.contains(&format!(r#"y1="{TOP:.1}" y2="{TOP:.1}""#)));
        assert!(out.contains(&format!(r#"y1="{:.1}" y2="{:.1}""#, H - BOTTOM, H - BOTTOM)));
        // No job: no QUEUED line.
        let out = svg(&ChartInput { title: "t", samples: &samples, executions: None, job_created_ms: None });
        assert_eq!(out.matches("<polyline").count(), 5);
    }
}
