//! The GitHub-flavoured Markdown renderer of `sagasim compare`: the same
//! sections, tables and findings as the HTML page (both walk `view`), as
//! pipe tables for pull requests and wikis. Charts have no Markdown form;
//! what they show is kept as their findings.

use std::io::{self, Write};

use crate::compare::CompareResult;
use crate::view::{self, Block, Cell, Figure, Section, Table};

/// Text that Markdown shows literally: punctuation Markdown would read as
/// syntax is backslash-escaped, and a line break would end a table row.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `s` verbatim: its fence outruns any backtick run
/// inside, and pipes are escaped because GFM splits cells on them even in
/// code.
fn code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let body = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let pad = if body.starts_with('`') || body.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{body}{pad}{fence}")
}

pub fn compare(out: &mut impl Write, r: &CompareResult) -> io::Result<()> {
    writeln!(out, "# sagasim compare: {}\n", escape(&r.scenario))?;
    for (label, value) in view::header(r) {
        writeln!(out, "- **{}:** {}", escape(label), escape(&value))?;
    }
    writeln!(out)?;
    for s in &r.strategies {
        writeln!(out, "- **{}**: {}", escape(&s.strategy), escape(&s.description))?;
    }
    if !r.strategies.is_empty() {
        writeln!(out)?;
    }
    writeln!(out, "{}", escape(view::READING_NOTE))?;
    for s in view::sections(r) {
        section(out, &s)?;
    }
    Ok(())
}

fn section(out: &mut impl Write, s: &Section) -> io::Result<()> {
    writeln!(out, "\n## {}\n", escape(s.title))?;
    writeln!(out, "**What this shows:** {}", escape(&s.finding))?;
    for block in &s.blocks {
        match block {
            Block::Table(t) => table(out, t)?,
            Block::Figures(figs) => figures(out, figs)?,
        }
    }
    Ok(())
}

/// What the charts show, in words, since Markdown cannot draw them.
fn figures(out: &mut impl Write, figs: &[Figure]) -> io::Result<()> {
    writeln!(out, "\nFrom the charts of the HTML report:\n")?;
    for f in figs {
        writeln!(out, "- *{}:* {}", escape(f.chart.title()), escape(&f.finding))?;
    }
    Ok(())
}

fn table(out: &mut impl Write, t: &Table) -> io::Result<()> {
    writeln!(out, "\n**{}**\n", escape(&t.caption))?;
    if t.rows.is_empty() {
        return writeln!(out, "{}", escape(&t.empty));
    }
    let headers: Vec<String> = t.headers.iter().map(|h| escape(h)).collect();
    writeln!(out, "| {} |", headers.join(" | "))?;
    let rule: Vec<&str> = (0..t.headers.len())
        .map(|i| {
            let figures = t.rows.iter().all(|row| matches!(row.get(i), Some(Cell::Num(_))));
            if figures {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    writeln!(out, "|{}|", rule.join("|"))?;
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                Cell::Text(s) | Cell::Num(s) => escape(s),
                Cell::Code(s) => code(s),
            })
            .collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    fn render(r: &CompareResult) -> String {
        let mut out = Vec::new();
        compare(&mut out, r).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("the report is UTF-8")
    }

    #[test]
    fn tables_have_header_and_rule_rows() {
        let md = render(&fixture::compare());
        let lines: Vec<&str> = md.lines().collect();
        for header in [
            "| Strategy | Orders | Success rate \\[95% CI\\] |",
            "| Strategy | Clean seeds | Time to consistency p50 (ms) |",
            "| Strategy | Messages / order |",
            "| Strategy | Throughput (confirmed/s) |",
            "| Strategy | Invariant | Seeds | Per 10k orders | Reproduce |",
            "| Strategy | Orders during outage |",
            "| Strategy | Highest fault scale with no violation |",
            "| Strategy | Fault scale |",
        ] {
            let prefix = header.trim_end_matches(" |");
            let at = lines
                .iter()
                .position(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no table starts with {prefix}"));
            let columns = lines[at].matches(" | ").count() + 1;
            assert!(lines[at + 1].starts_with("|---"));
            assert_eq!(lines[at + 1].matches('|').count(), columns + 1);
        }
    }

    #[test]
    fn finding_names_the_worst_p99() {
        let r = fixture::compare();
        let worst = r
            .strategies
            .iter()
            .max_by(|a, b| a.latency_ms.p99.total_cmp(&b.latency_ms.p99))
            .expect("the fixture has strategies");
        let md = render(&r);
        let outcomes = md.split("\n## ").find(|s| s.starts_with("Outcomes and latency")).unwrap();
        let finding = outcomes.lines().find(|l| l.starts_with("**What this shows:**")).unwrap();
        assert!(finding.contains(&format!("{} had the slowest tail", worst.strategy)), "{finding}");
    }

    #[test]
    fn code_and_markup_are_escaped() {
        let md = render(&fixture::compare());
        assert!(md.contains("`sagasim run --seed 7 \\| tee <out>`"));
        assert!(md.contains("events \\<b\\>\\&\\</b\\> \"sagas\""));
        assert!(!md.contains("NaN"));
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
    }

    #[test]
    fn an_empty_result_renders() {
        let md = render(&fixture::empty());
        assert!(md.starts_with("# sagasim compare: "));
        assert!(md.contains("No strategy was measured"));
    }
}
