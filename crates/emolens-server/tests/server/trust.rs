//! The security review's self-contained findings (issue 17), each over a real socket:
//! formula-safe CSV, security headers and JSON errors everywhere, private SQLite files and
//! `keys` that never invent a database, palette TIFFs, TF-Serving input ranges, truncated
//! images refused, duplicate uploads not counted twice, and the closed demo page in a browser.

use crate::common::*;
use emolens_server::ServerConfig;
use serde_json::{json, Value};
use std::path::PathBuf;

async fn server(config: ServerConfig, db_url: &str) -> (TestServer, String) {
    let s = TestServer::start(config, db_url, false).await;
    let key = emolens_server::auth::create_key(&s.state.db, "trust")
        .await
        .unwrap()
        .key;
    (s, key)
}

/// Every face counts (no uncertainty threshold), whatever model the build bundles.
fn counting_config() -> ServerConfig {
    ServerConfig {
        uncertain_below: 0.0,
        min_quality: 0.0,
        ..Default::default()
    }
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, no embedded newlines needed here).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| {
            let (mut cells, mut cur, mut quoted, mut chars) =
                (Vec::new(), String::new(), false, line.chars().peekable());
            while let Some(c) = chars.next() {
                match (c, quoted) {
                    ('"', true) if chars.peek() == Some(&'"') => {
                        cur.push('"');
                        chars.next();
                    }
                    ('"', _) => quoted = !quoted,
                    (',', false) => cells.push(std::mem::take(&mut cur)),
                    (c, _) => cur.push(c),
                }
            }
            cells.push(cur);
            cells
        })
        .collect()
}

const HYPERLINK: &str = "=HYPERLINK(\"http://x\",\"y\")";

/// Checks a CSV export: text columns made inert, numeric columns plain numbers. Returns the
/// rows as header -> cell maps.
fn check_csv(text: &str, text_columns: &[&str]) -> Vec<std::collections::HashMap<String, String>> {
    let rows = parse_csv(text);
    let header = rows[0].clone();
    let mut out = Vec::new();
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len(), "{text}");
        let mut m = std::collections::HashMap::new();
        for (h, cell) in header.iter().zip(row) {
            if !text_columns.contains(&h.as_str())
                && !cell.is_empty()
                && cell != "true"
                && cell != "false"
            {
                cell.parse::<f64>()
                    .unwrap_or_else(|_| panic!("column {h} holds {cell:?}, not a number"));
            } else {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "column {h}: {cell:?} would run as a formula"
                );
            }
            m.insert(h.clone(), cell.clone());
        }
        out.push(m);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_exports_are_formula_safe_and_numbers_stay_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("csv.db").display().to_string();
    let (s, key) = server(counting_config(), &db).await;
    let k = Some(key.as_str());
    let c = post_json(s.addr, "/v1/campaigns", k, &json!({ "name": HYPERLINK })).await;
    assert_eq!(c.status, 201, "{}", c.text());
    let cid = c.json()["id"].as_i64().unwrap();
    let mut ads = Vec::new();
    for name in ["@SUM(1)", "+cmd|' /C calc'!A0"] {
        let a = post_json(
            s.addr,
            &format!("/v1/campaigns/{cid}/ads"),
            k,
            &json!({ "name": name }),
        )
        .await;
        assert_eq!(a.status, 201);
        ads.push(a.json()["id"].as_i64().unwrap());
    }
    // Sad faces: their valence (P(happy) minus the negative classes) is below zero.
    for (i, class) in ["sad", "happy"].iter().enumerate() {
        let imgs = fer_images(class, 3);
        let names = ["=1+2.png", "-2+3.jpg", "@SUM(1).jpg"];
        let parts: Vec<(&str, &str, &[u8])> = imgs
            .iter()
            .zip(&names)
            .map(|((_, b), n)| ("files", *n, b.as_slice()))
            .collect();
        let r = post_multipart(s.addr, &format!("/v1/ads/{}/photos", ads[i]), k, &parts).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["summary"]["ok"], 3, "{}", r.text());
    }

    let r = get(s.addr, &format!("/v1/ads/{}/export?format=csv", ads[0]), k).await;
    assert_eq!(r.status, 200);
    let rows = check_csv(&r.text(), &["ad_name", "file_name", "top_emotion"]);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["ad_name"], "'@SUM(1)");
    let files: Vec<&str> = rows.iter().map(|r| r["file_name"].as_str()).collect();
    for f in ["'=1+2.png", "'-2+3.jpg", "'@SUM(1).jpg"] {
        assert!(files.contains(&f), "{f} in {files:?}");
    }
    let valences: Vec<f64> = rows.iter().map(|r| r["valence"].parse().unwrap()).collect();
    assert!(
        valences.iter().any(|v| *v < 0.0),
        "sad faces have negative valence: {valences:?}"
    );

    let r = get(s.addr, &format!("/v1/campaigns/{cid}/export?format=csv"), k).await;
    assert_eq!(r.status, 200);
    let rows = check_csv(
        &r.text(),
        &[
            "campaign_name",
            "ad_name",
            "valence_interval_note",
            "valence_diff_significance",
        ],
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["campaign_name"], format!("'{HYPERLINK}"));
    assert_eq!(rows[1]["ad_name"], "'+cmd|' /C calc'!A0");
    assert!(rows[0]["valence"].parse::<f64>().unwrap() < 0.0);
    // JSON exports keep the names as they are (JSON is data, not a spreadsheet).
    let r = get(
        s.addr,
        &format!("/v1/campaigns/{cid}/export?format=json"),
        k,
    )
    .await;
    assert_eq!(r.json()["comparison"]["campaign"]["name"], HYPERLINK);
    s.stop().await;
}

