//! PostgreSQL: one schema per process in the run's own database, migrations
//! as plain SQL files, connections with a timeout on every call, and the
//! initial rows of a workload.
//!
//! - [`writes`]: a domain write as SQL statements;
//! - [`load`]: a service's tables read back into the domain's [`Store`];
//! - [`writer`]: a service's one writing connection: commits (writes,
//!   outbox rows, inbox row and journal in one transaction), the fence
//!   that stops a zombie, and commits whose outcome is unknown.
//!
//! Architecture invariant: every call to the server goes through [`call`],
//! which bounds it in time; a connection keeps TCP keepalives and a user
//! timeout, and the server bounds statements and idle transactions too.

pub mod load;
pub mod writer;
pub mod writes;

use std::future::Future;
use std::time::Duration;

use domain::Workload;
pub use tokio_postgres::Client;
use tokio_postgres::{Config, NoTls};

use crate::deploy::{Infra, Process};
use crate::error::{Error, Result};

pub use domain::Store;

/// How long one call may take before it counts as failed.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The migration files, compiled in: (name, SQL).
pub mod migrations {
    pub const COMMON: (&str, &str) =
        ("000_common", include_str!("../../migrations/000_common.sql"));
    pub const PRODUCT: (&str, &str) =
        ("010_product", include_str!("../../migrations/010_product.sql"));
    pub const ORDER: (&str, &str) = ("020_order", include_str!("../../migrations/020_order.sql"));
    pub const PAYMENT: (&str, &str) =
        ("030_payment", include_str!("../../migrations/030_payment.sql"));
    pub const USER: (&str, &str) = ("040_user", include_str!("../../migrations/040_user.sql"));
    pub const PLATFORM: (&str, &str) =
        ("050_platform", include_str!("../../migrations/050_platform.sql"));
    pub const PG: (&str, &str) = ("060_pg", include_str!("../../migrations/060_pg.sql"));
    pub const ORCHESTRATOR: (&str, &str) =
        ("070_orchestrator", include_str!("../../migrations/070_orchestrator.sql"));
}

/// A call that failed: the server said no, or it did not answer in time, or
/// the connection is gone.
#[derive(Debug)]
pub enum CallError {
    Db(tokio_postgres::Error),
    Timeout,
}

impl CallError {
    /// The server answered with an error and the session lives on (as
    /// opposed to silence, a broken connection, or a FATAL that ends the
    /// session, after any of which what happened is unknown: a backend
    /// terminated just after its COMMIT applied says FATAL too).
    pub fn is_answer(&self) -> bool {
        use tokio_postgres::error::Severity;
        matches!(self, CallError::Db(e) if e.as_db_error().is_some_and(|d| {
            !matches!(d.parsed_severity(), Some(Severity::Fatal | Severity::Panic))
        }))
    }

    /// The SQLSTATE of the server's error, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Db(e) => e.as_db_error().map(|d| d.code().code()),
            CallError::Timeout => None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Db(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
            CallError::Timeout => write!(f, "no answer within {CALL_TIMEOUT:?}"),
        }
    }
}

/// One call to the server, bounded in time.
pub async fn call<T>(
    f: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> std::result::Result<T, CallError> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r.map_err(CallError::Db),
        Err(_) => Err(CallError::Timeout),
    }
}

/// Connect to `database`, as `application_name`, with `search_path` set to
/// `schema` if given. The connection task runs until the client is dropped.
pub async fn connect(
    infra: &Infra,
    database: &str,
    application_name: &str,
    schema: Option<&str>,
) -> Result<Client> {
    let mut options =
        "-c statement_timeout=10000 -c idle_in_transaction_session_timeout=20000".to_string();
    if let Some(s) = schema {
        options.push_str(&format!(" -c search_path={s}"));
    }
    let mut cfg = Config::new();
    cfg.host(&infra.pg_host)
        .port(infra.pg_port)
        .user(&infra.pg_user)
        .dbname(database)
        .application_name(application_name)
        .options(&options)
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(1))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(5));
    let what = format!("PostgreSQL (database {database})");
    let connecting = tokio::time::timeout(CONNECT_TIMEOUT, cfg.connect(NoTls));
    let (client, conn) = match connecting.await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(Error::unreachable(&what, &infra.pg_at(), e)),
        Err(_) => return Err(Error::unreachable(&what, &infra.pg_at(), "no answer within 3 s")),
    };
    tokio::spawn(async move {
        // The connection ends when the client is dropped or the socket
        // breaks; a broken one surfaces as errors on the client's calls.
        let _ = conn.await;
    });
    Ok(client)
}

