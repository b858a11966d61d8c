//! The run as an SVG chart (plotters, SVG backend, no font files): load and Ready
//! capacity per policy on top, replicas per policy (and the oracle's) below. Series are
//! bucket means (about 600 points over the span).

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::sim::run::{EntryRun, Outcome};
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
    let span_h = ((p.to_ms - p.from_ms) as f64 / hour).max(bucket_h);

    let root = SVGBackend::with_string(buf, (1100, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);

    let (top_title, top_y) = if jobs {
        (
            "queue length (items) per policy; arrival rate (items/s) in black",
            "items",
        )
    } else {
        ("load (black) and Ready capacity per policy", "load / s")
    };
    let load = Line {
        name: if jobs { "arrivals" } else { "load" },
        color: BLACK,
        width: 2,
        values: &o.oracle.load,
    };
    let top_lines: Vec<Line> = std::iter::once(load)
        .chain(policy_lines(p, o, |r| &r.series.capacity))
        .collect();
    let top_panel = Panel {
        caption: &format!("{} — {}", p.loaded.name(), top_title),
        y_desc: top_y,
        y_max: peak(&top_lines),
        lines: &top_lines,
    };
    draw_panel(&top, &top_panel, span_h, bucket_h)?;

    // With jobs the oracle's replicas are not drawn, but they still set the axis height.
    let oracle = Line {
        name: "oracle",
        color: RGBColor(150, 150, 150),
        width: 2,
        values: &o.oracle.replicas,
    };
    let bottom_lines: Vec<Line> = std::iter::once(oracle)
        .chain(policy_lines(p, o, |r| &r.series.replicas))
        .collect();
    let bottom_panel = Panel {
        caption: if jobs {
            "Jobs (pending + running) per policy"
        } else {
            "replicas per policy (grey: oracle)"
        },
        y_desc: if jobs { "Jobs" } else { "replicas" },
        y_max: peak(&bottom_lines),
        lines: if jobs { &bottom_lines[1..] } else { &bottom_lines },
    };
    draw_panel(&bottom, &bottom_panel, span_h, bucket_h)?;
    root.present()?;
    Ok(())
}

/// One series of bucket means: its legend name, colour and stroke width.
struct Line<'a> {
    name: &'a str,
    color: RGBColor,
    width: u32,
    values: &'a [f32],
}

/// One line per policy entry, in the entries' colours.
fn policy_lines<'a>(
    p: &'a Prepared,
    o: &'a Outcome,
    values: fn(&EntryRun) -> &[f32],
) -> impl Iterator<Item = Line<'a>> {
    p.entries
        .iter()
        .zip(&o.runs)
        .enumerate()
        .map(move |(k, (e, r))| Line {
            name: &e.name,
            color: COLORS[k % COLORS.len()],
            width: 1,
            values: values(r),
        })
}

/// The largest value of any line (0 for none).
fn peak(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.values.iter())
        .fold(0f32, |a, &b| a.max(b)) as f64
}

/// What one of the two panels shows; `y_max` may exceed what `lines` reach.
struct Panel<'a> {
    caption: &'a str,
    y_desc: &'a str,
    y_max: f64,
    lines: &'a [Line<'a>],
}

/// Axes from 0 to the span (hours) and 5 % over `y_max`, the lines in order, a legend.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel,
    span_h: f64,
    bucket_h: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut c = ChartBuilder::on(area)
        .caption(panel.caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..span_h, 0f64..(panel.y_max * 1.05).max(1.0))?;
    c.configure_mesh()
        .x_desc("hours since start")
        .y_desc(panel.y_desc)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for line in panel.lines {
        let color = line.color;
        c.draw_series(LineSeries::new(
            line.values
                .iter()
                .enumerate()
                .map(|(i, &v)| ((i as f64 + 0.5) * bucket_h, f64::from(v))),
            color.stroke_width(line.width),
        ))?
        .label(line.name)
        .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 18, b)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}
