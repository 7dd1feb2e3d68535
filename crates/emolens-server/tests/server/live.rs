//! Live viewing sessions over real sockets, on SQLite and PostgreSQL: viewing links and their
//! roles and workspaces, consent before any session, camera frames (JPEGs of a FER2013 face in a
//! webcam-sized picture) landing in the ad's timeline while the viewer watches, a repeated frame
//! counted once, frames after a seek at their ad time, bad frames refused with what to do, the
//! end of a session, the viewer's own erasure leaving no row behind, withdrawn and used-up links,
//! the session's own admission limits, and byte ranges of the creative.

use crate::common::*;
use crate::videos::{config, faces, one_viewer, post_raw, sql};
use emolens_server::auth::create_key_in;
use emolens_server::workspace::Role;
use image::{imageops::FilterType, Rgb, RgbImage};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// A 640x480 webcam picture with a FER2013 face enlarged to 200 px, as JPEG.
fn frame_jpeg(face: &image::GrayImage) -> Vec<u8> {
    let face = image::imageops::resize(face, 200, 200, FilterType::CatmullRom);
    let mut frame = RgbImage::from_pixel(640, 480, Rgb([170, 160, 145]));
    for (x, y, p) in face.enumerate_pixels() {
        frame.put_pixel(220 + x, 140 + y, Rgb([p[0], p[0], p[0]]));
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&frame)
        .unwrap();
    out
}

async fn send_frame(
    addr: SocketAddr,
    id: i64,
    session: &str,
    seq: i64,
    t: f64,
    body: &[u8],
) -> Resp {
    request(
        addr,
        "POST",
        &format!("/v1/live/sessions/{id}/frames?seq={seq}&t={t}"),
        &[
            ("X-Emolens-Session", session),
            ("Content-Type", "image/jpeg"),
        ],
        body,
    )
    .await
}

async fn consent(addr: SocketAddr, token: &str) -> Resp {
    post_json(
        addr,
        &format!("/v1/live/{token}/sessions"),
        None,
        &json!({"consent": true}),
    )
    .await
}

