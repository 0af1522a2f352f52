//! Exploration: swarm testing and PCT scheduling are deterministic per
//! seed and change what a run does; PCT finds an ordering bug more often
//! than the seeded order; a failure file's recorded faults are followed
//! even where the seed's draws no longer give them, and a replay says
//! where a changed run parted from its recording.

use std::process::Command;

use domain::{Bug, Strategy};
use sagasim::harness::explore::Explore;
use sagasim::harness::{self, RunSpec};
use sagasim::measure::detection::EXPLORES;
use sagasim::scenario::Scenario;
use sagasim::sweep::{run_seeds, SweepSpec};
use sim::Schedule;

fn digest(s: &Scenario, explore: Explore, seed: u64) -> (u64, usize) {
    let r =
        harness::run(&RunSpec { explore, ..RunSpec::new(s, Strategy::Choreography, None, seed) });
    (r.digest, r.faults.len())
}

#[test]
fn every_way_of_exploring_reruns_a_seed_to_the_same_digest_and_each_differs() {
    let s = Scenario::load("default").expect("built-in");
    for seed in 0..20 {
        let runs: Vec<(u64, usize)> = EXPLORES.iter().map(|&e| digest(&s, e, seed)).collect();
        let again: Vec<(u64, usize)> = EXPLORES.iter().map(|&e| digest(&s, e, seed)).collect();
        assert_eq!(runs, again, "seed {seed}");
        let mut distinct: Vec<u64> = runs.iter().map(|r| r.0).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4, "seed {seed}: each way of exploring is its own run");
    }
}

#[test]
fn swarm_mixes_switch_fault_kinds_off_in_some_seeds() {
    let s = Scenario::load("default").expect("built-in");
    let swarm = Explore::default();
    let faultless_kinds = (0..40)
        .filter(|&seed| {
            let r = harness::run(&RunSpec {
                explore: swarm,
                ..RunSpec::new(&s, Strategy::Choreography, None, seed)
            });
            !r.faults.iter().any(|f| f.fault.kind() == "drop")
        })
        .count();
    // Loss is on in every seed at the scenario's rates; off in about half
    // the swarm mixes.
    assert!((8..32).contains(&faultless_kinds), "{faultless_kinds} of 40 seeds drop nothing");
    let plain = Explore::AS_WRITTEN;
    assert!((0..40).all(|seed| {
        let r = harness::run(&RunSpec {
            explore: plain,
            ..RunSpec::new(&s, Strategy::Choreography, None, seed)
        });
        r.faults.iter().any(|f| f.fault.kind() == "drop")
    }));
}

fn failing(bug: Bug, scenario: &str, explore: Explore, seeds: u64) -> usize {
    let s = Scenario::load(scenario).expect("built-in");
    let strategy = Strategy::Choreography;
    let spec =
        SweepSpec { scenario: &s, strategy, bug: Some(bug), seeds: (0, seeds), jobs: 2, explore };
    run_seeds(&spec).iter().filter(|r| r.failure.is_some()).count()
}

/// Committing an offset before handling the batch loses records only if a
/// crash falls between the two: PCT, which lets one node fall behind at a
/// few points, makes that ordering more likely than the seeded order does.
#[test]
fn pct_finds_the_commit_before_process_bug_in_more_seeds_than_the_seeded_order() {
    let bug = Bug::CommitOffsetBeforeProcess;
    let seeded = failing(bug, "crash-storm", Explore::AS_WRITTEN, 200);
    let pct = Explore { swarm: false, schedule: Schedule::PCT };
    let with_pct = failing(bug, "crash-storm", pct, 200);
    assert!(with_pct > seeded * 3 / 2, "pct {with_pct} vs seeded {seeded} of 200");
}

fn sagasim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(args)
        .env_remove("CI")
        .output()
        .expect("the binary runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure found under PCT carries `--schedule pct` in its reproduce
/// line, and in its failure file, and both reproduce it.
#[test]
fn a_pct_failure_reproduces_from_its_line_and_its_file() {
    let dir = std::env::temp_dir().join(format!("sagasim-pct-{}", std::process::id()));
    let args = ["sweep", "--scenario", "crash-storm", "--bug", "commit-offset-before-process"];
    let more = ["--schedule", "pct", "--seeds", "3", "--format", "json", "--out"];
    let o = sagasim(&[&args[..], &more[..], &[dir.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let f = &v["failures"][0];
    let repro = f["repro"].as_str().expect("a reproduce line");
    assert!(repro.ends_with("--schedule pct"), "{repro}");
    let words: Vec<&str> = repro.split_whitespace().skip(1).collect();
    let again = sagasim(&[&words[..], &["--format", "json"]].concat());
    let last = String::from_utf8_lossy(&again.stdout).lines().last().unwrap().to_string();
    let r: serde_json::Value = serde_json::from_str(&last).expect("the result line");
    assert_eq!(r["failure"]["digest"], f["digest"]);
    let seed = f["seed"].as_u64().unwrap();
    let file =
        dir.join(format!("crash-storm-choreography-commit-offset-before-process-seed{seed}.json"));
    let replayed = sagasim(&["replay", file.to_str().unwrap()]);
    assert_eq!(replayed.status.code(), Some(1));
    assert!(stderr(&replayed).contains("reproduced:"), "{}", stderr(&replayed));
}

/// Write a no-inbox failure file, then edit its scenario; returns the path.
fn edited_failure_file(name: &str, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sagasim-follow-{name}-{}", std::process::id()));
    let args = ["sweep", "--bug", "no-inbox", "--seeds", "1", "--no-swarm", "--out"];
    let o = sagasim(&[&args[..], &[dir.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let path = dir.join("default-choreography-no-inbox-seed0.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let toml = v["scenario"]["toml"].as_str().unwrap().to_string();
    let changed = edit(&toml);
    assert_ne!(changed, toml, "the edit applies");
    v["scenario"]["toml"] = serde_json::Value::String(changed);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

/// With the network's fault rates set to zero the seed draws no message
/// fault at all, yet a replay of the file still strikes the recorded ones
/// where they were decided, and reproduces the violation to the digest.
#[test]
fn a_replay_follows_the_recorded_faults_where_the_seed_no_longer_draws_them() {
    let path = edited_failure_file("rates", |toml| {
        toml.lines()
            .map(|l| match l.split('=').next().map(str::trim) {
                Some("loss" | "duplicate" | "delay") => {
                    format!("{} = 0.0", l.split('=').next().unwrap().trim())
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let o = sagasim(&["replay", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("reproduced:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("in order"), "{}", stderr(&o));
}

/// A change that makes the run take other decisions (a shorter client
/// timeout: retries come sooner) is reported as the step where the run
/// parted from its recording.
#[test]
fn a_replay_of_a_changed_run_says_where_it_parted_from_the_recording() {
    let path = edited_failure_file("timeout", |toml| {
        toml.lines()
            .map(|l| match l.trim_start().starts_with("timeout_ms") {
                true => "timeout_ms = 40".to_string(),
                false => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let o = sagasim(&["replay", path.to_str().unwrap()]);
    let said = stderr(&o);
    assert!(said.contains("diverged from the recording at step"), "{said}");
}
