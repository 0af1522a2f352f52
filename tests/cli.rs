//! The command line as a user meets it: output formats, exit codes, and clear
//! errors for bad usage and bad scenario files.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// Run the binary as a user at a terminal would: not under CI, where
/// failing seeds would leave failure files in the working directory.
fn sagasim(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sagasim"));
    command.args(args).env_remove("CI").output().expect("the binary runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited with a code")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Write a scenario file into a fresh temporary directory.
fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sagasim-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn run_json_carries_seed_and_digest() {
    let o = sagasim(&["run", "--seed", "3", "--format", "json"]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    assert_eq!(v["schema"], "sagasim.run/1");
    assert_eq!(v["seed"], 3);
    let digest = v["digest"].as_str().expect("digest is a string");
    assert_eq!(digest.len(), 16);
    assert_eq!(v["end"], "settled");
    assert_eq!(json(&sagasim(&["run", "--seed", "3", "--format", "json"]))["digest"], digest);
}

#[test]
fn sweep_json_has_the_documented_fields() {
    let o = sagasim(&["sweep", "--seeds", "10..30", "--format", "json"]);
    assert_eq!(code(&o), 0);
    let v = json(&o);
    for field in [
        "schema",
        "scenario",
        "strategy",
        "bug",
        "runs",
        "violations",
        "failures",
        "events",
        "wall_s",
    ] {
        assert!(v.get(field).is_some(), "field {field}");
    }
    assert_eq!(v["schema"], "sagasim.sweep/2");
    assert_eq!(v["runs"], 20);
    assert_eq!(v["violations"], 0);
    assert_eq!(v["seeds"], serde_json::json!([10, 30]));
}

#[test]
fn a_failing_sweep_exits_1_and_prints_reproduce_lines() {
    let o = sagasim(&["sweep", "--seeds", "40", "--bug", "no-inbox"]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("reproduce: sagasim replay --seed "), "{out}");
    assert!(out.contains("--bug no-inbox"));
    let v = json(&sagasim(&["sweep", "--seeds", "40", "--bug", "no-inbox", "--format", "json"]));
    let f = &v["failures"][0];
    for field in ["seed", "invariant", "step", "time_us", "digest", "repro"] {
        assert!(f.get(field).is_some(), "failure field {field}");
    }
    assert_eq!(
        v["violations"].as_u64(),
        Some(v["failures"].as_array().expect("array").len() as u64)
    );
}

#[test]
fn replay_prints_the_trace_and_the_violation() {
    let v = json(&sagasim(&["sweep", "--seeds", "40", "--bug", "no-inbox", "--format", "json"]));
    let seed = v["failures"][0]["seed"].as_u64().expect("a failing seed").to_string();
    let o = sagasim(&["replay", "--seed", &seed, "--bug", "no-inbox"]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("commit writes="), "the trace shows state changes");
    assert!(out.contains("violated"), "and the violation");
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["sweep", "--strategy", "nope"][..],
        &["sweep", "--bug", "no-such-bug"],
        &["sweep", "--seeds", "5..2"],
        &["sweep", "--seeds", "many"],
        &["run", "--seed", "-1"],
        &["frobnicate"],
        &["list", "colours"],
        &["sweep", "--bug", "no-semantic-lock", "--strategy", "choreography"],
    ] {
        let o = sagasim(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    assert!(stderr(&sagasim(&["sweep", "--strategy", "nope"])).contains("unknown strategy `nope`"));
}

#[test]
fn a_missing_scenario_file_exits_2_naming_it() {
    let o = sagasim(&["sweep", "--scenario", "/no/such/file.toml"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("/no/such/file.toml"), "{}", stderr(&o));
}

/// Each bad file: its text, then the line, column and field the error must name,
/// and a word of what was expected.
#[test]
fn a_bad_scenario_file_names_file_line_column_field_and_expectation() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "unknown",
            "name = \"x\"\n[network]\nloss = 0.1\nlossy = 0.2\n",
            ":4:1: field `network.lossy`",
            "unknown field",
        ),
        ("type", "[workload]\norders = \"many\"\n", ":2:10: field `workload.orders`", "integer"),
        ("range", "[faults]\n\ncrashes = [5, 1]\n", ":3:11: field `faults.crashes`", "low <= high"),
        (
            "choice",
            "[faults]\ncrash_nodes = [\"services\", \"broker\"]\n",
            ":2:15: field `faults.crash_nodes`",
            "a non-empty list of: services, gateway; found \"broker\"",
        ),
        (
            "empty choice",
            "[faults]\npartition_links = []\n",
            ":2:19: field `faults.partition_links`",
            "a non-empty list of: services, gateway, pg; found []",
        ),
        (
            "probability",
            "[network]\nduplicate = 1.5\n",
            ":2:13: field `network.duplicate`",
            "probability",
        ),
        ("zero", "[workload]\nproducts = 0\n", ":2:12: field `workload.products`", "at least 1"),
        ("syntax", "[run\nseeds = 3\n", ":1:", "table"),
    ];
    for (name, text, place, expected) in cases {
        let path = scenario_file(name, text);
        let o =
            sagasim(&["sweep", "--scenario", path.to_str().expect("utf-8 path"), "--seeds", "1"]);
        assert_eq!(code(&o), 2, "{name}");
        let err = stderr(&o);
        assert!(err.contains(&format!("{}{place}", path.display())), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        std::fs::remove_dir_all(path.parent().expect("a folder")).expect("clean up");
    }
}

#[test]
fn a_partial_scenario_file_takes_the_rest_from_default() {
    let path =
        scenario_file("small", "name = \"small\"\n[workload]\norders = 20\n[run]\nseeds = 5\n");
    let o =
        sagasim(&["sweep", "--scenario", path.to_str().expect("utf-8 path"), "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!((v["scenario"].as_str(), v["runs"].as_u64()), (Some("small"), Some(5)));
    let total: u64 = ["confirmed", "cancelled", "rejected", "unfinished"]
        .iter()
        .map(|k| v["outcomes"][k].as_u64().expect("count"))
        .sum();
    assert_eq!(total, 5 * 20);
    std::fs::remove_dir_all(path.parent().expect("a folder")).expect("clean up");
}

#[test]
fn a_blown_step_budget_exits_1() {
    let path = scenario_file("budget", "[run]\nseeds = 3\nstep_budget = 100\n");
    let o = sagasim(&["sweep", "--scenario", path.to_str().expect("utf-8 path")]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("violated step-budget at step 100"), "{out}");
    std::fs::remove_dir_all(path.parent().expect("a folder")).expect("clean up");
}

#[test]
fn list_shows_every_category() {
    let o = sagasim(&["list"]);
    assert_eq!(code(&o), 0);
    let out = String::from_utf8_lossy(&o.stdout);
    for word in [
        "scenarios:",
        "default",
        "strategies:",
        "choreography",
        "bugs:",
        "no-inbox",
        "no-outbox",
        "invariants:",
        "stock-conservation",
        "no-stuck-saga",
        "faults:",
        "partition",
        "rebalance",
    ] {
        assert!(out.contains(word), "{word} in {out}");
    }
    let bugs = sagasim(&["list", "bugs"]);
    assert_eq!(String::from_utf8_lossy(&bugs.stdout).lines().count(), domain::Bug::ALL.len());
}

#[test]
fn compare_reports_violations_as_data_and_exits_0() {
    let o = sagasim(&[
        "compare",
        "--strategies",
        "orchestration,sync-cancel",
        "--seeds",
        "20",
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["schema"], "sagasim.compare/1");
    let strategies = v["strategies"].as_array().expect("strategies");
    assert_eq!(strategies.len(), 2);
    assert_eq!(strategies[1]["strategy"], "sync-cancel");
    let violations = strategies[1]["violations"].as_array().expect("violations");
    assert!(!violations.is_empty(), "sync-cancel breaks under the default faults");
    // Each violation count links to a seed that reproduces it.
    let repro = violations[0]["repro"].as_str().expect("repro");
    let args: Vec<&str> = repro.split_whitespace().skip(1).collect();
    let replayed = sagasim(&args);
    assert_eq!(code(&replayed), 1, "{repro} reproduces a failure");
    let invariant = violations[0]["invariant"].as_str().expect("invariant");
    assert!(String::from_utf8_lossy(&replayed.stdout).contains(invariant));
}

#[test]
fn compare_refuses_bad_usage_with_exit_2() {
    for args in [
        &["compare", "--strategies", "orchestration,nope"][..],
        &["compare", "--strategies", "monolith,monolith"][..],
        &["compare", "--fault-scale", "0,-1"][..],
        &["compare", "--seeds", "5..5"][..],
        &["compare", "--scenario", "no-such-scenario"][..],
    ] {
        let o = sagasim(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn compare_writes_its_report_to_a_file() {
    let dir = std::env::temp_dir().join(format!("sagasim-compare-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("report.md");
    let o = sagasim(&[
        "compare",
        "--strategies",
        "monolith,choreography",
        "--seeds",
        "5",
        "--format",
        "md",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "the report goes to the file, not stdout");
    let text = std::fs::read_to_string(&out).expect("report written");
    assert!(text.contains("| monolith") && text.contains("| choreography"));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind");
}

#[test]
fn a_fault_scale_reaches_run_and_replay() {
    let calm = sagasim(&["run", "--strategy", "sync-cancel", "--fault-scale", "0", "--seed", "0"]);
    assert_eq!(code(&calm), 0, "{}", stderr(&calm));
    let faults = |o: &Output| json(o)["faults"].as_u64().expect("faults");
    let args = ["run", "--seed", "0", "--format", "json", "--fault-scale"];
    let none = sagasim(&[&args[..], &["0"]].concat());
    let many = sagasim(&[&args[..], &["4"]].concat());
    assert!(faults(&none) < faults(&many));
}

#[test]
fn under_ci_failure_files_go_to_failures_by_default() {
    let dir = std::env::temp_dir().join(format!("sagasim-ci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let o = Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(["run", "--bug", "no-inbox", "--seed", "1"])
        .env("CI", "true")
        .current_dir(&dir)
        .output()
        .expect("the binary runs");
    assert_eq!(code(&o), 1);
    let written = dir.join("failures/default-choreography-no-inbox-seed1.json");
    assert!(written.exists(), "{}", stderr(&o));
    assert!(stderr(&o).contains("failure file: failures/"));
}

#[test]
fn a_damaged_or_older_failure_file_is_refused_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("sagasim-bad-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let o =
        sagasim(&["sweep", "--bug", "no-inbox", "--seeds", "1..2", "--out", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let good = dir.join("default-choreography-no-inbox-seed1.json");
    let text = std::fs::read_to_string(&good).expect("sweep --out wrote a failure file");
    let replayed = sagasim(&["replay", good.to_str().unwrap()]);
    assert_eq!(code(&replayed), 1, "{}", stderr(&replayed));
    assert!(stderr(&replayed).contains("reproduced:"));
    let cases = [
        ("cut", text[..text.len() / 2].to_string(), "not a failure file"),
        ("old", text.replace("sagasim.failure/2", "sagasim.failure/1"), "schema"),
        ("noschema", "{}".to_string(), "schema"),
        ("seedless", text.replace("\"seed\": 1,", ""), "damaged"),
        ("badstrategy", text.replace("\"choreography\"", "\"telepathy\""), "unknown strategy"),
        ("badtoml", text.replace("orders = 200", "orders = -1"), "scenario is invalid"),
        ("missing", String::new(), "cannot read"),
    ];
    for (name, body, says) in cases {
        let path = dir.join(format!("{name}.json"));
        if name != "missing" {
            std::fs::write(&path, body).expect("write");
        }
        let o = sagasim(&["replay", path.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{name}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{name}: {}", stderr(&o));
    }
}

#[test]
fn a_replay_ends_with_the_named_entities_before_and_after_the_breaking_step() {
    let o = sagasim(&["replay", "--seed", "0", "--no-swarm", "--bug", "no-inbox", "--order", "3"]);
    assert_eq!(code(&o), 1);
    let out = String::from_utf8_lossy(&o.stdout);
    let (_, states) = out.split_once("state before step 303:").expect("the state before");
    let (before, after) = states.split_once("state after step 303:").expect("the state after");
    let user =
        |s: &str| s.lines().find(|l| l.trim_start().starts_with("user ")).map(str::to_string);
    let (b, a) = (user(before).expect("the user before"), user(after).expect("the user after"));
    assert_ne!(b, a, "the breaking step deducted the points again");
    assert!(before.contains("order 3: order Order {"), "{before}");
    // Filtered to order 3 (request 2): no step about another order's
    // request alone.
    assert!(!out.contains("Placed { id: 0,"), "{out}");
}

#[test]
fn a_replay_writes_a_chrome_trace_perfetto_opens() {
    let o = sagasim(&["replay", "--seed", "1", "--bug", "no-inbox", "--format", "chrome-trace"]);
    assert_eq!(code(&o), 1);
    let v = json(&o);
    let events = v["traceEvents"].as_array().expect("traceEvents");
    let of = |ph: &str| events.iter().filter(|e| e["ph"] == ph).collect::<Vec<_>>();
    let tracks: Vec<&str> = of("M").iter().filter_map(|e| e["args"]["name"].as_str()).collect();
    for node in ["client", "gateway", "product", "order", "payment", "user", "broker", "pg"] {
        assert!(tracks.contains(&node), "a track for {node}: {tracks:?}");
    }
    assert!(of("X").len() > 100, "a span per step");
    assert!(of("X").iter().all(|e| e["ts"].is_u64() && e["tid"].is_u64()));
    assert!(!of("i").is_empty(), "faults as instant events");
    assert!(!of("s").is_empty() && !of("t").is_empty(), "flows per order");
}

#[test]
fn a_sweep_reports_coverage_and_fails_on_an_expected_path_never_hit() {
    let o = sagasim(&["sweep", "--seeds", "30", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let seeds = |point: &str| {
        v["coverage"]
            .as_array()
            .expect("coverage")
            .iter()
            .find(|c| c["point"] == point)
            .expect(point)["seeds"]
            .as_u64()
            .expect("seeds")
    };
    assert!(seeds("compensation ran") > 0 && seeds("crash") > 0);
    assert_eq!(seeds("lock wait"), 0, "the choreography takes no locks");
    let text = sagasim(&["sweep", "--seeds", "10"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("warning: no seed hit:"));
    let expects = scenario_file("expects", "[run]\nexpect = [\"lock wait\"]\n");
    let path = expects.to_str().expect("utf-8");
    let choreo = sagasim(&["sweep", "--scenario", path, "--seeds", "10"]);
    assert_eq!(code(&choreo), 1, "no seed waited on a lock");
    assert!(String::from_utf8_lossy(&choreo.stdout).contains("expects \"lock wait\""));
    let two_pc =
        sagasim(&["sweep", "--scenario", path, "--seeds", "10", "--strategy", "two-phase-commit"]);
    assert_eq!(code(&two_pc), 0, "{}", String::from_utf8_lossy(&two_pc.stdout));
    let bad = scenario_file("badexpect", "[run]\nexpect = [\"telepathy\"]\n");
    let o = sagasim(&["sweep", "--scenario", bad.to_str().expect("utf-8")]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("run.expect") && stderr(&o).contains("telepathy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_replay_says_where_the_run_parts_from_the_recorded_faults() {
    let dir = std::env::temp_dir().join(format!("sagasim-diverge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let o =
        sagasim(&["sweep", "--bug", "no-inbox", "--seeds", "1..2", "--out", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let file = dir.join("default-choreography-no-inbox-seed1.json");
    let same = sagasim(&["replay", file.to_str().unwrap()]);
    assert!(stderr(&same).contains("recorded faults, in order"), "{}", stderr(&same));
    // As if the code had changed: the recording says the fourth fault
    // struck later than this run has it.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let step = v["faults"][3]["step"].as_u64().unwrap();
    v["faults"][3]["step"] = (step + 7).into();
    let moved = dir.join("moved.json");
    std::fs::write(&moved, v.to_string()).unwrap();
    let o = sagasim(&["replay", moved.to_str().unwrap()]);
    let said = stderr(&o);
    assert!(said.contains(&format!("diverged from the recording at step {step}")), "{said}");
    assert!(said.contains("fault #3"), "{said}");
}

#[test]
fn shrink_writes_a_smaller_failure_file_that_replays() {
    let dir = std::env::temp_dir().join(format!("sagasim-shrink-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let args = ["sweep", "--bug", "no-inbox", "--seeds", "1", "--no-swarm", "--out"];
    let o = sagasim(&[&args[..], &[dir.to_str().unwrap()]].concat());
    assert_eq!(code(&o), 1);
    let file = dir.join("default-choreography-no-inbox-seed0.json");
    let small = dir.join("small.json");
    let o = sagasim(&["shrink", file.to_str().unwrap(), "--out", small.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("faults") && said.contains("submissions"), "{said}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&small).unwrap()).unwrap();
    let plan = &v["shrunk"];
    assert!(plan["fault_mask"].as_array().unwrap().len() <= 5);
    assert!(plan["arrivals"].as_array().unwrap().len() <= 10);
    assert_eq!(v["failure"]["invariant"], "no-double-charge");
    let replayed = sagasim(&["replay", small.to_str().unwrap()]);
    assert_eq!(code(&replayed), 1);
    assert!(stderr(&replayed).contains("reproduced:"), "{}", stderr(&replayed));
    let missing = sagasim(&["shrink", dir.join("nope.json").to_str().unwrap()]);
    assert_eq!(code(&missing), 2);
}

#[test]
fn bench_bugs_reports_detection_power_for_every_planted_bug() {
    let quick = ["no-inbox", "no-outbox", "pg-retry-without-key", "no-semantic-lock"];
    let mut rows = Vec::new();
    for bug in quick {
        let o = sagasim(&["bench", "--bugs", "--bug", bug, "--seeds", "12", "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        rows.extend(json(&o).as_array().expect("a row per way of exploring").iter().cloned());
    }
    assert_eq!(rows.len(), quick.len() * 4);
    for bug in quick {
        let explores: Vec<&str> = rows
            .iter()
            .filter(|r| r["bug"] == bug)
            .map(|r| r["explore"].as_str().unwrap())
            .collect();
        assert_eq!(explores, ["seeded", "seeded+swarm", "pct", "pct+swarm"], "{bug}");
    }
    for r in &rows {
        if let Some(first) = r["seeds_to_first"].as_u64() {
            assert!((1..=12).contains(&first), "{r}");
            assert!(r["failing"].as_u64().unwrap() >= 1);
            assert!(r["shrunk_faults"].as_u64() <= r["faults"].as_u64(), "{r}");
            assert!(r["shrunk_submissions"].as_u64() <= r["submissions"].as_u64(), "{r}");
        }
    }
    let no_inbox = rows.iter().find(|r| r["bug"] == "no-inbox").expect("no-inbox");
    assert_eq!(no_inbox["seeds_to_first"], 1);
}

/// A local port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    l.local_addr().expect("bound").port()
}

#[test]
fn live_with_no_server_names_what_it_cannot_reach_and_exits_2_within_seconds() {
    let at = format!("127.0.0.1:{}", dead_port());
    let redis = format!("redis://{at}/");
    let started = std::time::Instant::now();
    let o = sagasim(&["live", "--pg", &at, "--redis", &redis, "--nats", &at, "--no-sim"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("cannot reach PostgreSQL") && err.contains(&at), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn live_refuses_what_it_cannot_run_with_exit_2() {
    let o = sagasim(&["live", "--strategy", "two-phase-commit"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("two-phase-commit does not run live"), "{}", stderr(&o));
    let o = sagasim(&["live", "--strategy", "choreography", "--bug", "no-semantic-lock"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot be planted in choreography"), "{}", stderr(&o));
    let o = sagasim(&["live", "--bug", "relay-high-water-cursor"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot be planted live"), "{}", stderr(&o));
    let o = sagasim(&["live", "--attach", "/nonexistent/deployment.json"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/deployment.json"), "{}", stderr(&o));
    let o = sagasim(&["serve", "payments", "--deployment", "/nonexistent/deployment.json"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no process `payments`"), "{}", stderr(&o));
}
