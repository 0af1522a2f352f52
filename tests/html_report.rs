//! The HTML report as a person gets it: one self-contained file with a
//! titled, labelled SVG per chart, that a real browser renders.

use std::path::{Path, PathBuf};
use std::process::Command;

fn report(dir: &Path) -> PathBuf {
    let out = dir.join("report.html");
    let o = Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(["compare", "--strategies", "monolith,orchestration,sync-cancel", "--seeds", "8"])
        .args(["--fault-scale", "0,2", "--format", "html", "--out"])
        .arg(&out)
        .output()
        .expect("the binary runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sagasim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The SVG elements of a page, each from `<svg` to its `</svg>`.
fn svgs(html: &str) -> Vec<&str> {
    html.split("<svg").skip(1).map(|s| s.split("</svg>").next().expect("split")).collect()
}

#[test]
fn the_report_is_one_well_formed_page_with_a_titled_chart_each() {
    let html = std::fs::read_to_string(report(&temp_dir("html"))).expect("report written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for tag in ["html", "body", "svg", "table", "section", "g", "text"] {
        let opened =
            html.matches(&format!("<{tag}>")).count() + html.matches(&format!("<{tag} ")).count();
        let closed = html.matches(&format!("</{tag}>")).count();
        assert_eq!(opened, closed, "<{tag}> opened {opened} times, closed {closed} times");
    }
    let charts = svgs(&html);
    // Latency CDF, outcomes, violations heatmap, windows, three curves.
    assert_eq!(charts.len(), 7);
    for svg in &charts {
        let title = svg.split("<title").nth(1).expect("every chart has a title");
        assert!(title.split("</title>").next().is_some_and(|t| t.len() > 10));
        // Two axes, each with its label, and a legend.
        assert_eq!(svg.matches("class=\"axis-label\"").count(), 2, "axis labels");
        assert!(svg.contains("class=\"legend\""), "a legend");
    }
    for unit in ["ms", "%", "per 10,000 orders", "fault scale"] {
        assert!(html.contains(unit), "the report names {unit}");
    }
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("http://") && !html.contains("https://"), "no network");
}

/// Chromium, if installed (`.ci/run` installs it; CI must have it).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI runs with Chromium installed");
        eprintln!("skipped: no Chromium on this machine");
    }
    found
}

#[test]
fn chromium_renders_the_report_without_errors() {
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("chromium");
    let page = report(&dir);
    let shot = dir.join("report.png");
    let o = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(["--window-size=1400,3000", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    for bad in ["Uncaught", "net::ERR", "Failed to load", "CONSOLE(", "Refused to"] {
        assert!(!log.contains(bad), "chromium reported {bad}: {log}");
    }
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000, "a real picture");
    let dom = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("--user-data-dir={}", dir.join("profile2").display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(dom.status.success());
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(svgs(&dom).len(), 7, "the browser's DOM holds every chart");
}
