//! HTML helpers and the report's inline stylesheet.
//!
//! One stylesheet, inline, with the system font stack: a report must render the same from
//! a CI artifact, an email attachment or a laptop with no network.

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A pass/fail badge.
pub fn badge(pass: bool) -> &'static str {
    if pass {
        r#"<span class="badge pass">PASS</span>"#
    } else {
        r#"<span class="badge fail">FAIL</span>"#
    }
}

/// An id usable as an HTML anchor.
pub fn anchor(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("--")
}

/// Wraps body HTML into a complete, self-contained page.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"fleetbench {version}\">\n<title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        version = env!("CARGO_PKG_VERSION"),
        title = escape(title),
    )
}

/// The stylesheet.
pub const CSS: &str = r#"
:root {
  --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9;
  --accent: #0969da; --accent2: #8250df; --accent3: #bf8700; --base: #8c959f;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
main { max-width: 1320px; margin: 0 auto; padding: 0 24px 48px; }
header.top { padding: 20px 24px; border-bottom: 1px solid var(--line); background: var(--panel); }
header.top .inner { max-width: 1320px; margin: 0 auto; display: flex; align-items: center; gap: 20px; flex-wrap: wrap; }
header.top h1 { margin: 0; font-size: 22px; }
.verdict { font-size: 20px; font-weight: 700; padding: 6px 16px; border-radius: 8px; letter-spacing: .04em; }
.verdict.pass { background: var(--pass-bg); color: var(--pass); border: 1px solid var(--pass); }
.verdict.fail { background: var(--fail-bg); color: var(--fail); border: 1px solid var(--fail); }
.meta { color: var(--muted); font-size: 13px; }
.meta b { color: var(--fg); font-weight: 600; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
h4 { font-size: 14px; margin: 16px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
p.lead { color: var(--muted); margin: 4px 0 12px; max-width: 960px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 13px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td { background: #fff8f7; }
.badge { display: inline-block; min-width: 44px; text-align: center; font-size: 11px; font-weight: 700; padding: 2px 8px; border-radius: 10px; letter-spacing: .04em; }
.badge.pass { background: var(--pass-bg); color: var(--pass); }
.badge.fail { background: var(--fail-bg); color: var(--fail); }
.badge.error { background: #fff1c2; color: #7d4e00; }
.badge.neutral { background: var(--panel); color: var(--muted); border: 1px solid var(--line); }
.worse { color: var(--fail); font-weight: 600; }
.better { color: var(--pass); font-weight: 600; }
.suite { margin-top: 28px; padding: 16px 20px 8px; border: 1px solid var(--line); border-radius: 10px; }
.suite.failed, .suite.error { border-left: 6px solid var(--fail); }
.suite.passed { border-left: 6px solid var(--pass); }
.suite > header { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.suite > header h3 { margin: 0; font-size: 18px; }
.chips { display: flex; gap: 6px; flex-wrap: wrap; margin: 8px 0; }
.chip { background: var(--panel); border: 1px solid var(--line); border-radius: 12px; padding: 1px 10px; font-size: 12px; color: var(--muted); }
.chip b { color: var(--fg); font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; margin-bottom: 12px; }
figure { margin: 0; padding: 12px; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); }
figure h5 { margin: 0 0 6px; font-size: 14px; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 6px; }
svg.chart { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--muted); }
svg .axis { stroke: #8c959f; stroke-width: 1; }
svg .grid { stroke: #eaeef2; stroke-width: 1; }
svg .axis-label { fill: var(--fg); font-size: 12px; }
svg .bar { fill: var(--accent); }
svg .bar.bad { fill: var(--fail); }
svg .bar.dominant { fill: var(--fail); }
svg .bar.baseline { fill: var(--base); }
svg .bar-label { fill: var(--fg); font-size: 12px; }
svg .bar-value { fill: var(--fg); font-size: 11px; }
svg .bar-value.muted { fill: var(--muted); }
svg .band { fill: var(--pass-bg); stroke: var(--pass); stroke-dasharray: 3 3; }
svg .threshold { stroke: var(--fail); stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .threshold-label { fill: var(--fail); font-weight: 600; }
svg .reference { stroke: var(--muted); stroke-width: 1; stroke-dasharray: 2 3; }
svg .reference-label { fill: var(--muted); }
svg .line { fill: none; stroke-width: 2; }
svg .line.s0 { stroke: var(--accent); } svg .line.s1 { stroke: var(--accent2); }
svg .line.s2 { stroke: var(--accent3); } svg .line.base { stroke: var(--base); stroke-dasharray: 5 3; }
svg .swatch.s0, svg .dot.s0 { fill: var(--accent); } svg .swatch.s1, svg .dot.s1 { fill: var(--accent2); }
svg .swatch.s2, svg .dot.s2 { fill: var(--accent3); } svg .swatch.base, svg .dot.base { fill: var(--base); }
svg .legend { fill: var(--fg); }
svg .empty { fill: var(--panel); stroke: var(--line); }
svg .empty-text { fill: var(--muted); font-size: 13px; }
svg.spark { vertical-align: middle; }
svg .spark-line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg .spark-dot { fill: var(--accent); } svg .spark-dot.bad { fill: var(--fail); }
svg .spark-shift { stroke: var(--fail); stroke-width: 1; stroke-dasharray: 2 2; }
p.dominant { margin: 4px 0 8px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 150px; background: var(--panel); }
.card .value { font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 12px; }
.error-box { background: var(--fail-bg); border: 1px solid var(--fail); color: #82071e; border-radius: 8px; padding: 10px 14px; margin: 10px 0; white-space: pre-wrap; }
.notes { color: var(--muted); font-size: 12px; margin: 4px 0 0 18px; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; background: var(--panel); padding: 1px 4px; border-radius: 4px; }
nav.toc { margin: 12px 0; display: flex; gap: 8px; flex-wrap: wrap; }
nav.toc a { text-decoration: none; color: var(--accent); border: 1px solid var(--line); border-radius: 14px; padding: 2px 10px; font-size: 13px; }
a { color: var(--accent); }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; border-top: 1px solid var(--line); padding-top: 10px; }
@media print { .suite { break-inside: avoid; } }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn anchors_are_safe_ids() {
        assert_eq!(
            anchor(&["Run 1", "label-propagation-300"]),
            "run-1--label-propagation-300"
        );
    }
}
