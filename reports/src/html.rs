//! The HTML renderer of `sagasim compare`: one self-contained HTML5 page
//! for a person comparing coordination strategies. Inline CSS, inline SVG
//! charts, no script and no reference to anything outside the file, so it
//! can be mailed or archived as is. Content comes from `view`; this module
//! owns only the markup and the page's style.

use std::io::{self, Write};

use crate::charts;
use crate::compare::CompareResult;
use crate::svg::{colour, escape};
use crate::view::{self, Block, Cell, Figure, Section, Table};

const STYLE: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;\
background:#fff;margin:0 auto;max-width:1320px;padding:1.5rem}\
h1{font-size:1.6rem;margin:0 0 .3rem}\
h2{font-size:1.25rem;border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.4rem}\
nav ol{display:flex;flex-wrap:wrap;gap:.3rem 1.4rem;list-style:none;padding:0}\
a{color:#0b5394}\
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.8rem 0}\
.facts dt{font-weight:600;color:#555}.facts dd{margin:0}\
.warn{color:#b00020;font-weight:600}\
p.note{color:#555;font-size:.9rem}\
.strategies{list-style:none;padding:0}.strategies li{margin:.2rem 0}\
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.4rem;vertical-align:-1px}\
.finding{background:#f3f7fb;border-left:4px solid #0072b2;padding:.5rem .8rem;margin:.8rem 0}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;margin:.4rem 0 1.2rem;font-size:.88rem}\
caption{text-align:left;font-weight:600;padding:.3rem 0}\
th,td{padding:.3rem .6rem;border-bottom:1px solid #e3e3e3;white-space:nowrap;text-align:left}\
thead th{background:#f1f1f1;vertical-align:bottom;white-space:normal;min-width:4rem;max-width:9rem}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
tbody tr:nth-child(even){background:#fafafa}\
code{font:.85em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f1f1;\
padding:.1rem .3rem;border-radius:3px;white-space:pre-wrap;word-break:break-all}\
.empty{font-style:italic;color:#555}\
.figures{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;margin:.6rem 0 1.2rem}\
figure{margin:0;display:table}\
figcaption{display:table-caption;caption-side:bottom;font-size:.9rem;color:#333;padding-top:.3rem}\
figcaption b{display:block}\
svg.chart{max-width:100%;height:auto;font-family:system-ui,sans-serif;font-size:12px}\
.grid{stroke:#e8e8e8}.axis{stroke:#333}.tick{fill:#333;font-size:11px}\
.axis-label{fill:#111;font-size:12px;font-weight:600}.legend-title{font-weight:600}\
text.note{fill:#666;font-style:italic}.on-bar{fill:#fff;font-size:11px}.cell{fill:#222;font-size:11px}\
.series{stroke-width:2}";

pub fn compare(out: &mut impl Write, r: &CompareResult) -> io::Result<()> {
    let sections = view::sections(r);
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")?;
    writeln!(out, "<title>sagasim compare: {}</title>", escape(&r.scenario))?;
    writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>")?;
    header(out, r, &sections)?;
    writeln!(out, "<main>")?;
    for s in &sections {
        section(out, r, s)?;
    }
    writeln!(out, "</main>\n</body>\n</html>")
}

fn header(out: &mut impl Write, r: &CompareResult, sections: &[Section]) -> io::Result<()> {
    writeln!(out, "<header>\n<h1>sagasim compare: {}</h1>", escape(&r.scenario))?;
    writeln!(out, "<dl class=\"facts\">")?;
    for (label, value) in view::header(r) {
        let class =
            if label == "Same workload" && !r.same_workload { " class=\"warn\"" } else { "" };
        writeln!(out, "<dt>{}</dt><dd{class}>{}</dd>", escape(label), escape(&value))?;
    }
    writeln!(out, "</dl>\n<ul class=\"strategies\">")?;
    for (i, s) in r.strategies.iter().enumerate() {
        writeln!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span><b>{}</b>: {}</li>",
            colour(i),
            escape(&s.strategy),
            escape(&s.description)
        )?;
    }
    writeln!(out, "</ul>\n<p class=\"note\">{}</p>\n<nav>\n<ol>", escape(view::READING_NOTE))?;
    for s in sections {
        writeln!(out, "<li><a href=\"#{}\">{}</a></li>", s.id, escape(s.title))?;
    }
    writeln!(out, "</ol>\n</nav>\n</header>")
}

fn section(out: &mut impl Write, r: &CompareResult, s: &Section) -> io::Result<()> {
    writeln!(out, "<section id=\"{}\">\n<h2>{}</h2>", s.id, escape(s.title))?;
    writeln!(out, "<p class=\"finding\"><b>What this shows:</b> {}</p>", escape(&s.finding))?;
    for block in &s.blocks {
        match block {
            Block::Table(t) => table(out, t)?,
            Block::Figures(figs) => figures(out, r, figs)?,
        }
    }
    writeln!(out, "</section>")
}

fn figures(out: &mut impl Write, r: &CompareResult, figs: &[Figure]) -> io::Result<()> {
    writeln!(out, "<div class=\"figures\">")?;
    for fig in figs {
        writeln!(out, "<figure>")?;
        charts::render(out, r, fig.chart)?;
        writeln!(
            out,
            "<figcaption><b>{}</b>{}</figcaption>\n</figure>",
            escape(fig.chart.title()),
            escape(&fig.finding)
        )?;
    }
    writeln!(out, "</div>")
}

fn table(out: &mut impl Write, t: &Table) -> io::Result<()> {
    if t.rows.is_empty() {
        return writeln!(
            out,
            "<p class=\"empty\"><b>{}:</b> {}</p>",
            escape(&t.caption),
            escape(&t.empty)
        );
    }
    writeln!(out, "<div class=\"scroll\">\n<table>\n<caption>{}</caption>", escape(&t.caption))?;
    write!(out, "<thead><tr>")?;
    for h in &t.headers {
        write!(out, "<th scope=\"col\">{}</th>", escape(h))?;
    }
    writeln!(out, "</tr></thead>\n<tbody>")?;
    for row in &t.rows {
        write!(out, "<tr>")?;
        for (i, c) in row.iter().enumerate() {
            cell(out, c, i == 0)?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody>\n</table>\n</div>")
}

/// A cell; the first of a row names what the row is about.
fn cell(out: &mut impl Write, c: &Cell, heads_row: bool) -> io::Result<()> {
    match (c, heads_row) {
        (Cell::Text(s), true) => write!(out, "<th scope=\"row\">{}</th>", escape(s)),
        (Cell::Text(s), false) => write!(out, "<td>{}</td>", escape(s)),
        (Cell::Num(s), _) => write!(out, "<td class=\"num\">{}</td>", escape(s)),
        (Cell::Code(s), _) => write!(out, "<td><code>{}</code></td>", escape(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    fn render(r: &CompareResult) -> String {
        let mut out = Vec::new();
        compare(&mut out, r).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the page is UTF-8")
    }

    /// Every opened element is closed, in order; void elements and
    /// self-closed ones stand alone. Text is escaped, so every `<` opens a
    /// tag (or the doctype).
    fn assert_balanced(page: &str) {
        const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
        let mut open: Vec<&str> = Vec::new();
        let mut rest = page;
        while let Some(at) = rest.find('<') {
            let end = rest[at..].find('>').expect("every tag ends") + at;
            let tag = &rest[at + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let (closing, body) = match tag.strip_prefix('/') {
                Some(b) => (true, b),
                None => (false, tag),
            };
            let name = body.split(|c: char| c.is_whitespace()).next().unwrap_or("");
            if VOID.contains(&name) {
                continue;
            }
            if closing {
                assert_eq!(open.pop(), Some(name), "</{name}> closes the wrong element");
            } else {
                open.push(name);
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
    }

    /// The `<svg>` elements, from their opening `<` to the end of `</svg>`.
    fn svgs(page: &str) -> Vec<&str> {
        page.match_indices("<svg")
            .map(|(at, _)| &page[at..at + page[at..].find("</svg>").expect("svg closes") + 6])
            .collect()
    }

    #[test]
    fn page_is_self_contained_html5() {
        let page = render(&fixture::compare());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert_balanced(&page);
    }

    #[test]
    fn seven_charts_each_titled_labelled_and_with_a_legend() {
        let page = render(&fixture::compare());
        let charts = svgs(&page);
        assert_eq!(charts.len(), 7);
        for svg in charts {
            let first_child = &svg[svg.find('>').unwrap() + 1..];
            assert!(first_child.starts_with("<title"), "{svg:.80}");
            assert!(svg.matches("class=\"axis-label\"").count() >= 2, "{svg:.80}");
            assert!(svg.contains("class=\"tick\""), "{svg:.80}");
            assert!(svg.contains("class=\"legend\""), "{svg:.80}");
        }
    }

    #[test]
    fn text_is_escaped_and_missing_figures_show_a_dash() {
        let page = render(&fixture::compare());
        assert!(page.contains("events &lt;b&gt;&amp;&lt;/b&gt; &quot;sagas&quot;"));
        assert!(page.contains("<code>sagasim run --seed 7 | tee &lt;out&gt;</code>"));
        assert!(!page.contains("<b>&</b>") && !page.contains("<flash>"));
        assert!(!page.contains("NaN") && !page.contains(">inf") && !page.contains("inf<"));
        assert!(page.contains("<td class=\"num\">–</td>"));
    }

    #[test]
    fn findings_name_the_standout_strategies() {
        let page = render(&fixture::compare());
        assert!(page.contains("two-phase-commit had the slowest tail, p99 latency 4,200 ms"));
        assert!(page.contains("choreography violated invariants"));
        assert!(page.contains("choreography left windows of p99 2,500 ms."));
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(render(&fixture::compare()), render(&fixture::compare()));
    }

    #[test]
    fn an_empty_result_renders() {
        let page = render(&fixture::empty());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert_eq!(svgs(&page).len(), 7);
        assert_balanced(&page);
        assert!(page.contains("No strategy was measured"));
    }

    #[test]
    fn seven_strategies_get_seven_colours() {
        let page = render(&fixture::seven());
        assert_balanced(&page);
        let cdf = svgs(&page)[0];
        let strokes: Vec<&str> = cdf
            .match_indices("<polyline")
            .map(|(at, _)| &cdf[at..at + cdf[at..].find("/>").unwrap()])
            .map(|line| line.split("stroke=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        let mut distinct = strokes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!((strokes.len(), distinct.len()), (7, 7));
        // Ten invariants make narrow heatmap columns, whose labels turn.
        assert!(svgs(&page)[3].contains("rotate(-40"));
    }

    #[test]
    fn one_fault_scale_still_draws_its_curves() {
        let mut r = fixture::compare();
        r.fault_scales = vec![1.0];
        r.curves.retain(|c| c.scale == 1.0);
        let page = render(&r);
        assert_eq!(page.matches("Only one fault intensity was measured.").count(), 3);
        assert!(page.contains("Only fault scale 1 was measured"));
        assert_balanced(&page);
    }
}
