//! The live world end to end, against the machine's PostgreSQL, Redis and
//! NATS (`cargo test --features live-tests`; `.ci/run` runs them, and they
//! fail when a server is missing): clean runs of each required strategy add
//! up in SQL, planted bugs are found, a kill between commit and publish
//! loses nothing, a zombie is fenced, a lost COMMIT answer is read back,
//! bad set-up exits 2 naming what it could not reach, processes end with
//! the run, a trace follows an order through every process, and a system
//! `sagasim up` started can be attached to.

#![cfg(feature = "live-tests")]

mod worlds;

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{Bug, Strategy};
use live::deploy::{Deployment, Infra, Process};
use live::pg::writer::{Commit, Writer};
use reports::live::LiveReport;
use sagasim::cli::live::{plan_for, DeployArgs};
use sagasim::scenario::Scenario;
use worlds::rt;

const BIN: &str = env!("CARGO_BIN_EXE_sagasim");

fn plan(scenario: &str, strategy: Strategy, bug: Option<Bug>, seed: u64) -> live::run::Plan {
    let s = Scenario::load(scenario).expect("a built-in scenario");
    let mut p = plan_for(&s, strategy, bug, seed, &DeployArgs::default()).expect("a plan");
    p.exe = PathBuf::from(BIN);
    p
}

fn run(p: live::run::Plan) -> live::run::Outcome {
    rt().block_on(live::run::run(p)).expect("the run goes through")
}

fn summary(r: &LiveReport) -> String {
    format!(
        "{} seed {}: {:?}, settled {:?}, vacuous {}, outcomes {:?}",
        r.strategy, r.seed, r.violation, r.settled_at_ms, r.vacuous, r.outcomes
    )
}

/// The SQL's own account, independent of the checker: per product, stock
/// plus what reservations hold equals the initial stock; sales equal the
/// confirmed orders' quantities; per user, the balance plus the points
/// deducted for orders equals the initial balance.
fn adds_up_in_sql(d: &Deployment, w: &domain::Workload) {
    let schema = |s| d.process_of(domain::node::Peer::Service(s)).schema();
    let (product, order, user) = (
        schema(domain::Service::Product),
        schema(domain::Service::Order),
        schema(domain::Service::User),
    );
    rt().block_on(async {
        let c = live::pg::connect(&d.infra, &d.database(), "test-sql", None).await.expect("up");
        let q = format!(
            "SELECT p.id, (p.stock + coalesce((SELECT sum(qty) FROM {product}.reservations r
                 WHERE r.product = p.id AND r.state = 'held'), 0))::int8,
               p.sales, coalesce((SELECT sum(qty) FROM {order}.orders o
                 WHERE o.product = p.id AND o.state = 'confirmed'), 0)::int8
             FROM {product}.products p ORDER BY p.id"
        );
        for r in c.query(&q, &[]).await.expect("the products read") {
            let (id, held, sales, sold): (i32, i64, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            assert_eq!(held as u64, w.products[id as usize].stock, "stock of product {id}");
            assert_eq!(sales, sold, "sales of product {id}");
        }
        let q = format!(
            "SELECT b.user_id, (b.points + coalesce((SELECT sum(d.points) FROM {user}.decisions d
                 JOIN {order}.orders o ON o.id = d.order_id WHERE o.user_id = b.user_id), 0))::int8
             FROM {user}.balances b ORDER BY b.user_id"
        );
        for r in c.query(&q, &[]).await.expect("the balances read") {
            let (id, total): (i32, i64) = (r.get(0), r.get(1));
            assert_eq!(total as u64, w.balances[id as usize], "points of user {id}");
        }
    });
}

