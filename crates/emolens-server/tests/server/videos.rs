//! Reaction videos over real sockets, on SQLite and PostgreSQL: ad creatives, uploads answered
//! 202 at once, jobs run by the server's own worker, progress and results, workspaces and
//! roles, duplicates and bad files, per-ad timelines with intervals and moments, comparisons,
//! formula-safe exports; the queue surviving a restart (queued jobs, a job left running by a
//! dead process, a job whose workers keep dying, a video that fails).
//!
//! The videos are encoded here with the FFmpeg libraries from FER2013 test faces, a few seconds
//! long and small, and never committed.

use crate::common::*;
use emolens_server::auth::create_key_in;
use emolens_server::workspace::Role;
use emolens_server::ServerConfig;
use emolens_video::synth::{compose, fer_faces, Placement};
use emolens_video::{VideoCodec, VideoWriter, WriterSettings};
use image::GrayImage;
use serde_json::{json, Value};
use sqlx::Row;
use std::path::{Path, PathBuf};

pub fn config() -> ServerConfig {
    ServerConfig {
        uncertain_below: 0.0,
        min_quality: 0.0,
        max_video_bytes: 4 << 20,
        ..Default::default()
    }
}

/// FER2013 test faces of a class (the first `n`).
pub fn faces(class: &str, n: usize) -> Vec<GrayImage> {
    fer_faces("test", class, n)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// Encodes an H.264 MP4 of `seconds` at 10 frames/s, `w` x `h`, each frame showing
/// `scene(t)`: (face, x, y, side) per viewer.
pub fn encode<'a>(
    path: &Path,
    w: u32,
    h: u32,
    seconds: f64,
    scene: impl Fn(f64) -> Vec<(&'a GrayImage, u32, u32, u32)>,
) -> Vec<u8> {
    let fps = 10;
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
    let frames = (seconds * fps as f64).round() as usize;
    for k in 0..frames {
        let t = k as f64 / fps as f64;
        let placements: Vec<Placement> = scene(t)
            .into_iter()
            .map(|(face, x, y, side)| Placement { face, x, y, side })
            .collect();
        wr.push(&compose(w, h, &placements), t).unwrap();
    }
    wr.finish().unwrap();
    std::fs::read(path).unwrap()
}

/// One viewer, `face` (a little sway so frames differ), 320x240.
pub fn one_viewer(path: &Path, face: &GrayImage, seconds: f64) -> Vec<u8> {
    encode(path, 320, 240, seconds, |t| {
        vec![(face, 100 + ((t * 3.0).sin() * 4.0) as u32 + 4, 60, 120)]
    })
}

/// An audience of 14 side by side (2 rows of 7, 640x360): happy faces for the first two
/// seconds, then sad ones in the same places (the tracker keeps each place's viewer).
fn audience(path: &Path, happy: &[GrayImage], sad: &[GrayImage], seconds: f64) -> Vec<u8> {
    encode(path, 640, 360, seconds, |t| {
        (0..14)
            .map(|k| {
                let face = if t < 2.0 { &happy[k] } else { &sad[k] };
                let (col, row) = (k as u32 % 7, k as u32 / 7);
                (face, 4 + col * 91, 40 + row * 170, 84)
            })
            .collect()
    })
}

pub async fn post_raw(
    addr: std::net::SocketAddr,
    path: &str,
    key: &str,
    ctype: &str,
    body: &[u8],
) -> Resp {
    let auth = format!("Bearer {key}");
    request(
        addr,
        "POST",
        path,
        &[("Authorization", auth.as_str()), ("Content-Type", ctype)],
        body,
    )
    .await
}

/// Polls a job until it is done or failed.
pub async fn wait_job(addr: std::net::SocketAddr, key: &str, id: i64) -> Value {
    for _ in 0..1200 {
        let r = get(addr, &format!("/v1/jobs/{id}"), Some(key)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        if j["state"] == "done" || j["state"] == "failed" {
            return j;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish in 120 s");
}

async fn new_ad(addr: std::net::SocketAddr, key: &str, campaign: i64, body: Value) -> i64 {
    let r = post_json(
        addr,
        &format!("/v1/campaigns/{campaign}/ads"),
        Some(key),
        &body,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_i64().unwrap()
}

fn norm(url: &str) -> String {
    emolens_server::db::normalise_url(url).unwrap().0
}

/// Runs one statement (or a count) on the database directly.
pub async fn sql(db_url: &str, statement: &str) -> i64 {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&norm(db_url))
        .await
        .unwrap();
    let n = if statement
        .trim_start()
        .to_ascii_uppercase()
        .starts_with("SELECT")
    {
        sqlx::query(statement)
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get::<i64, _>(0)
            .unwrap()
    } else {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected() as i64
    };
    pool.close().await;
    n
}

fn tmp(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

async fn video_flow(db_url: &str) {
    let s = TestServer::start_with_jobs(config(), db_url, false, test_jobs(1)).await;
    let db = &s.state.db;
    let admin = create_key_in(db, "studio", "dpo", Role::Admin)
        .await
        .unwrap()
        .key;
    let analyst = create_key_in(db, "studio", "analyst", Role::Analyst)
        .await
        .unwrap()
        .key;
    let viewer = create_key_in(db, "studio", "viewer", Role::Viewer)
        .await
        .unwrap()
        .key;
    let outsider = create_key_in(db, "rival", "analyst", Role::Analyst)
        .await
        .unwrap()
        .key;
    let (ka, kn, kv) = (admin.as_str(), analyst.as_str(), viewer.as_str());
    let dir = tempfile::tempdir().unwrap();
    let addr = s.addr;

    let c = post_json(addr, "/v1/campaigns", Some(kn), &json!({"name": "launch"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    // A name a spreadsheet would run as a formula.
    let a = new_ad(
        addr,
        kn,
        c,
        json!({"name": "=HYPERLINK(\"x\")", "duration_s": 4}),
    )
    .await;
    let b = new_ad(addr, kn, c, json!({"name": "cut B"})).await;
    let creative_ad = new_ad(addr, kn, c, json!({"name": "with creative"})).await;
    for bad in [
        json!({"name": "x", "duration_s": 0}),
        json!({"name": "x", "duration_s": -3}),
    ] {
        let r = post_json(addr, &format!("/v1/campaigns/{c}/ads"), Some(kn), &bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.error().contains("duration_s"), "{}", r.error());
    }

    // The ad's length by hand...
    let r = request(
        addr,
        "PATCH",
        &format!("/v1/ads/{b}"),
        &[
            ("Authorization", &format!("Bearer {kn}")),
            ("Content-Type", "application/json"),
        ],
        json!({"duration_s": 4}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["duration_s"], 4.0);
    // ...or from the creative's file: its metadata only, unless asked to keep it.
    let happy = faces("happy", 14);
    let sad = faces("sad", 14);
    let creative = one_viewer(&tmp(&dir, "creative.mp4"), &happy[0], 3.0);
    let r = post_raw(addr, "/v1/ads/1/creative", kn, "video/mp4", &creative).await;
    assert_eq!(r.status, 405, "PUT, not POST: {}", r.text());
    let put = |keep: bool| {
        let path = format!("/v1/ads/{creative_ad}/creative?keep={keep}&name=spot.mp4");
        let body = creative.clone();
        let key = kn.to_string();
        async move {
            request(
                addr,
                "PUT",
                &path,
                &[
                    ("Authorization", &format!("Bearer {key}")),
                    ("Content-Type", "video/mp4"),
                ],
                &body,
            )
            .await
        }
    };
    let r = put(false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let ad = r.json();
    assert!(
        (ad["duration_s"].as_f64().unwrap() - 3.0).abs() < 0.15,
        "{ad}"
    );
    assert_eq!(ad["creative"]["kept"], false);
    assert_eq!(ad["creative"]["file_name"], "spot.mp4");
    assert_eq!(ad["creative"]["width"], 320);
    let r = get(addr, &format!("/v1/ads/{creative_ad}/creative"), Some(kv)).await;
    assert_eq!(r.status, 404);
    assert!(r.error().contains("keep=true"), "{}", r.error());
    assert_eq!(put(true).await.status, 200);
    let r = get(addr, &format!("/v1/ads/{creative_ad}/creative"), Some(kv)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, creative);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    // A player's seek: one byte range.
    let auth = format!("Bearer {kv}");
    let r = request(
        addr,
        "GET",
        &format!("/v1/ads/{creative_ad}/creative"),
        &[("Authorization", auth.as_str()), ("Range", "bytes=16-31")],
        b"",
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, creative[16..32]);
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains("spot.mp4"));

    // Who may upload, and where.
    let clip = one_viewer(&tmp(&dir, "b.mp4"), &happy[1], 5.0);
    let r = post_raw(addr, &format!("/v1/ads/{b}/videos"), kv, "video/mp4", &clip).await;
    assert_eq!(r.status, 403);
    assert!(
        r.error().contains("needs the analyst role"),
        "{}",
        r.error()
    );
    let r = post_raw(
        addr,
        &format!("/v1/ads/{b}/videos"),
        &outsider,
        "video/mp4",
        &clip,
    )
    .await;
    assert_eq!(r.status, 404);
    let nowhere = post_raw(addr, "/v1/ads/987654/videos", &outsider, "video/mp4", &clip).await;
    assert_eq!(
        r.error().replace(&format!(" {b} "), " N "),
        nowhere.error().replace(" 987654 ", " N ")
    );

    // Bad files are refused at once, naming the file (never the server's temporary path).
    for (ctype, body, status, needle) in [
        ("text/plain", &b"hello"[..], 415, "Content-Type video/*"),
        (
            "video/mp4",
            &b"this is no video at all, just words"[..],
            415,
            "notes.mp4: not a video",
        ),
        ("video/mp4", &b""[..], 400, "empty"),
    ] {
        let r = post_raw(
            addr,
            &format!("/v1/ads/{b}/videos?name=notes.mp4"),
            kn,
            ctype,
            body,
        )
        .await;
        assert_eq!(r.status, status, "{ctype}: {}", r.text());
        assert!(r.error().contains(needle), "{}", r.error());
        assert!(!r.error().contains("emolens-video-"), "{}", r.error());
    }
    // Over the size limit: refused from the announced length, before the body is read.
    let r = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/ads/{b}/videos HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {kn}\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\nabc",
            5 << 20
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        sock.read_to_end(&mut raw).await.unwrap();
        parse_response(&raw)
    };
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("4 MiB"), "{}", r.error());
    for q in ["fps=0", "fps=31", "ad_start_s=99999", "colour=red"] {
        let r = post_raw(
            addr,
            &format!("/v1/ads/{b}/videos?{q}"),
            kn,
            "video/mp4",
            &clip,
        )
        .await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
    }
    let two = multipart(&[("file", "a.mp4", &clip), ("file", "b.mp4", &clip)]);
    let r = request(
        addr,
        "POST",
        &format!("/v1/ads/{b}/videos"),
        &[
            ("Authorization", &format!("Bearer {kn}")),
            (
                "Content-Type",
                &format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
        ],
        &two,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error().contains("one reaction video per request"),
        "{}",
        r.error()
    );
    assert_eq!(sql(db_url, "SELECT COUNT(*) FROM video_jobs").await, 0);

    // A 14-viewer audience (multipart) on ad A; one viewer (raw body) on ad B, whose recording
    // starts a second before the ad.
    let crowd = audience(&tmp(&dir, "crowd.mp4"), &happy, &sad, 4.0);
    let r = post_multipart(
        addr,
        &format!("/v1/ads/{a}/videos"),
        Some(kn),
        &[("file", "screening-1.mp4", &crowd)],
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let job_a = r.json();
    let ja = job_a["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/jobs/{ja}").as_str())
    );
    assert!(["queued", "running"].contains(&job_a["state"].as_str().unwrap()));
    assert_eq!(job_a["file_name"], "screening-1.mp4");
    assert_eq!(job_a["video"]["width"], 640);
    assert!((job_a["progress"]["seconds_total"].as_f64().unwrap() - 4.0).abs() < 0.2);
    let r = post_raw(
        addr,
        &format!("/v1/ads/{b}/videos?name=viewer-7.mp4&ad_start_s=1&fps=5"),
        kn,
        "video/mp4",
        &clip,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let jb = r.json()["id"].as_i64().unwrap();
    // The same file again is refused: a viewer counts once.
    let r = post_multipart(
        addr,
        &format!("/v1/ads/{a}/videos"),
        Some(kn),
        &[("video", "again.mp4", &crowd)],
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error().contains(&format!("job {ja}")), "{}", r.error());

    let done_a = wait_job(addr, kv, ja).await;
    assert_eq!(done_a["state"], "done", "{done_a}");
    assert_eq!(done_a["attempts"], 1);
    assert_eq!(done_a["progress"]["fraction"], 1.0);
    // Samples at 0, 0.2, ... s; the last frame (3.9 s) is nearest the 4.0 s sample too.
    let frames_a = done_a["progress"]["frames_done"].as_i64().unwrap();
    assert!((20..=21).contains(&frames_a), "{done_a}");
    assert_eq!(done_a["video_kept"], false);
    let res = &done_a["result"];
    assert_eq!(res["complete"], true, "{res}");
    assert_eq!(res["frames"], frames_a);
    let viewers_a = res["viewers"].as_i64().unwrap();
    assert!((10..=14).contains(&viewers_a), "tracked viewers: {res}");
    assert!(res["real_time_factor"].as_f64().unwrap() > 0.0);
    assert!(done_a["worker"]
        .as_str()
        .unwrap()
        .contains(&format!(":{}#0", std::process::id())));
    let done_b = wait_job(addr, kv, jb).await;
    assert_eq!(done_b["state"], "done", "{done_b}");
    // 25 or 26 samples, the 5 before 1.0 s not counted.
    let frames_b = done_b["result"]["frames"].as_i64().unwrap();
    assert!((25..=26).contains(&frames_b), "{done_b}");
    assert_eq!(done_b["result"]["frames_counted"], frames_b - 5, "{done_b}");
    assert_eq!(done_b["ad_start_s"], 1.0);
    assert!(done_b["result"]["notes"][0]
        .as_str()
        .unwrap()
        .contains("before the ad starts"));
    // Analysed videos are not kept by a campaign that keeps no images.
    assert_eq!(
        sql(db_url, "SELECT COUNT(*) FROM job_video_chunks").await,
        0
    );
    let r = get(addr, &format!("/v1/jobs/{ja}/video"), Some(kv)).await;
    assert_eq!(r.status, 404);
    assert!(r.error().contains("not kept"), "{}", r.error());

    // Jobs are the workspace's: another workspace's key finds nothing, a viewer reads.
    let r = get(addr, &format!("/v1/jobs/{ja}"), Some(&outsider)).await;
    assert_eq!(r.status, 404);
    let n = get(addr, "/v1/jobs/987654", Some(&outsider)).await;
    assert_eq!(
        r.error().replace(&format!(" {ja} "), " N "),
        n.error().replace(" 987654 ", " N ")
    );
    let list = get(addr, &format!("/v1/ads/{a}/videos"), Some(kv))
        .await
        .json();
    assert_eq!(
        list["counts"],
        json!({"queued": 0, "running": 0, "live": 0, "done": 1, "failed": 0})
    );
    let ad_a = get(addr, &format!("/v1/ads/{a}"), Some(kv)).await.json();
    assert_eq!(ad_a["ad"]["reaction_videos"], 1);

    // Ad A's timeline: 4 seconds, each with the audience and an interval; smiling, then not.
    let r = get(addr, &format!("/v1/ads/{a}/timeline"), Some(kv)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json()["timeline"].clone();
    assert_eq!(t["videos"], 1);
    assert_eq!(t["viewers"].as_i64().unwrap(), viewers_a);
    let secs = t["seconds"].as_array().unwrap();
    assert_eq!(secs.len(), 4);
    for s in secs {
        let n = s["viewers"].as_u64().unwrap();
        assert!(n >= 10, "{s}");
        assert_eq!(s["videos"], 1);
        let v = &s["valence"];
        assert!(
            v["ci_low"].as_f64().unwrap() <= v["value"].as_f64().unwrap(),
            "{s}"
        );
        let probs: f64 = s["mean_probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_f64().unwrap())
            .sum();
        assert!((probs - 1.0).abs() < 1e-3, "{s}");
    }
    if emolens_model::BUNDLED_MODEL.is_some() {
        // The trained model: happy faces first, sad ones after.
        let val = |i: usize| secs[i]["valence"]["value"].as_f64().unwrap();
        let smile = |i: usize| secs[i]["smiling_share"]["value"].as_f64().unwrap();
        assert!(val(0) > val(3) + 0.3 && val(1) > val(2) + 0.3, "{t}");
        assert!(smile(0) > 0.6 && smile(3) < 0.3, "{t}");
        let kinds: Vec<(String, i64)> = t["moments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["kind"].as_str().unwrap().to_string(),
                    m["second"].as_i64().unwrap(),
                )
            })
            .collect();
        // One peak in the happy half, one dip in the sad half (whichever second is extreme).
        assert_eq!(kinds.len(), 2, "{t}");
        assert!(kinds[0].0 == "peak" && kinds[0].1 <= 1, "{t}");
        assert!(kinds[1].0 == "dip" && kinds[1].1 >= 2, "{t}");
        assert!(t["moments"][0]["stands_out"].as_bool().unwrap(), "{t}");
    }
    // Ad B: one viewer, so values without intervals, and why.
    let tb = get(addr, &format!("/v1/ads/{b}/timeline"), Some(kv))
        .await
        .json()["timeline"]
        .clone();
    assert_eq!(tb["seconds"].as_array().unwrap().len(), 4);
    let s0 = &tb["seconds"][0];
    assert_eq!(s0["viewers"], 1);
    assert!(s0["valence"]["ci_low"].is_null());
    assert_eq!(s0["valence"]["interval_note"], "too few viewers (1 < 10)");
    // An ad without reaction videos has seconds with nobody in them.
    let empty = get(addr, &format!("/v1/ads/{creative_ad}/timeline"), Some(kv))
        .await
        .json();
    assert_eq!(empty["timeline"]["seconds"].as_array().unwrap().len(), 3);
    assert!(empty["timeline"]["seconds"][0]["valence"].is_null());

    // B against A, second by second.
    let r = get(
        addr,
        &format!("/v1/ads/{a}/timeline/compare?with={b}"),
        Some(kv),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cmp = r.json();
    assert_eq!(cmp["seconds"].as_array().unwrap().len(), 4);
    assert_eq!(cmp["seconds"][0]["valence_significance"], "too_few_viewers");
    assert_eq!(cmp["seconds"][0]["b"]["viewers"], 1);
    assert!(cmp["method"].as_str().unwrap().contains("B minus A"));
    let r = get(addr, &format!("/v1/ads/{a}/timeline/compare"), Some(kv)).await;
    assert_eq!(r.status, 400);
    let r = get(
        addr,
        &format!("/v1/ads/{a}/timeline/compare?with={b}"),
        Some(&outsider),
    )
    .await;
    assert_eq!(r.status, 404);

    // Exports: formula-safe CSV per second, per viewer per second, and JSON; audited.
    let csv = get(
        addr,
        &format!("/v1/ads/{a}/timeline/export?format=csv"),
        Some(kv),
    )
    .await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with(
        "ad_id,ad_name,second,videos,viewers_with_face,viewers,top_emotion,valence,valence_ci_low"
    ));
    assert!(
        lines[1].contains(",\"'=HYPERLINK(\"\"x\"\")\","),
        "{}",
        lines[1]
    );
    let per_viewer = get(
        addr,
        &format!("/v1/ads/{a}/timeline/export?format=csv&level=viewer"),
        Some(kv),
    )
    .await
    .text();
    let rows = per_viewer.lines().count() - 1;
    assert!(rows >= 4 * 10, "{per_viewer}");
    assert!(per_viewer.contains("screening-1.mp4"));
    let js = get(
        addr,
        &format!("/v1/ads/{a}/timeline/export?format=json"),
        Some(kv),
    )
    .await
    .json();
    assert_eq!(js["viewer_seconds"].as_array().unwrap().len(), rows);
    assert_eq!(js["timeline"]["seconds"].as_array().unwrap().len(), 4);
    let cmp_csv = get(
        addr,
        &format!("/v1/ads/{a}/timeline/compare/export?with={b}&format=csv"),
        Some(kv),
    )
    .await
    .text();
    assert_eq!(cmp_csv.lines().count(), 5, "{cmp_csv}");
    assert!(
        cmp_csv.lines().nth(1).unwrap().contains("\"'=HYPERLINK"),
        "{cmp_csv}"
    );
    let r = get(
        addr,
        &format!("/v1/ads/{a}/timeline/export?format=xml"),
        Some(kv),
    )
    .await;
    assert_eq!(r.status, 400);
    let audit = get(addr, "/v1/audit", Some(ka)).await.json();
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["action"] == "upload" && e["detail"]["job_id"] == ja));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "export" && e["detail"]["timeline"] == true));
    assert!(
        !audit.to_string().contains("screening-1.mp4"),
        "the audit log names no file"
    );

    // Erasure: a job (admin only), then the ad with everything of its jobs.
    let r = request(
        addr,
        "DELETE",
        &format!("/v1/jobs/{jb}"),
        &[("Authorization", &format!("Bearer {kn}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        addr,
        "DELETE",
        &format!("/v1/jobs/{jb}"),
        &[("Authorization", &format!("Bearer {ka}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = &r.json()["erased"];
    assert_eq!(
        (
            e["jobs"].as_i64(),
            e["viewers"].as_i64(),
            e["videos"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{e}"
    );
    assert!(e["viewer_seconds"].as_i64().unwrap() >= 4, "{e}");
    assert_eq!(
        get(addr, &format!("/v1/jobs/{jb}"), Some(ka)).await.status,
        404
    );
    let tb = get(addr, &format!("/v1/ads/{b}/timeline"), Some(kv))
        .await
        .json();
    assert_eq!(tb["timeline"]["videos"], 0);
    assert!(tb["timeline"]["seconds"][0]["valence"].is_null());
    // The same file may be analysed again once its job is erased.
    let r = post_raw(
        addr,
        &format!("/v1/ads/{b}/videos?ad_start_s=1"),
        kn,
        "video/mp4",
        &clip,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let again = wait_job(addr, kv, r.json()["id"].as_i64().unwrap()).await;
    assert_eq!(again["state"], "done");

    let rows_a = sql(
        db_url,
        &format!("SELECT COUNT(*) FROM viewer_seconds WHERE ad_id = {a}"),
    )
    .await;
    let r = request(
        addr,
        "DELETE",
        &format!("/v1/ads/{a}"),
        &[("Authorization", &format!("Bearer {ka}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json()["erased"].clone();
    assert_eq!(e["jobs"], 1, "{e}");
    assert_eq!(e["viewers"].as_i64().unwrap(), viewers_a);
    assert_eq!(e["viewer_seconds"].as_i64().unwrap(), rows_a);
    assert_eq!(
        get(addr, &format!("/v1/jobs/{ja}"), Some(ka)).await.status,
        404
    );
    assert_eq!(
        get(addr, &format!("/v1/ads/{a}/timeline"), Some(ka))
            .await
            .status,
        404
    );
    for table in ["video_jobs", "video_viewers", "viewer_seconds"] {
        assert_eq!(
            sql(
                db_url,
                &format!("SELECT COUNT(*) FROM {table} WHERE ad_id = {a}")
            )
            .await,
            0,
            "{table}"
        );
    }
    // The campaign: the rest, the kept creative included.
    let r = request(
        addr,
        "DELETE",
        &format!("/v1/campaigns/{c}"),
        &[("Authorization", &format!("Bearer {ka}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["erased"]["jobs"], 1);
    for table in [
        "video_jobs",
        "video_viewers",
        "viewer_seconds",
        "job_video_chunks",
        "ad_creatives",
    ] {
        assert_eq!(
            sql(db_url, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_videos_become_ad_timelines_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    video_flow(&dir.path().join("videos.db").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_videos_become_ad_timelines_on_postgres() {
    let pg = Postgres::start();
    video_flow(&pg.url).await;
}

/// The queue survives a restart: jobs queued while no worker runs, a job left running by a dead
/// process, a job whose workers died too often, and a video that turns out unreadable.
async fn restart_flow(db_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let happy = faces("happy", 5);
    let s = TestServer::start(config(), db_url, false).await;
    let key = create_key_in(&s.state.db, "default", "ops", Role::Admin)
        .await
        .unwrap()
        .key;
    let c = post_json(
        s.addr,
        "/v1/campaigns",
        Some(&key),
        &json!({"name": "c", "keep_images": true}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    let ad = new_ad(s.addr, &key, c, json!({"name": "ad", "duration_s": 2})).await;
    let mut ids = Vec::new();
    for (i, face) in happy.iter().enumerate() {
        let v = one_viewer(&tmp(&dir, &format!("v{i}.mp4")), face, 2.0);
        let r = post_raw(
            s.addr,
            &format!("/v1/ads/{ad}/videos?name=v{i}.mp4"),
            &key,
            "video/mp4",
            &v,
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        ids.push(r.json()["id"].as_i64().unwrap());
    }
    // No worker here: they wait, in order.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let j = get(s.addr, &format!("/v1/jobs/{}", ids[1]), Some(&key))
        .await
        .json();
    assert_eq!(
        (j["state"].as_str(), j["queued_ahead"].as_i64()),
        (Some("queued"), Some(1))
    );
    assert!(j["started_at"].is_null());
    s.stop().await;
    // Job 2: its video is damaged in storage. Job 3: left running by a process that died (lease
    // expired). Job 4: its worker died three times already.
    sql(
        db_url,
        &format!(
            "UPDATE job_video_chunks SET bytes = CAST('garbage' AS BLOB) WHERE job_id = {}",
            ids[2]
        )
        .replace(
            "BLOB",
            if db_url.starts_with("postgres") {
                "BYTEA"
            } else {
                "BLOB"
            },
        ),
    )
    .await;
    sql(db_url, &format!("UPDATE video_jobs SET state = 'running', attempts = 1, claim_token = 'dead', worker = 'gone:1#0', lease_until = 0 WHERE id = {}", ids[3])).await;
    sql(db_url, &format!("UPDATE video_jobs SET state = 'running', attempts = 3, claim_token = 'dead', worker = 'gone:1#0', lease_until = 0 WHERE id = {}", ids[4])).await;

    let s = TestServer::start_with_jobs(config(), db_url, false, test_jobs(2)).await;
    let mut got = Vec::new();
    for id in &ids {
        got.push(wait_job(s.addr, &key, *id).await);
    }
    for j in &got[..2] {
        assert_eq!(
            (j["state"].as_str(), j["attempts"].as_i64()),
            (Some("done"), Some(1)),
            "{j}"
        );
        assert_eq!(j["video_kept"], true, "the campaign keeps images");
    }
    assert_eq!(got[2]["state"], "failed", "{}", got[2]);
    assert_eq!(got[2]["error"]["code"], "not_a_video");
    assert_eq!(got[2]["error"]["status"], 415);
    assert!(
        got[2]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("v2.mp4: not a video"),
        "{}",
        got[2]
    );
    assert_eq!(
        (got[3]["state"].as_str(), got[3]["attempts"].as_i64()),
        (Some("done"), Some(2)),
        "{}",
        got[3]
    );
    assert_ne!(got[3]["worker"], "gone:1#0");
    assert_eq!(got[4]["state"], "failed", "{}", got[4]);
    assert_eq!(got[4]["error"]["code"], "worker_lost");
    assert!(
        got[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("started 3 times"),
        "{}",
        got[4]
    );
    // Each done job's results once: one viewer each, the seconds of a 2 s ad.
    let t = get(s.addr, &format!("/v1/ads/{ad}/timeline"), Some(&key))
        .await
        .json()["timeline"]
        .clone();
    assert_eq!(t["videos"], 3);
    assert_eq!(t["viewers"], 3);
    assert_eq!(t["seconds"][0]["viewers"], 3);
    assert_eq!(sql(db_url, "SELECT COUNT(*) FROM video_viewers").await, 3);
    // Kept videos download whole; the failed one is kept too (the campaign keeps images).
    let v = get(s.addr, &format!("/v1/jobs/{}/video", ids[0]), Some(&key)).await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body, std::fs::read(tmp(&dir, "v0.mp4")).unwrap());
    // Retention: kept videos older than the period go, results stay.
    let r = post_json(
        s.addr,
        "/v1/campaigns",
        Some(&key),
        &json!({"name": "short", "keep_images": true, "retention_days": 1}),
    )
    .await;
    let c2 = r.json()["id"].as_i64().unwrap();
    let ad2 = new_ad(s.addr, &key, c2, json!({"name": "ad"})).await;
    let v = one_viewer(&tmp(&dir, "old.mp4"), &happy[0], 2.0);
    let r = post_raw(
        s.addr,
        &format!("/v1/ads/{ad2}/videos"),
        &key,
        "video/mp4",
        &v,
    )
    .await;
    let old = r.json()["id"].as_i64().unwrap();
    assert_eq!(wait_job(s.addr, &key, old).await["state"], "done");
    sql(
        db_url,
        &format!("UPDATE video_jobs SET created_at = created_at - 2 * 86400 WHERE id = {old}"),
    )
    .await;
    let e = s
        .state
        .db
        .purge_expired(emolens_server::db::now())
        .await
        .unwrap();
    assert_eq!((e.videos, e.jobs), (1, 0), "{e:?}");
    let j = get(s.addr, &format!("/v1/jobs/{old}"), Some(&key))
        .await
        .json();
    assert_eq!(
        (j["state"].as_str(), j["video_kept"].as_bool()),
        (Some("done"), Some(false))
    );
    assert_eq!(
        get(s.addr, &format!("/v1/jobs/{old}/video"), Some(&key))
            .await
            .status,
        404
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_queue_survives_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    restart_flow(&dir.path().join("restart.db").display().to_string()).await;
}
