//! `switchyard-loadtest compare`: several `run --json` reports side by
//! side (one per routing policy, say): one line each on stdout, a markdown
//! table and an SVG bar chart of time to first token p50/p99.
//!
//! TTFT here is the time to the first SSE data event (the report's
//! `ttfb_ms`: on a stream the first body bytes are the first event); the
//! report's `ttft_ms` is to the first content token, one inter-token gap
//! later on a chat stream (the first event carries only the role).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;
use serde_json::Value;

/// Flags of `compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Reports as LABEL=PATH (a `run --json` file), in the order shown.
    #[arg(required = true, value_name = "LABEL=PATH")]
    reports: Vec<String>,
    /// Write a markdown table here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write an SVG bar chart of TTFT p50/p99 here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Title of the table and chart.
    #[arg(long, default_value = "time to first token")]
    title: String,
}

/// What one report contributes.
struct Row {
    label: String,
    p50: f64,
    p99: f64,
    rps: f64,
    requests: u64,
    ok: u64,
    hit_rate: Option<f64>,
    replicas: String,
}

impl Row {
    fn read(spec: &str) -> anyhow::Result<Self> {
        let (label, path) = spec.split_once('=').context("expected LABEL=PATH")?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {path}"))?;
        let f = |ptr: &str| v.pointer(ptr).and_then(Value::as_f64);
        let replicas = v["replicas"].as_object().map_or_else(String::new, |m| {
            m.iter()
                .map(|(k, n)| format!("{k}:{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        Ok(Self {
            label: label.to_owned(),
            p50: f("/ttfb_ms/p50").unwrap_or(f64::NAN),
            p99: f("/ttfb_ms/p99").unwrap_or(f64::NAN),
            rps: f("/ok_rps").unwrap_or(0.0),
            requests: v["requests"].as_u64().unwrap_or(0),
            ok: v["ok"].as_u64().unwrap_or(0),
            hit_rate: f("/prefix_cache/hit_rate"),
            replicas,
        })
    }

    fn line(&self) -> String {
        format!(
            "{} ttft_p50_ms={:.1} ttft_p99_ms={:.1} rps={:.1}",
            self.label, self.p50, self.p99, self.rps
        )
    }
}

/// Prints one line per report, then writes the table and chart if asked.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let rows = args
        .reports
        .iter()
        .map(|r| Row::read(r).with_context(|| r.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for r in &rows {
        println!("{}", r.line());
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, markdown(&args.title, &rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        chart(&args.title, &rows, path)?;
    }
    Ok(())
}

fn markdown(title: &str, rows: &[Row]) -> String {
    let mut out = format!(
        "### {title}\n\n| policy | TTFT p50 ms | TTFT p99 ms | ok req/s | complete | prefix cache hits | requests per replica |\n|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let hits = r
            .hit_rate
            .map_or_else(|| "–".to_owned(), |h| format!("{:.1} %", h * 100.0));
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | {}/{} | {hits} | {} |",
            r.label, r.p50, r.p99, r.rps, r.ok, r.requests, r.replicas
        );
    }
    out.push_str("\nTTFT: intended send time to the first SSE data event.\n");
    out
}

/// A bar series: label, colour, offset in its slot, value of a row.
type Bar = (&'static str, RGBColor, f64, fn(&Row) -> f64);

fn chart(title: &str, rows: &[Row], path: &Path) -> anyhow::Result<()> {
    let root =
        SVGBackend::new(path, ((240 + 160 * rows.len() as u32).max(640), 480)).into_drawing_area();
    root.fill(&WHITE).context("chart background")?;
    let top = rows
        .iter()
        .flat_map(|r| [r.p50, r.p99])
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let n = rows.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title} (ms)"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..n, 0.0..top)
        .context("chart axes")?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            let centred = (x - x.floor() - 0.5).abs() < 0.01;
            match rows.get(i) {
                Some(r) if centred => r.label.clone(),
                _ => String::new(),
            }
        })
        .y_desc("ms")
        .draw()
        .context("chart mesh")?;
    let bars: [Bar; 2] = [
        ("p50", RGBColor(30, 90, 200), 0.12, |r: &Row| r.p50),
        ("p99", RGBColor(230, 130, 0), 0.5, |r: &Row| r.p99),
    ];
    for (label, color, at, value) in bars {
        let rects = rows.iter().enumerate().map(move |(i, r)| {
            let x0 = i as f64 + at;
            let v = value(r);
            let v = if v.is_finite() { v } else { 0.0 };
            Rectangle::new([(x0, 0.0), (x0 + 0.38, v)], color.filled())
        });
        chart
            .draw_series(rects)
            .context("bars")?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        let values = rows.iter().enumerate().map(move |(i, r)| {
            let v = value(r);
            let style = ("sans-serif", 12).into_font().color(&BLACK);
            Text::new(
                format!("{v:.0}"),
                (i as f64 + at + 0.05, v + top * 0.04),
                style,
            )
        });
        chart.draw_series(values).context("bar values")?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .context("legend")?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_become_lines_a_table_and_a_chart() {
        let dir = std::env::temp_dir().join(format!("switchyard-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.json");
        std::fs::write(
            &a,
            r#"{"requests":10,"ok":9,"ok_rps":4.5,"ttfb_ms":{"p50":12.34,"p99":80.0},
                "prefix_cache":{"queries":10,"hits":5,"hit_rate":0.5},"replicas":{"r1":10}}"#,
        )
        .unwrap();
        let b = dir.join("b.json");
        std::fs::write(&b, r#"{"requests":0,"ok":0,"ok_rps":0.0,"ttfb_ms":null}"#).unwrap();
        let rows = [
            Row::read(&format!("round_robin={}", a.display())).unwrap(),
            Row::read(&format!("affinity={}", b.display())).unwrap(),
        ];
        assert_eq!(
            rows[0].line(),
            "round_robin ttft_p50_ms=12.3 ttft_p99_ms=80.0 rps=4.5"
        );
        let md = markdown("t", &rows);
        assert!(
            md.contains("| round_robin | 12.3 | 80.0 | 4.5 | 9/10 | 50.0 % | r1:10 |"),
            "{md}"
        );
        let svg = dir.join("c.svg");
        chart("t", &rows, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("<svg") && text.contains("round_robin") && text.contains("p99"));
        assert!(Row::read("nolabel").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