#[test]
fn clean_strategies_end_without_violation_and_add_up_in_sql() {
    for strategy in [Strategy::Choreography, Strategy::Orchestration, Strategy::Monolith] {
        for seed in 0..5 {
            let mut p = plan("default", strategy, None, seed);
            p.keep = seed == 0;
            let w = p.workload.clone();
            let o = run(p);
            let r = &o.report;
            assert!(r.violation.is_none() && r.settled && !r.vacuous, "{}", summary(r));
            assert_eq!(r.orders, 200, "{}", summary(r));
            assert!(r.faults.iter().any(|f| f.kind == "kill"), "a crash struck: {:?}", r.faults);
            if seed == 0 {
                let d = Deployment::read(&o.dir.join("deployment.json")).expect("written");
                adds_up_in_sql(&d, &w);
                assert!(rt().block_on(live::system::tear_down(&d)).is_empty());
            }
        }
    }
}

#[test]
fn orchestrator_policies_run_live() {
    for strategy in [Strategy::CompensationCoupon, Strategy::UxRetry] {
        let r = run(plan("default", strategy, None, 1)).report;
        assert!(r.violation.is_none() && r.settled, "{}", summary(&r));
    }
    // The synchronous cancel does not claim to survive faults; it runs.
    let r = run(plan("crash-storm", Strategy::SyncCancel, None, 1)).report;
    assert_eq!(r.orders, 200, "{}", summary(&r));
}

#[test]
fn planted_bugs_are_found_live() {
    let cases: [(Bug, &str, &[&str]); 3] = [
        (Bug::NoIdempotencyKey, "default", &["idempotent-responses"]),
        (
            Bug::NoInbox,
            "default",
            &["no-double-charge", "exactly-once-side-effects", "confirmed-is-complete"],
        ),
        (
            Bug::NoOutbox,
            "crash-storm",
            &["eventual-consistency", "exactly-once-side-effects", "no-stuck-saga"],
        ),
    ];
    for (bug, scenario, expected) in cases {
        let mut found = None;
        for seed in 0..5 {
            let r = run(plan(scenario, Strategy::Choreography, Some(bug), seed)).report;
            if let Some(v) = r.violation {
                assert!(expected.contains(&v.invariant.as_str()), "{}: {v:?}", bug.name());
                found = Some(seed);
                break;
            }
        }
        assert!(found.is_some(), "{} was not found in 5 runs of {scenario}", bug.name());
    }
}

/// A deployment of one order's workload, with the relays holding rows.
fn one_order(hold: (u64, u64), dedupe_ms: u64) -> (live::run::Plan, Deployment) {
    let mut p = plan("calm", Strategy::Choreography, None, 0);
    p.workload.arrivals.truncate(1);
    p.spec.broker.relay_hold_ms = hold;
    p.spec.broker.dedupe_window_ms = dedupe_ms;
    let d = live::system::deployment(&p.spec, &p.workload, false).expect("a deployment");
    rt().block_on(live::system::set_up(&d, &p.workload)).expect("set up");
    (p, d)
}

fn submit(d: &Deployment, w: &domain::Workload) -> domain::Response {
    let a = w.arrivals[0];
    let url = format!("{}/orders", d.url(Process::Gateway));
    let body = serde_json::to_vec(&a.req).expect("serialises");
    let headers = [(live::http::IDEMPOTENCY_KEY, format!("{:x}", a.key.0))];
    let http = live::http::Client::default();
    let got = rt().block_on(http.post_json(&url, &headers, body, Duration::from_secs(10)));
    serde_json::from_slice(&got.expect("an answer")).expect("a response")
}

fn outbox(d: &Deployment, p: Process) -> Vec<String> {
    rt().block_on(async {
        let c =
            live::pg::connect(&d.infra, &d.database(), "test", Some(p.schema())).await.expect("up");
        let rows = c.query("SELECT status FROM outbox ORDER BY id", &[]).await.expect("reads");
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    })
}

