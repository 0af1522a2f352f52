//! The deployment's child processes: each `sagasim serve NAME`, started,
//! waited on until it answers, killed with SIGKILL, paused and resumed with
//! SIGSTOP and SIGCONT, and started again. Every child is ended when the
//! set is dropped, on every path out of a run; a child also ends by itself
//! when its standard input closes, so even a parent killed outright leaves
//! nothing running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::deploy::{Deployment, Process};
use crate::error::{Error, Result};

/// How long a child may take to answer its health check.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// What happened to one process over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Life {
    pub starts: u32,
    pub kills: u32,
    pub pauses: u32,
    /// Times it stopped by itself (fenced, or a commit it could not
    /// resolve), and was started again.
    pub exits: u32,
}

struct Kid {
    child: Option<Child>,
    paused: bool,
    life: Life,
}

pub struct Children {
    d: Deployment,
    exe: PathBuf,
    http: crate::http::Client,
    kids: BTreeMap<Process, Kid>,
}

/// The last lines of a log, to show why a child would not start.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| Error::failed(format!("kill {sig} {pid}: {e}")))?;
    if !status.success() {
        return Err(Error::failed(format!("kill {sig} {pid} failed")));
    }
    Ok(())
}

impl Children {
    /// `exe` is the sagasim binary the children run.
    pub fn new(d: &Deployment, exe: &Path) -> Children {
        Children {
            d: d.clone(),
            exe: exe.to_path_buf(),
            http: crate::http::Client::default(),
            kids: BTreeMap::new(),
        }
    }

    /// Start a process and wait until it answers; its output goes to its log.
    pub async fn start(&mut self, p: Process) -> Result<()> {
        let log_path = self.d.log_path(p);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::failed(format!("{}: {e}", log_path.display())))?;
        let err = log.try_clone().map_err(Error::failed)?;
        let child = Command::new(&self.exe)
            .arg("serve")
            .arg(p.name())
            .arg("--deployment")
            .arg(self.d.path())
            .env(crate::service::PARENT, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::failed(format!("starting {}: {e}", self.exe.display())))?;
        let kid =
            self.kids.entry(p).or_insert(Kid { child: None, paused: false, life: Life::default() });
        kid.child = Some(child);
        kid.paused = false;
        kid.life.starts += 1;
        self.wait_ready(p).await
    }

    async fn wait_ready(&mut self, p: Process) -> Result<()> {
        let url = format!("{}/health", self.d.url(p));
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let kid = self.kids.get_mut(&p).expect("started");
            if let Some(c) = kid.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    kid.child = None;
                    let code = status.code().unwrap_or(-1);
                    let log = tail(&self.d.log_path(p), 5);
                    let why = format!("{} exited with code {code} as it started:\n{log}", p.name());
                    // Its own set-up error (a server it could not reach, a
                    // port taken) is the run's.
                    return Err(match code {
                        2 => Error::Setup(why),
                        _ => Error::failed(why),
                    });
                }
            }
            let me = crate::service::identity(&self.d, p);
            if let Ok(body) = self.http.get(&url, Duration::from_millis(500)).await {
                if body == me.as_bytes() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                let log = tail(&self.d.log_path(p), 5);
                return Err(Error::failed(format!(
                    "{} did not answer within {START_TIMEOUT:?}:\n{log}",
                    p.name()
                )));
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Kill a process outright (SIGKILL), as a crash would.
    pub async fn kill(&mut self, p: Process) {
        if let Some(kid) = self.kids.get_mut(&p) {
            if let Some(mut c) = kid.child.take() {
                let _ = c.start_kill();
                let _ = c.wait().await;
                kid.life.kills += 1;
                kid.paused = false;
            }
        }
    }

    pub fn is_up(&self, p: Process) -> bool {
        self.kids.get(&p).is_some_and(|k| k.child.is_some())
    }

    /// Freeze a process (SIGSTOP): it holds its connections and wakes up
    /// later as if nothing happened.
    pub fn pause(&mut self, p: Process) -> Result<()> {
        let kid = self.kids.get_mut(&p).ok_or_else(|| Error::failed("no such process"))?;
        let pid = kid.child.as_ref().and_then(|c| c.id()).ok_or_else(|| Error::failed("down"))?;
        signal(pid, "-STOP")?;
        kid.paused = true;
        kid.life.pauses += 1;
        Ok(())
    }

    pub fn resume(&mut self, p: Process) -> Result<()> {
        let kid = self.kids.get_mut(&p).ok_or_else(|| Error::failed("no such process"))?;
        if let (true, Some(pid)) = (kid.paused, kid.child.as_ref().and_then(|c| c.id())) {
            signal(pid, "-CONT")?;
        }
        kid.paused = false;
        Ok(())
    }

    /// Start again every process that stopped by itself; the ones that did.
    pub async fn revive(&mut self) -> Result<Vec<Process>> {
        let mut gone = Vec::new();
        for (p, kid) in self.kids.iter_mut() {
            if let Some(c) = kid.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    kid.child = None;
                    kid.life.exits += 1;
                    gone.push(*p);
                }
            }
        }
        for p in &gone {
            self.start(*p).await?;
        }
        Ok(gone)
    }

    /// Resume every paused process and start every one that is down; what
    /// it did to which.
    pub async fn heal(&mut self) -> Result<crate::fleet::Healed> {
        let mut done = Vec::new();
        let ps: Vec<Process> = self.kids.keys().copied().collect();
        for p in ps {
            if self.kids[&p].paused {
                self.resume(p)?;
                done.push((p, "resume"));
            }
            if !self.is_up(p) {
                self.start(p).await?;
                done.push((p, "restart"));
            }
        }
        Ok(done)
    }

    pub fn lives(&self) -> BTreeMap<Process, Life> {
        self.kids.iter().map(|(p, k)| (*p, k.life.clone())).collect()
    }

    /// End every child now.
    pub async fn stop_all(&mut self) {
        for kid in self.kids.values_mut() {
            if let Some(mut c) = kid.child.take() {
                if kid.paused {
                    if let Some(pid) = c.id() {
                        let _ = signal(pid, "-CONT");
                    }
                }
                let _ = c.start_kill();
                let _ = c.wait().await;
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for kid in self.kids.values_mut() {
            if let Some(c) = kid.child.as_mut() {
                // SIGKILL ends a stopped process too.
                let _ = c.start_kill();
            }
        }
    }
}
