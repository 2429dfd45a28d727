//! The job page's chart of execution statuses over time: a stacked area chart, drawn as SVG on
//! the server (no script library; the content security policy allows no inline style, so the
//! geometry is in attributes and the colors are the stylesheet's `f-STATUS` classes).
//!
//! The series is the engine's `job_status_history`, derived from the executions' own
//! timestamps (see `fleetjobs_core::status_history` for why not sampled in memory).

use fleetjobs_core::model::JobExecutionStatus;
use fleetjobs_core::ops::console::StatusSample;
use maud::{html, Markup};

use crate::layout;

/// Samples per chart: enough to show a rollout's shape, few enough to draw at every change.
pub const SAMPLES: usize = 96;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 160.0;
/// Room for the axis labels.
const LEFT: f64 = 34.0;
const BOTTOM: f64 = 18.0;

/// Stacking order: finished statuses at the bottom, as in the progress bar.
const ORDER: [JobExecutionStatus; 8] = {
    use JobExecutionStatus::*;
    [Succeeded, Failed, TimedOut, Rejected, Canceled, Removed, InProgress, Queued]
};

fn count(sample: &StatusSample, status: JobExecutionStatus) -> i64 {
    layout::counts(&sample.counts).iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n)
}

/// The chart of `samples` (ascending times). Each status is one polygon (its band of the
/// stack); each sample is a column carrying its counts as data attributes and a tooltip.
pub fn status_history(samples: &[StatusSample]) -> Markup {
    let totals: Vec<i64> = samples.iter().map(|s| ORDER.iter().map(|st| count(s, *st)).sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let (first, last) = match (samples.first(), samples.last()) {
        (Some(f), Some(l)) => (f.at, l.at),
        _ => (0, 0),
    };
    let span = (last - first).max(1) as f64;
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM;
    let x = |at: i64| LEFT + (at - first) as f64 * plot_w / span;
    let y = |n: i64| plot_h - n as f64 * plot_h / max as f64;
    // The cumulative stack below each band, sample by sample.
    let mut below = vec![0i64; samples.len()];
    let mut bands = Vec::new();
    for status in ORDER {
        let values: Vec<i64> = samples.iter().map(|s| count(s, status)).collect();
        if values.iter().all(|v| *v == 0) {
            continue;
        }
        let top: Vec<i64> = below.iter().zip(&values).map(|(b, v)| b + v).collect();
        let mut points: Vec<String> =
            samples.iter().zip(&top).map(|(s, t)| format!("{:.1},{:.1}", x(s.at), y(*t))).collect();
        points.extend(samples.iter().zip(&below).rev().map(|(s, b)| format!("{:.1},{:.1}", x(s.at), y(*b))));
        bands.push((status.as_str(), points.join(" ")));
        below = top;
    }
    let column = if samples.len() > 1 { plot_w / (samples.len() - 1) as f64 } else { plot_w };
    let label = match samples.last() {
        Some(s) if totals.last().copied().unwrap_or(0) > 0 => ORDER
            .iter()
            .filter(|st| count(s, **st) > 0)
            .map(|st| format!("{} {}", count(s, *st), st.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "no executions".to_string(),
    };
    html! {
        figure.history data-samples=(samples.len()) data-max=(max) {
            svg.history viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-label={ "Executions by status over time; now " (label) } {
                line.axis x1=(LEFT) y1=(plot_h) x2=(WIDTH) y2=(plot_h) {}
                line.axis x1=(LEFT) y1="0" x2=(LEFT) y2=(plot_h) {}
                text.tick x=(LEFT - 4.0) y="10" text-anchor="end" { (max) }
                text.tick x=(LEFT - 4.0) y=(plot_h) text-anchor="end" { "0" }
                @for (status, points) in &bands {
                    polygon class={ "band f-" (status) } data-status=(status) points=(points) {}
                }
                @for (s, total) in samples.iter().zip(&totals) {
                    rect.sample x=(format!("{:.1}", (x(s.at) - column / 2.0).max(LEFT))) y="0"
                        width=(format!("{:.1}", column)) height=(plot_h) data-at=(s.at) data-total=(total)
                        data-succeeded=(count(s, JobExecutionStatus::Succeeded))
                        data-in-progress=(count(s, JobExecutionStatus::InProgress))
                        data-queued=(count(s, JobExecutionStatus::Queued))
                        data-failed=(count(s, JobExecutionStatus::Failed)) {
                        title {
                            (layout::time(s.at)) ": "
                            @for st in ORDER { @if count(s, st) > 0 { (count(s, st)) " " (st.as_str()) "; " } }
                        }
                    }
                }
                text.tick x=(LEFT) y=(HEIGHT - 4.0) { (layout::time(first)) }
                text.tick x=(WIDTH) y=(HEIGHT - 4.0) text-anchor="end" { (layout::time(last)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use fleetjobs_core::ops::jobs::JobProcessDetails;

    use super::*;

    fn sample(at: i64, queued: i64, in_progress: i64, succeeded: i64) -> StatusSample {
        StatusSample {
            at,
            counts: JobProcessDetails {
                number_of_queued_things: queued,
                number_of_in_progress_things: in_progress,
                number_of_succeeded_things: succeeded,
                ..Default::default()
            },
        }
    }

    #[test]
    fn bands_stack_and_columns_carry_the_counts() {
        let samples = [sample(0, 2, 0, 0), sample(50, 1, 1, 0), sample(100, 0, 0, 2)];
        let svg = status_history(&samples).into_string();
        assert!(svg.contains(r#"data-samples="3""#), "{svg}");
        assert!(svg.contains(r#"data-max="2""#));
        // Succeeded is the bottom band: 0 at first, the full height (y = 0) at the end.
        let band = svg.split(r#"data-status="SUCCEEDED" points=""#).nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(band, "34.0,142.0 317.0,142.0 600.0,0.0 600.0,142.0 317.0,142.0 34.0,142.0");
        assert!(svg.contains(r#"data-status="IN_PROGRESS""#) && svg.contains(r#"data-status="QUEUED""#));
        assert!(!svg.contains(r#"data-status="FAILED""#), "an empty band is not drawn");
        assert!(svg.contains(r#"data-at="50" data-total="2" data-succeeded="0" data-in-progress="1" data-queued="1""#));
        assert!(svg.contains("now 2 SUCCEEDED"));
        assert!(status_history(&[]).into_string().contains("no executions"));
    }
}
