//! Inline SVG charts: histograms, step/line charts and bar charts, drawn as text.
//!
//! Reports must open anywhere with no network (an artifact in CI, a file on a laptop), so
//! charts are plain SVG elements styled by the report's inline CSS: no scripts, no fonts,
//! no external references. Every chart gets a `<title>` and labelled axes so a reader can
//! understand it without the code.

use std::fmt::Write as _;

use super::html::escape;

/// Size and padding of a chart, in SVG user units.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Total width.
    pub width: f64,
    /// Total height.
    pub height: f64,
    /// Left margin (y-axis labels).
    pub left: f64,
    /// Right margin.
    pub right: f64,
    /// Top margin.
    pub top: f64,
    /// Bottom margin (x-axis labels and title).
    pub bottom: f64,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            width: 640.0,
            height: 240.0,
            left: 64.0,
            right: 20.0,
            top: 16.0,
            bottom: 44.0,
        }
    }
}

impl Frame {
    fn plot_width(&self) -> f64 {
        self.width - self.left - self.right
    }

    fn plot_height(&self) -> f64 {
        self.height - self.top - self.bottom
    }
}

/// A linear scale from data to pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn map(&self, value: f64) -> f64 {
        let span = self.hi - self.lo;
        if span <= 0.0 {
            return self.from;
        }
        self.from + (value - self.lo) / span * (self.to - self.from)
    }
}

/// "Nice" tick values covering `[lo, hi]` (steps of 1, 2 or 5 times a power of ten).
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut value = first;
    while value <= hi + step * 1e-9 && ticks.len() < 50 {
        ticks.push(if value.abs() < step * 1e-9 {
            0.0
        } else {
            value
        });
        value += step;
    }
    ticks
}

/// The upper end of a nice axis covering `value`.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let ticks = nice_ticks(0.0, value, 5);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        value
    };
    (value / step).ceil() * step
}

/// Formats an axis label (`0.5`, `10`, `1.2k`).
pub fn tick_label(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if abs >= 1e4 {
        format!("{}k", trim(value / 1e3))
    } else {
        trim(value)
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn open(frame: &Frame, title: &str) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        w = frame.width,
        h = frame.height,
        t = escape(title)
    )
}

/// Tick positions and axis titles of one chart.
struct AxisSpec<'a> {
    x_ticks: Vec<f64>,
    y_ticks: Vec<f64>,
    x_label: &'a str,
    y_label: &'a str,
}

