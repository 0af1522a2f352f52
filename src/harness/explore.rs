//! How a run explores beyond the scenario as written: swarm testing and the
//! scheduling strategy. Both are part of what reproduces a seed, so both
//! travel in repro lines and failure files.
//!
//! Swarm testing (Groce et al., ISSTA 2012): a sweep at the scenario's
//! rates gives every seed the same mix of faults, and a mix where every
//! kind is on at once can mask a bug that needs, say, many duplicates and
//! no crash. With swarm on, each seed draws from its own stream, for every
//! fault kind, whether the kind is on (one chance in two) and, if so, a
//! factor on its rate or count (×½, ×1, ×2 or ×4). Over many seeds a sweep
//! covers many mixes, and on average about the scenario's rates.

use serde::{Deserialize, Serialize};
use sim::seed::{Purpose, Stream};
use sim::Schedule;

use crate::scenario::{FaultKind, Scenario};

/// The exploration settings of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explore {
    /// Draw each seed's fault mix (see [`Mix`]); off: the scenario's rates
    /// as they are.
    pub swarm: bool,
    pub schedule: Schedule,
}

impl Default for Explore {
    fn default() -> Self {
        Explore { swarm: true, schedule: Schedule::Seeded }
    }
}

impl Explore {
    /// Measurement, not exploration: the scenario as written, in seeded
    /// order (what `compare` and the speed benchmark use).
    pub const AS_WRITTEN: Explore = Explore { swarm: false, schedule: Schedule::Seeded };

    /// The command-line flags that select these settings ("" for the
    /// defaults), for repro lines.
    pub fn flags(&self) -> String {
        let mut out = String::new();
        if !self.swarm {
            out.push_str(" --no-swarm");
        }
        if let Schedule::Pct { depth, window_us } = self.schedule {
            out.push_str(" --schedule pct");
            let Schedule::Pct { depth: d, window_us: w } = Schedule::PCT else { unreachable!() };
            if depth != d {
                out.push_str(&format!(" --pct-depth {depth}"));
            }
            if window_us != w {
                out.push_str(&format!(" --pct-window-us {window_us}"));
            }
        }
        out
    }

    /// A short name for tables: "seeded", "pct", "seeded+swarm", …
    pub fn label(&self) -> String {
        let schedule = match self.schedule {
            Schedule::Seeded => "seeded",
            Schedule::Pct { .. } => "pct",
        };
        match self.swarm {
            true => format!("{schedule}+swarm"),
            false => schedule.to_string(),
        }
    }

    /// The scenario seed `seed` runs under: with swarm on, its drawn mix
    /// applied.
    pub fn scenario_for(&self, scenario: &Scenario, seed: u64) -> Option<Scenario> {
        self.swarm.then(|| Mix::draw(seed).apply(scenario))
    }
}

/// One seed's fault mix: per kind, off or a factor on its rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Mix {
    pub kinds: Vec<(FaultKind, Option<f64>)>,
}

const FACTORS: [f64; 4] = [0.5, 1.0, 2.0, 4.0];

impl Mix {
    pub fn draw(seed: u64) -> Mix {
        let mut s = Stream::new(seed, Purpose::Swarm);
        let kinds = FaultKind::ALL
            .into_iter()
            .map(|kind| {
                // Two draws per kind whatever the outcome, so one kind's
                // mix never shifts another's.
                let on = s.range(0, 1) == 1;
                let factor = FACTORS[s.range(0, FACTORS.len() as u64 - 1) as usize];
                (kind, on.then_some(factor))
            })
            .collect();
        Mix { kinds }
    }

    pub fn apply(&self, scenario: &Scenario) -> Scenario {
        let mut s = scenario.clone();
        for &(kind, factor) in &self.kinds {
            s.scale_kind(kind, factor.unwrap_or(0.0));
        }
        s
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on: Vec<String> =
            self.kinds.iter().filter_map(|(k, x)| x.map(|x| format!("{}×{x}", k.name()))).collect();
        let off: Vec<&str> =
            self.kinds.iter().filter(|(_, x)| x.is_none()).map(|(k, _)| k.name()).collect();
        let none = |v: String| if v.is_empty() { "none".to_string() } else { v };
        write!(f, "on: {}; off: {}", none(on.join(", ")), none(off.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_draws_the_same_mix_and_seeds_differ() {
        assert_eq!(Mix::draw(7), Mix::draw(7));
        let distinct: std::collections::BTreeSet<String> =
            (0..50).map(|s| Mix::draw(s).to_string()).collect();
        assert!(distinct.len() > 45, "{} distinct mixes of 50", distinct.len());
    }

    #[test]
    fn every_kind_is_off_in_about_half_the_seeds_and_each_factor_appears() {
        for (i, kind) in FaultKind::ALL.into_iter().enumerate() {
            let mixes: Vec<Option<f64>> = (0..2_000).map(|s| Mix::draw(s).kinds[i].1).collect();
            let off = mixes.iter().filter(|x| x.is_none()).count();
            assert!((850..1150).contains(&off), "{} off in {off} of 2000", kind.name());
            for f in FACTORS {
                assert!(mixes.contains(&Some(f)), "{} never ×{f}", kind.name());
            }
        }
    }

    #[test]
    fn an_off_kind_has_no_rate_and_a_factor_scales_it() {
        let s = Scenario::load("default").unwrap();
        let mut mix = Mix::draw(0);
        for k in mix.kinds.iter_mut() {
            k.1 = match k.0 {
                FaultKind::Loss => None,
                FaultKind::Crash => Some(2.0),
                _ => Some(1.0),
            };
        }
        let m = mix.apply(&s);
        assert_eq!(m.network.loss_ppm, 0);
        assert_eq!(m.faults.crashes, (s.faults.crashes.0 * 2, s.faults.crashes.1 * 2));
        assert_eq!(m.network.duplicate_ppm, s.network.duplicate_ppm);
        assert!(s.network.loss_ppm > 0 && s.faults.crashes.1 > 0);
    }

    #[test]
    fn flags_name_only_what_differs_from_the_defaults() {
        assert_eq!(Explore::default().flags(), "");
        assert_eq!(Explore::AS_WRITTEN.flags(), " --no-swarm");
        let pct = Explore { swarm: true, schedule: Schedule::PCT };
        assert_eq!(pct.flags(), " --schedule pct");
        let deep = Explore { swarm: true, schedule: Schedule::Pct { depth: 5, window_us: 5_000 } };
        assert_eq!(deep.flags(), " --schedule pct --pct-depth 5");
    }
}
