//! The reaction-video job queue across processes: the built program (`emolens serve` and
//! `emolens worker`, as CI builds them in target/release) on one private PostgreSQL server.
//!
//! - Two processes (a server with a worker of its own, and a worker) share the queue: every job
//!   is done exactly once (one attempt, one set of results), and both processes ran jobs.
//! - A worker killed with SIGKILL in the middle of a job: the job stays `running` until its
//!   lease runs out, then another worker takes it and completes it, once.
//!
//! Videos are encoded here from FER2013 test faces (small and short: CI time matters).

use emolens_test_support::Postgres;
use emolens_video::synth::{compose, fer_faces, Placement};
use emolens_video::{VideoCodec, VideoWriter, WriterSettings};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped (a failing test leaves nothing running).
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(args: &[&str], log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = emolens_test_support::emolens!()
            .args(args)
            .env("EMOLENS_LOG", "info,sqlx=warn")
            .env("EMOLENS_PURGE_EVERY_MINUTES", "0")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("runs the emolens binary");
        Proc { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits: a clean stop.
    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                assert!(st.success(), "exit {st}: {}", self.log());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("did not stop on SIGTERM: {}", self.log());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    ctype: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 2 + n + 2..];
        }
        body = out;
    }
    (status, body)
}

fn json(addr: SocketAddr, method: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
    let (st, b) = http(addr, method, path, key, "application/json", body.as_bytes());
    let v = serde_json::from_slice(&b)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&b)));
    (st, v)
}

/// Starts `emolens serve` on a free port and waits for it to answer.
fn serve(db: &str, workers: &str, dir: &Path, name: &str) -> (Proc, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = port.to_string();
    let proc_ = Proc::spawn(
        &[
            "serve",
            "--port",
            &p,
            "--database-url",
            db,
            "--video-workers",
            workers,
            "--job-poll-ms",
            "100",
            "--job-lease-seconds",
            "10",
        ],
        dir.join(format!("{name}.log")),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(addr).is_ok()
            && http(addr, "GET", "/health", "", "text/plain", b"").0 == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not start: {}",
            proc_.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc_, addr)
}

