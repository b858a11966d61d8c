//! The run as an SVG chart (plotters, SVG backend, no font files): load and Ready
//! capacity per policy on top, replicas per policy (and the oracle's) below. Series are
//! bucket means (about 600 points over the span).

use plotters::prelude::*;

use crate::sim::run::Outcome;
use crate::sim::setup::Prepared;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Render the chart as SVG text.
pub fn render(p: &Prepared, o: &Outcome) -> Result<String, String> {
    let mut buf = String::new();
    draw(p, o, &mut buf).map_err(|e| format!("cannot draw the chart: {e}"))?;
    Ok(buf)
}

fn draw(p: &Prepared, o: &Outcome, buf: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let s = &p.loaded.scenario;
    let jobs = s.jobs.is_some();
    let hour = 3_600_000.0;
    let bucket_h = o.bucket_ms as f64 / hour;
    let x = |i: usize| (i as f64 + 0.5) * bucket_h;
    let span_h = ((p.to_ms - p.from_ms) as f64 / hour).max(bucket_h);

    let root = SVGBackend::with_string(buf, (1100, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);

    let top_max = o
        .oracle
        .load
        .iter()
        .chain(o.runs.iter().flat_map(|r| r.series.capacity.iter()))
        .fold(0f32, |a, &b| a.max(b)) as f64;
    let (top_title, top_y) = if jobs {
        (
            "queue length (items) per policy; arrival rate (items/s) in black",
            "items",
        )
    } else {
        ("load (black) and Ready capacity per policy", "load / s")
    };
    let mut c = ChartBuilder::on(&top)
        .caption(format!("{} — {}", p.loaded.name(), top_title), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..span_h, 0f64..(top_max * 1.05).max(1.0))?;
    c.configure_mesh()
        .x_desc("hours since start")
        .y_desc(top_y)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    c.draw_series(LineSeries::new(
        o.oracle
            .load
            .iter()
            .enumerate()
            .map(|(i, &v)| (x(i), f64::from(v))),
        BLACK.stroke_width(2),
    ))?
    .label(if jobs { "arrivals" } else { "load" })
    .legend(|(a, b)| PathElement::new(vec![(a, b), (a + 18, b)], BLACK.stroke_width(2)));
    for (k, (e, r)) in p.entries.iter().zip(&o.runs).enumerate() {
        let col = COLORS[k % COLORS.len()];
        c.draw_series(LineSeries::new(
            r.series
                .capacity
                .iter()
                .enumerate()
                .map(|(i, &v)| (x(i), f64::from(v))),
            col.stroke_width(1),
        ))?
        .label(e.name.clone())
        .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 18, b)], col.stroke_width(2)));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;

    let bottom_max = o
        .oracle
        .replicas
        .iter()
        .chain(o.runs.iter().flat_map(|r| r.series.replicas.iter()))
        .fold(0f32, |a, &b| a.max(b)) as f64;
    let mut c = ChartBuilder::on(&bottom)
        .caption(
            if jobs {
                "Jobs (pending + running) per policy"
            } else {
                "replicas per policy (grey: oracle)"
            },
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..span_h, 0f64..(bottom_max * 1.05).max(1.0))?;
    c.configure_mesh()
        .x_desc("hours since start")
        .y_desc(if jobs { "Jobs" } else { "replicas" })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if !jobs {
        let grey = RGBColor(150, 150, 150);
        c.draw_series(LineSeries::new(
            o.oracle
                .replicas
                .iter()
                .enumerate()
                .map(|(i, &v)| (x(i), f64::from(v))),
            grey.stroke_width(2),
        ))?
        .label("oracle")
        .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 18, b)], grey.stroke_width(2)));
    }
    for (k, (e, r)) in p.entries.iter().zip(&o.runs).enumerate() {
        let col = COLORS[k % COLORS.len()];
        c.draw_series(LineSeries::new(
            r.series
                .replicas
                .iter()
                .enumerate()
                .map(|(i, &v)| (x(i), f64::from(v))),
            col.stroke_width(1),
        ))?
        .label(e.name.clone())
        .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 18, b)], col.stroke_width(2)));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    root.present()?;
    Ok(())
}