fn axes(out: &mut String, frame: &Frame, x: &Scale, y: &Scale, spec: &AxisSpec<'_>) {
    let AxisSpec {
        x_ticks,
        y_ticks,
        x_label,
        y_label,
    } = spec;
    let bottom = frame.height - frame.bottom;
    for tick in y_ticks {
        let py = y.map(*tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{l}" x2="{r}" y1="{py:.1}" y2="{py:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            l = frame.left,
            r = frame.width - frame.right,
            tx = frame.left - 6.0,
            ty = py + 4.0,
            label = tick_label(*tick)
        );
    }
    for tick in x_ticks {
        let px = x.map(*tick);
        let _ = write!(
            out,
            r#"<line class="axis" x1="{px:.1}" x2="{px:.1}" y1="{bottom}" y2="{b2}"/><text class="tick" x="{px:.1}" y="{ty}" text-anchor="middle">{label}</text>"#,
            b2 = bottom + 4.0,
            ty = bottom + 16.0,
            label = tick_label(*tick)
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{l}" x2="{r}" y1="{bottom}" y2="{bottom}"/><line class="axis" x1="{l}" x2="{l}" y1="{t}" y2="{bottom}"/>"#,
        l = frame.left,
        r = frame.width - frame.right,
        t = frame.top
    );
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{cx:.1}" y="{y}" text-anchor="middle">{xl}</text><text class="axis-label" transform="translate(14 {cy:.1}) rotate(-90)" text-anchor="middle">{yl}</text>"#,
        cx = frame.left + frame.plot_width() / 2.0,
        y = frame.height - 6.0,
        xl = escape(x_label),
        cy = frame.top + frame.plot_height() / 2.0,
        yl = escape(y_label)
    );
}

fn placeholder(frame: &Frame, title: &str, message: &str) -> String {
    let mut out = open(frame, title);
    let _ = write!(
        out,
        r#"<rect class="empty" x="{l}" y="{t}" width="{w}" height="{h}"/><text class="empty-text" x="{cx}" y="{cy}" text-anchor="middle">{m}</text></svg>"#,
        l = frame.left,
        t = frame.top,
        w = frame.plot_width(),
        h = frame.plot_height(),
        cx = frame.left + frame.plot_width() / 2.0,
        cy = frame.top + frame.plot_height() / 2.0,
        m = escape(message)
    );
    out
}

/// Options of a histogram.
#[derive(Debug, Clone, Default)]
pub struct HistogramOptions {
    /// Chart title (also the accessible name).
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Shaded acceptable band; bars outside it are drawn as failures.
    pub band: Option<[f64; 2]>,
    /// A vertical threshold line with its label.
    pub threshold: Option<(f64, String)>,
}

/// A histogram of samples; samples outside the band or beyond the threshold are stacked
/// in the failure colour.
pub fn histogram(samples: &[f64], options: &HistogramOptions) -> String {
    let frame = Frame::default();
    let finite: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
    if finite.is_empty() {
        return placeholder(&frame, &options.title, "no samples");
    }
    let data_min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let data_max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi, bins) = match options.band {
        // Intervals: bins aligned on the band's edges, a few bins either side; samples
        // further out land in the outermost bins.
        Some([band_lo, band_hi]) if band_hi > band_lo => {
            let width = (band_hi - band_lo) / 12.0;
            let below = (((band_lo - data_min) / width).ceil().max(0.0) as usize + 1).min(12);
            let above = (((data_max - band_hi) / width).ceil().max(0.0) as usize + 1).min(12);
            let lo = (band_lo - below as f64 * width).max(0.0);
            let hi = band_hi + above as f64 * width;
            (lo, hi, ((hi - lo) / width).round().max(1.0) as usize)
        }
        _ => {
            let top = options
                .threshold
                .as_ref()
                .map_or(data_max, |(t, _)| keep_threshold_in_view(data_max, *t));
            let bins = ((finite.len() as f64).sqrt().ceil() as usize).clamp(10, 40);
            (0.0, nice_ceiling(top * 1.05), bins)
        }
    };
    let width = (hi - lo) / bins as f64;
    let is_bad = |sample: f64| {
        options
            .band
            .is_some_and(|[b_lo, b_hi]| sample < b_lo || sample > b_hi)
            || options.threshold.as_ref().is_some_and(|(t, _)| sample > *t)
    };
    let mut good = vec![0usize; bins];
    let mut bad = vec![0usize; bins];
    for sample in &finite {
        let index = (((sample - lo) / width).floor() as isize).clamp(0, bins as isize - 1) as usize;
        if is_bad(*sample) {
            bad[index] += 1;
        } else {
            good[index] += 1;
        }
    }
    let peak = good.iter().zip(&bad).map(|(g, b)| g + b).max().unwrap_or(1) as f64;
    let x = Scale {
        lo,
        hi,
        from: frame.left,
        to: frame.width - frame.right,
    };
    let y = Scale {
        lo: 0.0,
        hi: nice_ceiling(peak.max(4.0)),
        from: frame.height - frame.bottom,
        to: frame.top,
    };
    let mut out = open(&frame, &options.title);
    if let Some([band_lo, band_hi]) = options.band {
        let _ = write!(
            out,
            r#"<rect class="band" x="{x1:.1}" y="{t}" width="{w:.1}" height="{h}"><title>acceptable band {lo}–{hi}</title></rect>"#,
            x1 = x.map(band_lo),
            t = frame.top,
            w = (x.map(band_hi) - x.map(band_lo)).max(1.0),
            h = frame.plot_height(),
            lo = tick_label(band_lo),
            hi = tick_label(band_hi)
        );
    }
    axes(
        &mut out,
        &frame,
        &x,
        &y,
        &AxisSpec {
            x_ticks: nice_ticks(lo, hi, 8),
            y_ticks: nice_ticks(0.0, y.hi, 4),
            x_label: &options.x_label,
            y_label: "samples",
        },
    );
    let baseline_y = frame.height - frame.bottom;
    for index in 0..bins {
        let (ok, failed) = (good[index], bad[index]);
        if ok + failed == 0 {
            continue;
        }
        let start = lo + index as f64 * width;
        let end = start + width;
        let px = x.map(start);
        let bar_width = (x.map(end) - px - 1.0).max(1.0);
        let ok_top = y.map(ok as f64);
        let all_top = y.map((ok + failed) as f64);
        if ok > 0 {
            let _ = write!(
                out,
                r#"<rect class="bar" x="{px:.1}" y="{ok_top:.1}" width="{bar_width:.1}" height="{h:.1}"><title>{a}–{b}: {ok}</title></rect>"#,
                h = (baseline_y - ok_top).max(0.0),
                a = tick_label(start),
                b = tick_label(end)
            );
        }
        if failed > 0 {
            let _ = write!(
                out,
                r#"<rect class="bar bad" x="{px:.1}" y="{all_top:.1}" width="{bar_width:.1}" height="{h:.1}"><title>{a}–{b}: {failed} outside the SLO</title></rect>"#,
                h = (ok_top - all_top).max(0.0),
                a = tick_label(start),
                b = tick_label(end)
            );
        }
    }
    if let Some((value, label)) = &options.threshold {
        threshold_marker(&mut out, &frame, &x, *value, label);
    }
    out.push_str("</svg>");
    out
}

