//! The sweep as CI runs it, through the binary: shards merge to the
//! unsharded result, JUnit XML has the structure CI systems read, JSON lines
//! stream a line per seed, early stops report what finished, a corpus of
//! failure files is replayed first, and determinism is spot-checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn sagasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(args)
        .env_remove("CI")
        .output()
        .expect("the binary runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sagasim-ci-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("written")).expect("json")
}

/// A sweep result without what depends on the machine's speed.
fn timeless(mut v: Value) -> Value {
    for k in ["wall_s", "events_per_s", "seeds_per_s"] {
        v.as_object_mut().expect("an object").remove(k);
    }
    v
}

#[test]
fn three_shards_merge_to_the_unsharded_sweep_and_bad_sets_are_refused() {
    let dir = temp("shards");
    let base = ["sweep", "--bug", "no-dlq", "--seeds", "100..190", "--format", "json"];
    let whole = dir.join("whole.json");
    let o = sagasim(&[&base[..], &["--out", whole.to_str().unwrap()]].concat());
    assert_eq!(code(&o), 1, "no-dlq fails some seeds: {}", stderr(&o));
    let mut shards = Vec::new();
    for k in 1..=3 {
        let path = dir.join(format!("shard{k}.json"));
        let shard = format!("{k}/3");
        let o =
            sagasim(&[&base[..], &["--shard", &shard, "--out", path.to_str().unwrap()]].concat());
        assert!([0, 1].contains(&code(&o)), "{}", stderr(&o));
        let v = read_json(&path);
        assert_eq!(v["shard"]["index"], k);
        shards.push(path);
    }
    let merged = dir.join("merged.json");
    let files: Vec<&str> = shards.iter().rev().map(|p| p.to_str().unwrap()).collect();
    let o = sagasim(
        &[&["merge", "--format", "json", "--out", merged.to_str().unwrap()][..], &files[..]]
            .concat(),
    );
    assert_eq!(code(&o), 1, "the merged sweep has failures: {}", stderr(&o));
    let (w, m) = (timeless(read_json(&whole)), timeless(read_json(&merged)));
    assert!(w["violations"].as_u64().unwrap() > 0);
    assert_eq!(m, w, "merged shards equal the unsharded sweep");

    let (s1, s2) = (shards[0].to_str().unwrap(), shards[1].to_str().unwrap());
    let missing = sagasim(&["merge", s1, s2]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("missing"), "{}", stderr(&missing));
    let twice = sagasim(&["merge", s1, s1, s2, shards[2].to_str().unwrap()]);
    assert_eq!(code(&twice), 2);
    assert!(stderr(&twice).contains("overlap"), "{}", stderr(&twice));
    let other = dir.join("other.json");
    let o = sagasim(&[
        "sweep",
        "--seeds",
        "5",
        "--format",
        "json",
        "--shard",
        "1/2",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mixed = sagasim(&["merge", s1, other.to_str().unwrap()]);
    assert_eq!(code(&mixed), 2);
    assert!(stderr(&mixed).contains("different sweeps"), "{}", stderr(&mixed));
}

#[test]
fn junit_output_has_a_failing_case_per_failing_seed_and_one_for_the_rest() {
    let dir = temp("junit");
    let path = dir.join("report.xml");
    let o = sagasim(&[
        "sweep",
        "--bug",
        "no-inbox",
        "--seeds",
        "40",
        "--format",
        "junit",
        "--out",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).expect("written");
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    let failing: Vec<_> =
        cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("failure"))).collect();
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).expect(a).parse::<usize>().unwrap();
    assert_eq!(attr(suite, "tests"), cases.len());
    assert_eq!(attr(suite, "failures"), failing.len());
    assert_eq!(attr(root, "failures"), failing.len());
    assert!(failing.len() > 20, "no-inbox fails most of 40 seeds: {}", failing.len());
    assert_eq!(cases.len(), failing.len() + 1, "one passing case for the clean rest");
    for c in &failing {
        let f = c.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert!(c.attribute("name").unwrap().starts_with("seed "));
        assert!(!f.attribute("message").unwrap().is_empty());
        assert!(f.text().unwrap().contains("reproduce: sagasim replay --seed"), "{:?}", f.text());
    }
}

