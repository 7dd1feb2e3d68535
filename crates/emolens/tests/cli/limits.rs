//! `emolens serve`'s memory bounds (issue 17, finding 4), measured on the built program as its
//! own process: its peak resident memory (`VmHWM` in /proc/PID/status) while four 8192x8192
//! PNGs and four 23 MB TF-Serving requests arrive at once, against the bound docs/service.md
//! states (the decode budget plus the bodies in flight plus a fixed margin). The limit flags are
//! passed as environment variables, as a container would set them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(db: &str, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let child = emolens_test_support::emolens!()
        .args(["serve", "--port", &port.to_string(), "--database-url", db])
        .envs(env.iter().copied())
        .env("EMOLENS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("runs emolens serve");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let server = Server { child, addr };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok((200, _)) = try_send(addr, "GET", "/health/live", "", b"") {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("emolens serve did not answer within 60 s");
}

/// One request; (status, body).
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    try_send(addr, method, path, content_type, body).unwrap()
}

fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/PID/status")
        * 1024
}

/// An 8192x8192 PNG of a few hundred KB (an almost flat picture, as in the review).
fn huge_png() -> Vec<u8> {
    let side = 8192;
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([((x / 512 + y / 512) * 8) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

const BOUNDARY: &str = "emolens-limits-boundary";

fn multipart(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut b = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n").into_bytes();
    b.extend_from_slice(bytes);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// A TF-Serving body of 48x48 grey instances, each value written as `value`: `n` of them, or as
/// many as make up `bytes` when `n` is `None`.
fn tf_body(value: &str, n: Option<usize>, bytes: usize) -> Vec<u8> {
    let row = format!("[{}]", vec![value; 48].join(","));
    let inst = format!("[{}]", vec![row.as_str(); 48].join(","));
    let mut b = String::from("{\"instances\": [");
    let mut count = 1;
    while n.map_or(b.len() < bytes, |n| count < n) {
        b.push_str(&inst);
        b.push(',');
        count += 1;
    }
    b.push_str(&inst);
    b.push_str("]}");
    b.into_bytes()
}

/// Runs `n` copies of a request at once; their statuses.
fn at_once(
    addr: SocketAddr,
    n: usize,
    path: &'static str,
    ct: &'static str,
    body: &[u8],
) -> Vec<(u16, String)> {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|_| s.spawn(|| send(addr, "POST", path, ct, body)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn serve_stays_within_its_stated_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mem.db").display().to_string();
    let budget_mib = 512u64;
    let server = start(
        &db,
        &[
            ("EMOLENS_DECODE_BUDGET_MIB", "512"),
            ("EMOLENS_INFERENCE_WORKERS", "2"),
        ],
    );
    let pid = server.child.id();
    // Warm up: the model and detector answer one small picture.
    let small = multipart("small.png", &{
        let img = image::GrayImage::from_fn(96, 96, |x, y| image::Luma([(x * 2 + y) as u8]));
        let mut out = Vec::new();
        image::DynamicImage::ImageLuma8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    });
    let ct = Box::leak(format!("multipart/form-data; boundary={BOUNDARY}").into_boxed_str());
    let (st, body) = send(server.addr, "POST", "/v1/analyze", ct, &small);
    assert_eq!(st, 200, "{body}");
    let baseline = peak_rss(pid);

    // Four 23 MB TF-Serving requests at once (2,500 instances each, over the limit of 1,000):
    // refused while reading (413).
    let tf = tf_body("0.5", None, 23_000_000);
    for (st, body) in at_once(
        server.addr,
        4,
        "/v1/models/emotion:predict",
        "application/json",
        &tf,
    ) {
        assert_eq!(st, 413, "{}", &body[..body.len().min(300)]);
        assert!(body.contains("1000 instances"), "{body}");
    }
    let after_tf = peak_rss(pid);
    // 1,000 instances, the most one request may hold: answered.
    let full = tf_body("0.5019608", Some(1000), 0);
    let t = Instant::now();
    let (st, body) = send(
        server.addr,
        "POST",
        "/v1/models/emotion:predict",
        "application/json",
        &full,
    );
    let full_secs = t.elapsed().as_secs_f64();
    assert_eq!(st, 200, "{}", &body[..body.len().min(300)]);
    assert_eq!(body.matches("],[").count() + 1, 1000);
    let after_full = peak_rss(pid);

    // Four 8192x8192 PNGs at once: analysed, the decodes taking turns within the budget.
    let png = multipart("huge.png", &huge_png());
    assert!(png.len() < 4 << 20, "{} bytes", png.len());
    for (st, body) in at_once(server.addr, 4, "/v1/analyze", ct, &png) {
        assert_eq!(st, 200, "{body}");
        assert!(body.contains("\"ok\""), "{body}");
    }
    let after_png = peak_rss(pid);

    // The bound: the decode budget, the bodies in flight (4 x 23 MB, held once as bytes and once
    // parsed at most at the instance limit) and 128 MiB for everything else.
    let bodies = 4 * 2 * tf.len() as u64;
    let bound = baseline + budget_mib * MIB + bodies + 128 * MIB;
    eprintln!(
        "serve peak RSS: baseline {} MiB, after 4 x 23 MB TF-Serving at once {} MiB, after 1,000 instances ({} MB, {full_secs:.2} s) {} MiB, after 4 x 8192x8192 PNG at once {} MiB; bound {} MiB",
        baseline / MIB,
        after_tf / MIB,
        full.len() / 1_000_000,
        after_full / MIB,
        after_png / MIB,
        bound / MIB
    );
    assert!(
        after_tf < baseline + bodies + 128 * MIB,
        "TF-Serving: {} MiB over a {} MiB baseline",
        (after_tf - baseline) / MIB,
        baseline / MIB
    );
    assert!(
        after_png <= bound,
        "peak {} MiB > bound {} MiB",
        after_png / MIB,
        bound / MIB
    );
}
