//! Fair limits over real sockets (issue 17, findings 3, 4 and 7): stalled anonymous uploads
//! never lock keyed work out, partial headers and slow bodies are cut off after their timeouts,
//! refused clients read their 429 (JSON, Retry-After) instead of a broken pipe, rate limits
//! per key and per client, the decode memory budget, and a load at twice saturation that loses
//! nothing acknowledged. Clients come from different loopback addresses (127.0.0.x) where the
//! per-client limits matter.

use crate::common::*;
use emolens_server::ServerConfig;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection from the loopback address `127.0.0.{host}`.
async fn connect_from(host: u8, addr: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from(([127, 0, 0, host], 0))).unwrap();
    sock.connect(addr).await.unwrap()
}

/// Sends a whole request from `127.0.0.{host}` and reads the whole answer; the write must
/// succeed (no broken pipe) and the answer must arrive.
async fn request_from(host: u8, addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut s = connect_from(host, addr).await;
    s.write_all(raw)
        .await
        .expect("the server reads the whole request before answering");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("answer within 20 s")
        .expect("answer readable");
    parse_response(&out)
}

/// Reads until the server closes the connection; what it sent, and how long it took.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, start.elapsed()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("connection still open after {within:?}"),
        }
    }
}

fn upload_request(addr: SocketAddr, path: &str, key: Option<&str>, img: &[u8]) -> (Vec<u8>, usize) {
    let body = multipart(&[("file", "face.jpg", img)]);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", ct.as_str())];
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    (raw_request(addr, "POST", path, &h, &body), body.len())
}

