//! SVG plots (plotters' SVG backend: text is SVG text, no system fonts needed).

use crate::ReportError;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One panel of a calibration plot: predicted (x) vs measured (y), log axes.
#[derive(Debug)]
pub struct Calibration<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub points: Vec<(f64, f64)>,
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREY: RGBColor = RGBColor(150, 150, 150);

/// Panels side by side, each with the y = x line and the +-10% band.
pub fn calibration(
    path: &Path,
    caption: &str,
    panels: &[Calibration],
) -> std::result::Result<(), ReportError> {
    let width = 420 * panels.len().max(1) as u32;
    svg_file(path, (width, 450), |root| {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(caption, ("sans-serif", 18)).map_err(err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(areas) {
            draw_panel(&area, panel)?;
        }
        Ok(())
    })
}

/// Why plotters could not draw (the public functions add the file).
#[derive(Debug)]
struct DrawError(String);

type Result<T> = std::result::Result<T, DrawError>;
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn err(e: impl std::fmt::Display) -> DrawError {
    DrawError(e.to_string())
}

/// Draws an SVG of `size` into memory and writes it to `path` atomically.
fn svg_file(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> Result<()>,
) -> std::result::Result<(), ReportError> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        draw(&root)
            .and_then(|()| root.present().map_err(err))
            .map_err(|e| ReportError::Plot {
                path: path.to_path_buf(),
                message: e.0,
            })?;
    }
    tailor_spec::files::write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn draw_panel(area: &Area, p: &Calibration) -> Result<()> {
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

const RED: RGBColor = RGBColor(214, 39, 40);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const LIGHT: RGBColor = RGBColor(200, 200, 200);

/// A scatter of the searched space: every feasible candidate, the Pareto front, the pick
/// and the space's reference models. Points carry no text, so nothing overlaps: the
/// legend names each kind of mark.
#[derive(Debug)]
pub struct Scatter<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub others: Vec<(f64, f64)>,
    /// What `others` are (`feasible candidates`), and the front and pick (`Pareto front`,
    /// `pick`).
    pub labels: [&'a str; 3],
    pub front: Vec<(f64, f64)>,
    pub pick: Option<(f64, f64)>,
    pub references: Vec<(String, (f64, f64))>,
}

/// Panels of [`Scatter`] side by side.
pub fn scatter(
    path: &Path,
    caption: &str,
    panels: &[Scatter],
) -> std::result::Result<(), ReportError> {
    let width = 520 * panels.len().max(1) as u32;
    svg_file(path, (width, 460), |root| {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(caption, ("sans-serif", 18)).map_err(err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(areas) {
            draw_scatter(&area, panel)?;
        }
        Ok(())
    })
}

/// `lo..hi` of finite values, padded by 6% on each side (a unit range when empty).
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.02).max(1e-9);
    (lo - pad, hi + pad)
}

fn draw_scatter(area: &Area, p: &Scatter) -> Result<()> {
    let all = || {
        p.others
            .iter()
            .chain(&p.front)
            .chain(p.pick.iter())
            .chain(p.references.iter().map(|(_, xy)| xy))
    };
    let (x0, x1) = padded(all().map(|v| v.0));
    let (y0, y1) = padded(all().map(|v| v.1));
    // Headroom above the points for the legend (upper left: small and slow models are
    // rare, so that corner is the emptiest of a latency-vs-size plot).
    let legend_rows = 2 + p.references.len() + usize::from(!p.others.is_empty());
    let y1 = y1 + (y1 - y0) * (0.08 * legend_rows as f64);
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(p.x_desc)
        .y_desc(p.y_desc)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    if !p.others.is_empty() {
        chart
            .draw_series(
                p.others
                    .iter()
                    .map(|&xy| Circle::new(xy, 2, LIGHT.filled())),
            )
            .map_err(err)?
            .label(format!("{} ({})", p.labels[0], p.others.len()))
            .legend(|(x, y)| Circle::new((x + 8, y), 2, LIGHT.filled()));
    }
    chart
        .draw_series(p.front.iter().map(|&xy| Circle::new(xy, 3, BLUE.filled())))
        .map_err(err)?
        .label(format!("{} ({})", p.labels[1], p.front.len()))
        .legend(|(x, y)| Circle::new((x + 8, y), 3, BLUE.filled()));
    let marks = [ORANGE, GREEN, PURPLE];
    for (i, (name, xy)) in p.references.iter().enumerate() {
        let c = marks[i % marks.len()];
        chart
            .draw_series(std::iter::once(TriangleMarker::new(*xy, 7, c.filled())))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 6, c.filled()));
    }
    if let Some(xy) = p.pick {
        chart
            .draw_series([
                Circle::new(xy, 7, RED.stroke_width(2)),
                Circle::new(xy, 3, RED.filled()),
            ])
            .map_err(err)?
            .label(p.labels[2])
            .legend(|(x, y)| Circle::new((x + 8, y), 5, RED.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Where the time of each pass goes: one horizontal bar per pass, split into attention,
/// FFN, LM head and other, as percentages (the share is written inside segments wide
/// enough to hold it).
pub fn breakdown(
    path: &Path,
    caption: &str,
    bars: &[(String, tailor_cost::Breakdown)],
) -> std::result::Result<(), ReportError> {
    let height = 130 + 70 * bars.len().max(1) as u32;
    svg_file(path, (720, height), |root| {
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(caption, ("sans-serif", 17)).map_err(err)?;
        let n = bars.len().max(1) as f64;
        let names: Vec<String> = bars.iter().map(|(n, _)| n.clone()).collect();
        let groups = [
            ("attention", BLUE),
            ("FFN", ORANGE),
            ("LM head", GREEN),
            ("other", PURPLE),
        ];
        // The legend gets its own strip above the bars, so it never covers one.
        let (legend, root) = root.split_vertically(34);
        for (g, (label, color)) in groups.iter().enumerate() {
            let x = 170 + 130 * g as i32;
            legend
                .draw(&Rectangle::new([(x, 10), (x + 14, 24)], color.filled()))
                .map_err(err)?;
            legend
                .draw(&Text::new(*label, (x + 20, 10), ("sans-serif", 14)))
                .map_err(err)?;
        }
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(40)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..100.0, -0.5..n - 0.5)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("share of the pass time (%)")
            .x_labels(11)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_labels(bars.len().max(1) * 2 + 1)
            .y_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 && i < n {
                    names
                        .get((n - 1.0 - i) as usize)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        for (g, (_, color)) in groups.iter().enumerate() {
            let mut rects = Vec::new();
            let mut texts = Vec::new();
            for (i, (_, b)) in bars.iter().enumerate() {
                let parts = [b.attention_ms, b.ffn_ms, b.lm_head_ms, b.other_ms];
                let total = b.total_ms().max(f64::MIN_POSITIVE);
                let start: f64 = parts[..g].iter().sum::<f64>() / total * 100.0;
                let share = parts[g] / total * 100.0;
                // The first bar on top.
                let y = n - 1.0 - i as f64;
                rects.push(Rectangle::new(
                    [(start, y - 0.32), (start + share, y + 0.32)],
                    color.filled(),
                ));
                if share >= 7.0 {
                    texts.push(Text::new(
                        format!("{share:.0}%"),
                        (start + share / 2.0, y),
                        ("sans-serif", 13)
                            .into_font()
                            .color(&WHITE)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ));
                }
            }
            chart.draw_series(rects).map_err(err)?;
            chart.draw_series(texts).map_err(err)?;
        }
        Ok(())
    })
}
