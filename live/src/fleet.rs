//! The processes a run drives and strikes: its own children, or those of a
//! system already running under `sagasim up`, reached through that
//! supervisor's control API (`/processes/{name}/{kill,start,pause,resume}`,
//! `/heal`, `/revive`, `/lives`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::deploy::{Deployment, Process};
use crate::error::{Error, Result};
use crate::http;
use crate::process::{Children, Life};

/// What the heal did to one process.
pub type Healed = Vec<(Process, &'static str)>;

pub enum Fleet {
    Local(Box<Children>),
    Remote { base: String, http: http::Client },
}

const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

impl Fleet {
    /// The fleet of a system started by `sagasim up`.
    pub fn remote(d: &Deployment) -> Result<Fleet> {
        let port = d.ports.get("control").ok_or_else(|| {
            Error::Setup(format!(
                "{} has no control port: attach to a system `sagasim up` started",
                d.path().display()
            ))
        })?;
        Ok(Fleet::Remote {
            base: format!("http://127.0.0.1:{port}"),
            http: http::Client::default(),
        })
    }

    async fn control<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let Fleet::Remote { base, http } = self else { unreachable!("only a remote fleet") };
        let url = format!("{base}{path}");
        let body = http
            .post(&url, CONTROL_TIMEOUT)
            .await
            .map_err(|e| Error::failed(format!("the supervisor at {base}: {path}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::failed(format!("the supervisor at {base}: {path}: {e}")))
    }

    async fn act(&self, p: Process, what: &str) -> Result<()> {
        let r: std::result::Result<(), String> =
            self.control(&format!("/processes/{}/{what}", p.name())).await?;
        r.map_err(Error::failed)
    }

    pub async fn start(&mut self, p: Process) -> Result<()> {
        match self {
            Fleet::Local(c) => c.start(p).await,
            Fleet::Remote { .. } => self.act(p, "start").await,
        }
    }

    /// Kill `p` with SIGKILL; false if it was not up.
    pub async fn kill(&mut self, p: Process) -> Result<bool> {
        match self {
            Fleet::Local(c) => {
                let up = c.is_up(p);
                c.kill(p).await;
                Ok(up)
            }
            Fleet::Remote { .. } => {
                let up: bool = self.control(&format!("/processes/{}/kill", p.name())).await?;
                Ok(up)
            }
        }
    }

    pub async fn is_up(&self, p: Process) -> Result<bool> {
        match self {
            Fleet::Local(c) => Ok(c.is_up(p)),
            Fleet::Remote { .. } => self.control(&format!("/processes/{}/up", p.name())).await,
        }
    }

    pub async fn pause(&mut self, p: Process) -> Result<()> {
        match self {
            Fleet::Local(c) => c.pause(p),
            Fleet::Remote { .. } => self.act(p, "pause").await,
        }
    }

    pub async fn resume(&mut self, p: Process) -> Result<()> {
        match self {
            Fleet::Local(c) => c.resume(p),
            Fleet::Remote { .. } => self.act(p, "resume").await,
        }
    }

    /// Resume every paused process and start every one that is down.
    pub async fn heal(&mut self) -> Result<Healed> {
        match self {
            Fleet::Local(c) => c.heal().await,
            Fleet::Remote { .. } => {
                let r: std::result::Result<Vec<(Process, String)>, String> =
                    self.control("/heal").await?;
                let done = r.map_err(Error::failed)?;
                Ok(done
                    .into_iter()
                    .map(|(p, w)| (p, if w == "resume" { "resume" } else { "restart" }))
                    .collect())
            }
        }
    }

    /// Start again every process that stopped by itself.
    pub async fn revive(&mut self) -> Result<Vec<Process>> {
        match self {
            Fleet::Local(c) => c.revive().await,
            Fleet::Remote { .. } => {
                let r: std::result::Result<Vec<Process>, String> = self.control("/revive").await?;
                r.map_err(Error::failed)
            }
        }
    }

    pub async fn lives(&self) -> Result<BTreeMap<Process, Life>> {
        match self {
            Fleet::Local(c) => Ok(c.lives()),
            Fleet::Remote { .. } => {
                let lives: Vec<(Process, Life)> = self.control("/lives").await?;
                Ok(lives.into_iter().collect())
            }
        }
    }
}