/// Wait until every saga of the workload is over; the checker's verdict.
fn settle(d: &Deployment, w: &domain::Workload) -> (domain::Checker, Option<domain::Violation>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    rt().block_on(async {
        let mut db = live::pg::connect(&d.infra, &d.database(), "test", None).await.expect("up");
        loop {
            let snap = live::check::read(&mut db, d).await.expect("a snapshot");
            let (checker, v) = live::check::check(w, d, &snap);
            if v.is_some() || checker.sagas_done() || Instant::now() > deadline {
                return (checker, v);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

fn status(d: &Deployment, p: Process) -> live::node::Status {
    let http = live::http::Client::default();
    let body = rt()
        .block_on(http.get(&format!("{}/status", d.url(p)), Duration::from_secs(2)))
        .expect("a status");
    serde_json::from_slice(&body).expect("a status")
}

fn start_all(p: &live::run::Plan, d: &Deployment) -> live::process::Children {
    let mut c = live::process::Children::new(d, &p.exe);
    rt().block_on(async {
        for proc in Process::of(d.strategy) {
            c.start(proc).await.expect("starts");
        }
    });
    c
}

#[test]
fn a_kill_between_commit_and_publish_loses_no_event() {
    let (p, d) = one_order((1_500, 0), 120_000);
    let mut c = start_all(&p, &d);
    let product = Process::Service(domain::Service::Product);
    // Requests that name nothing the system has are refused at the door,
    // and so are messages no service takes: nothing breaks.
    let http = live::http::Client::default();
    let orders = format!("{}/orders", d.url(Process::Gateway));
    let bad = br#"{"user":0,"product":999,"qty":1,"coupon":null,"points":0}"#.to_vec();
    let headers = [(live::http::IDEMPOTENCY_KEY, "abc".to_string())];
    let got = rt().block_on(http.post_json(&orders, &headers, bad, Duration::from_secs(5)));
    assert!(matches!(got, Err(live::http::CallFailed::Status(400, _))), "{got:?}");
    let env = live::http::Envelope {
        from: domain::node::Peer::Gateway,
        msg: domain::Msg::Malformed { id: 1 },
    };
    let ctx = live::trace::TraceCtx::root();
    let got = rt().block_on(http.send(&d.url(product), &env, ctx, Duration::from_secs(5)));
    assert!(matches!(got, Err(live::http::CallFailed::Status(400, _))), "{got:?}");
    assert!(matches!(submit(&d, &p.workload), domain::Response::Accepted { .. }));
    // The stock is held and the event is in the outbox, not yet published.
    assert_eq!(outbox(&d, product), vec!["PENDING"]);
    rt().block_on(c.kill(product));
    rt().block_on(c.start(product)).expect("restarts");
    let (checker, v) = settle(&d, &p.workload);
    assert!(v.is_none(), "{v:?}");
    assert!(checker.sagas_done(), "the saga finished after the restart");
    assert_eq!(outbox(&d, product), vec!["SENT"], "the new relay published it");
    rt().block_on(c.stop_all());
    assert!(rt().block_on(live::system::tear_down(&d)).is_empty());
}

#[test]
fn an_event_published_again_after_a_kill_is_absorbed_by_the_inbox() {
    // Payment's relay publishes, then holds before marking the row sent; a
    // kill then makes the next incarnation publish it again, past the
    // stream's deduplication window, so User receives PaymentCreated twice.
    let (p, d) = one_order((0, 1_500), 200);
    let mut c = start_all(&p, &d);
    let (payment, user) =
        (Process::Service(domain::Service::Payment), Process::Service(domain::Service::User));
    submit(&d, &p.workload);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&d, user).commits == 0 {
        assert!(Instant::now() < deadline, "User never took the payment's event");
        std::thread::sleep(Duration::from_millis(50));
    }
    rt().block_on(c.kill(payment));
    assert_eq!(outbox(&d, payment), vec!["PENDING"], "published, not marked");
    // Past the stream's deduplication window, the copy gets through.
    std::thread::sleep(Duration::from_millis(400));
    rt().block_on(c.start(payment)).expect("restarts");
    let (checker, v) = settle(&d, &p.workload);
    assert!(v.is_none() && checker.sagas_done(), "{v:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&d, user).counters.duplicates_absorbed == 0 {
        assert!(Instant::now() < deadline, "the second copy never reached User's inbox");
        std::thread::sleep(Duration::from_millis(100));
    }
    rt().block_on(c.stop_all());
    assert!(rt().block_on(live::system::tear_down(&d)).is_empty());
}

fn writer_world() -> (Infra, String, Process) {
    let infra = Infra::default();
    let db = worlds::unique("sagasim_t");
    let p = Process::Service(domain::Service::Product);
    rt().block_on(async {
        live::pg::create_database(&infra, &db).await.expect("up");
        let mut admin = live::pg::connect(&infra, &db, "t", None).await.expect("up");
        live::pg::migrate(&mut admin, p).await.expect("migrates");
        let w = worlds::workload_of(&worlds::product_store());
        live::pg::seed(&mut admin, p, &w).await.expect("seeds");
    });
    (infra, db, p)
}

fn deduct(order: u32) -> Vec<domain::Write> {
    vec![domain::Write::Product(domain::product::ProductWrite::Deduct {
        order: domain::OrderId(order),
        product: domain::ProductId(0),
        qty: 1,
    })]
}

#[test]
fn a_zombie_commits_nothing_once_its_replacement_started() {
    let (infra, db, p) = writer_world();
    rt().block_on(async {
        let mut old = Writer::open(&infra, &db, p).await.expect("opens");
        assert_eq!(old.commit(&deduct(0), &[]).await, Commit::Applied);
        let new = Writer::open(&infra, &db, p).await.expect("opens");
        assert!(new.epoch > old.epoch);
        assert_eq!(old.commit(&deduct(1), &[]).await, Commit::Fenced);
        let s = new.load().await.expect("loads");
        let held: Vec<_> = s.product().expect("product").reservations.keys().copied().collect();
        assert_eq!(held, vec![domain::OrderId(0)], "the zombie's write is not there");
        drop((old, new));
        live::pg::drop_database(&infra, &db).await.expect("drops");
    });
}

/// A proxy to PostgreSQL that, once armed, lets a COMMIT reach the server
/// and loses the server's answer, closing the connection (or, `deliver`
/// false, loses the COMMIT itself).
async fn lossy_proxy(arm: Arc<AtomicBool>, deliver: bool) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let port = listener.local_addr().expect("bound").port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let server =
                tokio::net::TcpStream::connect("127.0.0.1:5432").await.expect("PostgreSQL");
            let arm = arm.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let cut = Arc::new(AtomicBool::new(false));
                let c2 = cut.clone();
                let down = tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 || c2.load(Ordering::SeqCst) {
                            break;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = cr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let commit = buf[..n].windows(6).any(|w| w == b"COMMIT");
                    if commit && arm.swap(false, Ordering::SeqCst) {
                        cut.store(true, Ordering::SeqCst);
                        if deliver {
                            let _ = sw.write_all(&buf[..n]).await;
                            // Let the server finish it before the line drops.
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        down.abort();
                        return;
                    }
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                down.abort();
            });
        }
    });
    port
}