/// The x range that shows the data well: the threshold is included unless it is far
/// beyond the data (then the chart would squash the data into a sliver at the left).
fn keep_threshold_in_view(data_max: f64, threshold: f64) -> f64 {
    if threshold <= data_max * 3.0 || data_max <= 0.0 {
        data_max.max(threshold)
    } else {
        data_max
    }
}

/// A threshold line, or an arrow label at the right edge when it is off the scale.
fn threshold_marker(out: &mut String, frame: &Frame, x: &Scale, value: f64, label: &str) {
    if value <= x.hi {
        threshold_line(out, frame, x.map(value), label);
    } else {
        let _ = write!(
            out,
            r#"<text class="threshold-label" x="{tx:.1}" y="{ty}" text-anchor="end">{l} (off scale) →</text>"#,
            tx = frame.width - frame.right,
            ty = frame.top + 12.0,
            l = escape(label)
        );
    }
}

fn threshold_line(out: &mut String, frame: &Frame, px: f64, label: &str) {
    let _ = write!(
        out,
        r#"<line class="threshold" x1="{px:.1}" x2="{px:.1}" y1="{t}" y2="{b}"/><text class="threshold-label" x="{tx:.1}" y="{ty}" text-anchor="end">{l}</text>"#,
        t = frame.top,
        b = frame.height - frame.bottom,
        tx = px - 4.0,
        ty = frame.top + 12.0,
        l = escape(label)
    );
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// CSS class (`s0`..`s3`) choosing the colour.
    pub class: String,
    /// Points, x ascending.
    pub points: Vec<(f64, f64)>,
    /// Draw as a step function (cumulative counts).
    pub step: bool,
}

/// Options of a line chart.
#[derive(Debug, Clone, Default)]
pub struct LineOptions {
    /// Chart title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Vertical threshold line.
    pub threshold_x: Option<(f64, String)>,
    /// Horizontal reference line (e.g. the expected count).
    pub reference_y: Option<(f64, String)>,
    /// Show a legend (more than one series).
    pub legend: bool,
    /// Start the x axis at zero.
    pub x_from_zero: bool,
    /// The y axis counts things: whole-number ticks.
    pub integer_y: bool,
}

