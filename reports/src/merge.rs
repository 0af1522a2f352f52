//! Shard results combined into one sweep result. The shards of one sweep
//! (`sweep --shard K/N`, run anywhere) must together cover its seed range
//! exactly once; the merged result is the one the unsharded sweep gives,
//! apart from timings.

use crate::result::{SweepResult, SWEEP_SCHEMA};

/// Why results cannot be merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeError(pub String);

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Merge the results of one sweep's shards (or of adjacent seed ranges).
/// Refused: other schemas, other sweeps, a sweep that stopped early, and
/// seed ranges that overlap or leave a gap.
pub fn merge(parts: &[SweepResult]) -> Result<SweepResult, MergeError> {
    let err = |s: String| Err(MergeError(s));
    let Some(first) = parts.first() else { return err("nothing to merge".into()) };
    for p in parts {
        if p.schema != SWEEP_SCHEMA {
            return err(format!("schema `{}` is not `{SWEEP_SCHEMA}`", p.schema));
        }
        let same = (&p.scenario, &p.strategy, &p.bug, &p.explore)
            == (&first.scenario, &first.strategy, &first.bug, &first.explore);
        if !same {
            return err(format!(
                "results of different sweeps: {} {} {:?} {} and {} {} {:?} {}",
                first.scenario,
                first.strategy,
                first.bug,
                first.explore,
                p.scenario,
                p.strategy,
                p.bug,
                p.explore
            ));
        }
        if let Some(why) = &p.stopped {
            return err(format!("seeds {}..{} stopped early ({why})", p.seeds[0], p.seeds[1]));
        }
        if p.coverage.iter().map(|c| &c.point).ne(first.coverage.iter().map(|c| &c.point)) {
            return err("results with different coverage points (other sagasim versions)".into());
        }
    }
    let mut sorted: Vec<&SweepResult> = parts.iter().collect();
    sorted.sort_by_key(|p| p.seeds);
    for w in sorted.windows(2) {
        let (a, b) = (w[0].seeds, w[1].seeds);
        if b[0] < a[1] {
            return err(format!("seeds {}..{} and {}..{} overlap", a[0], a[1], b[0], b[1]));
        }
        if b[0] > a[1] {
            return err(format!("seeds {}..{} are missing", a[1], b[0]));
        }
    }
    let whole = [sorted[0].seeds[0], sorted[sorted.len() - 1].seeds[1]];
    if let Some(s) = parts.iter().find_map(|p| p.shard) {
        for p in parts {
            match p.shard {
                Some(t) if t.of == s.of && t.count == s.count => {}
                _ => {
                    return err(format!(
                        "seeds {}..{} are not a shard of {}..{} in {}",
                        p.seeds[0], p.seeds[1], s.of[0], s.of[1], s.count
                    ))
                }
            }
        }
        if whole != s.of {
            return err(format!(
                "the shards cover seeds {}..{}, not {}..{}: seeds {} are missing",
                whole[0],
                whole[1],
                s.of[0],
                s.of[1],
                if whole[0] > s.of[0] {
                    format!("{}..{}", s.of[0], whole[0])
                } else {
                    format!("{}..{}", whole[1], s.of[1])
                }
            ));
        }
    }
    let mut m = first.clone();
    m.seeds = whole;
    m.shard = None;
    m.failures = sorted.iter().flat_map(|p| p.failures.iter().cloned()).collect();
    m.corpus = first.corpus.clone();
    let sum = |f: fn(&SweepResult) -> u64| parts.iter().map(f).sum::<u64>();
    m.runs = sum(|p| p.runs);
    m.violations = sum(|p| p.violations);
    m.events = sum(|p| p.events);
    m.faults = sum(|p| p.faults);
    m.determinism_checked = sum(|p| p.determinism_checked);
    m.outcomes = Default::default();
    for p in parts {
        m.outcomes += p.outcomes;
    }
    for (i, c) in m.coverage.iter_mut().enumerate() {
        c.seeds = parts.iter().map(|p| p.coverage[i].seeds).sum();
    }
    // Missing from the whole sweep: missing from every shard.
    m.expected_missing.retain(|e| parts.iter().all(|p| p.expected_missing.contains(e)));
    // Shards run side by side: the merged sweep took as long as the
    // slowest; its rates are over the machines' summed time.
    m.wall_s = parts.iter().map(|p| p.wall_s).fold(0.0, f64::max);
    let busy: f64 = parts.iter().map(|p| p.wall_s).sum();
    let per_s = |x: u64| if busy > 0.0 { x as f64 / busy } else { 0.0 };
    (m.events_per_s, m.seeds_per_s) = (per_s(m.events), per_s(m.runs));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use crate::result::Shard;

    #[test]
    fn shards_tile_their_range_whatever_its_length() {
        for (first, last, count) in [(0u64, 10u64, 3u64), (5, 6, 4), (0, 100_000, 7), (3, 3, 2)] {
            let mut next = first;
            for index in 1..=count {
                let [a, b] = Shard { index, count, of: [first, last] }.seeds();
                assert_eq!(a, next);
                assert!(b >= a);
                next = b;
            }
            assert_eq!(next, last);
        }
    }
}
