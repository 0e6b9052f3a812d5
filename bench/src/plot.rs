//! `renkei-bench plot`: the cost curve from saved reports (`--json`). Throughput and post→delivery p99
//! against stored posts (`history` reports), and delivery p99 and the server's CPU per delivery against
//! group size (`fanout` reports), drawn as one SVG and printed as Markdown tables.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// Reports written with `--json` by `history` and `fanout` runs.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(long, default_value = "cost-curve.svg")]
    pub out: PathBuf,
}

/// One line of a panel: a label and its points.
type Line = (String, Vec<(f64, f64)>);

/// The four panels' lines.
#[derive(Debug, Default)]
struct Curves {
    throughput: Vec<Line>,
    p99_by_posts: Vec<Line>,
    p99_by_size: Vec<Line>,
    cpu_by_size: Vec<Line>,
}

pub fn plot(args: &PlotArgs) -> Result<()> {
    let mut curves = Curves::default();
    let mut fanout: Vec<(String, f64, f64, f64)> = Vec::new();
    for path in &args.reports {
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        )
        .with_context(|| format!("{} is not a renkei-bench report", path.display()))?;
        let line = label(&report);
        match report["scenario"].as_str() {
            Some("history") => history(&report, &line, &mut curves),
            Some("fanout") => {
                let members = report["parameters"]["members"].as_f64().unwrap_or(f64::NAN);
                let p99 = figure(&report, "community post→delivery p99").unwrap_or(f64::NAN);
                let cpu = figure(&report, "server CPU per delivery").unwrap_or(f64::NAN);
                fanout.push((line, members, p99, cpu));
            }
            other => eprintln!("plot: {} is a {other:?} report; only history and fanout are drawn", path.display()),
        }
    }
    fanout.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    println!("| group size | run | community post→delivery p99 (ms) | server CPU per delivery (µs) |");
    println!("|---:|---|---:|---:|");
    for (line, members, p99, cpu) in &fanout {
        println!("| {members} | {line} | {p99:.1} | {cpu:.1} |");
        push(&mut curves.p99_by_size, line, *members, *p99);
        push(&mut curves.cpu_by_size, line, *members, *cpu);
    }
    draw(&args.out, &curves)?;
    eprintln!("plot: wrote {}", args.out.display());
    Ok(())
}

/// "sqlite, 1 node" and the like.
fn label(report: &Value) -> String {
    let backend = report["backend"].as_str().unwrap_or("?");
    match report["nodes"].as_u64() {
        Some(n) if n > 1 => format!("{backend}, {n} nodes"),
        _ => backend.to_owned(),
    }
}

fn figure(report: &Value, name: &str) -> Option<f64> {
    report["figures"].as_array()?.iter().find(|f| f["name"] == name)?["value"].as_f64()
}

fn push(lines: &mut Vec<Line>, label: &str, x: f64, y: f64) {
    if !y.is_finite() {
        return;
    }
    match lines.iter_mut().find(|(l, _)| l == label) {
        Some((_, points)) => points.push((x, y)),
        None => lines.push((label.to_owned(), vec![(x, y)])),
    }
}

fn history(report: &Value, line: &str, curves: &mut Curves) {
    let Some(steps) = report["curve"].as_array() else { return };
    println!(
        "| loaded posts ({line}) | stored | MB | posts/s | p50 ms | p99 ms | resume ms | first page ms | mid-way page ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for step in steps {
        let f = |k: &str| step[k].as_f64().unwrap_or(f64::NAN);
        let millions = f("loaded_posts") / 1e6;
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            f("loaded_posts"),
            f("stored_posts"),
            f("database_bytes") / 1e6,
            f("throughput_posts_per_second"),
            f("latency_p50_ms"),
            f("latency_p99_ms"),
            f("resume_ms"),
            f("history_page_ms"),
            f("deep_history_page_ms"),
        );
        push(&mut curves.throughput, line, millions, f("throughput_posts_per_second"));
        push(&mut curves.p99_by_posts, line, millions, f("latency_p99_ms"));
    }
}

/// Line colours that stay apart on white.
const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The upper end of an axis: the largest value and a tenth more, at least `floor`.
fn top(lines: &[Line], axis: impl Fn(&(f64, f64)) -> f64, floor: f64) -> f64 {
    lines.iter().flat_map(|(_, p)| p.iter().map(&axis)).fold(floor, f64::max) * 1.1
}

fn draw(out: &Path, curves: &Curves) -> Result<()> {
    let root = SVGBackend::new(out, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let panels = root.split_evenly((2, 2));
    // Each panel's legend where its lines leave room.
    let specs: [(&str, &str, &str, &Vec<Line>, SeriesLabelPosition); 4] = [
        (
            "Throughput against stored posts",
            "stored posts (millions)",
            "posts/s",
            &curves.throughput,
            SeriesLabelPosition::LowerRight,
        ),
        (
            "Post→delivery p99 against stored posts",
            "stored posts (millions)",
            "ms",
            &curves.p99_by_posts,
            SeriesLabelPosition::LowerLeft,
        ),
        (
            "Community post→delivery p99 against group size",
            "members",
            "ms",
            &curves.p99_by_size,
            SeriesLabelPosition::UpperLeft,
        ),
        (
            "Server CPU per delivery against group size",
            "members",
            "µs",
            &curves.cpu_by_size,
            SeriesLabelPosition::UpperRight,
        ),
    ];
    for (area, (title, x_label, y_label, lines, legend)) in panels.iter().zip(specs) {
        let x_max = top(lines, |p| p.0, 1.0);
        let y_max = top(lines, |p| p.1, 1.0);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(plot_error)?;
        chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(plot_error)?;
        for (i, (label, points)) in lines.iter().enumerate() {
            let color = COLORS[i % COLORS.len()].to_rgba();
            let mut points = points.clone();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(plot_error)?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(plot_error)?;
        }
        if !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(legend)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_error)?;
        }
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

fn plot_error<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e}")
}
