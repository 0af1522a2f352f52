//! The CI examples the README points to are files, and this test keeps them
//! working: it parses `.github/workflows/sweep.yml` and
//! `deploy/sweep-job.yaml` as YAML and runs every `sagasim` command in
//! them, as their shells would, on a few seeds instead of 100,000: every
//! shard of the matrix or of the Indexed Job, then the merge.

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Vec<Yaml> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&file).expect("the example is in the repository");
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sagasim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Run a command line as `sh` would, with `sagasim` (or `cargo run
/// --release --`) being this build's binary and the seed count cut down.
fn sh(line: &str, dir: &Path, env: &[(&str, String)]) {
    assert!(line.contains("--seeds 100000") || line.contains(" merge "), "unexpected: {line}");
    let line = line
        .replace("cargo run --release --", "\"$SAGASIM\"")
        .replace("sagasim ", "\"$SAGASIM\" ")
        .replace("--seeds 100000", "--seeds 16")
        .replace("/results", &dir.display().to_string());
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&line).current_dir(dir).env("SAGASIM", env!("CARGO_BIN_EXE_sagasim"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("sh runs");
    assert!(
        out.status.success(),
        "`{line}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn runs(job: &Yaml) -> Vec<String> {
    let steps = job["steps"].as_vec().expect("a job has steps");
    steps.iter().filter_map(|s| s["run"].as_str()).map(str::to_string).collect()
}

#[test]
fn the_github_workflow_sweeps_every_shard_and_merges_them() {
    let doc = &load(".github/workflows/sweep.yml")[0];
    let jobs = &doc["jobs"];
    let shards = jobs["sweep"]["strategy"]["matrix"]["shard"].as_vec().expect("a shard matrix");
    assert_eq!(shards.len(), 8);
    let dir = scratch("workflow");
    let sweep = runs(&jobs["sweep"]);
    assert_eq!(sweep.len(), 1, "one sweep step");
    for shard in shards {
        let k = shard.as_i64().expect("a shard number").to_string();
        sh(&sweep[0].replace("${{ matrix.shard }}", &k), &dir, &[]);
    }
    assert_eq!(jobs["merge"]["needs"].as_str(), Some("sweep"));
    for line in runs(&jobs["merge"]) {
        sh(&line, &dir, &[]);
    }
    let xml = std::fs::read_to_string(dir.join("sweep.xml")).expect("the merge wrote sweep.xml");
    assert!(xml.contains("16 seeds of 0..16 without a violation"), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_kubernetes_jobs_sweep_every_index_and_merge_them() {
    let docs = load("deploy/sweep-job.yaml");
    assert_eq!(docs.len(), 2, "the sweep Job and the merge Job");
    let args = |doc: &Yaml| -> String {
        let container = &doc["spec"]["template"]["spec"]["containers"][0];
        let command: Vec<&str> = container["command"]
            .as_vec()
            .expect("a command")
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(command, ["sh", "-c"]);
        container["args"][0].as_str().expect("one shell line").to_string()
    };
    let (sweep, merge) = (&docs[0], &docs[1]);
    assert_eq!(sweep["spec"]["completionMode"].as_str(), Some("Indexed"));
    let completions = sweep["spec"]["completions"].as_i64().expect("completions");
    assert_eq!(completions, 8);
    let dir = scratch("k8s");
    for index in 0..completions {
        sh(&args(sweep), &dir, &[("JOB_COMPLETION_INDEX", index.to_string())]);
    }
    sh(&args(merge), &dir, &[]);
    let xml = std::fs::read_to_string(dir.join("sweep.xml")).expect("the merge wrote sweep.xml");
    assert!(xml.contains("16 seeds of 0..16 without a violation"), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}