#[test]
fn jsonl_streams_a_line_per_seed_then_the_summary() {
    let o = sagasim(&["sweep", "--seeds", "30", "--format", "jsonl", "--jobs", "2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 31);
    let mut seeds: Vec<u64> = lines[..30].iter().map(|l| l["seed"].as_u64().unwrap()).collect();
    seeds.sort_unstable();
    assert_eq!(seeds, (0..30).collect::<Vec<_>>());
    assert!(lines[..30].iter().all(|l| l["digest"].as_str().unwrap().len() == 16));
    assert_eq!(lines[30]["schema"], "sagasim.sweep/2");
    assert_eq!(lines[30]["runs"], 30);
    // Into a file, at the end: in seed order.
    let path = temp("jsonl").join("seeds.jsonl");
    let o =
        sagasim(&["sweep", "--seeds", "30", "--format", "jsonl", "--out", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let text = std::fs::read_to_string(&path).expect("written");
    let seeds: Vec<u64> = text
        .lines()
        .take(30)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, (0..30).collect::<Vec<_>>());
}

#[test]
fn fail_fast_and_max_time_stop_early_and_report_what_finished() {
    let o = sagasim(&[
        "sweep",
        "--bug",
        "no-inbox",
        "--seeds",
        "2000",
        "--fail-fast",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 1);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["stopped"], "fail-fast");
    let runs = v["runs"].as_u64().unwrap();
    assert!((1..100).contains(&runs), "stopped soon after the first failure: {runs}");
    // Printed the moment it failed, before the summary.
    assert!(stderr(&o).contains("FAILED seed") && stderr(&o).contains("reproduce: sagasim"));

    let o = sagasim(&["sweep", "--seeds", "10000000", "--max-time", "1s", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["stopped"], "max-time");
    let runs = v["runs"].as_u64().unwrap();
    assert!(runs > 10 && runs < 10_000_000, "{runs}");
    assert!(stderr(&o).contains("stopped early (max-time)"));
}

#[test]
fn a_corpus_is_replayed_first_and_a_failure_that_still_fails_fails_the_sweep() {
    let corpus = temp("corpus");
    let o = sagasim(&[
        "sweep",
        "--bug",
        "no-inbox",
        "--seeds",
        "3",
        "--failures",
        corpus.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    let files = std::fs::read_dir(&corpus).unwrap().count();
    assert!(files >= 1);
    // The bug is still there: the corpus still fails.
    let o = sagasim(&[
        "sweep",
        "--bug",
        "no-inbox",
        "--seeds",
        "0..1",
        "--format",
        "json",
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let c = v["corpus"].as_array().unwrap();
    assert_eq!(c.len(), files);
    assert!(c.iter().all(|c| !c["failure"].is_null()));
    assert!(stderr(&o).contains("FAILED corpus"));
    // "Fixed": the same files replayed without the bug planted pass.
    for f in std::fs::read_dir(&corpus).unwrap() {
        let p = f.unwrap().path();
        let text =
            std::fs::read_to_string(&p).unwrap().replace("\"bug\": \"no-inbox\"", "\"bug\": null");
        std::fs::write(&p, text).unwrap();
    }
    let o = sagasim(&[
        "sweep",
        "--seeds",
        "5",
        "--format",
        "json",
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["corpus"].as_array().unwrap().iter().all(|c| c["failure"].is_null()));
    let bad = temp("bad-corpus");
    std::fs::write(bad.join("x.json"), "{}").unwrap();
    let o = sagasim(&["sweep", "--seeds", "1", "--corpus", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("schema"), "{}", stderr(&o));
}

#[test]
fn check_determinism_reruns_a_share_of_the_seeds() {
    let o = sagasim(&["sweep", "--seeds", "200", "--check-determinism", "0.1", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let n = v["determinism_checked"].as_u64().unwrap();
    assert!((5..=40).contains(&n), "about a tenth of 200: {n}");
    let bad = sagasim(&["sweep", "--check-determinism", "2"]);
    assert_eq!(code(&bad), 2);
}

#[test]
fn out_to_a_folder_means_failure_files_and_to_a_file_means_the_report() {
    let dir = temp("out");
    let folder = format!("{}/", dir.join("fails").display());
    let o = sagasim(&["sweep", "--bug", "no-inbox", "--seeds", "2", "--out", &folder]);
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAILED"), "the report on stdout");
    assert!(std::fs::read_dir(dir.join("fails")).unwrap().count() >= 1);
    let report = dir.join("r.txt");
    let o = sagasim(&["sweep", "--seeds", "2", "--out", report.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(o.stdout.is_empty());
    assert!(std::fs::read_to_string(&report).unwrap().contains("OK: no violation"));
}

#[test]
fn bench_json_has_the_tracked_figures_per_scenario_and_the_peer_ratio() {
    let dir = temp("anchors");
    let anchors = dir.join("anchors.json");
    std::fs::write(
        &anchors,
        r#"{"peer": {"seeds": 200, "seeds_per_s": 40.0, "wall_s": 5.0},
            "floor": {"events": 20000000, "events_per_s": 10000000.0}}"#,
    )
    .unwrap();
    let args = ["bench", "--seeds", "10", "--jobs", "2", "--format", "json", "--peer"];
    let o = sagasim(&[&args[..], &[anchors.to_str().unwrap()]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["schema"], "sagasim.bench/3");
    assert!(v["floor_events_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["anchors"]["peer"]["seeds_per_s"], 40.0);
    let scenarios = v["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios.iter().map(|s| s["scenario"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "saga-bench"]);
    for s in scenarios {
        for k in [
            "events_per_s",
            "ns_per_event",
            "ns_per_event_unchecked",
            "seeds_per_s",
            "seeds_per_s_all_jobs",
            "events_per_seed",
            "setup_us_per_seed",
        ] {
            assert!(s[k].as_f64().unwrap() > 0.0, "{k}: {s}");
        }
        assert!(s["invariant_overhead"].is_f64());
        assert!(s["peak_rss_bytes"].as_u64().unwrap() > 1_000_000);
        assert!(s["max_pending"].as_u64().unwrap() > 0);
        // Every step is counted under one kind; stale ones are a part.
        let kinds = s["by_kind"].as_array().unwrap();
        let sum: f64 = kinds.iter().map(|k| k["per_seed"].as_f64().unwrap()).sum();
        assert!((sum - s["events_per_seed"].as_f64().unwrap()).abs() < 1e-6, "{s}");
        for k in kinds {
            assert!(k["stale_per_seed"].as_f64().unwrap() <= k["per_seed"].as_f64().unwrap());
        }
        // Counted only in a count-allocs build.
        assert!(s["allocations_per_event"].is_null());
        let floor = s["events_per_s"].as_f64().unwrap() / 10_000_000.0;
        assert!((s["vs_bare_loop"].as_f64().unwrap() - floor).abs() < 1e-9);
    }
    let peer = &scenarios[1];
    let ours = peer["seeds_per_s"].as_f64().unwrap();
    assert!((peer["vs_peer_one_core"].as_f64().unwrap() - ours / 40.0).abs() < 1e-9);
    assert!(scenarios[0]["vs_peer_one_core"].is_null(), "the peer runs saga-bench only");
    let growth = v["growth"].as_array().unwrap();
    let orders: Vec<u64> = growth.iter().map(|g| g["orders"].as_u64().unwrap()).collect();
    assert_eq!(orders, [200, 2_000, 20_000]);
    assert!(growth.iter().all(|g| g["events_per_s"].as_f64().unwrap() > 0.0));
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let o = sagasim(&["bench", "--seeds", "1", "--peer", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("bad.json"), "{}", stderr(&o));
}

/// Ctrl-C stops a sweep cleanly: the seeds that finished are reported, and
/// the exit code says it was interrupted.
#[test]
fn ctrl_c_stops_a_sweep_with_the_summary_of_what_finished() {
    let child = Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(["sweep", "--seeds", "10000000", "--format", "json"])
        .env_remove("CI")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(killed.expect("kill runs").success());
    let o = child.wait_with_output().expect("it ends");
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("the summary, as JSON");
    assert_eq!(v["stopped"], "interrupted");
    assert!(v["runs"].as_u64().unwrap() > 0);
    assert!(stderr(&o).contains("stopped early (interrupted)"));
}