async fn keyed_server(config: ServerConfig) -> (TestServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("limits.db").display().to_string();
    let s = TestServer::start(config, &db, false).await;
    let key = emolens_server::auth::create_key(&s.state.db, "limits")
        .await
        .unwrap()
        .key;
    (s, key, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_anonymous_uploads_never_lock_keys_out_and_slow_bodies_get_408() {
    let config = ServerConfig {
        max_concurrent: 4,
        max_anonymous: 8,
        max_per_client: 2,
        body_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    let (s, key, _dir) = keyed_server(config).await;
    let (_, img) = fer_images("happy", 1).remove(0);
    // 60 stalled uploads without a key (headers and half the body, then nothing), 3 from
    // each of 20 addresses: the 64 stalled uploads held every slot for 5 minutes.
    let (raw, body_len) = upload_request(s.addr, "/api/predict", None, &img);
    let cut = raw.len() - body_len / 2;
    let started = Instant::now();
    let mut stalled = Vec::new();
    for host in 10..30u8 {
        for _ in 0..3 {
            let mut c = connect_from(host, s.addr).await;
            c.write_all(&raw[..cut]).await.unwrap();
            stalled.push(c);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The anonymous pool is full: another client without a key gets a readable 429 ...
    let r = request_from(
        31,
        s.addr,
        &upload_request(s.addr, "/api/predict", None, &img).0,
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "busy");
    assert!(r.header("retry-after").is_some());
    // ... while keyed work goes on at once.
    let t = Instant::now();
    let r = request_from(
        31,
        s.addr,
        &upload_request(s.addr, "/api/predict", Some(&key), &img).0,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = post_json(s.addr, "/v1/campaigns", Some(&key), &json!({ "name": "c" })).await;
    assert_eq!(c.status, 201, "{}", c.text());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // Every stalled connection is answered and closed after the body timeout: the admitted
    // ones with 408, the refused ones with 429 once their body could not be drained.
    let mut statuses = std::collections::BTreeMap::new();
    for mut c in stalled {
        let (out, _) = read_until_closed(&mut c, Duration::from_secs(10)).await;
        let status = if out.is_empty() {
            0
        } else {
            parse_response(&out).status
        };
        *statuses.entry(status).or_insert(0) += 1;
        if status == 408 {
            let r = parse_response(&out);
            assert_eq!(r.json()["code"], "body_timeout", "{}", r.text());
            assert!(r.error().contains("--body-timeout-secs"), "{}", r.error());
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(statuses.get(&408), Some(&8), "{statuses:?}");
    assert_eq!(statuses.values().sum::<i32>(), 60, "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [408, 429].contains(s)),
        "{statuses:?}"
    );
    // The slots are free again.
    let r = request_from(
        31,
        s.addr,
        &upload_request(s.addr, "/api/predict", None, &img).0,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_and_silent_connections_are_closed_after_the_header_timeout() {
    let config = ServerConfig {
        header_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let (s, _key, _dir) = keyed_server(config).await;
    let mut conns = Vec::new();
    for i in 0..150u32 {
        let mut c = connect_from(40 + (i % 10) as u8, s.addr).await;
        if i % 2 == 0 {
            c.write_all(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Le")
                .await
                .unwrap();
        }
        conns.push(c);
    }
    let start = Instant::now();
    for mut c in conns {
        read_until_closed(&mut c, Duration::from_secs(5)).await;
    }
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        start.elapsed()
    );
    // A keep-alive connection that answered a request and then idles is closed too.
    let mut c = connect_from(50, s.addr).await;
    c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (out, took) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(get(s.addr, "/health", None).await.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_clients_read_their_429_and_rates_are_per_key_and_per_client() {
    let config = ServerConfig {
        max_per_client: 1,
        client_rate_per_minute: 6,
        key_rate_per_minute: 12,
        body_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let (s, key, _dir) = keyed_server(config).await;
    let (_, img) = fer_images("happy", 1).remove(0);
    // Hold the one slot of 127.0.0.60 with a stalled upload.
    let (raw, body_len) = upload_request(s.addr, "/api/predict", None, &img);
    let mut hold = connect_from(60, s.addr).await;
    hold.write_all(&raw[..raw.len() - body_len / 2])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A 6 MB request from the same address, refused: the server reads it and answers, so the
    // client finishes writing and reads a JSON 429 (a broken pipe before the fix).
    let big: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let (raw, _) = upload_request(s.addr, "/v1/analyze", None, &big);
    let r = request_from(60, s.addr, &raw).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "rate_limited");
    assert!(r.error().contains("127.0.0.60"), "{}", r.error());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["retry_after_s"], 1);
    drop(hold);

    // 6 requests a minute without a key: a burst of 1, then one every 10 s, per address.
    let status = || async {
        let r = request_from(
            61,
            s.addr,
            &raw_request(s.addr, "GET", "/v1/models/emotion", &[], b""),
        )
        .await;
        (r.status, r)
    };
    assert_eq!(status().await.0, 200);
    let (code, r) = status().await;
    assert_eq!(code, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "rate_limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((9..=10).contains(&wait), "{wait}");
    assert_eq!(r.json()["retry_after_s"], wait);
    // Another address has its own budget; a key is not counted against the address.
    let r = request_from(
        62,
        s.addr,
        &raw_request(s.addr, "GET", "/v1/models/emotion", &[], b""),
    )
    .await;
    assert_eq!(r.status, 200);
    let auth = format!("Bearer {key}");
    let keyed = || async {
        request_from(
            61,
            s.addr,
            &raw_request(
                s.addr,
                "GET",
                "/v1/campaigns",
                &[("Authorization", &auth)],
                b"",
            ),
        )
        .await
    };
    // 12 a minute per key: a burst of 2.
    assert_eq!(keyed().await.status, 200);
    assert_eq!(keyed().await.status, 200);
    let r = keyed().await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.error().contains("this API key"), "{}", r.error());
    let other = emolens_server::auth::create_key(&s.state.db, "other")
        .await
        .unwrap()
        .key;
    assert_eq!(get(s.addr, "/v1/campaigns", Some(&other)).await.status, 200);
    s.stop().await;
}

/// A grey PNG of `side` x `side` (a gradient, so it compresses to little).
fn big_png(side: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(side, side, |x, y| image::Luma([((x ^ y) >> 6) as u8]));
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_over_the_decode_budget_are_refused_from_their_header() {
    let config = ServerConfig {
        decode_budget_bytes: 32 << 20,
        ..Default::default()
    };
    let (s, key, _dir) = keyed_server(config).await;
    let png = big_png(3000);
    // 9 M pixels: 9 MB decoded and 36 MB of working memory, over the 32 MiB budget.
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", "wide.png", &png)]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let e = r.error();
    assert!(
        e.contains("wide.png") && e.contains("3000x3000") && e.contains("--decode-budget-mib"),
        "{e}"
    );
    // In a batch, it fails alone.
    let (_, face) = fer_images("happy", 1).remove(0);
    let r = post_multipart(
        s.addr,
        "/v1/analyze?assume_crop=true",
        Some(&key),
        &[("files", "wide.png", &png), ("files", "face.jpg", &face)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let items = r.json()["items"].clone();
    assert_eq!(items[0]["error"]["status"], 413);
    assert_eq!(items[1]["status"], "ok");
    // The same as a TF-Serving instance.
    let b64 = base64_encode(&png);
    let r = post_json(
        s.addr,
        "/v1/models/emotion:predict",
        None,
        &json!({ "instances": [{ "b64": b64 }] }),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("instance 0"), "{}", r.error());
    // A smaller one fits.
    let r = post_multipart(
        s.addr,
        "/api/predict",
        None,
        &[("file", "ok.png", &big_png(1000))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Too many TF-Serving instances: refused while reading, before the rest is parsed.
    let mut body = String::from("{\"instances\": [");
    for _ in 0..1001 {
        body.push_str("[[0.5]],");
    }
    body.push_str(" not even JSON");
    let r = request(
        s.addr,
        "POST",
        "/v1/models/emotion:predict",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("1000 instances"), "{}", r.error());
    s.stop().await;
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_saturation_loses_nothing_acknowledged_and_keyed_goodput_stays_up() {
    // Saturation: 4 keyed uploads in flight (the keyed pool) on one analysis slot. Twice that
    // keyed, plus as many anonymous clients, for 4 seconds.
    let config = ServerConfig {
        max_concurrent: 4,
        max_per_key: 4,
        max_anonymous: 2,
        max_per_client: 2,
        inference_workers: 1,
        queue_timeout: Duration::from_secs(2),
        uncertain_below: 0.0,
        min_quality: 0.0,
        ..Default::default()
    };
    let (s, key, _dir) = keyed_server(config).await;
    let c = post_json(
        s.addr,
        "/v1/campaigns",
        Some(&key),
        &json!({ "name": "load" }),
    )
    .await;
    let a = post_json(
        s.addr,
        &format!("/v1/campaigns/{}/ads", c.json()["id"]),
        Some(&key),
        &json!({ "name": "a" }),
    )
    .await;
    let ad = a.json()["id"].as_i64().unwrap();
    let faces = fer_images("happy", 16);
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for client in 0..16usize {
        let keyed = client < 8;
        let (addr, key, faces) = (s.addr, key.clone(), faces.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen: Vec<(bool, u16, usize)> = Vec::new();
            let mut unexpected: Vec<String> = Vec::new();
            let mut n = client;
            while Instant::now() < deadline {
                // Each upload is two distinct photos (no duplicates between uploads).
                let (a, b) = (&faces[n % 16], &faces[(n + 1) % 16]);
                let parts: Vec<(&str, String, Vec<u8>)> = vec![
                    ("files", format!("{client}-{n}-a.jpg"), flip(&a.1, n)),
                    ("files", format!("{client}-{n}-b.jpg"), flip(&b.1, n + 1)),
                ];
                let parts: Vec<(&str, &str, &[u8])> = parts
                    .iter()
                    .map(|(f, nm, b)| (*f, nm.as_str(), b.as_slice()))
                    .collect();
                let r = if keyed {
                    post_multipart(addr, &format!("/v1/ads/{ad}/photos"), Some(&key), &parts).await
                } else {
                    post_multipart(addr, "/v1/analyze?assume_crop=true", None, &parts).await
                };
                let stored = if keyed && r.status == 200 {
                    r.json()["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|i| i["status"] == "ok")
                        .count()
                } else {
                    0
                };
                seen.push((keyed, r.status, stored));
                if ![200, 429].contains(&r.status) {
                    unexpected.push(format!("{} {}", r.status, r.text()));
                }
                if r.status == 429 {
                    assert!(r.header("retry-after").is_some());
                    assert!(["busy", "rate_limited"].contains(&r.json()["code"].as_str().unwrap()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                n += 16;
            }
            (seen, unexpected)
        }));
    }
    let (mut all, mut unexpected) = (Vec::new(), Vec::new());
    for t in tasks {
        let (seen, odd) = t.await.unwrap();
        all.extend(seen);
        unexpected.extend(odd);
    }
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let keyed_ok = all.iter().filter(|(k, st, _)| *k && *st == 200).count();
    let acknowledged: usize = all.iter().map(|(_, _, n)| n).sum();
    assert!(
        all.iter().all(|(_, st, _)| [200, 429].contains(st)),
        "{:?}",
        all.iter().map(|x| x.1).collect::<Vec<_>>()
    );
    assert!(keyed_ok > 0, "no keyed upload completed: {all:?}");
    // Everything acknowledged is stored, and nothing else.
    let ad_now = get(s.addr, &format!("/v1/ads/{ad}"), Some(&key))
        .await
        .json();
    assert_eq!(
        ad_now["ad"]["photos"].as_u64().unwrap() as usize,
        acknowledged,
        "{ad_now}"
    );
    s.stop().await;
}

/// The JPEG with one comment byte changed after its header (same pixels, different file), so
/// repeated uploads are not duplicates.
fn flip(jpeg: &[u8], n: usize) -> Vec<u8> {
    // A COM segment right after SOI carries the tag.
    let tag = format!("emolens-load-{n}");
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xFE];
    out.extend_from_slice(&((tag.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}