/// Uploads an ad's creative and keeps it (so the viewing page can play it).
async fn keep_creative(
    addr: SocketAddr,
    key: &str,
    ad: i64,
    name: &str,
    ctype: &str,
    bytes: &[u8],
) {
    let r = request(
        addr,
        "PUT",
        &format!("/v1/ads/{ad}/creative?keep=true&name={name}"),
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", ctype),
        ],
        bytes,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn timeline(addr: SocketAddr, key: &str, ad: i64) -> Value {
    let r = get(addr, &format!("/v1/ads/{ad}/timeline"), Some(key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["timeline"].clone()
}

async fn live_flow(db_url: &str) {
    let s = TestServer::start(config(), db_url, true).await;
    let db = &s.state.db;
    let key = |ws: &'static str, name: &'static str, role| async move {
        create_key_in(db, ws, name, role).await.unwrap().key
    };
    let analyst = key("studio", "analyst", Role::Analyst).await;
    let viewer = key("studio", "viewer", Role::Viewer).await;
    let outsider = key("rival", "analyst", Role::Analyst).await;
    let (kn, kv, ko) = (analyst.as_str(), viewer.as_str(), outsider.as_str());
    let addr = s.addr;

    let c = post_json(addr, "/v1/campaigns", Some(kn), &json!({"name": "launch"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let r = post_json(
        addr,
        &format!("/v1/campaigns/{c}/ads"),
        Some(kn),
        &json!({"name": "spot", "duration_s": 4}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ad = r.json()["id"].as_i64().unwrap();

    // Links: analysts make them; a viewer key may not; another workspace sees no ad.
    let path = format!("/v1/ads/{ad}/live-links");
    assert_eq!(
        post_json(addr, &path, Some(kv), &json!({})).await.status,
        403
    );
    assert_eq!(
        post_json(addr, &path, Some(ko), &json!({})).await.status,
        404
    );
    assert_eq!(get(addr, &path, Some(ko)).await.status, 404);
    for (bad, what) in [
        (json!({"max_viewers": 0}), "max_viewers"),
        (json!({"fps": 9}), "fps"),
        (json!({"expires_in_hours": -1}), "expires_in_hours"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let r = post_json(addr, &path, Some(kn), &bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.error().contains(what), "{bad}: {}", r.error());
    }
    let r = post_json(
        addr,
        &path,
        Some(kn),
        &json!({"label": "panel A", "fps": 2}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let link = r.json();
    let token = link["token"].as_str().unwrap().to_string();
    assert_eq!(link["url"], format!("/live#t={token}"));
    assert_eq!(link["max_viewers"], 1);
    // The token is shown once and stored only as a hash.
    let listed = get(addr, &path, Some(kv)).await.json();
    assert_eq!(listed["links"][0]["label"], "panel A");
    assert!(listed["links"][0].get("token").is_none());
    assert_eq!(
        sql(
            db_url,
            &format!("SELECT COUNT(*) FROM live_links WHERE token_sha256 = '{token}'")
        )
        .await,
        0
    );

    // What the viewer's page reads before consent; nothing is stored by reading it.
    let info = get(addr, &format!("/v1/live/{token}"), None).await;
    assert_eq!(info.status, 200, "{}", info.text());
    let info = info.json();
    assert_eq!(info["ad"], "spot");
    assert_eq!(info["campaign"], "launch");
    assert_eq!(info["duration_s"], 4.0);
    assert_eq!(info["keeps_images"], false);
    assert_eq!(info["creative"], false);
    assert!(info["notice"]
        .as_str()
        .unwrap()
        .contains("Nothing starts before you agree"));
    let wrong = "0".repeat(64);
    for bad in [wrong.as_str(), "nope"] {
        let r = get(addr, &format!("/v1/live/{bad}"), None).await;
        assert_eq!(r.status, 404);
        assert!(r.error().contains("ask the team"), "{}", r.error());
    }
    assert_eq!(sql(db_url, "SELECT COUNT(*) FROM video_jobs").await, 0);

    // No consent, no session.
    let r = post_json(
        addr,
        &format!("/v1/live/{token}/sessions"),
        None,
        &json!({"consent": false}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("no consent"), "{}", r.error());
    assert_eq!(sql(db_url, "SELECT COUNT(*) FROM video_jobs").await, 0);
    let r = consent(addr, &token).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let started = r.json();
    let id = started["session_id"].as_i64().unwrap();
    let session = started["session"].as_str().unwrap().to_string();
    assert_eq!(started["reference"], format!("session {id}"));
    // The link allowed one viewer.
    let r = consent(addr, &token).await;
    assert_eq!(r.status, 409);
    assert!(r.error().contains("as many viewers"), "{}", r.error());

    // Frames: a happy face at 0.0-1.5 s, then (after a seek back) at 0.25 s, then a sad face
    // at 2.0-3.5 s. Every frame says what was found.
    let happy = frame_jpeg(&faces("happy", 1)[0]);
    // The first sad test face the detector finds at this size (not every FER2013 face is found).
    let analyzer = s.state.live_analyzer().unwrap();
    let sad = faces("sad", 20)
        .iter()
        .map(frame_jpeg)
        .find(|f| analyzer.analyze_bytes(f, "sad").unwrap().faces.len() == 1)
        .expect("one of 20 sad faces is found");
    // Per second, the sums of the answered probabilities: the timeline's means must match.
    let mut sums: std::collections::BTreeMap<i64, (f64, std::collections::BTreeMap<String, f64>)> =
        Default::default();
    for (seq, (t, img)) in [
        (0.0, &happy),
        (0.5, &happy),
        (1.0, &happy),
        (1.5, &happy),
        (0.25, &happy),
        (2.0, &sad),
        (2.5, &sad),
        (3.0, &sad),
        (3.5, &sad),
    ]
    .into_iter()
    .enumerate()
    {
        let seq = seq as i64;
        let r = send_frame(addr, id, &session, seq, t, img).await;
        assert_eq!(r.status, 200, "frame {seq}: {}", r.text());
        let f = r.json();
        assert_eq!(f["stored"], true);
        assert_eq!(f["frames"], seq + 1);
        assert_eq!(f["faces"], 1, "frame {seq}: {f}");
        assert!(f["face"]["box"]["width"].as_f64().unwrap() > 100.0, "{f}");
        let e = sums.entry(t as i64).or_default();
        e.0 += 1.0;
        for p in f["face"]["probabilities"].as_array().unwrap() {
            *e.1.entry(p["emotion"].as_str().unwrap().to_string())
                .or_default() += p["probability"].as_f64().unwrap();
        }
    }
    // The same frame again (a retry after a lost answer): stored once.
    let r = send_frame(addr, id, &session, 3, 1.5, &happy).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json()["stored"].clone(), r.json()["frames"].clone()),
        (json!(false), json!(9))
    );
    // Bad frames and credentials: refused, naming what to do; nothing stored.
    let bad_session = format!("{id}.{}", "f".repeat(64));
    for (sess, query, body, status, says) in [
        (
            "",
            "seq=20&t=1",
            happy.as_slice(),
            401,
            "missing session credential",
        ),
        (
            bad_session.as_str(),
            "seq=20&t=1",
            happy.as_slice(),
            404,
            "not open",
        ),
        (
            session.as_str(),
            "seq=20&t=6.5",
            happy.as_slice(),
            400,
            "playback time",
        ),
        (
            session.as_str(),
            "seq=20&t=-1",
            happy.as_slice(),
            400,
            "playback time",
        ),
        (
            session.as_str(),
            "seq=20",
            happy.as_slice(),
            400,
            "seq=<frame number>",
        ),
        (session.as_str(), "seq=20&t=1", b"".as_slice(), 400, "empty"),
        (
            session.as_str(),
            "seq=20&t=1",
            b"not a picture".as_slice(),
            415,
            "session",
        ),
        (
            session.as_str(),
            "seq=20&t=1",
            &happy[..happy.len() / 3],
            422,
            "session",
        ),
    ] {
        let mut h = vec![("Content-Type", "image/jpeg")];
        if !sess.is_empty() {
            h.push(("X-Emolens-Session", sess));
        }
        let r = request(
            addr,
            "POST",
            &format!("/v1/live/sessions/{id}/frames?{query}"),
            &h,
            body,
        )
        .await;
        assert_eq!(r.status, status, "{query}: {}", r.text());
        assert!(r.error().contains(says), "{query}: {}", r.error());
    }
    assert_eq!(
        sql(
            db_url,
            &format!("SELECT COUNT(*) FROM live_frames WHERE job_id = {id}")
        )
        .await,
        9
    );
    // No camera picture is kept (the campaign does not keep images).
    assert_eq!(
        sql(
            db_url,
            "SELECT COUNT(*) FROM live_frames WHERE image IS NOT NULL"
        )
        .await,
        0
    );

    // While the viewer watches, the ad's timeline has them: happy in seconds 0-1, sad in 2-3.
    let jobs = get(addr, &format!("/v1/ads/{ad}/videos"), Some(kv))
        .await
        .json();
    assert_eq!(jobs["counts"]["live"], 1, "{jobs}");
    assert_eq!(jobs["jobs"][0]["source"], "live");
    assert_eq!(jobs["jobs"][0]["progress"]["frames_done"], 9);
    let t = timeline(addr, kv, ad).await;
    assert_eq!(t["viewers"], 1, "{t}");
    let secs = t["seconds"].as_array().unwrap();
    assert_eq!(secs.len(), 4, "{t}");
    for (k, (n, sum)) in &sums {
        let sec = &secs[*k as usize];
        assert_eq!(sec["viewers"], 1, "second {k}: {sec}");
        for (emotion, total) in sum {
            let got = sec["mean_probabilities"][emotion].as_f64().unwrap();
            assert!(
                (got - total / n).abs() < 1e-4,
                "second {k} {emotion}: {got} vs {}",
                total / n
            );
        }
    }
    assert_eq!(secs[0]["top_emotion"], "happy", "{}", secs[0]);
    // Second 0 has three frames (0.0, 0.25 after the seek, 0.5), each counted once.
    let rows = get(
        addr,
        &format!("/v1/ads/{ad}/timeline/export?format=json&level=viewer"),
        Some(kv),
    )
    .await
    .json();
    let first = &rows["viewer_seconds"][0];
    assert_eq!(first["frames"], 3, "{rows}");

    // The end: the page's report is kept with the summary; no frame after it.
    let end = |body: Value| {
        let session = session.clone();
        async move {
            request(
                addr,
                "POST",
                &format!("/v1/live/sessions/{id}/end"),
                &[
                    ("X-Emolens-Session", session.as_str()),
                    ("Content-Type", "application/json"),
                ],
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    assert_eq!(end(json!({"reason": "bored"})).await.status, 400);
    let r = end(json!({"reason": "ended", "pauses": 1, "seeks": 1, "dropped_frames": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let result = r.json()["result"].clone();
    assert_eq!(result["frames"], 9);
    assert_eq!(result["frames_with_face"], 9);
    assert_eq!(result["seconds"], 4);
    assert_eq!(result["complete"], true);
    assert_eq!(result["seeks"], 1);
    assert!(
        result["notes"][0].as_str().unwrap().contains("2 frame(s)"),
        "{result}"
    );
    let r = send_frame(addr, id, &session, 30, 1.0, &happy).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        get(addr, &format!("/v1/jobs/{id}"), Some(kv)).await.json()["state"],
        "done"
    );
    assert_eq!(timeline(addr, kv, ad).await["viewers"], 1);
    // The consent is in the audit log (who: the link; never image content).
    let audit = get(
        addr,
        "/v1/audit",
        Some(&key("studio", "dpo", Role::Admin).await),
    )
    .await
    .json();
    assert!(
        audit.to_string().contains("\"consent\""),
        "no consent entry: {audit}"
    );

    // The viewer withdraws consent: everything of the session goes at once.
    let r = request(
        addr,
        "DELETE",
        &format!("/v1/live/sessions/{id}"),
        &[("X-Emolens-Session", bad_session.as_str())],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    let r = request(
        addr,
        "DELETE",
        &format!("/v1/live/sessions/{id}"),
        &[("X-Emolens-Session", session.as_str())],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["erased"]["jobs"], 1);
    for table in [
        "video_jobs",
        "video_viewers",
        "viewer_seconds",
        "live_frames",
    ] {
        let col = if table == "video_jobs" {
            "id"
        } else {
            "job_id"
        };
        assert_eq!(
            sql(
                db_url,
                &format!("SELECT COUNT(*) FROM {table} WHERE {col} = {id}")
            )
            .await,
            0,
            "{table}"
        );
    }
    assert_eq!(timeline(addr, kv, ad).await["viewers"], 0);

    // A link for two viewers, withdrawn after one: the second gets 404; another workspace
    // cannot withdraw it.
    let r = post_json(addr, &path, Some(kn), &json!({"max_viewers": 2})).await;
    let (lid, token2) = (
        r.json()["id"].as_i64().unwrap(),
        r.json()["token"].as_str().unwrap().to_string(),
    );
    assert_eq!(consent(addr, &token2).await.status, 201);
    let revoke = |k: &str| {
        let auth = format!("Bearer {k}");
        async move {
            request(
                addr,
                "DELETE",
                &format!("/v1/live-links/{lid}"),
                &[("Authorization", auth.as_str())],
                b"",
            )
            .await
        }
    };
    assert_eq!(revoke(ko).await.status, 404);
    assert_eq!(revoke(kv).await.status, 403);
    let r = revoke(kn).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["active"], false);
    assert_eq!(
        get(addr, &format!("/v1/live/{token2}"), None).await.status,
        404
    );
    assert_eq!(consent(addr, &token2).await.status, 404);

    // Erasing the campaign takes its links and sessions with it.
    let r = request(
        addr,
        "DELETE",
        &format!("/v1/campaigns/{c}"),
        &[(
            "Authorization",
            &format!("Bearer {}", key("studio", "dpo2", Role::Admin).await),
        )],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for table in ["live_links", "live_frames", "video_jobs", "viewer_seconds"] {
        assert_eq!(
            sql(db_url, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sessions_join_the_ad_timeline_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    live_flow(&dir.path().join("live.db").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sessions_join_the_ad_timeline_on_postgres() {
    let pg = Postgres::start();
    live_flow(&pg.url).await;
}

/// A session's page is admitted by its session (not by its address): one room of viewers behind
/// one address is not limited as one anonymous client; the creative is served in byte ranges;
/// a campaign that keeps images keeps the frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_have_their_own_limits_and_the_creative_plays_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = dir.path().join("limits.db").display().to_string();
    let config = emolens_server::ServerConfig {
        client_rate_per_minute: 60,
        ..config()
    };
    let s = TestServer::start(config, &db_url, true).await;
    let addr = s.addr;
    let kn = create_key_in(&s.state.db, "default", "analyst", Role::Analyst)
        .await
        .unwrap()
        .key;
    let c = post_json(
        addr,
        "/v1/campaigns",
        Some(&kn),
        &json!({"name": "kept", "keep_images": true}),
    )
    .await;
    assert_eq!(c.status, 201, "{}", c.text());
    let c = c.json()["id"].as_i64().unwrap();
    let ad = post_json(
        addr,
        &format!("/v1/campaigns/{c}/ads"),
        Some(&kn),
        &json!({"name": "spot"}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    let creative = one_viewer(&dir.path().join("creative.mp4"), &faces("happy", 1)[0], 2.0);
    keep_creative(addr, &kn, ad, "spot.mp4", "video/mp4", &creative).await;
    let link = post_raw(
        addr,
        &format!("/v1/ads/{ad}/live-links"),
        &kn,
        "application/json",
        b"{\"max_viewers\": 3}",
    )
    .await
    .json();
    let token = link["token"].as_str().unwrap().to_string();
    let info = get(addr, &format!("/v1/live/{token}"), None).await.json();
    assert_eq!(
        (info["creative"].clone(), info["keeps_images"].clone()),
        (json!(true), json!(true))
    );

    // The creative: whole, and in ranges as players ask for them.
    let whole = get(addr, &format!("/v1/live/{token}/creative"), None).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, creative);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let n = creative.len();
    for (range, from, to) in [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, n - 1),
        ("bytes=-50", n - 50, n - 1),
        (&*format!("bytes=10-{}", n + 1000), 10, n - 1),
    ] {
        let r = request(
            addr,
            "GET",
            &format!("/v1/live/{token}/creative"),
            &[("Range", range)],
            b"",
        )
        .await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.body, creative[from..=to], "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {from}-{to}/{n}")
        );
    }
    let r = request(
        addr,
        "GET",
        &format!("/v1/live/{token}/creative"),
        &[("Range", &format!("bytes={}-", n + 5))],
        b"",
    )
    .await;
    assert_eq!(r.status, 416);

    // Two viewers' sessions from the same address send their frames at their own rate, past
    // what this address may send without a key (60 a minute, a burst of 10, here)...
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let r = consent(addr, &token).await;
        assert_eq!(r.status, 201, "{}", r.text());
        sessions.push((
            r.json()["session_id"].as_i64().unwrap(),
            r.json()["session"].as_str().unwrap().to_string(),
        ));
    }
    let img = frame_jpeg(&faces("happy", 1)[0]);
    for (id, session) in &sessions {
        for seq in 0..8 {
            let r = send_frame(addr, *id, session, seq, seq as f64 * 0.25, &img).await;
            assert_eq!(r.status, 200, "session {id} frame {seq}: {}", r.text());
        }
    }
    // ...while calls without a session from that address are limited.
    let mut limited = 0;
    for _ in 0..12 {
        if get(addr, &format!("/v1/live/{token}"), None).await.status == 429 {
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "the anonymous rate limit applies to link reads"
    );
    // The campaign keeps images: the frames are kept (and erased with the session).
    assert_eq!(
        sql(
            &db_url,
            "SELECT COUNT(*) FROM live_frames WHERE image IS NOT NULL"
        )
        .await,
        16
    );
    s.stop().await;
}

/// The viewing page in headless chromium with a fake camera: consent, the ad playing, frames
/// sent, a pause, the end, the timeline (tests/browser/live.test.js).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewing_page_sends_frames_that_reach_the_timeline() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let browser_dir = root.join("tests/browser");
    let chromium = std::env::var("EMOLENS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    for (what, path) in [
        ("chromium", std::path::PathBuf::from(&chromium)),
        (
            "playwright-core",
            browser_dir.join("node_modules/playwright-core"),
        ),
    ] {
        assert!(
            path.exists(),
            "{what} is missing at {}: run scripts/install-test-deps.sh",
            path.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let db_url = dir.path().join("page.db").display().to_string();
    let s = TestServer::start(config(), &db_url, true).await;
    let addr = s.addr;
    let kn = create_key_in(&s.state.db, "default", "analyst", Role::Analyst)
        .await
        .unwrap()
        .key;
    let c = post_json(addr, "/v1/campaigns", Some(&kn), &json!({"name": "page"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let ad = post_json(
        addr,
        &format!("/v1/campaigns/{c}/ads"),
        Some(&kn),
        &json!({"name": "spot"}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    // The ad: 4 s of VP8 WebM (a codec Debian's chromium plays), kept so the page can play it.
    let creative_path = dir.path().join("creative.webm");
    let mut w = emolens_video::VideoWriter::create(
        &creative_path,
        emolens_video::WriterSettings {
            codec: emolens_video::VideoCodec::Vp8,
            width: 320,
            height: 240,
            fps: 10,
            rotation: 0,
        },
    )
    .unwrap();
    for k in 0..40u8 {
        let img = RgbImage::from_pixel(320, 240, Rgb([40 + 5 * k, 90, 160]));
        w.push(&img, k as f64 / 10.0).unwrap();
    }
    w.finish().unwrap();
    let creative = std::fs::read(&creative_path).unwrap();
    keep_creative(addr, &kn, ad, "spot.webm", "video/webm", &creative).await;
    let link = post_json(
        addr,
        &format!("/v1/ads/{ad}/live-links"),
        Some(&kn),
        &json!({"fps": 4}),
    )
    .await
    .json();
    let camera = dir.path().join("camera.y4m");
    crate::ondevice::write_y4m(&camera, &crate::ondevice::camera_frame(), 10);

    run_browser_test(
        "live.test.js",
        180,
        vec![
            ("EMOLENS_URL", format!("http://{addr}")),
            ("EMOLENS_LINK", link["url"].as_str().unwrap().to_string()),
            ("EMOLENS_KEY", kn.clone()),
            ("EMOLENS_AD", ad.to_string()),
            ("EMOLENS_CAMERA", camera.display().to_string()),
            ("EMOLENS_CHROMIUM", chromium),
        ],
    )
    .await;
    // The viewer erased their viewing from the page: nothing of it is left.
    for table in [
        "video_jobs",
        "live_frames",
        "viewer_seconds",
        "video_viewers",
    ] {
        assert_eq!(
            sql(&db_url, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    s.stop().await;
}