#[test]
fn a_commit_whose_answer_is_lost_is_read_back_from_the_journal() {
    for deliver in [true, false] {
        let (mut infra, db, p) = writer_world();
        rt().block_on(async {
            let arm = Arc::new(AtomicBool::new(false));
            infra.pg_port = lossy_proxy(arm.clone(), deliver).await;
            let mut w = Writer::open(&infra, &db, p).await.expect("opens");
            assert_eq!(w.commit(&deduct(0), &[]).await, Commit::Applied);
            arm.store(true, Ordering::SeqCst);
            let got = w.commit(&deduct(1), &[]).await;
            assert_eq!(got, Commit::Resolved { applied: deliver }, "deliver {deliver}");
            let s = w.load().await.expect("loads");
            let held = s.product().expect("product").reservations.len();
            assert_eq!(held, if deliver { 2 } else { 1 });
            drop(w);
            live::pg::drop_database(&Infra::default(), &db).await.expect("drops");
        });
    }
}

fn sagasim(args: &[&str]) -> (i32, String, String, Duration) {
    let t = Instant::now();
    let out = Command::new(BIN).args(args).output().expect("sagasim runs");
    let code = out.status.code().unwrap_or(-1);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (code, text(&out.stdout), text(&out.stderr), t.elapsed())
}