fn assert_hardened(r: &Resp, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp} lacks {part}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{what}: {csp}"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_has_security_headers_and_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db").display().to_string();
    let config = ServerConfig {
        max_body_bytes: 64 << 10,
        ..Default::default()
    };
    let (s, key) = server(config, &db).await;
    for path in [
        "/",
        "/app",
        "/docs",
        "/static/app.js",
        "/static/docs.js",
        "/health",
        "/info",
        "/metrics",
        "/openapi.json",
        "/v1/campaigns",
        "/nope",
    ] {
        let r = get(s.addr, path, None).await;
        assert_hardened(&r, path);
        // The pages run under `script-src 'self'; style-src 'self'`: nothing inline.
        if ["/", "/app", "/docs"].contains(&path) {
            let html = r.text();
            assert!(
                !html.contains("<script>") && !html.contains(" style="),
                "{path} has inline script or style"
            );
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{path} loads from elsewhere"
            );
        }
    }
    let r = get(s.addr, "/v1/campaigns", Some(&key)).await;
    assert_eq!(r.status, 200);
    assert_hardened(&r, "authenticated GET");

    // 405: the router's, as JSON naming the allowed methods.
    for (method, path) in [
        ("POST", "/health"),
        ("DELETE", "/v1/campaigns"),
        ("PUT", "/api/predict"),
    ] {
        let r = request(
            s.addr,
            method,
            path,
            &[("Authorization", &format!("Bearer {key}"))],
            b"",
        )
        .await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.json()["code"], "method_not_allowed", "{}", r.text());
        assert!(r.error().contains(path), "{}", r.error());
        assert!(r.header("allow").is_some());
        assert_hardened(&r, "405");
    }
    // 413: the body limit's, as JSON.
    let big = vec![b'['; 100 << 10];
    let r = request(
        s.addr,
        "POST",
        "/v1/models/emotion:predict",
        &[("Content-Type", "application/json")],
        &big,
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "too_large", "{}", r.text());
    assert!(r.error().contains("size limit"));
    // An extractor's plain-text 400 (bad query), as JSON.
    let png = fer_images("happy", 1).remove(0).1;
    let r = post_multipart(
        s.addr,
        "/v1/analyze?assume_crop=maybe",
        None,
        &[("file", "a.png", &png)],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "bad_request", "{}", r.text());
    assert!(r.error().contains("assume_crop"), "{}", r.error());
    s.stop().await;
}

