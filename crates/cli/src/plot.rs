//! SVG plots (plotters' SVG backend: text is SVG text, no system fonts needed).

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// One panel of a calibration plot: predicted (x) vs measured (y), log axes.
pub struct Calibration<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub points: Vec<(f64, f64)>,
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREY: RGBColor = RGBColor(150, 150, 150);

/// Panels side by side, each with the y = x line and the +-10% band.
pub fn calibration(path: &Path, caption: &str, panels: &[Calibration]) -> Result<()> {
    let width = 420 * panels.len().max(1) as u32;
    let svg = path.display().to_string();
    let root = SVGBackend::new(&svg, (width, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(caption, ("sans-serif", 18)).map_err(err)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(areas) {
        draw_panel(&area, panel)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the plot: {e}")
}

fn draw_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    p: &Calibration,
) -> Result<()> {
    let values = p
        .points
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo <= hi {
        (lo / 1.3, hi * 1.3)
    } else {
        (0.1, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!("predicted ({})", p.unit))
        .y_desc(format!("measured ({})", p.unit))
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    let line = |k: f64| {
        let n = 40;
        (0..=n).map(move |i| {
            let x = lo * (hi / lo).powf(i as f64 / n as f64);
            (x, x * k)
        })
    };
    chart
        .draw_series(LineSeries::new(line(1.0), GREY.stroke_width(1)))
        .map_err(err)?
        .label("measured = predicted")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], GREY.stroke_width(1)));
    for k in [0.9, 1.1] {
        let series = chart
            .draw_series(DashedLineSeries::new(line(k), 4, 3, GREY.stroke_width(1)))
            .map_err(err)?;
        if k > 1.0 {
            series.label("+-10%").legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 4, y), (x + 8, y), (x + 16, y)], GREY)
            });
        }
    }
    chart
        .draw_series(
            p.points
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 3, BLUE.filled())),
        )
        .map_err(err)?
        .label(format!("{} models", p.points.len()))
        .legend(|(x, y)| Circle::new((x + 8, y), 3, BLUE.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(GREY)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// `0.5`, `12`, `1.2k`: short tick labels.
fn short(v: f64) -> String {
    if v >= 1e3 {
        let s = format!("{:.2}", v / 1e3);
        format!("{}k", s.trim_end_matches('0').trim_end_matches('.'))
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