fn worker(db: &str, lease: &str, dir: &Path, name: &str) -> Proc {
    let w = Proc::spawn(
        &[
            "worker",
            "--database-url",
            db,
            "--job-poll-ms",
            "100",
            "--job-lease-seconds",
            lease,
            "--video-batch",
            "2",
        ],
        dir.join(format!("{name}.log")),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.log().contains("emolens worker ready") {
        assert!(
            Instant::now() < deadline,
            "worker did not start: {}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    w
}

fn key(db: &str) -> String {
    let o = emolens_test_support::emolens!()
        .args([
            "keys",
            "create",
            "--name",
            "queue-test",
            "--database-url",
            db,
        ])
        .env("EMOLENS_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn ad(addr: SocketAddr, key: &str, duration: f64) -> i64 {
    let (st, c) = json(addr, "POST", "/v1/campaigns", key, r#"{"name": "queue"}"#);
    assert_eq!(st, 201, "{c}");
    let (st, a) = json(
        addr,
        "POST",
        &format!("/v1/campaigns/{}/ads", c["id"]),
        key,
        &format!(r#"{{"name": "spot", "duration_s": {duration}}}"#),
    );
    assert_eq!(st, 201, "{a}");
    a["id"].as_i64().unwrap()
}

/// One viewer (a FER2013 face, swaying) for `seconds` at 15 frames/s, `w` x `h`.
fn video(path: &Path, face: &image::GrayImage, seconds: f64, w: u32, h: u32) -> Vec<u8> {
    let fps = 15;
    let mut wr = VideoWriter::create(
        path,
        WriterSettings {
            codec: VideoCodec::H264,
            width: w,
            height: h,
            fps,
            rotation: 0,
        },
    )
    .unwrap();
    let side = h / 2;
    for k in 0..(seconds * fps as f64).round() as usize {
        let t = k as f64 / fps as f64;
        let x = w / 2 - side / 2 + ((t * 2.0).sin() * 6.0 + 6.0) as u32;
        wr.push(
            &compose(
                w,
                h,
                &[Placement {
                    face,
                    x,
                    y: h / 4,
                    side,
                }],
            ),
            t,
        )
        .unwrap();
    }
    wr.finish().unwrap();
    std::fs::read(path).unwrap()
}

fn upload(addr: SocketAddr, key: &str, ad: i64, query: &str, bytes: &[u8]) -> i64 {
    let (st, body) = http(
        addr,
        "POST",
        &format!("/v1/ads/{ad}/videos?{query}"),
        key,
        "video/mp4",
        bytes,
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(st, 202, "{v}");
    v["id"].as_i64().unwrap()
}

fn job(addr: SocketAddr, key: &str, id: i64) -> Value {
    let (st, v) = json(addr, "GET", &format!("/v1/jobs/{id}"), key, "");
    assert_eq!(st, 200, "{v}");
    v
}

fn wait_done(
    addr: SocketAddr,
    key: &str,
    id: i64,
    limit: Duration,
    logs: &dyn Fn() -> String,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let j = job(addr, key, id);
        if j["state"] == "done" || j["state"] == "failed" {
            return j;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} not done: {j}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_processes_share_the_postgres_queue_and_run_each_job_once() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = serve(&pg.url, "1", dir.path(), "serve");
    let key = key(&pg.url);
    let w = worker(&pg.url, "10", dir.path(), "worker");
    let ad = ad(addr, &key, 3.0);
    let faces = fer_faces("test", "happy", 6).unwrap();
    let videos: Vec<Vec<u8>> = faces
        .iter()
        .enumerate()
        .map(|(i, (_, f))| video(&dir.path().join(format!("v{i}.mp4")), f, 3.0, 320, 240))
        .collect();
    let ids: Vec<i64> = videos
        .iter()
        .enumerate()
        .map(|(i, v)| upload(addr, &key, ad, &format!("name=viewer-{i}.mp4"), v))
        .collect();
    let logs = || format!("serve:\n{}\nworker:\n{}", server.log(), w.log());
    let done: Vec<Value> = ids
        .iter()
        .map(|id| wait_done(addr, &key, *id, Duration::from_secs(120), &logs))
        .collect();
    let mut by = std::collections::BTreeMap::<String, usize>::new();
    for j in &done {
        assert_eq!(j["state"], "done", "{j}");
        assert_eq!(j["attempts"], 1, "each job claimed once: {j}");
        assert_eq!(j["result"]["viewers"], 1, "{j}");
        let name = j["worker"].as_str().unwrap();
        let pid = name
            .rsplit(':')
            .next()
            .unwrap()
            .split('#')
            .next()
            .unwrap()
            .to_string();
        *by.entry(pid).or_default() += 1;
    }
    let pids: Vec<String> = by.keys().cloned().collect();
    assert_eq!(
        pids.iter()
            .map(|p| p.parse::<u32>().unwrap())
            .collect::<std::collections::BTreeSet<_>>(),
        [server.pid(), w.pid()].into_iter().collect(),
        "both processes ran jobs: {by:?}"
    );
    // One set of results per job: six viewers, each second counted once per viewer.
    let (st, t) = json(addr, "GET", &format!("/v1/ads/{ad}/timeline"), &key, "");
    assert_eq!(st, 200);
    assert_eq!(t["timeline"]["videos"], 6, "{t}");
    assert_eq!(t["timeline"]["viewers"], 6, "{t}");
    let (_, csv) = http(
        addr,
        "GET",
        &format!("/v1/ads/{ad}/timeline/export?format=csv&level=viewer"),
        &key,
        "text/plain",
        b"",
    );
    let csv = String::from_utf8(csv).unwrap();
    let rows: Vec<(String, String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].to_string(), f[4].to_string(), f[5].to_string())
        })
        .collect();
    let unique: std::collections::BTreeSet<_> = rows.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        rows.len(),
        "a (job, viewer, second) twice: {csv}"
    );
    assert_eq!(rows.len(), 6 * 3, "{csv}");
    w.stop();
    server.stop();
}

#[test]
fn a_job_whose_worker_is_killed_completes_on_another_worker() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    // The server only queues; worker A takes the job with a 2 s lease.
    let (server, addr) = serve(&pg.url, "0", dir.path(), "serve");
    let key = key(&pg.url);
    let ad = ad(addr, &key, 8.0);
    let face = &fer_faces("test", "happy", 1).unwrap()[0].1;
    let bytes = video(&dir.path().join("long.mp4"), face, 8.0, 640, 360);
    let a = worker(&pg.url, "2", dir.path(), "worker-a");
    // 15 frames/s of an 8 s video: long enough to be caught in the middle.
    let id = upload(addr, &key, ad, "name=long.mp4&fps=15", &bytes);
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let j = job(addr, &key, id);
        if j["state"] == "running" && j["progress"]["frames_done"].as_i64().unwrap_or(0) > 0 {
            break j;
        }
        assert_ne!(
            j["state"], "done",
            "the job finished before it could be interrupted: {j}"
        );
        assert!(Instant::now() < deadline, "job never ran: {j}\n{}", a.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    let a_pid = a.pid();
    assert!(
        running["worker"]
            .as_str()
            .unwrap()
            .contains(&format!(":{a_pid}#")),
        "{running}"
    );
    assert!(
        running["progress"]["frames_total"].as_i64().unwrap() >= 119,
        "{running}"
    );
    drop(a); // SIGKILL: no chance to put the job back.
    std::thread::sleep(Duration::from_millis(300));
    let orphan = job(addr, &key, id);
    assert_eq!(
        orphan["state"], "running",
        "left running by the dead worker: {orphan}"
    );
    assert_eq!(orphan["attempts"], 1);
    // Worker B takes it once the lease has run out, and completes it.
    let b = worker(&pg.url, "2", dir.path(), "worker-b");
    let logs = || format!("serve:\n{}\nworker B:\n{}", server.log(), b.log());
    let done = wait_done(addr, &key, id, Duration::from_secs(120), &logs);
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert!(
        done["worker"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}#", b.pid())),
        "{done}"
    );
    assert_eq!(
        done["result"]["frames"], 120,
        "the whole video, from the start: {done}"
    );
    assert_eq!(done["result"]["complete"], true);
    let (_, t) = json(addr, "GET", &format!("/v1/ads/{ad}/timeline"), &key, "");
    assert_eq!(t["timeline"]["videos"], 1, "{t}");
    assert_eq!(
        t["timeline"]["seconds"][0]["viewers"], 1,
        "counted once: {t}"
    );
    assert!(b.log().contains("job done"), "{}", b.log());
    b.stop();
    server.stop();
}
