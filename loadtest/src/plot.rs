//! An SVG picture of a [`LoadReport`]'s timeline: latency p50/p99 (log
//! scale), throughput (ok and failed per second) and the traffic share per
//! replica and version, each panel with vertical markers where the scenario
//! did something (swap, kill, restart). SVG keeps plotters free of font and
//! image C dependencies: the viewer renders the text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::run::{LoadReport, Second};

type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// Picks one per-second count map (replicas, versions) out of a [`Second`].
type ByKey = fn(&Second) -> &BTreeMap<String, u64>;

const MARK: RGBColor = RGBColor(200, 30, 30);

/// Writes the plot of `report` to `path` (SVG). `events` are markers at
/// offsets from the start of [`crate::run::run_load`], the timeline's clock.
pub fn plot(report: &LoadReport, events: &[(Duration, String)], path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 960)).into_drawing_area();
    root.fill(&WHITE).context("plot background")?;
    let end = report.timeline.last().map_or(0.0, |s| s.t + 1.0);
    let end = events
        .iter()
        .map(|(t, _)| t.as_secs_f64() + 0.5)
        .fold(end.max(report.warmup_seconds + report.seconds), f64::max)
        .max(1.0);
    let marks: Vec<(f64, &str)> = events
        .iter()
        .map(|(t, l)| (t.as_secs_f64(), l.as_str()))
        .collect();
    let panels = root.split_evenly((3, 1));
    latency(&panels[0], report, end, &marks)?;
    throughput(&panels[1], report, end, &marks)?;
    split(&panels[2], report, end, &marks)?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Where to draw second `s` and how much of it was measured: the first and
/// last seconds of the window are partial, and rates must not dip there.
/// Seconds after the window (the tail of in-flight requests) count whole.
fn span(report: &LoadReport, s: &Second) -> (f64, f64) {
    let lo = s.t.max(report.warmup_seconds);
    let hi = (s.t + 1.0).min(report.warmup_seconds + report.seconds);
    if hi - lo > 0.05 {
        ((lo + hi) / 2.0, hi - lo)
    } else {
        (s.t + 0.5, 1.0)
    }
}

/// Vertical marker lines (labelled in the top panel) and the warm-up band.
fn decorate<Y>(
    chart: &mut Chart<'_, '_, Y>,
    report: &LoadReport,
    marks: &[(f64, &str)],
    (y0, y1): (f64, f64),
    labels: bool,
) -> anyhow::Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    if report.warmup_seconds > 0.0 {
        let band = Rectangle::new(
            [(0.0, y0), (report.warmup_seconds, y1)],
            BLACK.mix(0.06).filled(),
        );
        chart
            .draw_series(std::iter::once(band))
            .context("warm-up band")?;
    }
    for (t, label) in marks {
        let line = PathElement::new(vec![(*t, y0), (*t, y1)], MARK.stroke_width(2));
        chart.draw_series(std::iter::once(line)).context("marker")?;
        if labels {
            let style = ("sans-serif", 14).into_font().color(&MARK);
            let text = Text::new(format!(" {label}"), (*t, y1), style);
            chart
                .draw_series(std::iter::once(text))
                .context("marker label")?;
        }
    }
    Ok(())
}

fn legend<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .context("legend")
}

fn line<'a, 'b: 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, 'b, Y>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    label: &str,
) -> anyhow::Result<()> {
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .context("series")?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

fn latency(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    report: &LoadReport,
    end: f64,
    marks: &[(f64, &str)],
) -> anyhow::Result<()> {
    let floor = 0.01;
    let top = report
        .timeline
        .iter()
        .map(|s| s.latency_max_ms)
        .fold(1.0, f64::max)
        * 2.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "latency (ms, from intended send; log scale)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end, (floor..top).log_scale())
        .context("latency axes")?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.03))
        .x_desc("s")
        .draw()
        .context("latency mesh")?;
    let series = |f: fn(&Second) -> f64| -> Vec<(f64, f64)> {
        report
            .timeline
            .iter()
            .map(|s| (span(report, s).0, f(s).max(floor)))
            .collect()
    };
    line(
        &mut chart,
        series(|s| s.latency_p50_ms),
        RGBColor(30, 90, 200),
        "p50",
    )?;
    line(
        &mut chart,
        series(|s| s.latency_p99_ms),
        RGBColor(230, 130, 0),
        "p99",
    )?;
    line(
        &mut chart,
        series(|s| s.latency_max_ms),
        RGBColor(150, 150, 150),
        "max",
    )?;
    decorate(&mut chart, report, marks, (floor, top), true)?;
    legend(&mut chart)
}

fn throughput(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    report: &LoadReport,
    end: f64,
    marks: &[(f64, &str)],
) -> anyhow::Result<()> {
    let top = report
        .timeline
        .iter()
        .map(|s| s.completed as f64 / span(report, s).1)
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "throughput (requests completed per measured second)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .context("throughput axes")?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.03))
        .x_desc("s")
        .draw()
        .context("throughput mesh")?;
    let series = |f: fn(&Second) -> u64| -> Vec<(f64, f64)> {
        report
            .timeline
            .iter()
            .map(|s| {
                let (x, cover) = span(report, s);
                (x, f(s) as f64 / cover)
            })
            .collect()
    };
    line(&mut chart, series(|s| s.ok), RGBColor(40, 160, 60), "ok/s")?;
    line(&mut chart, series(|s| s.failed), MARK, "failed/s")?;
    decorate(&mut chart, report, marks, (0.0, top), false)?;
    legend(&mut chart)
}

fn split(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    report: &LoadReport,
    end: f64,
    marks: &[(f64, &str)],
) -> anyhow::Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(
            "traffic share per replica / version (%)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..end, 0.0..105.0)
        .context("split axes")?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.03))
        .x_desc("s")
        .draw()
        .context("split mesh")?;
    let mut color = 0;
    let dims: [(&str, ByKey); 2] = [("replica", |s| &s.replicas), ("version", |s| &s.versions)];
    for (dim, by) in dims {
        let keys: BTreeSet<&String> = report.timeline.iter().flat_map(|s| by(s).keys()).collect();
        for key in keys {
            let points = report
                .timeline
                .iter()
                .filter_map(|s| {
                    // Seconds where no answer named anyone (all failed) have no share.
                    let total = by(s).values().sum::<u64>();
                    let n = by(s).get(key).copied().unwrap_or(0);
                    (total > 0).then(|| (span(report, s).0, n as f64 / total as f64 * 100.0))
                })
                .collect();
            let c = Palette99::pick(color).to_rgba();
            color += 1;
            line(
                &mut chart,
                points,
                RGBColor(c.0, c.1, c.2),
                &format!("{dim} {key}"),
            )?;
        }
    }
    decorate(&mut chart, report, marks, (0.0, 105.0), false)?;
    legend(&mut chart)
}
