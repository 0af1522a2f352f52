//! `sagasim up`: a deployment that stays up. It sets up a fresh state for a
//! scenario's seed, starts every process, and supervises them: a process
//! that stops by itself is started again, and a control API lets `sagasim
//! live --attach` kill, start, pause and resume them, as its own children.
//! Ctrl-C (or SIGTERM) ends the processes and removes the state.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use tokio::sync::Mutex;

use crate::deploy::{Deployment, Process};
use crate::error::{Error, Result};
use crate::process::{Children, Life};
use crate::run::Plan;
use crate::system;

type Shared = Arc<Mutex<Children>>;

fn process(name: &str) -> std::result::Result<Process, String> {
    Process::parse(name).ok_or_else(|| format!("no process {name}"))
}

async fn start(
    State(c): State<Shared>,
    Path(name): Path<String>,
) -> Json<std::result::Result<(), String>> {
    let r = match process(&name) {
        Ok(p) => c.lock().await.start(p).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    Json(r)
}

async fn kill(State(c): State<Shared>, Path(name): Path<String>) -> Json<bool> {
    let Ok(p) = process(&name) else { return Json(false) };
    let mut c = c.lock().await;
    let up = c.is_up(p);
    c.kill(p).await;
    Json(up)
}

async fn up(State(c): State<Shared>, Path(name): Path<String>) -> Json<bool> {
    let Ok(p) = process(&name) else { return Json(false) };
    Json(c.lock().await.is_up(p))
}

async fn pause(
    State(c): State<Shared>,
    Path(name): Path<String>,
) -> Json<std::result::Result<(), String>> {
    let r = match process(&name) {
        Ok(p) => c.lock().await.pause(p).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    Json(r)
}

async fn resume(
    State(c): State<Shared>,
    Path(name): Path<String>,
) -> Json<std::result::Result<(), String>> {
    let r = match process(&name) {
        Ok(p) => c.lock().await.resume(p).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    Json(r)
}

async fn heal(
    State(c): State<Shared>,
) -> Json<std::result::Result<Vec<(Process, String)>, String>> {
    let r = c.lock().await.heal().await;
    Json(
        r.map(|v| v.into_iter().map(|(p, w)| (p, w.to_string())).collect())
            .map_err(|e| e.to_string()),
    )
}

async fn revive(State(c): State<Shared>) -> Json<std::result::Result<Vec<Process>, String>> {
    Json(c.lock().await.revive().await.map_err(|e| e.to_string()))
}

async fn lives(State(c): State<Shared>) -> Json<Vec<(Process, Life)>> {
    Json(c.lock().await.lives().into_iter().collect())
}

/// Bring a deployment up and keep it up until Ctrl-C or SIGTERM; `ready`
/// is told once every process answers.
pub async fn up_until_stopped(plan: Plan, ready: impl FnOnce(&Deployment)) -> Result<()> {
    system::preflight(&plan.spec.infra).await?;
    let d = system::deployment(&plan.spec, &plan.workload, true)?;
    let listener = crate::http::bind("control", d.ports["control"]).await?;
    let children: Shared = Arc::new(Mutex::new(Children::new(&d, &plan.exe)));
    let result = async {
        system::set_up(&d, &plan.workload).await?;
        let mut c = children.lock().await;
        for p in Process::of(d.strategy) {
            c.start(p).await?;
        }
        Ok::<(), Error>(())
    }
    .await;
    if result.is_ok() {
        ready(&d);
        let app = Router::new()
            .route("/processes/{name}/start", post(start))
            .route("/processes/{name}/kill", post(kill))
            .route("/processes/{name}/up", post(up))
            .route("/processes/{name}/pause", post(pause))
            .route("/processes/{name}/resume", post(resume))
            .route("/heal", post(heal))
            .route("/revive", post(revive))
            .route("/lives", post(lives))
            .with_state(children.clone());
        let supervise = {
            let c = children.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = c.lock().await.revive().await;
                }
            }
        };
        tokio::select! {
            r = axum::serve(listener, app) => drop(r),
            _ = supervise => {}
            _ = crate::run::stopped() => {}
        }
    }
    children.lock().await.stop_all().await;
    let problems = if plan.keep { Vec::new() } else { system::tear_down(&d).await };
    for p in &problems {
        eprintln!("warning: cleaning up run {}: {p}", d.run);
    }
    result
}
