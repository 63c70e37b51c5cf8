//! The PNG plot of latency percentiles over time: ingest above, end to end below, p50/p95/p99 of
//! the events scheduled in each second, on a logarithmic axis so that a millisecond and a stall of
//! seconds show on one picture.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (the `dejavu` crate, through plotters'
//! `ab_glyph` feature), so the plot renders the same on a machine without fontconfig or fonts.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::Row;
use crate::summary::Percentiles;

/// Width and height of the plot, in pixels.
pub const SIZE: (u32, u32) = (1200, 900);

const FONT: &str = "sans-serif";
const P95_COLOR: RGBColor = RGBColor(230, 140, 0);

/// Draws the plot of `rows` into the PNG file `path`.
pub fn draw(rows: &[Row], path: &Path) -> Result<(), String> {
    register_font()?;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((2, 1));
    let ingest: Vec<(usize, Percentiles)> = rows.iter().map(|r| (r.second, r.ingest)).collect();
    let e2e: Vec<(usize, Percentiles)> = rows.iter().map(|r| (r.second, r.e2e)).collect();
    panel(&panels[0], "ingest latency (scheduled send → 202)", &ingest, rows.len())?;
    panel(&panels[1], "end-to-end latency (scheduled send → webhook)", &e2e, rows.len())?;
    root.present().map_err(|e| e.to_string())
}

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font did not load".to_owned())
        })
        .clone()
}

/// A named, coloured line of (second, milliseconds) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn panel(area: &Area<'_>, title: &str, seconds: &[(usize, Percentiles)], width: usize) -> Result<(), String> {
    let series: [Series<'_>; 3] = [
        ("p50", BLUE, points(seconds, |p| p.p50)),
        ("p95", P95_COLOR, points(seconds, |p| p.p95)),
        ("p99", RED, points(seconds, |p| p.p99)),
    ];
    let values = || series.iter().flat_map(|(_, _, points)| points.iter().map(|&(_, y)| y));
    let (Some(low), Some(high)) = (values().reduce(f64::min), values().reduce(f64::max)) else {
        // Nothing to draw (no event accepted, or none delivered): say so rather than fail.
        area.titled(title, (FONT, 22)).map_err(|e| e.to_string())?;
        let style = TextStyle::from((FONT, 20).into_font()).color(&BLACK);
        return area.draw_text("no samples", &style, (40, 60)).map_err(|e| e.to_string());
    };
    let low = (low * 0.8).max(0.001);
    let high = (high * 1.25).max(low * 3.0);
    let x_end = width.max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_end, (low..high).log_scale().with_key_points(ticks(low, high)))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start (scheduled send)")
        .y_desc("milliseconds (log scale)")
        .y_label_formatter(&|ms| axis_label(*ms))
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(|e| e.to_string())?;
    for (name, color, points) in series {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// The 1-2-5 ticks of a logarithmic axis from `low` to `high` (both positive).
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let mut decade = 10f64.powf(low.log10().floor());
    let mut ticks = Vec::new();
    while decade <= high {
        ticks.extend([1.0, 2.0, 5.0].iter().map(|step| step * decade).filter(|tick| (low..=high).contains(tick)));
        decade *= 10.0;
    }
    ticks
}

/// A tick label with as many decimals as its size needs.
fn axis_label(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// The points of one percentile: at the middle of each second that has it.
fn points(seconds: &[(usize, Percentiles)], pick: impl Fn(&Percentiles) -> Option<f64>) -> Vec<(f64, f64)> {
    seconds.iter().filter_map(|(second, p)| pick(p).map(|ms| (*second as f64 + 0.5, ms))).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes a PNG file; returns its size.
    pub(crate) fn decode(path: &Path) -> (u32, u32) {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        (frame.width, frame.height)
    }

    fn row(second: usize, ms: Option<f64>) -> Row {
        let p = Percentiles { p50: ms, p95: ms.map(|v| v * 2.0), p99: ms.map(|v| v * 4.0), max: ms };
        Row { second, sent: 1, accepted: 1, rejected: 0, errors: 0, delivered: 1, ingest: p, e2e: p }
    }

    #[test]
    fn draws_a_png_of_the_percentiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.png");
        let rows: Vec<Row> = (0..30).map(|s| row(s, Some(1.0 + s as f64))).collect();
        draw(&rows, &path).unwrap();
        assert_eq!(decode(&path), SIZE);
    }

    #[test]
    fn draws_empty_panels_when_nothing_was_measured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.png");
        draw(&[row(0, None)], &path).unwrap();
        assert_eq!(decode(&path), SIZE);
        draw(&[], &path).unwrap();
        assert_eq!(decode(&path), SIZE);
    }

    #[test]
    fn ticks_step_one_two_five_within_the_range() {
        assert_eq!(ticks(0.8, 120.0), [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
        assert_eq!(ticks(3.0, 4.0), Vec::<f64>::new());
        assert_eq!(ticks(0.05, 0.3).len(), 3, "0.05, 0.1 and 0.2 (up to rounding)");
    }

    #[test]
    fn tick_labels_carry_only_the_decimals_they_need() {
        assert_eq!([axis_label(250.0), axis_label(2.5), axis_label(0.25)], ["250", "2.5", "0.25"]);
    }

    #[test]
    fn keeps_only_the_seconds_that_have_the_percentile() {
        let seconds = [(0, row(0, Some(2.0)).ingest), (1, row(1, None).ingest), (2, row(2, Some(3.0)).ingest)];
        assert_eq!(points(&seconds, |p| p.p95), vec![(0.5, 4.0), (2.5, 6.0)]);
    }
}