#[test]
fn sqlite_files_are_private_and_keys_never_create_a_database() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("emolens.db");
    let url = missing.display().to_string();
    for e in [
        emolens_server::runner::create_key_blocking(&url, "x")
            .map(|_| ())
            .unwrap_err(),
        emolens_server::runner::list_keys_blocking(&url)
            .map(|_| ())
            .unwrap_err(),
        emolens_server::runner::revoke_key_blocking(&url, 1)
            .map(|_| ())
            .unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(
            e.contains(&url) && e.contains("--database-url") && e.contains("emolens serve"),
            "{e}"
        );
    }
    assert!(!missing.exists(), "keys created a database");
    // What serve does: the file is created owner-only, then keys work on it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = emolens_server::db::Db::connect(&url).await.unwrap();
        db.close().await;
    });
    let mode = std::fs::metadata(&missing).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode {mode:o}");
    let k = emolens_server::runner::create_key_blocking(&url, "team").unwrap();
    let keys = emolens_server::runner::list_keys_blocking(&url).unwrap();
    assert_eq!(keys.len(), 1);
    assert!(k.key.starts_with("emk_"));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "{} is readable by others ({mode:o})",
            p.display()
        );
    }
    assert_eq!(emolens_server::DEFAULT_HOST, "127.0.0.1");
}