/// A line (or step) chart of one or more series.
pub fn line_chart(series: &[Series], options: &LineOptions) -> String {
    let frame = Frame::default();
    let points: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if points.is_empty() {
        return placeholder(&frame, &options.title, "no data");
    }
    let mut x_lo = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let mut x_hi = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    if options.x_from_zero {
        x_lo = x_lo.min(0.0);
    }
    if let Some((t, _)) = &options.threshold_x {
        x_hi = keep_threshold_in_view(x_hi, *t * 1.05);
    }
    if x_hi <= x_lo {
        x_hi = x_lo + 1.0;
    }
    let mut y_hi = points.iter().map(|p| p.1).fold(0.0, f64::max);
    if let Some((r, _)) = &options.reference_y {
        y_hi = y_hi.max(*r);
    }
    if options.integer_y {
        y_hi = y_hi.max(4.0);
    }
    let y_hi = nice_ceiling(y_hi * 1.05);
    let x = Scale {
        lo: x_lo,
        hi: x_hi,
        from: frame.left,
        to: frame.width - frame.right,
    };
    let y = Scale {
        lo: 0.0,
        hi: y_hi,
        from: frame.height - frame.bottom,
        to: frame.top,
    };
    let mut out = open(&frame, &options.title);
    axes(
        &mut out,
        &frame,
        &x,
        &y,
        &AxisSpec {
            x_ticks: nice_ticks(x_lo, x_hi, 8),
            y_ticks: nice_ticks(0.0, y_hi, 4),
            x_label: &options.x_label,
            y_label: &options.y_label,
        },
    );
    if let Some((value, label)) = &options.reference_y {
        let py = y.map(*value);
        let _ = write!(
            out,
            r#"<line class="reference" x1="{l}" x2="{r}" y1="{py:.1}" y2="{py:.1}"/><text class="reference-label" x="{r}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            l = frame.left,
            r = frame.width - frame.right,
            ty = py - 4.0,
            label = escape(label)
        );
    }
    for line in series {
        let mut path = String::new();
        let mut previous_y: Option<f64> = None;
        for (px, py) in line.points.iter().map(|(a, b)| (x.map(*a), y.map(*b))) {
            if path.is_empty() {
                let _ = write!(path, "M{px:.1},{py:.1}");
            } else {
                if line.step
                    && let Some(prev) = previous_y
                {
                    let _ = write!(path, " L{px:.1},{prev:.1}");
                }
                let _ = write!(path, " L{px:.1},{py:.1}");
            }
            previous_y = Some(py);
        }
        let _ = write!(
            out,
            r#"<path class="line {class}" d="{path}"><title>{name}</title></path>"#,
            class = escape(&line.class),
            name = escape(&line.name)
        );
        if line.points.len() == 1 {
            let (px, py) = (x.map(line.points[0].0), y.map(line.points[0].1));
            let _ = write!(
                out,
                r#"<circle class="dot {class}" cx="{px:.1}" cy="{py:.1}" r="3"/>"#,
                class = escape(&line.class)
            );
        }
    }
    if let Some((value, label)) = &options.threshold_x {
        threshold_marker(&mut out, &frame, &x, *value, label);
    }
    if options.legend {
        for (index, line) in series.iter().enumerate() {
            let lx = frame.left + 10.0 + index as f64 * 150.0;
            let _ = write!(
                out,
                r#"<rect class="swatch {class}" x="{lx:.1}" y="{ly}" width="12" height="4"/><text class="legend" x="{tx:.1}" y="{ty}">{name}</text>"#,
                class = escape(&line.class),
                ly = frame.top + 2.0,
                tx = lx + 16.0,
                ty = frame.top + 8.0,
                name = escape(&line.name)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One bar of a bar chart, possibly compared with a baseline value.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Label on the left.
    pub label: String,
    /// Value.
    pub value: f64,
    /// Baseline value drawn beneath, when comparing.
    pub baseline: Option<f64>,
}

/// Horizontal bars with values printed at their ends.
pub fn bar_chart(
    title: &str,
    bars: &[Bar],
    value_label: &str,
    legend: Option<(&str, &str)>,
) -> String {
    let row = if bars.iter().any(|b| b.baseline.is_some()) {
        30.0
    } else {
        20.0
    };
    let frame = Frame {
        height: 40.0 + row * bars.len().max(1) as f64 + if legend.is_some() { 16.0 } else { 0.0 },
        left: 230.0,
        right: 70.0,
        top: if legend.is_some() { 24.0 } else { 8.0 },
        bottom: 36.0,
        ..Frame::default()
    };
    if bars.is_empty() {
        return placeholder(&frame, title, "nothing counted");
    }
    let peak = bars
        .iter()
        .map(|b| b.value.max(b.baseline.unwrap_or(0.0)))
        .fold(0.0, f64::max);
    let x = Scale {
        lo: 0.0,
        hi: nice_ceiling(peak),
        from: frame.left,
        to: frame.width - frame.right,
    };
    let mut out = open(&frame, title);
    if let Some((now, base)) = legend {
        let _ = write!(
            out,
            r#"<rect class="bar" x="{l}" y="6" width="12" height="8"/><text class="legend" x="{t1}" y="14">{now}</text><rect class="bar baseline" x="{l2}" y="6" width="12" height="8"/><text class="legend" x="{t2}" y="14">{base}</text>"#,
            l = frame.left,
            t1 = frame.left + 16.0,
            l2 = frame.left + 170.0,
            t2 = frame.left + 186.0,
            now = escape(now),
            base = escape(base)
        );
    }
    for tick in nice_ticks(0.0, x.hi, 5) {
        let px = x.map(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{px:.1}" x2="{px:.1}" y1="{t}" y2="{b}"/><text class="tick" x="{px:.1}" y="{ty}" text-anchor="middle">{label}</text>"#,
            t = frame.top,
            b = frame.height - frame.bottom,
            ty = frame.height - frame.bottom + 14.0,
            label = tick_label(tick)
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{cx:.1}" y="{y}" text-anchor="middle">{l}</text>"#,
        cx = frame.left + frame.plot_width() / 2.0,
        y = frame.height - 4.0,
        l = escape(value_label)
    );
    for (index, bar) in bars.iter().enumerate() {
        let top = frame.top + 4.0 + index as f64 * row;
        let height = if bar.baseline.is_some() { 12.0 } else { 14.0 };
        let _ = write!(
            out,
            r#"<text class="bar-label" x="{lx}" y="{ly:.1}" text-anchor="end">{label}</text><rect class="bar" x="{l}" y="{top:.1}" width="{w:.1}" height="{height}"><title>{label}: {v}</title></rect><text class="bar-value" x="{vx:.1}" y="{ly:.1}">{v}</text>"#,
            lx = frame.left - 8.0,
            ly = top + 11.0,
            label = escape(&bar.label),
            l = frame.left,
            w = (x.map(bar.value) - frame.left).max(0.5),
            vx = x.map(bar.value) + 4.0,
            v = tick_label(bar.value)
        );
        if let Some(base) = bar.baseline {
            let by = top + height + 1.0;
            let _ = write!(
                out,
                r#"<rect class="bar baseline" x="{l}" y="{by:.1}" width="{w:.1}" height="{height}"><title>baseline: {v}</title></rect><text class="bar-value muted" x="{vx:.1}" y="{ty:.1}">{v}</text>"#,
                l = frame.left,
                w = (x.map(base) - frame.left).max(0.5),
                vx = x.map(base) + 4.0,
                ty = by + 10.0,
                v = tick_label(base)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One bar of a waterfall: a stage from where its parent ended to where it ended.
#[derive(Debug, Clone)]
pub struct Span {
    /// Label on the left.
    pub label: String,
    /// Where the bar starts (seconds from the origin).
    pub start: f64,
    /// Where it ends.
    pub end: f64,
    /// What the bar's tooltip and end label say.
    pub note: String,
    /// Drawn in the warning colour (the stage that dominates).
    pub highlight: bool,
}

/// A waterfall: one horizontal bar per stage on a shared time axis, each starting where
/// the stage it waits for ended, so the stages stack up to the total and the longest bar
/// stands out.
pub fn waterfall(title: &str, spans: &[Span], axis_label: &str) -> String {
    let row = 22.0;
    let frame = Frame {
        height: 44.0 + row * spans.len().max(1) as f64,
        left: 150.0,
        right: 150.0,
        top: 8.0,
        bottom: 36.0,
        ..Frame::default()
    };
    if spans.is_empty() {
        return placeholder(&frame, title, "no stage observed");
    }
    let peak = spans.iter().map(|s| s.end.max(s.start)).fold(0.0, f64::max);
    let x = Scale {
        lo: 0.0,
        hi: nice_ceiling(peak),
        from: frame.left,
        to: frame.width - frame.right,
    };
    let mut out = open(&frame, title);
    for tick in nice_ticks(0.0, x.hi, 5) {
        let px = x.map(tick);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{px:.1}" x2="{px:.1}" y1="{t}" y2="{b}"/><text class="tick" x="{px:.1}" y="{ty}" text-anchor="middle">{label}</text>"#,
            t = frame.top,
            b = frame.height - frame.bottom,
            ty = frame.height - frame.bottom + 14.0,
            label = tick_label(tick)
        );
    }
    let _ = write!(
        out,
        r#"<text class="axis-label" x="{cx:.1}" y="{y}" text-anchor="middle">{l}</text>"#,
        cx = frame.left + frame.plot_width() / 2.0,
        y = frame.height - 4.0,
        l = escape(axis_label)
    );
    for (index, span) in spans.iter().enumerate() {
        let top = frame.top + 4.0 + index as f64 * row;
        let (from, to) = (x.map(span.start.min(span.end)), x.map(span.end));
        let _ = write!(
            out,
            r#"<text class="bar-label" x="{lx}" y="{ly:.1}" text-anchor="end">{label}</text><rect class="{class}" x="{from:.1}" y="{top:.1}" width="{w:.1}" height="14"><title>{label}: {note}</title></rect><text class="bar-value" x="{vx:.1}" y="{ly:.1}">{note}</text>"#,
            lx = frame.left - 8.0,
            ly = top + 11.0,
            label = escape(&span.label),
            class = if span.highlight {
                "bar dominant"
            } else {
                "bar"
            },
            w = (to - from).max(1.0),
            vx = to.max(from + 1.0) + 4.0,
            note = escape(&span.note)
        );
    }
    out.push_str("</svg>");
    out
}

/// A small trend line for tables (no axes); the last point is marked.
pub fn sparkline(values: &[f64], failed: &[bool]) -> String {
    sparkline_marked(values, failed, &[])
}

/// A sparkline with a dashed vertical mark before each index in `shifts` (where a change
/// point says a shift began).
pub fn sparkline_marked(values: &[f64], failed: &[bool], shifts: &[usize]) -> String {
    let (w, h) = (140.0, 28.0);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return String::new();
    }
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let step = if values.len() > 1 {
        (w - 8.0) / (values.len() - 1) as f64
    } else {
        0.0
    };
    let point = |i: usize, v: f64| {
        (
            4.0 + i as f64 * step,
            h - 4.0 - (v - lo) / (hi - lo) * (h - 8.0),
        )
    };
    let mut out = format!(
        r#"<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="trend" xmlns="http://www.w3.org/2000/svg"><title>trend over {n} runs</title>"#,
        n = values.len()
    );
    let path: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| {
            let (x, y) = point(i, *v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    for &shift in shifts.iter().filter(|s| **s > 0 && **s < values.len()) {
        // Halfway between the last run before the shift and the first after it.
        let x = 4.0 + (shift as f64 - 0.5) * step;
        let _ = write!(
            out,
            r#"<line class="spark-shift" x1="{x:.1}" x2="{x:.1}" y1="1" y2="{y2}"><title>shift begins</title></line>"#,
            y2 = h - 1.0
        );
    }
    let _ = write!(
        out,
        r#"<polyline class="spark-line" points="{}"/>"#,
        path.join(" ")
    );
    for (index, value) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        let (x, y) = point(index, *value);
        let bad = failed.get(index).copied().unwrap_or(false);
        let _ = write!(
            out,
            r#"<circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="{r}"/>"#,
            class = if bad { "spark-dot bad" } else { "spark-dot" },
            r = if index + 1 == values.len() { 3.0 } else { 2.0 }
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks_are_round_numbers() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(55.0, 70.0, 4), vec![55.0, 60.0, 65.0, 70.0]);
        let small = nice_ticks(0.0, 0.35, 4);
        assert_eq!(small.len(), 4, "{small:?}");
        assert!((small[1] - 0.1).abs() < 1e-12);
        assert_eq!(nice_ticks(5.0, 5.0, 4), vec![5.0]);
    }

    #[test]
    fn histogram_draws_bars_band_and_marks_outliers() {
        let svg = histogram(
            &[60.5, 61.0, 62.0, 63.0, 65.0, 71.0],
            &HistogramOptions {
                title: "poll intervals".into(),
                x_label: "seconds".into(),
                band: Some([60.0, 66.0]),
                threshold: None,
            },
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains(r#"class="band""#));
        assert_eq!(
            svg.matches(r#"class="bar bad""#).count(),
            1,
            "only the 71s bar is outside: {svg}"
        );
        assert!(svg.contains("<title>poll intervals</title>"));
    }

    #[test]
    fn histogram_without_samples_says_so() {
        let svg = histogram(&[], &HistogramOptions::default());
        assert!(svg.contains("no samples"));
    }

    #[test]
    fn line_chart_escapes_names_and_draws_threshold() {
        let svg = line_chart(
            &[Series {
                name: "<bd> & co".into(),
                class: "s0".into(),
                points: vec![(0.0, 0.0), (1.0, 10.0), (2.0, 30.0)],
                step: true,
            }],
            &LineOptions {
                title: "created".into(),
                threshold_x: Some((2.5, "SLO 2.5s".into())),
                reference_y: Some((30.0, "expected 30".into())),
                ..LineOptions::default()
            },
        );
        assert!(svg.contains("&lt;bd&gt; &amp; co"));
        assert!(!svg.contains("<bd>"));
        assert!(svg.contains(r#"class="threshold""#));
        assert!(svg.contains("expected 30"));
        // A threshold far beyond the data is named at the edge instead of squashing it.
        let far = line_chart(
            &[Series {
                name: "x".into(),
                class: "s0".into(),
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                step: false,
            }],
            &LineOptions {
                threshold_x: Some((60.0, "SLO 60s".into())),
                ..LineOptions::default()
            },
        );
        assert!(far.contains("SLO 60s (off scale)"), "{far}");
        assert!(!far.contains(r#"class="threshold""#));
    }

    #[test]
    fn bar_chart_shows_baseline_pairs() {
        let svg = bar_chart(
            "writes",
            &[Bar {
                label: "bundles/status".into(),
                value: 40.0,
                baseline: Some(100.0),
            }],
            "writes",
            Some(("current", "fleet-v0.10")),
        );
        assert_eq!(
            svg.matches(r#"class="bar baseline""#).count(),
            2,
            "legend + bar"
        );
        assert!(svg.contains(">100<"));
    }
}
