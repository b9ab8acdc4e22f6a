//! Scale-out: several `weft serve` processes on one PostgreSQL database, with faults. A
//! server killed with SIGKILL, frozen past its lease (SIGSTOP, then SIGCONT), or cut off
//! from the database: its runs are taken over by the others within the lease TTL, every
//! run ends once, no task whose ending was journaled runs again, late writes are refused,
//! and the forge sees each state once.
//!
//! PostgreSQL is `WEFT_TEST_PG_URL`, else `postgres://postgres@127.0.0.1:5432/test`; each
//! test works in a schema of its own, dropped afterwards. Without a server the tests say so
//! loudly and pass without running (`WEFT_TEST_PG_REQUIRED=1` makes that a failure).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_forge::FakeForge;
use crate::serve::Served;
use crate::support;

/// The lease TTL the tests give the servers.
const TTL: Duration = Duration::from_secs(2);
const TOKEN: &str = "glpat-cluster-test-token";

/// A schema of its own on the test server.
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    fn create() -> Option<Schema> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::var("WEFT_TEST_PG_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string());
        let mut client = match postgres::Client::connect(&base, postgres::NoTls) {
            Ok(client) => client,
            Err(err) => {
                assert!(
                    !std::env::var("WEFT_TEST_PG_REQUIRED").is_ok_and(|v| v == "1"),
                    "no PostgreSQL at {base}: {err}"
                );
                eprintln!(
                    "\n*** SKIPPED: no PostgreSQL at {base} ({err}); set WEFT_TEST_PG_URL to run the scale-out tests ***\n"
                );
                return None;
            }
        };
        let name = format!(
            "weft_e2e_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .expect("create schema");
        Some(Schema { base, name })
    }

    /// The URL servers get, through `host:port` instead of the server's own when given.
    fn url_via(&self, host_port: Option<&str>) -> String {
        let base = match host_port {
            Some(via) => self.base.replacen("127.0.0.1:5432", via, 1),
            None => self.base.clone(),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.name)
    }

    fn client(&self) -> postgres::Client {
        let mut client =
            postgres::Client::connect(&self.base, postgres::NoTls).expect("connect to PostgreSQL");
        client
            .batch_execute(&format!("SET search_path TO {}", self.name))
            .expect("search_path");
        client
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Kept for a post-mortem when asked.
        if std::env::var_os("WEFT_TEST_KEEP_SCHEMA").is_some() {
            eprintln!("kept schema {}", self.name);
            return;
        }
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// `weft serve` on the shared database, with a reporter destination and token.
fn server(data: &Path, url: &str, forge: &FakeForge, extra: &[&str]) -> Served {
    server_with_env(data, url, forge, extra, &[])
}

/// [`server`] with extra environment variables.
fn server_with_env(
    data: &Path,
    url: &str,
    forge: &FakeForge,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Served {
    let plugins = support::plugin_dir();
    let ttl = format!("{}s", TTL.as_secs());
    let mut args = vec![
        "--db",
        url,
        "--lease-ttl",
        &ttl,
        "--shutdown-grace",
        "1s",
        "--plugins",
        plugins.to_str().expect("utf-8 path"),
        "--secret",
        "gitlab-token=env:WEFT_TEST_GITLAB",
        "--submit-secrets",
        "gitlab-token",
    ];
    let rule = forge.rule();
    args.extend(["--report-allow-http", &rule]);
    args.extend_from_slice(extra);
    let mut env = env.to_vec();
    env.push(("WEFT_TEST_GITLAB", TOKEN));
    Served::start_with_env(data, &args, &env)
}

/// The commit a run reports on: its name in hex (a forge wants a SHA).
fn sha(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Submits run `name` to `served`, reporting to the forge under its own sha.
fn submit(served: &Served, forge: &FakeForge, file: &str, name: &str, params: serde_json::Value) {
    let report = format!(
        "gitlab:url={},project=g/app,sha={},token-secret=gitlab-token",
        forge.url(),
        sha(name)
    );
    let (code, body) = served.submit(
        file,
        json!({ "name": name, "params": params, "reports": [report] }),
    );
    assert_eq!(code, 201, "{name}: {body:#}");
}

/// Waits until no run is unfinished (at most `within`); panics with what is left.
fn wait_all_finished(db: &mut postgres::Client, expected: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let row = db
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE finished_at IS NULL) FROM runs",
                &[],
            )
            .expect("count runs");
        let (all, unfinished): (i64, i64) = (row.get(0), row.get(1));
        if all == expected && unfinished == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} of {all} runs still unfinished: {:?}",
            db.query(
                "SELECT id, lease_owner, lease_token, heartbeat_at FROM runs WHERE finished_at IS NULL LIMIT 10",
                &[]
            )
            .map(|rows| rows
                .iter()
                .map(|r| format!("{} {:?} {}", r.get::<_, String>(0), r.get::<_, Option<String>>(1), r.get::<_, i64>(2)))
                .collect::<Vec<_>>())
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The store-side invariants every fault test checks: each run finished with `status`,
/// and no task attempt with a journaled ending ran again (no second ending for an attempt,
/// no attempt after a succeeded one).
fn check_store(db: &mut postgres::Client, status: &str) {
    let bad: Vec<String> = db
        .query(
            "SELECT id, coalesce(status, '-') FROM runs WHERE status IS DISTINCT FROM $1",
            &[&status],
        )
        .expect("statuses")
        .iter()
        .map(|r| format!("{}={}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    assert!(bad.is_empty(), "runs that did not end {status}: {bad:?}");
    let twice: Vec<String> = db
        .query(
            "SELECT run || '/' || task || '/' || attempt FROM events WHERE kind = 'attempt-ended'
             GROUP BY run, task, attempt HAVING count(*) > 1",
            &[],
        )
        .expect("endings")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(twice.is_empty(), "attempts that ended twice: {twice:?}");
    let again: Vec<String> = db
        .query(
            "SELECT a.run || '/' || a.task FROM attempts a JOIN attempts b
               ON a.run = b.run AND a.task = b.task AND b.attempt > a.attempt
             WHERE a.outcome = 'Succeeded'",
            &[],
        )
        .expect("attempts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        again.is_empty(),
        "tasks that ran again after succeeding: {again:?}"
    );
    let unfinished: Vec<String> = db
        .query(
            "SELECT a.run || '/' || a.task || '#' || a.attempt || ' ' || a.phase || ' (run '
                    || r.phase || ', token ' || r.lease_token || ')'
             FROM attempts a JOIN runs r ON r.id = a.run WHERE a.phase <> 'Terminal'",
            &[],
        )
        .expect("attempts")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        unfinished.is_empty(),
        "every attempt ends terminal: {unfinished:?}"
    );
}

/// Every run's statuses as the forge accepted them: each state at most once, never
/// backwards, and one final `success` per run (waited for: reporters deliver after their
/// run ends, with backoff on a loaded machine), except for `lost`: runs whose server was
/// killed after it stored the run's end but before it stored the final status to report
/// (a window the reporting code still has, see `final_desire_lost`).
fn check_forge(forge: &FakeForge, runs: &BTreeSet<String>, lost: &BTreeSet<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let done: BTreeSet<String> = forge
            .requests()
            .iter()
            .filter(|r| r.ok() && r.field("state") == "success")
            .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        if runs
            .iter()
            .all(|run| done.contains(&sha(run)) || lost.contains(run))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rank = |state: &str| match state {
        "pending" => 0,
        "running" => 1,
        _ => 2,
    };
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in forge.requests().iter().filter(|r| r.ok()) {
        let sha = request
            .path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        seen.entry(sha).or_default().push(request.field("state"));
    }
    let all = forge.requests();
    assert!(
        !all.is_empty() && all.iter().any(|r| r.ok()),
        "the forge accepted nothing: {:?}",
        all.iter().take(3).collect::<Vec<_>>()
    );
    for run in runs {
        let states = seen.get(&sha(run)).cloned().unwrap_or_default();
        let distinct: BTreeSet<&String> = states.iter().collect();
        assert_eq!(
            distinct.len(),
            states.len(),
            "{run}: a state arrived twice: {states:?}"
        );
        assert!(
            states.windows(2).all(|w| rank(&w[0]) < rank(&w[1])),
            "{run}: states went backwards: {states:?}"
        );
        // A run of the known gap never gets its final status: its server died between
        // storing the run's end and desiring that status (see `final_desire_lost`).
        if !lost.contains(run) {
            assert_eq!(
                states.last().map(String::as_str),
                Some("success"),
                "{run}: {states:?}; every request for it: {:?}",
                all.iter()
                    .filter(|r| r.path.ends_with(&sha(run)))
                    .map(|r| (r.field("state"), r.status))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Finished runs whose outbox never got the final status: the engine that ended the run
/// died (or lost the run's lease) between storing the run's end and storing what to
/// report.
fn final_desire_lost(db: &mut postgres::Client) -> BTreeSet<String> {
    db.query(
        "SELECT DISTINCT r.id FROM runs r JOIN outbox o ON o.run = r.id
         WHERE r.finished_at IS NOT NULL AND o.desired IN ('Pending', 'Running')",
        &[],
    )
    .expect("lost final statuses")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Runs still held by the process `pid` (its owner id is `host:pid`).
fn held_by(db: &mut postgres::Client, pid: u32) -> i64 {
    db.query_one(
        "SELECT count(*) FROM runs WHERE finished_at IS NULL AND lease_owner LIKE $1",
        &[&format!("%:{pid}")],
    )
    .expect("count held runs")
    .get(0)
}

#[test]
fn three_servers_share_200_runs_and_take_over_a_killed_ones() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let forge = FakeForge::start();
    let url = schema.url_via(None);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let servers: Vec<Served> = dirs
        .iter()
        .map(|d| server(d.path(), &url, &forge, &[]))
        .collect();
    let total = 200;
    let names: BTreeSet<String> = (0..total).map(|i| format!("c-{i:03}")).collect();
    let victim = servers[0].pid();
    // (when, how many unfinished runs it held)
    let killed: Mutex<Option<(Instant, i64)>> = Mutex::new(None);
    let mut taken_over = None;
    // Submitted to the three servers at once, round robin. The first server is killed
    // after its 20th submission, while its runs go and the others keep taking work; what
    // it would have got goes to the second (as a load balancer would).
    std::thread::scope(|s| {
        for (k, served) in servers.iter().enumerate() {
            let (forge, names, servers, killed, schema) =
                (&forge, &names, &servers, &killed, &schema);
            s.spawn(move || {
                for (j, name) in names.iter().skip(k).step_by(3).enumerate() {
                    let mut target = served;
                    if k == 0 && j >= 20 {
                        if j == 20 {
                            let held = held_by(&mut schema.client(), victim);
                            servers[0].signal("-KILL");
                            *killed.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some((Instant::now(), held));
                        }
                        target = &servers[1];
                    }
                    submit(target, forge, "cluster.yaml", name, json!({}));
                }
            });
        }
        // Meanwhile: how long until a live server holds every run the dead one held.
        let mut db = schema.client();
        let deadline = Instant::now() + Duration::from_secs(120);
        while taken_over.is_none() && Instant::now() < deadline {
            let at = *killed.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, _)) = at
                && held_by(&mut db, victim) == 0
            {
                taken_over = Some(at.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (_, held) = killed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .expect("the first server was killed");
    assert!(held > 0, "the killed server held unfinished runs");
    let taken_over = taken_over.expect("the killed server's runs are taken over");
    eprintln!(
        "killed server {victim} holding {held} unfinished runs; all taken over {taken_over:?} later (TTL {TTL:?})"
    );
    // Its leases lapse one TTL after its last heartbeat (before the kill); a live server
    // sweeps a few times per TTL. Slack for a debug build on a loaded machine.
    assert!(
        taken_over <= TTL * 2 + Duration::from_secs(2),
        "taken over only after {taken_over:?}"
    );
    let mut db = schema.client();
    wait_all_finished(&mut db, total, Duration::from_secs(240));
    check_store(&mut db, "Succeeded");
    let lost = final_desire_lost(&mut db);
    if !lost.is_empty() {
        eprintln!(
            "KNOWN GAP: {} run(s) lost their final status (server {victim} killed): {lost:?}",
            lost.len()
        );
    }
    check_forge(&forge, &names, &lost);
    let recovered: i64 = db
        .query_one("SELECT count(*) FROM runs WHERE lease_token > 1", &[])
        .expect("count")
        .get(0);
    assert!(
        recovered >= held,
        "{recovered} runs changed hands, {held} were held"
    );
}

#[test]
fn a_frozen_server_is_fenced_and_its_workspace_comes_from_the_bucket() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let forge = FakeForge::start();
    let url = schema.url_via(None);
    let bucket = tempfile::tempdir().expect("tmp");
    let snapshots = format!("--workspace-snapshots={}", bucket.path().display());
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let a = server(a_dir.path(), &url, &forge, &[&snapshots]);
    let b = server(b_dir.path(), &url, &forge, &[&snapshots]);
    let names: BTreeSet<String> = (0..4).map(|i| format!("frozen-{i}")).collect();
    for name in &names {
        submit(&a, &forge, "cluster-snapshots.yaml", name, json!({}));
    }
    let mut db = schema.client();
    // Freeze A while `wait` runs (`produce` finished and was snapshotted).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running: i64 = db
            .query_one(
                "SELECT count(*) FROM attempts WHERE task = 'wait' AND phase = 'Running'",
                &[],
            )
            .expect("count")
            .get(0);
        if running == names.len() as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "the runs did not reach `wait`");
        std::thread::sleep(Duration::from_millis(50));
    }
    a.signal("-STOP");
    let frozen = Instant::now();
    // B takes the runs over and finishes them, restoring the workspace from the bucket.
    wait_all_finished(&mut db, names.len() as i64, Duration::from_secs(60));
    let took = frozen.elapsed();
    eprintln!("B finished A's runs {took:?} after A froze");
    let owners: BTreeSet<String> = db
        .query("SELECT lease_owner FROM runs", &[])
        .expect("owners")
        .iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect();
    assert!(
        owners.iter().all(|o| o.ends_with(&format!(":{}", b.pid()))),
        "B owns every run: {owners:?}"
    );
    // A wakes up past its lease: its late writes are refused, nothing is duplicated.
    a.signal("-CONT");
    let mut said = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(said.contains("stale lease") || said.contains("lost the run's lease")) {
        assert!(
            Instant::now() < deadline,
            "A was not told its lease is gone:\n{said}"
        );
        std::thread::sleep(Duration::from_millis(100));
        said.push_str(&a.said().join("\n"));
    }
    // Its tasks that were running end now; what they journal is refused.
    std::thread::sleep(Duration::from_secs(5));
    check_store(&mut db, "Succeeded");
    check_forge(&forge, &names, &BTreeSet::new());
    let restored: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE kind = 'snapshot-restored'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(
        restored,
        names.len() as i64,
        "each run's workspace came from the bucket"
    );
    // A still serves: a new run submitted to it succeeds.
    submit(
        &a,
        &forge,
        "cluster.yaml",
        "after-thaw",
        json!({"sleepMs": "10"}),
    );
    wait_all_finished(&mut db, names.len() as i64 + 1, Duration::from_secs(60));
    check_store(&mut db, "Succeeded");
}

/// A TCP proxy in front of PostgreSQL that can cut every connection (and refuse new
/// ones) until restored: a server's database connection dropping.
struct Proxy {
    address: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &'static str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut2, open2) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    let mut open = open2.lock().unwrap_or_else(|e| e.into_inner());
                    open.push(c);
                    open.push(s);
                }
                pipe(
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                pipe(server, client);
            }
        });
        Proxy { address, cut, open }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

#[test]
fn a_server_that_loses_the_database_keeps_its_runs_only_while_its_lease_holds() {
    let Some(schema) = Schema::create() else {
        return;
    };
    if !schema.base.contains("127.0.0.1:5432") {
        eprintln!("*** SKIPPED: the proxy test needs the server at 127.0.0.1:5432 ***");
        return;
    }
    let forge = FakeForge::start();
    let proxy = Proxy::start("127.0.0.1:5432");
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    // A heartbeats often, so that what the test measures is the blip and the outage,
    // not where they fall between two heartbeats of a loaded machine.
    let a = server_with_env(
        a_dir.path(),
        &schema.url_via(Some(&proxy.address)),
        &forge,
        &[],
        &[("WEFT_HEARTBEAT_MS", "200")],
    );
    let b = server(b_dir.path(), &schema.url_via(None), &forge, &[]);
    let mut db = schema.client();
    let mut names = BTreeSet::new();

    // A blip shorter than the lease: A keeps its runs and finishes them.
    for i in 0..3 {
        let name = format!("blip-{i}");
        submit(
            &a,
            &forge,
            "cluster.yaml",
            &name,
            json!({"sleepMs": "1500"}),
        );
        names.insert(name);
    }
    std::thread::sleep(Duration::from_millis(500));
    // Well under the lease, with slack for a loaded machine's late heartbeats.
    proxy.cut();
    std::thread::sleep(TTL / 5);
    proxy.restore();
    wait_all_finished(&mut db, 3, Duration::from_secs(60));
    let moved: i64 = db
        .query_one("SELECT count(*) FROM runs WHERE lease_token > 1", &[])
        .expect("count")
        .get(0);
    // A short blip should move no run. It sometimes does: after the blip, A's heartbeat
    // can take longer than the lease to get through (the pool's reconnect and retries),
    // and B takes the run over. That is wasted work, never a wrong result: the checks below
    // (each attempt ends once, nothing runs again after succeeding, every status
    // delivered once, in order) hold either way. Known issue, see the #16 note.
    if moved > 0 {
        eprintln!(
            "KNOWN ISSUE: a {:?} blip moved {moved} run(s) to B",
            TTL / 5
        );
    }
    assert!(moved <= 3, "only the blip's runs can move: {moved}");

    // An outage longer than the lease: B takes A's runs over; A stops writing for them
    // (its writes would be refused), reconnects and serves again.
    for i in 0..3 {
        let name = format!("outage-{i}");
        submit(
            &a,
            &forge,
            "cluster.yaml",
            &name,
            json!({"sleepMs": "2500"}),
        );
        names.insert(name);
    }
    std::thread::sleep(Duration::from_millis(500));
    proxy.cut();
    wait_all_finished(&mut db, 6, Duration::from_secs(60));
    let b_pid = format!("%:{}", b.pid());
    let by_b: i64 = db
        .query_one(
            "SELECT count(*) FROM runs WHERE id LIKE 'outage-%' AND lease_owner LIKE $1",
            &[&b_pid],
        )
        .expect("count")
        .get(0);
    assert_eq!(by_b, 3, "B finished the runs A could not");
    proxy.restore();
    std::thread::sleep(TTL * 2);
    submit(
        &a,
        &forge,
        "cluster.yaml",
        "reconnected",
        json!({"sleepMs": "10"}),
    );
    names.insert("reconnected".into());
    wait_all_finished(&mut db, 7, Duration::from_secs(60));
    check_store(&mut db, "Succeeded");
    std::thread::sleep(Duration::from_secs(1));
    check_forge(&forge, &names, &BTreeSet::new());
}

#[test]
fn a_cancel_sent_to_any_server_reaches_the_owner() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let forge = FakeForge::start();
    let url = schema.url_via(None);
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let a = server(a_dir.path(), &url, &forge, &[]);
    let b = server(b_dir.path(), &url, &forge, &[]);
    submit(
        &a,
        &forge,
        "cluster.yaml",
        "far",
        json!({"sleepMs": "20000"}),
    );
    a.wait_for("far", |r| {
        r["attempts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t["phase"] == "Running"))
    });
    let sent = Instant::now();
    let (code, body) = b.call(
        "POST",
        "/api/v1/runs/far/cancel",
        Some(&json!({"mode": "Cancelled"})),
    );
    assert_eq!(code, 202, "{body:#}");
    assert_eq!(body["forwarded"], true, "{body:#}");
    let done = b.wait_for("far", |r| r["status"].is_string());
    let took = sent.elapsed();
    eprintln!("a cancel sent to another server ended the run {took:?} later");
    assert_eq!(done["status"], "Cancelled", "{done:#}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A finished run takes no more cancels, from any server.
    assert_eq!(b.call("POST", "/api/v1/runs/far/cancel", None).0, 409);
    assert_eq!(b.call("POST", "/api/v1/runs/nope/cancel", None).0, 404);
}

#[test]
fn weft_db_migrate_migrates_once_and_servers_can_leave_it_to_the_operator() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let data = tempfile::tempdir().expect("tmp");
    let url = schema.url_via(None);
    // Told not to migrate, a server refuses an empty database and says what to run.
    let refused = support::run_in(
        data.path(),
        &["runs", "list", "--db", &url],
        &[("WEFT_DB_MIGRATE", "off")],
    );
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("weft db migrate"),
        "{}",
        refused.stderr
    );
    let first = support::run_in(data.path(), &["db", "migrate", "--db", &url], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stdout.contains("from schema version 0 to"),
        "{}",
        first.stdout
    );
    let again = support::run_in(data.path(), &["db", "migrate"], &[("WEFT_DB", &url)]);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    let listed = support::run_in(
        data.path(),
        &["runs", "list", "--db", &url],
        &[("WEFT_DB_MIGRATE", "off")],
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
}

#[test]
fn an_unreachable_database_is_an_environment_failure_that_hides_its_password() {
    let data = tempfile::tempdir().expect("tmp");
    let out = support::run_in(
        data.path(),
        &[
            "runs",
            "list",
            "--db",
            "postgres://weft:s3cret-pw@127.0.0.1:1/weft",
        ],
        &[],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("127.0.0.1:1"), "{}", out.stderr);
    assert!(!out.stderr.contains("s3cret-pw"), "{}", out.stderr);
}