#[test]
fn unreachable_servers_are_named_and_exit_2_within_seconds() {
    let dead = StdListener::bind("127.0.0.1:0").expect("binds");
    let port = dead.local_addr().expect("bound").port();
    drop(dead);
    let at = format!("127.0.0.1:{port}");
    let redis = format!("redis://{at}/");
    for (flag, value, name) in
        [("--pg", at.as_str(), "PostgreSQL"), ("--redis", &redis, "Redis"), ("--nats", &at, "NATS")]
    {
        let (code, _, err, took) = sagasim(&["live", flag, value, "--no-sim"]);
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(name) && err.contains(&at), "{flag}: {err}");
        assert!(took < Duration::from_secs(10), "{flag} took {took:?}");
    }
}

#[test]
fn a_port_taken_exits_2_and_names_it() {
    let taken = StdListener::bind("127.0.0.1:0").expect("binds");
    let port = taken.local_addr().expect("bound").port();
    let (code, _, err, _) = sagasim(&["live", "--base-port", &port.to_string(), "--no-sim"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("taken"), "{err}");
}

/// The health URLs of a deployment's processes.
fn healths(dir: &std::path::Path) -> Vec<String> {
    let d = Deployment::read(&dir.join("deployment.json")).expect("a deployment");
    Process::of(d.strategy).into_iter().map(|p| format!("{}/health", d.url(p))).collect()
}

fn any_answers(urls: &[String]) -> bool {
    let http = live::http::Client::default();
    urls.iter().any(|u| rt().block_on(http.get(u, Duration::from_millis(300))).is_ok())
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scenario file whose run lasts long enough to be interrupted: many
/// orders, slowly, and no faults.
fn slow_scenario() -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", worlds::unique("sagasim-slow-")));
    let text = "name = \"slow\"\ndescription = \"a long quiet run\"\n\
                [workload]\norders = 3000\ngap_ms = [5, 10]\nstock = [1000, 1000]\n\
                [faults]\ncrashes = [0, 0]\npauses = [0, 0]\npoisons = [0, 0]\n\
                cache_flushes = [0, 0]\ncommit_fail = 0.0\n";
    std::fs::write(&path, text).expect("written");
    path
}

#[test]
fn every_process_ends_when_the_run_is_interrupted_or_killed() {
    let scenario = slow_scenario();
    let sc = scenario.to_string_lossy().to_string();
    for signal in ["-INT", "-KILL"] {
        let dir = std::env::temp_dir().join(worlds::unique("sagasim-t-"));
        let dir_s = dir.to_string_lossy().to_string();
        let mut parent = Command::new(BIN)
            .args(["live", "--no-sim", "--scenario", &sc, "--dir", &dir_s])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        wait_for("every process to answer", 30, || {
            dir.join("deployment.json").exists() && {
                let urls = healths(&dir);
                let http = live::http::Client::default();
                urls.iter().all(|u| rt().block_on(http.get(u, Duration::from_millis(300))).is_ok())
            }
        });
        let urls = healths(&dir);
        // One child frozen, as the nemesis leaves one: it must end too.
        let serve = format!("serve product --deployment {}", dir.join("deployment.json").display());
        let frozen = String::from_utf8_lossy(
            &Command::new("pgrep").args(["-f", &serve]).output().expect("pgrep runs").stdout,
        )
        .trim()
        .to_string();
        assert!(!frozen.is_empty(), "product is running");
        Command::new("kill").args(["-STOP", &frozen]).status().expect("frozen");
        let pid = parent.id().to_string();
        Command::new("kill").args([signal, &pid]).status().expect("signalled");
        let status = parent.wait().expect("ends");
        if signal == "-INT" {
            assert_eq!(status.code(), Some(130), "interrupted");
        }
        wait_for("every process to end", 10, || !any_answers(&urls));
        wait_for("the frozen one to end", 10, || {
            let alive = Command::new("kill").args(["-0", &frozen]).stderr(Stdio::null()).status();
            !alive.expect("kill runs").success()
        });
        let d = Deployment::read(&dir.join("deployment.json")).expect("a deployment");
        let exists = rt().block_on(async {
            let c = live::pg::connect(&d.infra, "postgres", "t", None).await.expect("up");
            let q = "SELECT count(*) FROM pg_database WHERE datname = $1";
            c.query_one(q, &[&d.database()]).await.expect("reads").get::<_, i64>(0) > 0
        });
        if signal == "-INT" {
            assert!(!exists, "an interrupted run removes its database");
        } else if exists {
            // A parent killed outright leaves its state behind (but no process).
            assert!(rt().block_on(live::system::tear_down(&d)).is_empty());
        }
    }
    let _ = std::fs::remove_file(scenario);
}

#[test]
fn a_trace_follows_an_order_through_every_process() {
    let dir = std::env::temp_dir().join(worlds::unique("sagasim-tr-"));
    let file = dir.join("trace.json");
    let (d, f) = (dir.to_string_lossy().to_string(), file.to_string_lossy().to_string());
    let args = ["live", "--strategy", "orchestration", "--scenario", "calm", "--no-sim"];
    let (code, out, err, _) = sagasim(&[&args[..], &["--dir", &d, "--trace", &f]].concat());
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("written")).expect("JSON");
    let events = doc["traceEvents"].as_array().expect("events");
    let track = |tid: &serde_json::Value| {
        events
            .iter()
            .find(|e| e["name"] == "thread_name" && e["tid"] == *tid)
            .and_then(|e| e["args"]["name"].as_str())
            .expect("every track is named")
    };
    // Per trace (one submission and everything it caused), the processes
    // its spans ran in.
    let mut by_trace: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let trace = e["args"]["trace"].as_str().expect("a trace id");
        by_trace.entry(trace).or_default().insert(track(&e["tid"]));
    }
    let all = ["gateway", "orchestrator", "product", "order", "payment", "user", "pg"];
    let whole = by_trace.values().filter(|ps| all.iter().all(|p| ps.contains(p))).count();
    assert!(whole > 0, "no trace crosses every process: {by_trace:?}");
    // With --order, only the traces that touch that order.
    let spans: Vec<live::trace::SpanLine> = std::fs::read_dir(&dir)
        .expect("the run's folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".spans.jsonl"))
        .flat_map(|e| {
            let text = std::fs::read_to_string(e.path()).expect("reads");
            text.lines().map(|l| serde_json::from_str(l).expect("a span")).collect::<Vec<_>>()
        })
        .collect();
    let one = live::trace::chrome_trace(&spans, Some(3), 0);
    let kept: std::collections::BTreeSet<&str> = one["traceEvents"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| e["args"]["trace"].as_str().expect("a trace id"))
        .collect();
    let of_order_3: std::collections::BTreeSet<&str> =
        spans.iter().filter(|s| s.order == Some(3)).map(|s| s.trace.as_str()).collect();
    assert!(!kept.is_empty() && kept == of_order_3, "{kept:?} against {of_order_3:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_run_attaches_to_a_system_up_started() {
    let dir = std::env::temp_dir().join(worlds::unique("sagasim-up-"));
    let dir_s = dir.to_string_lossy().to_string();
    let mut up = Command::new(BIN)
        .args(["up", "--strategy", "orchestration", "--scenario", "calm", "--dir", &dir_s])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let file = dir.join("deployment.json");
    wait_for("the system to come up", 30, || {
        file.exists() && {
            let urls = healths(&dir);
            let http = live::http::Client::default();
            urls.iter().all(|u| rt().block_on(http.get(u, Duration::from_millis(300))).is_ok())
        }
    });
    let f = file.to_string_lossy().to_string();
    let (code, out, err, _) = sagasim(&["live", "--attach", &f, "--no-sim"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("attached to run"), "{out}");
    let (code, _, err, _) = sagasim(&["live", "--attach", &f, "--no-sim"]);
    assert_eq!(code, 2, "a used system is not fresh: {err}");
    assert!(err.contains("not fresh"), "{err}");
    let urls = healths(&dir);
    Command::new("kill").args(["-TERM", &up.id().to_string()]).status().expect("signalled");
    up.wait().expect("ends");
    wait_for("every process to end", 10, || !any_answers(&urls));
}