/// An 8-bit palette image, LZW-compressed, written by the `tiff` crate's encoder.
fn palette_tiff(gray: &image::GrayImage) -> Vec<u8> {
    use tiff::encoder::{colortype::ColorType, Compression, TiffEncoder};
    use tiff::tags::{PhotometricInterpretation, SampleFormat, Tag};
    struct Palette8;
    impl ColorType for Palette8 {
        type Inner = u8;
        const TIFF_VALUE: PhotometricInterpretation = PhotometricInterpretation::RGBPalette;
        const BITS_PER_SAMPLE: &'static [u16] = &[8];
        const SAMPLE_FORMAT: &'static [SampleFormat] = &[SampleFormat::Uint];
        fn horizontal_predict(row: &[u8], result: &mut Vec<u8>) {
            result.extend_from_slice(row);
        }
    }
    // Index i shows grey level 255 - i: the indices are not the grey values.
    let mut map = Vec::with_capacity(768);
    for _ in 0..3 {
        map.extend((0..256u32).map(|i| ((255 - i) * 257) as u16));
    }
    let indices: Vec<u8> = gray.pixels().map(|p| 255 - p.0[0]).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    let mut enc = TiffEncoder::new(&mut out)
        .unwrap()
        .with_compression(Compression::Lzw);
    let mut img = enc
        .new_image::<Palette8>(gray.width(), gray.height())
        .unwrap();
    img.encoder().write_tag(Tag::ColorMap, &map[..]).unwrap();
    img.write_data(&indices).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn palette_tiffs_decode_and_truncated_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("img.db").display().to_string();
    let (s, key) = server(counting_config(), &db).await;
    let (_, jpg) = fer_images("happy", 1).remove(0);
    let gray = image::load_from_memory(&jpg).unwrap().to_luma8();
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(gray.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();

    // The palette TIFF answers exactly as the same pixels in a PNG.
    let tif = palette_tiff(&gray);
    let a = post_multipart(s.addr, "/api/predict", None, &[("file", "face.tif", &tif)]).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let b = post_multipart(s.addr, "/api/predict", None, &[("file", "face.png", &png)]).await;
    assert_eq!(b.status, 200);
    for (c, p) in b.json()["class_probabilities"].as_object().unwrap() {
        let q = a.json()["class_probabilities"][c].as_f64().unwrap();
        assert!((q - p.as_f64().unwrap()).abs() < 1e-4, "{c}: {q} vs {p}");
    }

    // Cut-off files: 422 naming the file, in plain words.
    for (name, bytes) in [
        ("cut.jpg", &jpg[..jpg.len() * 2 / 3]),
        ("cut.png", &png[..png.len() / 2]),
        ("cut.tif", &tif[..tif.len() / 2]),
    ] {
        let r = post_multipart(s.addr, "/api/predict", None, &[("file", name, bytes)]).await;
        assert_eq!(r.status, 422, "{name}: {}", r.text());
        let e = r.error();
        assert!(e.contains(name), "{e}");
        for internal in [
            "Format error",
            "ImageError",
            "Tiff",
            "decoder for",
            "UnexpectedEof",
        ] {
            assert!(!e.contains(internal), "{name}: decoder internals in {e}");
        }
    }
    // In a batch and an ad upload, the cut file fails alone and is not counted.
    let c = post_json(s.addr, "/v1/campaigns", Some(&key), &json!({ "name": "c" })).await;
    let a = post_json(
        s.addr,
        &format!("/v1/campaigns/{}/ads", c.json()["id"]),
        Some(&key),
        &json!({ "name": "a" }),
    )
    .await;
    let ad = a.json()["id"].as_i64().unwrap();
    let cut = &jpg[..jpg.len() / 2];
    let r = post_multipart(
        s.addr,
        &format!("/v1/ads/{ad}/photos"),
        Some(&key),
        &[("files", "whole.jpg", &jpg), ("files", "half.jpg", cut)],
    )
    .await;
    assert_eq!(r.status, 200);
    let items = r.json()["items"].clone();
    assert_eq!(items[0]["status"], "ok");
    assert_eq!(items[1]["status"], "error");
    assert_eq!(items[1]["error"]["status"], 422);
    assert!(items[1]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("half.jpg"));
    let ad_now = get(s.addr, &format!("/v1/ads/{ad}"), Some(&key))
        .await
        .json();
    assert_eq!(ad_now["ad"]["photos"], 1);
    assert_eq!(ad_now["ad"]["failed_photos"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tf_serving_states_and_enforces_the_input_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tf.db").display().to_string();
    let (s, _key) = server(ServerConfig::default(), &db).await;
    let meta = get(s.addr, "/v1/models/emotion/metadata", None)
        .await
        .json();
    let range = meta["emolens"]["input_range"].as_array().unwrap().clone();
    let spec = s.state.meta().input.clone();
    assert_eq!(range.len(), spec.channels());
    let (lo, hi) = (
        range[0]["min"].as_f64().unwrap(),
        range[0]["max"].as_f64().unwrap(),
    );
    assert!(hi > lo);
    let (_, jpg) = fer_images("happy", 1).remove(0);
    let gray = image::load_from_memory(&jpg).unwrap().to_luma8();
    let (h, w) = (spec.height, spec.width);
    let gray = image::imageops::resize(&gray, w, h, image::imageops::FilterType::Triangle);
    let instance = |f: &dyn Fn(u8) -> f64| -> Value {
        json!((0..h)
            .map(|y| (0..w)
                .map(|x| {
                    let v = f(gray.get_pixel(x, y).0[0]);
                    vec![v; spec.channels()]
                })
                .collect::<Vec<_>>())
            .collect::<Vec<_>>())
    };
    let scale = |p: u8| lo + (hi - lo) * p as f64 / 255.0;
    let r = post_json(
        s.addr,
        "/v1/models/emotion:predict",
        None,
        &json!({ "instances": [instance(&scale)] }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Raw pixels (0-255) where the model takes the normalised range: refused, range stated.
    let raw = |p: u8| p as f64;
    let r = post_json(
        s.addr,
        "/v1/models/emotion:predict",
        None,
        &json!({ "instances": [instance(&scale), instance(&raw)] }),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.error();
    assert!(
        e.contains("instance 1")
            && e.contains("input range")
            && e.contains(&format!("[{lo}, {hi}]")),
        "{e}"
    );
    s.stop().await;
}

async fn duplicates_counted_once(db_url: &str) {
    let (s, key) = server(counting_config(), db_url).await;
    let k = Some(key.as_str());
    let c = post_json(s.addr, "/v1/campaigns", k, &json!({ "name": "dups" })).await;
    let cid = c.json()["id"].as_i64().unwrap();
    let mut ads = Vec::new();
    for n in ["a", "b"] {
        ads.push(
            post_json(
                s.addr,
                &format!("/v1/campaigns/{cid}/ads"),
                k,
                &json!({ "name": n }),
            )
            .await
            .json()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let imgs = fer_images("happy", 3);
    let (x, y, z) = (&imgs[0].1, &imgs[1].1, &imgs[2].1);
    let up = |ad: i64, parts: Vec<(&'static str, String, Vec<u8>)>| {
        let addr = s.addr;
        let key = key.clone();
        async move {
            let p: Vec<(&str, &str, &[u8])> = parts
                .iter()
                .map(|(f, n, b)| (*f, n.as_str(), b.as_slice()))
                .collect();
            let r = post_multipart(addr, &format!("/v1/ads/{ad}/photos"), Some(&key), &p).await;
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()
        }
    };
    let first = up(
        ads[0],
        vec![
            ("files", "x.jpg".into(), x.clone()),
            ("files", "y.jpg".into(), y.clone()),
        ],
    )
    .await;
    let x_id = first["items"][0]["photo_id"].as_i64().unwrap();
    // A client retrying after a lost answer sends x again (under another name); z twice in one go.
    let again = up(
        ads[0],
        vec![
            ("files", "x-retry.jpg".into(), x.clone()),
            ("files", "z.jpg".into(), z.clone()),
            ("files", "z-copy.jpg".into(), z.clone()),
        ],
    )
    .await;
    let items = again["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], "duplicate", "{again}");
    assert_eq!(items[0]["duplicate_of"], x_id);
    assert!(items[0]["faces"].is_null());
    assert_eq!(items[1]["status"], "ok");
    assert_eq!(items[2]["status"], "duplicate");
    assert_eq!(items[2]["duplicate_of"], items[1]["photo_id"]);
    assert_eq!(
        again["summary"],
        json!({ "items": 3, "ok": 1, "failed": 0, "duplicates": 2, "faces": 1 })
    );
    // The same file in another ad is that ad's own photo.
    let other = up(ads[1], vec![("files", "x.jpg".into(), x.clone())]).await;
    assert_eq!(other["items"][0]["status"], "ok");

    let ad = get(s.addr, &format!("/v1/ads/{}", ads[0]), k).await.json();
    assert_eq!(
        (
            ad["ad"]["photos"].clone(),
            ad["ad"]["failed_photos"].clone(),
            ad["ad"]["duplicate_photos"].clone(),
            ad["ad"]["faces"].clone()
        ),
        (json!(3), json!(0), json!(2), json!(3))
    );
    let res = get(s.addr, &format!("/v1/ads/{}/results", ads[0]), k)
        .await
        .json();
    assert_eq!(res["results"]["faces"], 3, "{res}");
    let photos = get(s.addr, &format!("/v1/ads/{}/photos", ads[0]), k)
        .await
        .json();
    let dups: Vec<&Value> = photos["photos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "duplicate")
        .collect();
    assert_eq!(dups.len(), 2);
    assert_eq!(dups[0]["duplicate_of"], x_id);
    let csv = get(s.addr, &format!("/v1/ads/{}/export?format=csv", ads[0]), k)
        .await
        .text();
    assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_uploads_are_reported_and_counted_once_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    duplicates_counted_once(&dir.path().join("dup.db").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_uploads_are_reported_and_counted_once_postgres() {
    let pg = Postgres::start();
    duplicates_counted_once(&pg.url).await;
}

/// A database made by the first release (only the first migration) is migrated on open and its
/// rows read as before.
async fn old_database_migrates(url: &str, backend: &str) {
    let old = tempfile::tempdir().unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    std::fs::copy(src.join("0001_init.sql"), old.path().join("0001_init.sql")).unwrap();
    sqlx::any::install_default_drivers();
    let (norm, _) = emolens_server::db::normalise_url(url).unwrap();
    let pool = sqlx::AnyPool::connect(&norm).await.unwrap();
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    for q in [
        "INSERT INTO campaigns (name, description, keep_images, created_at) VALUES ('old', '', 0, 1)",
        "INSERT INTO ads (campaign_id, name, created_at) VALUES (1, 'old ad', 1)",
        "INSERT INTO photos (ad_id, file_name, sha256, status, width, height, created_at) VALUES (1, 'old.jpg', 'abc', 'ok', 48, 48, 1)",
    ] {
        sqlx::query(q).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let db = emolens_server::db::Db::connect(url).await.unwrap();
    let photos = db.ad_photos(1).await.unwrap();
    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0].duplicate_of, None);
    let ad = db.ad(1, 1).await.unwrap();
    assert_eq!((ad.photos, ad.duplicate_photos), (1, 0));
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_databases_migrate_sqlite_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    old_database_migrates(&dir.path().join("old.db").display().to_string(), "sqlite").await;
    let pg = Postgres::start();
    old_database_migrates(&pg.url, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_demo_page_asks_for_a_key_and_pages_obey_the_csp_in_a_browser() {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let chromium = std::env::var("EMOLENS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        browser_dir.join("node_modules/playwright-core").exists()
            && std::path::Path::new(&chromium).exists(),
        "chromium or playwright-core missing: run scripts/install-test-deps.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("face.jpg");
    std::fs::write(&img, fer_images("happy", 1).remove(0).1).unwrap();
    let db = dir.path().join("closed.db").display().to_string();
    let config = ServerConfig {
        open_demo: false,
        ..counting_config()
    };
    let (s, key) = server(config, &db).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/server/closed_demo.test.js");
    let url = format!("http://{}", s.addr);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg("120")
            .arg("node")
            .arg(script)
            .env("NODE_PATH", browser_dir.join("node_modules"))
            .env("EMOLENS_URL", url)
            .env("EMOLENS_KEY", key)
            .env("EMOLENS_IMAGE", img)
            .env("EMOLENS_CHROMIUM", chromium)
            .output()
            .expect("node runs (install nodejs)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("\"ok\":true"),
        "browser check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop().await;
}

/// One image as two different files with the same pixels (PNG at two compression settings):
/// two identical faces that the duplicate check rightly does not merge.
fn same_face_twice(jpeg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let gray = image::load_from_memory(jpeg).unwrap().to_luma8();
    let enc = |c, f| {
        let mut out = Vec::new();
        gray.write_with_encoder(PngEncoder::new_with_quality(&mut out, c, f))
            .unwrap();
        out
    };
    let (a, b) = (
        enc(CompressionType::Fast, FilterType::NoFilter),
        enc(CompressionType::Best, FilterType::Paeth),
    );
    assert_ne!(a, b, "two different files");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intervals_and_significance_only_where_the_sample_allows() {
    let min = emolens_server::stats::MIN_FACES_FOR_INTERVAL;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("honest.db").display().to_string();
    let (s, key) = server(counting_config(), &db).await;
    let k = Some(key.as_str());
    let cid = post_json(s.addr, "/v1/campaigns", k, &json!({ "name": "honest" }))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let mut ads = Vec::new();
    for n in ["sad pair", "happy pair", "varied", "varied too"] {
        let a = post_json(
            s.addr,
            &format!("/v1/campaigns/{cid}/ads"),
            k,
            &json!({ "name": n }),
        )
        .await;
        assert_eq!(a.status, 201);
        ads.push(a.json()["id"].as_i64().unwrap());
    }
    let upload = |ad: i64, files: Vec<Vec<u8>>| {
        let (addr, key) = (s.addr, key.clone());
        async move {
            let names: Vec<String> = (0..files.len()).map(|i| format!("f{i}.png")).collect();
            let parts: Vec<(&str, &str, &[u8])> = files
                .iter()
                .zip(&names)
                .map(|(b, n)| ("files", n.as_str(), b.as_slice()))
                .collect();
            let r = post_multipart(addr, &format!("/v1/ads/{ad}/photos"), Some(&key), &parts).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let n = files.len();
            assert_eq!(r.json()["summary"]["ok"], n, "{}", r.text());
            assert_eq!(r.json()["summary"]["faces"], n, "{}", r.text());
        }
    };
    // Two identical faces per ad (the finding), a sad pair as the baseline and a happy pair.
    for (ad, class) in [(ads[0], "sad"), (ads[1], "happy")] {
        let (a, b) = same_face_twice(&fer_images(class, 1)[0].1);
        upload(ad, vec![a, b]).await;
    }
    // Enough varied faces: real photos of several emotions.
    let varied = |skip: usize| -> Vec<Vec<u8>> {
        ["happy", "sad", "angry", "surprise"]
            .iter()
            .flat_map(|c| fer_images(c, skip + 3).into_iter().skip(skip))
            .map(|(_, b)| b)
            .collect()
    };
    upload(ads[2], varied(0)).await;
    upload(ads[3], varied(3)).await;
    assert!(12 >= min, "the varied ads reach the minimum");

    // The pair's two faces really are identical.
    let faces = get(s.addr, &format!("/v1/ads/{}/export?format=json", ads[1]), k)
        .await
        .json()["faces"]
        .clone();
    assert_eq!(
        faces[0]["probabilities"], faces[1]["probabilities"],
        "{faces}"
    );

    let too_few = format!("too few faces (2 < {min})");
    let res = get(s.addr, &format!("/v1/ads/{}/results", ads[1]), k)
        .await
        .json();
    let v = &res["results"]["valence"];
    assert!(v["value"].is_f64(), "{res}");
    assert!(v["ci_low"].is_null() && v["ci_high"].is_null(), "{res}");
    assert_eq!(v["interval_note"], too_few.as_str(), "{res}");
    for (c, e) in res["results"]["top_share"].as_object().unwrap() {
        assert!(e["ci_low"].is_null(), "{c}: {e}");
        assert_eq!(e["interval_note"], too_few.as_str());
    }
    let res = get(s.addr, &format!("/v1/ads/{}/results", ads[2]), k)
        .await
        .json();
    let v = &res["results"]["valence"];
    let width = v["ci_high"].as_f64().unwrap() - v["ci_low"].as_f64().unwrap();
    assert!(width > 0.0, "{res}");
    assert!(v["interval_note"].is_null(), "{res}");

    // Pairs compared: no interval, no star, "too few faces".
    let cmp = get(s.addr, &format!("/v1/campaigns/{cid}/compare"), k)
        .await
        .json();
    assert_eq!(cmp["baseline_ad_id"], ads[0]);
    for i in 1..=3 {
        let d = &cmp["ads"][i]["difference_vs_baseline"];
        assert_eq!(d["valence_differs"], false, "{d}");
        assert_eq!(d["valence_significance"], "too_few_faces", "{d}");
        assert!(d["valence"]["ci_low"].is_null(), "{d}");
        assert_eq!(d["valence"]["interval_note"], too_few.as_str(), "{d}");
    }
    // Two ads with enough faces: a real interval and a verdict.
    let cmp = get(
        s.addr,
        &format!("/v1/campaigns/{cid}/compare?baseline={}", ads[2]),
        k,
    )
    .await
    .json();
    let d = &cmp["ads"][3]["difference_vs_baseline"];
    let dv = &d["valence"];
    assert!(
        dv["ci_high"].as_f64().unwrap() > dv["ci_low"].as_f64().unwrap(),
        "{d}"
    );
    let verdict = d["valence_significance"].as_str().unwrap();
    assert!(["significant", "not_significant"].contains(&verdict), "{d}");
    assert_eq!(d["valence_differs"], verdict == "significant");

    // Exports say the same.
    let r = get(s.addr, &format!("/v1/campaigns/{cid}/export?format=csv"), k).await;
    let rows = check_csv(
        &r.text(),
        &[
            "campaign_name",
            "ad_name",
            "valence_interval_note",
            "valence_diff_significance",
        ],
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["valence_diff_significance"], "", "baseline row");
    for row in &rows[..2] {
        assert_eq!(row["valence_interval_note"], too_few, "{row:?}");
        assert_eq!(row["valence_ci_low"], "", "{row:?}");
    }
    assert_eq!(rows[1]["valence_diff_significance"], "too_few_faces");
    assert_eq!(rows[1]["valence_diff_ci_low"], "");
    assert!(rows[1]["valence_diff_vs_baseline"].parse::<f64>().is_ok());
    assert_eq!(rows[2]["valence_interval_note"], "");
    assert!(rows[2]["valence_ci_low"].parse::<f64>().is_ok());
    let j = get(
        s.addr,
        &format!("/v1/campaigns/{cid}/export?format=json"),
        k,
    )
    .await
    .json();
    let d = &j["comparison"]["ads"][1]["difference_vs_baseline"];
    assert_eq!(d["valence_significance"], "too_few_faces", "{d}");
    assert_eq!(d["valence_differs"], false);
    let j = get(s.addr, &format!("/v1/ads/{}/export?format=json", ads[1]), k)
        .await
        .json();
    assert_eq!(j["results"]["valence"]["interval_note"], too_few.as_str());

    // The web app shows the reason instead of an interval or a star.
    let js = get(s.addr, "/static/app.js", None).await.text();
    assert!(
        js.contains("too few faces") && js.contains("interval_note"),
        "app.js"
    );
    s.stop().await;
}
