//! The source tree's layering, checked: no import cycle between the
//! binary crate's folders (`cli`, `scenario`, `sweep`, `investigate`,
//! `measure`, `harness`, and the files at the root), and none between the
//! files of `reports`. A module may use a sibling in its own folder both
//! ways; across folders, imports only go one way.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The modules each unit names through `crate::`, where a unit is what
/// `unit_of` makes of a file's path under `root`.
fn graph(root: &Path, unit_of: impl Fn(&Path) -> String) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let from = unit_of(file.strip_prefix(root).expect("under root"));
        // Comments (doc links among them) import nothing.
        let source = fs::read_to_string(&file).expect("readable source");
        let code: Vec<&str> =
            source.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
        let text = code.join("\n");
        let targets = edges.entry(from.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let name: String =
                rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != from {
                targets.insert(name);
            }
        }
    }
    edges
}

/// A cycle in `edges`, if there is one, as the units along it.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

fn top_folder(rel: &Path) -> String {
    let first = rel.components().next().expect("a path").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn file_module(rel: &Path) -> String {
    rel.file_stem().expect("a file").to_string_lossy().into_owned()
}

#[test]
fn the_binary_crates_folders_import_each_other_one_way_only() {
    let edges = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), top_folder);
    for folder in ["cli", "scenario", "sweep", "investigate", "measure", "harness"] {
        assert!(edges.contains_key(folder), "src/{folder}/ is gone: {edges:?}");
    }
    assert_eq!(cycle(&edges), None, "folders import each other in a circle");
}

#[test]
fn no_file_of_reports_imports_another_that_imports_it_back() {
    let edges = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/src"), file_module);
    assert_eq!(cycle(&edges), None, "reports' files import each other in a circle");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&edges), None);
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(cycle(&edges), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