fn failed(what: &str, e: CallError) -> Error {
    Error::failed(format!("PostgreSQL: {what}: {e}"))
}

/// Create the run's database (fresh: a run never reuses one).
pub async fn create_database(infra: &Infra, database: &str) -> Result<()> {
    let admin = connect(infra, "postgres", "sagasim-admin", None).await?;
    call(admin.batch_execute(&format!("CREATE DATABASE {database}")))
        .await
        .map_err(|e| failed(&format!("creating database {database}"), e))
}

/// Drop a run's database, ending whatever sessions are still in it.
pub async fn drop_database(infra: &Infra, database: &str) -> Result<()> {
    let admin = connect(infra, "postgres", "sagasim-admin", None).await?;
    call(admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")))
        .await
        .map_err(|e| failed(&format!("dropping database {database}"), e))
}

/// Apply the process's migration files that its schema has not seen, each
/// in a transaction, one applier at a time.
pub async fn migrate(client: &mut Client, p: Process) -> Result<()> {
    let schema = p.schema();
    let setup = format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    );
    call(client.batch_execute(&setup)).await.map_err(|e| failed("creating the schema", e))?;
    for (name, sql) in p.migrations() {
        let tx = call(client.transaction()).await.map_err(|e| failed("migrating", e))?;
        let lock = format!("SELECT pg_advisory_xact_lock(hashtext('{schema}'))");
        call(tx.batch_execute(&lock)).await.map_err(|e| failed("migrating", e))?;
        call(tx.batch_execute(&format!("SET LOCAL search_path = {schema}")))
            .await
            .map_err(|e| failed("migrating", e))?;
        let seen = call(tx.query_opt("SELECT 1 FROM schema_migrations WHERE name = $1", &[&name]))
            .await
            .map_err(|e| failed("migrating", e))?;
        if seen.is_none() {
            call(tx.batch_execute(sql))
                .await
                .map_err(|e| failed(&format!("migration {name} in {schema}"), e))?;
            call(tx.execute("INSERT INTO schema_migrations (name) VALUES ($1)", &[&name]))
                .await
                .map_err(|e| failed("migrating", e))?;
        }
        call(tx.commit()).await.map_err(|e| failed("migrating", e))?;
    }
    Ok(())
}

/// The workload's initial rows: products and stock, balances, coupons.
pub async fn seed(client: &mut Client, p: Process, w: &Workload) -> Result<()> {
    let schema = p.schema();
    let tx = call(client.transaction()).await.map_err(|e| failed("seeding", e))?;
    call(tx.batch_execute(&format!("SET LOCAL search_path = {schema}")))
        .await
        .map_err(|e| failed("seeding", e))?;
    let has = |svc: domain::Service| match p {
        Process::Monolith => true,
        Process::Service(s) => s == svc,
        Process::Gateway => false,
    };
    if has(domain::Service::Product) {
        for (i, prod) in w.products.iter().enumerate() {
            let (id, price, stock) = (i as i32, prod.price as i64, prod.stock as i64);
            call(tx.execute(
                "INSERT INTO products (id, price, stock) VALUES ($1, $2, $3)",
                &[&id, &price, &stock],
            ))
            .await
            .map_err(|e| failed("seeding products", e))?;
        }
    }
    if has(domain::Service::User) {
        for (i, b) in w.balances.iter().enumerate() {
            let (id, points) = (i as i32, *b as i64);
            call(tx.execute(
                "INSERT INTO balances (user_id, points) VALUES ($1, $2)",
                &[&id, &points],
            ))
            .await
            .map_err(|e| failed("seeding balances", e))?;
        }
    }
    if has(domain::Service::Order) {
        for (i, c) in w.coupons.iter().enumerate() {
            let (id, user, discount) = (i as i32, c.user.0 as i32, c.discount as i64);
            call(tx.execute(
                "INSERT INTO coupons (id, user_id, discount, state) VALUES ($1, $2, $3, 'issued')",
                &[&id, &user, &discount],
            ))
            .await
            .map_err(|e| failed("seeding coupons", e))?;
        }
    }
    call(tx.commit()).await.map_err(|e| failed("seeding", e))
}
