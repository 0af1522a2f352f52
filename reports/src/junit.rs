//! A sweep as JUnit XML, the format CI systems read test results in: one
//! `<testsuite>` per sweep, a failing `<testcase>` per failing seed (its
//! violation and reproduce command in the failure message), one per corpus
//! file, and one passing case for the seeds that passed.

use std::io::{self, Write};

use crate::result::{Failure, SweepResult};
use crate::svg::escape as esc;

fn failure_case(out: &mut impl Write, class: &str, name: &str, f: &Failure) -> io::Result<()> {
    writeln!(out, r#"    <testcase classname="{}" name="{}" time="0">"#, esc(class), esc(name))?;
    let message = format!("{} at step {}: {}", f.invariant, f.step, f.detail);
    writeln!(
        out,
        r#"      <failure message="{}" type="{}">{}&#10;entities: {}&#10;digest: {}&#10;reproduce: {}</failure>"#,
        esc(&message),
        esc(&f.invariant),
        esc(&message),
        esc(&f.entities.join(", ")),
        esc(&f.digest),
        esc(&f.repro)
    )?;
    writeln!(out, "    </testcase>")
}

pub fn sweep(out: &mut impl Write, r: &SweepResult) -> io::Result<()> {
    let bug = r.bug.as_deref().map(|b| format!(" bug={b}")).unwrap_or_default();
    let suite = format!("sagasim {} {}{bug} {}", r.scenario, r.strategy, r.explore);
    let class = format!("sagasim.{}.{}", r.scenario, r.strategy);
    let passed = r.runs - r.violations;
    let corpus_failed = r.corpus.iter().filter(|c| c.failure.is_some()).count() as u64;
    let tests = r.violations + u64::from(passed > 0) + r.corpus.len() as u64;
    let failures = r.violations + corpus_failed;
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="sagasim" tests="{tests}" failures="{failures}" errors="0" time="{:.3}">"#,
        r.wall_s
    )?;
    writeln!(
        out,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="0" skipped="0" time="{:.3}">"#,
        esc(&suite),
        r.wall_s
    )?;
    for c in &r.corpus {
        let name = format!("corpus {} (seed {})", c.file, c.seed);
        match &c.failure {
            Some(f) => failure_case(out, &class, &name, f)?,
            None => writeln!(
                out,
                r#"    <testcase classname="{}" name="{}" time="0"/>"#,
                esc(&class),
                esc(&name)
            )?,
        }
    }
    for f in &r.failures {
        failure_case(out, &class, &format!("seed {}", f.seed), f)?;
    }
    if passed > 0 {
        let name = format!("{passed} seeds of {}..{} without a violation", r.seeds[0], r.seeds[1]);
        writeln!(
            out,
            r#"    <testcase classname="{}" name="{}" time="{:.3}"/>"#,
            esc(&class),
            esc(&name),
            r.wall_s
        )?;
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}
