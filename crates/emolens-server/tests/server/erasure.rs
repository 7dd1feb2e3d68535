//! Erasure and retention over real sockets on SQLite and PostgreSQL: DELETE of a photo, an ad and
//! a campaign leaves no row of theirs in any table (and, on SQLite, no byte of a kept image or a
//! file name in the database file), results are recomputed, the audit log says who erased what
//! without naming files; `emolens erase` (the runner) and retention periods do the same.

use crate::common::*;
use emolens_server::auth::create_key_in;
use emolens_server::db::Db;
use emolens_server::workspace::Role;
use emolens_server::ServerConfig;
use serde_json::{json, Value};
use sqlx::Row;

fn config() -> ServerConfig {
    ServerConfig {
        uncertain_below: 0.0,
        min_quality: 0.0,
        ..Default::default()
    }
}

async fn delete(addr: std::net::SocketAddr, path: &str, key: &str) -> Resp {
    request(
        addr,
        "DELETE",
        path,
        &[("Authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await
}

/// Uploads crops with distinctive file names; returns the photo ids in order.
async fn upload(s: &TestServer, key: &str, ad: i64, files: &[(String, Vec<u8>)]) -> Vec<i64> {
    let parts: Vec<(&str, &str, &[u8])> = files
        .iter()
        .map(|(n, b)| ("files", n.as_str(), b.as_slice()))
        .collect();
    let r = post_multipart(
        s.addr,
        &format!("/v1/ads/{ad}/photos?assume_crop=true"),
        Some(key),
        &parts,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["photo_id"].as_i64().unwrap())
        .collect()
}

/// Renames FER crops so each file name is unique to this test (searched for afterwards).
fn named(class: &str, n: usize, tag: &str) -> Vec<(String, Vec<u8>)> {
    fer_images(class, n)
        .into_iter()
        .enumerate()
        .map(|(i, (_, b))| (format!("consent-{tag}-{i}.jpg"), b))
        .collect()
}

/// Every table of the schema; the test fails when a table is added without being checked here.
async fn tables(db_url: &str) -> Vec<String> {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&norm(db_url))
        .await
        .unwrap();
    let sql = if db_url.starts_with("postgres") {
        "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    } else {
        "SELECT name AS t FROM sqlite_master WHERE type = 'table' ORDER BY 1"
    };
    let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
    pool.close().await;
    let mut t: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("t").unwrap())
        .collect();
    t.sort();
    t
}

fn norm(url: &str) -> String {
    emolens_server::db::normalise_url(url).unwrap().0
}

/// Counts rows with a query on the database directly.
async fn n(db_url: &str, sql: &str) -> i64 {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&norm(db_url))
        .await
        .unwrap();
    let v = sqlx::query(sql)
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap();
    pool.close().await;
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn erasure_flow(db_url: &str, sqlite_file: Option<&std::path::Path>) {
    let s = TestServer::start_with_jobs(config(), db_url, false, test_jobs(1)).await;
    let admin = create_key_in(&s.state.db, "studio", "dpo", Role::Admin)
        .await
        .unwrap();
    let analyst = create_key_in(&s.state.db, "studio", "analyst", Role::Analyst)
        .await
        .unwrap();
    let (ka, kn) = (admin.key.as_str(), analyst.key.as_str());

    let c = post_json(
        s.addr,
        "/v1/campaigns",
        Some(kn),
        &json!({"name": "erase me", "keep_images": true}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    let keep = post_json(
        s.addr,
        "/v1/campaigns",
        Some(kn),
        &json!({"name": "keep me", "keep_images": true}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    let ad = |cid: i64, name: &'static str| {
        let addr = s.addr;
        let kn = kn.to_string();
        async move {
            post_json(
                addr,
                &format!("/v1/campaigns/{cid}/ads"),
                Some(&kn),
                &json!({"name": name}),
            )
            .await
            .json()["id"]
                .as_i64()
                .unwrap()
        }
    };
    let (a1, a2, kept_ad) = (
        ad(c, "one").await,
        ad(c, "two").await,
        ad(keep, "kept").await,
    );
    let happy = named("happy", 3, "a1");
    let mut with_dup = happy.clone();
    with_dup.push((happy[0].0.replace(".jpg", "-retry.jpg"), happy[0].1.clone()));
    let p1 = upload(&s, kn, a1, &with_dup).await;
    let p2 = upload(&s, kn, a2, &named("sad", 3, "a2")).await;
    let kept_photos = upload(&s, kn, kept_ad, &named("surprise", 2, "kept")).await;
    // A reaction video on each ad (the campaigns keep images, so the videos are kept too).
    let vdir = tempfile::tempdir().unwrap();
    let people = crate::videos::faces("happy", 3);
    let mut videos = Vec::new();
    let mut jobs = Vec::new();
    for (i, ad) in [a1, a2, kept_ad].into_iter().enumerate() {
        let bytes =
            crate::videos::one_viewer(&vdir.path().join(format!("v{i}.mp4")), &people[i], 2.0);
        let r = crate::videos::post_raw(
            s.addr,
            &format!("/v1/ads/{ad}/videos?name=consent-video-{i}.mp4"),
            kn,
            "video/mp4",
            &bytes,
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        jobs.push(r.json()["id"].as_i64().unwrap());
        videos.push(bytes);
    }
    let mut seconds_of = Vec::new();
    for j in &jobs {
        let done = crate::videos::wait_job(s.addr, kn, *j).await;
        assert_eq!(done["state"], "done", "{done}");
        assert_eq!(done["result"]["viewers"], 1, "{done}");
        assert_eq!(done["video_kept"], true);
        seconds_of.push(
            n(
                db_url,
                &format!("SELECT COUNT(*) FROM viewer_seconds WHERE job_id = {j}"),
            )
            .await,
        );
    }
    let r = get(s.addr, &format!("/v1/ads/{a1}/photos"), Some(kn))
        .await
        .json();
    assert_eq!(r["photos"][3]["status"], "duplicate");
    assert_eq!(
        get(s.addr, &format!("/v1/ads/{a1}/results"), Some(kn))
            .await
            .json()["results"]["faces"],
        3
    );

    // An analyst may not erase.
    let r = delete(s.addr, &format!("/v1/photos/{}", p1[0]), kn).await;
    assert_eq!(r.status, 403);
    assert!(r.error().contains("needs the admin role"), "{}", r.error());

    // A photo: with its duplicate, its face and its image; the ad's results drop by one face.
    let r = delete(s.addr, &format!("/v1/photos/{}", p1[0]), ka).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["erased"],
        json!({"campaigns": 0, "ads": 0, "photos": 2, "faces": 1, "images": 1, "jobs": 0, "viewers": 0, "viewer_seconds": 0, "videos": 0})
    );
    assert_eq!(
        delete(s.addr, &format!("/v1/photos/{}", p1[0]), ka)
            .await
            .status,
        404
    );
    assert_eq!(
        get(s.addr, &format!("/v1/photos/{}/image", p1[0]), Some(ka))
            .await
            .status,
        404
    );
    let res = get(s.addr, &format!("/v1/ads/{a1}/results"), Some(kn))
        .await
        .json();
    assert_eq!(
        (
            res["results"]["faces"].as_i64(),
            res["ad"]["photos"].as_i64(),
            res["ad"]["duplicate_photos"].as_i64()
        ),
        (Some(2), Some(2), Some(0))
    );
    let csv = get(s.addr, &format!("/v1/ads/{a1}/export?format=csv"), Some(kn))
        .await
        .text();
    assert_eq!(csv.lines().count(), 3, "header and two faces: {csv}");
    assert!(!csv.contains(&happy[0].0));
    // The same file uploaded again after erasure counts as new (nothing remembers it).
    let again = upload(&s, kn, a1, &happy[..1]).await;
    let r = delete(s.addr, &format!("/v1/photos/{}", again[0]), ka).await;
    assert_eq!(r.json()["erased"]["photos"], 1);

    // An ad: the comparison no longer has it.
    let r = delete(s.addr, &format!("/v1/ads/{a2}"), ka).await;
    assert_eq!(
        r.json()["erased"],
        json!({"campaigns": 0, "ads": 1, "photos": 3, "faces": 3, "images": 3, "jobs": 1, "viewers": 1, "viewer_seconds": seconds_of[1], "videos": 1})
    );
    assert_eq!(
        get(s.addr, &format!("/v1/jobs/{}", jobs[1]), Some(ka))
            .await
            .status,
        404
    );
    assert_eq!(
        get(s.addr, &format!("/v1/ads/{a2}"), Some(ka)).await.status,
        404
    );
    for p in &p2 {
        let r = get(s.addr, &format!("/v1/photos/{p}/image"), Some(ka)).await;
        assert_eq!(r.status, 404, "photo {p} of the erased ad");
    }
    let cmp = get(s.addr, &format!("/v1/campaigns/{c}/compare"), Some(ka))
        .await
        .json();
    let ads: Vec<i64> = cmp["ads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ad"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ads, vec![a1]);

    // The campaign: the rest.
    let r = delete(s.addr, &format!("/v1/campaigns/{c}"), ka).await;
    assert_eq!(
        r.json()["erased"],
        json!({"campaigns": 1, "ads": 1, "photos": 2, "faces": 2, "images": 2, "jobs": 1, "viewers": 1, "viewer_seconds": seconds_of[0], "videos": 1})
    );
    assert_eq!(
        get(s.addr, &format!("/v1/campaigns/{c}"), Some(ka))
            .await
            .status,
        404
    );
    let list = get(s.addr, "/v1/campaigns", Some(ka)).await.json();
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 1);

    // Every table: nothing of the erased campaign, the other campaign whole.
    let mut t = tables(db_url).await;
    t.retain(|x| x != "sqlite_sequence");
    assert_eq!(
        t,
        [
            "_sqlx_migrations",
            "ad_creatives",
            "ads",
            "api_keys",
            "audit_log",
            "campaigns",
            "faces",
            "job_video_chunks",
            "live_frames",
            "live_links",
            "photos",
            "video_jobs",
            "video_viewers",
            "viewer_seconds",
            "workspaces"
        ],
        "a new table must be checked by erasure"
    );
    assert_eq!(n(db_url, "SELECT COUNT(*) FROM campaigns").await, 1);
    assert_eq!(
        n(
            db_url,
            &format!("SELECT COUNT(*) FROM campaigns WHERE id = {keep}")
        )
        .await,
        1
    );
    assert_eq!(
        n(
            db_url,
            &format!("SELECT COUNT(*) FROM ads WHERE campaign_id <> {keep}")
        )
        .await,
        0
    );
    assert_eq!(
        n(
            db_url,
            &format!("SELECT COUNT(*) FROM photos WHERE ad_id <> {kept_ad}")
        )
        .await,
        0
    );
    assert_eq!(
        n(
            db_url,
            &format!("SELECT COUNT(*) FROM faces WHERE ad_id <> {kept_ad}")
        )
        .await,
        0
    );
    assert_eq!(
        n(
            db_url,
            &format!("SELECT COUNT(*) FROM photos WHERE ad_id = {kept_ad} AND image IS NOT NULL")
        )
        .await,
        2
    );
    assert_eq!(n(db_url, "SELECT COUNT(*) FROM faces").await, 2);
    // Live viewing links and sessions' frames: erased with their ads (tests/server/live.rs
    // makes them; none was made here).
    assert_eq!(n(db_url, "SELECT COUNT(*) FROM live_links").await, 0);
    assert_eq!(n(db_url, "SELECT COUNT(*) FROM live_frames").await, 0);
    // Of the reaction videos, only the kept campaign's job, its viewer, seconds and video.
    for (table, column) in [
        ("video_jobs", "ad_id"),
        ("video_viewers", "ad_id"),
        ("viewer_seconds", "ad_id"),
    ] {
        assert_eq!(
            n(
                db_url,
                &format!("SELECT COUNT(*) FROM {table} WHERE {column} <> {kept_ad}")
            )
            .await,
            0,
            "{table}"
        );
    }
    assert_eq!(n(db_url, "SELECT COUNT(*) FROM video_jobs").await, 1);
    assert_eq!(
        n(
            db_url,
            &format!(
                "SELECT COUNT(*) FROM viewer_seconds WHERE job_id = {}",
                jobs[2]
            )
        )
        .await,
        seconds_of[2]
    );
    assert_eq!(
        n(
            db_url,
            &format!(
                "SELECT COUNT(*) FROM job_video_chunks WHERE job_id <> {}",
                jobs[2]
            )
        )
        .await,
        0
    );
    assert_eq!(
        get(s.addr, &format!("/v1/jobs/{}/video", jobs[2]), Some(ka))
            .await
            .body,
        videos[2]
    );
    assert_eq!(n(db_url, "SELECT COUNT(*) FROM api_keys").await, 2);
    // The audit log names keys, actions and ids, never files.
    let audit = get(s.addr, "/v1/audit", Some(ka)).await;
    let entries = audit.json()["entries"].as_array().unwrap().clone();
    let erasures: Vec<(String, i64, Value)> = entries
        .iter()
        .filter(|e| e["action"] == "erase")
        .map(|e| {
            (
                e["target_type"].as_str().unwrap().to_string(),
                e["target_id"].as_i64().unwrap(),
                e["detail"].clone(),
            )
        })
        .collect();
    assert_eq!(erasures.len(), 4, "{entries:?}");
    assert_eq!((erasures[0].0.as_str(), erasures[0].1), ("campaign", c));
    assert_eq!(erasures[0].2["faces"], 2);
    assert_eq!((erasures[3].0.as_str(), erasures[3].1), ("photo", p1[0]));
    for e in entries.iter().filter(|e| e["action"] == "erase") {
        assert_eq!(
            (e["actor"].as_str(), e["key_id"].as_i64()),
            (Some("dpo"), Some(admin.id))
        );
    }
    let uploads = entries.iter().filter(|e| e["action"] == "upload").count();
    assert_eq!(uploads, 4 + 3, "four photo uploads, three videos");
    assert!(entries
        .iter()
        .any(|e| e["action"] == "export" && e["target_type"] == "ad" && e["target_id"] == a1));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "create" && e["target_type"] == "campaign" && e["target_id"] == c));
    let text = audit.text();
    assert!(
        !text.contains("consent-video"),
        "the audit log names no video"
    );
    for name in happy
        .iter()
        .map(|(n, _)| n)
        .chain(["consent-a2-0.jpg".to_string()].iter())
    {
        assert!(!text.contains(name.as_str()), "{name} in the audit log");
    }
    // On SQLite, no byte of the erased images or their file names stays in the file.
    if let Some(path) = sqlite_file {
        s.stop().await;
        let mut bytes = std::fs::read(path).unwrap();
        for ext in ["-wal", "-journal"] {
            let side = std::path::PathBuf::from(format!("{}{ext}", path.display()));
            if let Ok(b) = std::fs::read(&side) {
                bytes.extend(b);
            }
        }
        let kept_image = &named("surprise", 1, "x")[0].1;
        assert!(
            contains(
                &bytes,
                &kept_image[kept_image.len() / 2..kept_image.len() / 2 + 64]
            ),
            "the check must see kept images that stay"
        );
        assert!(
            contains(
                &bytes,
                &videos[2][videos[2].len() / 2..videos[2].len() / 2 + 64]
            ),
            "the check must see kept videos that stay"
        );
        for (i, v) in videos[..2].iter().enumerate() {
            let mid = v.len() / 2;
            assert!(
                !contains(&bytes, &v[mid..mid + 64]),
                "bytes of erased video {i} stay in the database file"
            );
            assert!(
                !contains(&bytes, format!("consent-video-{i}.mp4").as_bytes()),
                "the erased video's name stays in the database file"
            );
        }
        for (name, img) in happy.iter().chain(named("sad", 3, "a2").iter()) {
            let mid = img.len() / 2;
            assert!(
                !contains(&bytes, &img[mid..mid + 64]),
                "bytes of {name} stay in the database file"
            );
            assert!(
                !contains(&bytes, name.as_bytes()),
                "{name} stays in the database file"
            );
        }
        assert!(!kept_photos.is_empty());
    } else {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_nothing_behind_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("erase.db");
    erasure_flow(&path.display().to_string(), Some(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_nothing_behind_on_postgres() {
    let pg = Postgres::start();
    erasure_flow(&pg.url, None).await;
}

/// Runs a blocking CLI entry point (it starts its own runtime) on a plain thread.
fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

async fn retention_and_cli(db_url: &str) {
    let s = TestServer::start(config(), db_url, false).await;
    let admin = create_key_in(&s.state.db, "default", "ops", Role::Admin)
        .await
        .unwrap();
    let k = Some(admin.key.as_str());
    let bad = post_json(
        s.addr,
        "/v1/campaigns",
        k,
        &json!({"name": "x", "retention_days": 0}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().contains("retention_days"), "{}", bad.error());
    let bad = post_json(
        s.addr,
        "/v1/campaigns",
        k,
        &json!({"name": "x", "retention_results": true}),
    )
    .await;
    assert_eq!(bad.status, 400);
    let mut ids = Vec::new();
    for body in [
        json!({"name": "images 30 days", "keep_images": true, "retention_days": 30}),
        json!({"name": "all 30 days", "keep_images": true, "retention_days": 30, "retention_results": true}),
        json!({"name": "forever", "keep_images": true}),
    ] {
        let r = post_json(s.addr, "/v1/campaigns", k, &body).await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(
            r.json()["retention_days"],
            body.get("retention_days").cloned().unwrap_or(Value::Null)
        );
        let cid = r.json()["id"].as_i64().unwrap();
        let ad = post_json(
            s.addr,
            &format!("/v1/campaigns/{cid}/ads"),
            k,
            &json!({"name": "ad"}),
        )
        .await
        .json()["id"]
            .as_i64()
            .unwrap();
        let photos = upload(&s, &admin.key, ad, &named("happy", 2, &format!("r{cid}"))).await;
        ids.push((cid, ad, photos));
    }
    // Nothing is old yet.
    let e = s
        .state
        .db
        .purge_expired(emolens_server::db::now())
        .await
        .unwrap();
    assert_eq!((e.photos, e.images), (0, 0));
    // One photo of each campaign uploaded 31 days ago.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&norm(db_url))
        .await
        .unwrap();
    for (_, _, photos) in &ids {
        sqlx::query("UPDATE photos SET created_at = created_at - 31 * 86400 WHERE id = $1")
            .bind(photos[0])
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let url = db_url.to_string();
    let e = blocking(move || emolens_server::runner::purge_expired_blocking(&url)).unwrap();
    assert_eq!((e.photos, e.faces, e.images), (1, 1, 2), "{e:?}");
    let image = |id: i64| {
        let (addr, key) = (s.addr, admin.key.clone());
        async move { get(addr, &format!("/v1/photos/{id}/image"), Some(&key)).await }
    };
    // Images only: the old image is gone, its numbers stay.
    assert_eq!(image(ids[0].2[0]).await.status, 404);
    assert_eq!(image(ids[0].2[1]).await.status, 200);
    assert_eq!(
        get(s.addr, &format!("/v1/ads/{}/results", ids[0].1), k)
            .await
            .json()["results"]["faces"],
        2
    );
    // Results too: the old photo and its face are gone.
    assert_eq!(
        get(s.addr, &format!("/v1/ads/{}/results", ids[1].1), k)
            .await
            .json()["results"]["faces"],
        1
    );
    // No retention: untouched.
    assert_eq!(image(ids[2].2[0]).await.status, 200);
    let audit = get(s.addr, "/v1/audit", k).await.json();
    let purges: Vec<i64> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "purge")
        .map(|e| e["target_id"].as_i64().unwrap())
        .collect();
    assert_eq!(purges, vec![ids[1].0, ids[0].0]);

    // `emolens erase` on the same database: by photo, ad, campaign; unknown ids say so.
    let url = db_url.to_string();
    let (p, a, c) = (ids[2].2[0], ids[1].1, ids[0].0);
    let (ep, ea, ec, missing) = blocking(move || {
        use emolens_server::erasure::Target;
        use emolens_server::runner::erase_blocking;
        (
            erase_blocking(&url, Target::Photo(p)).unwrap(),
            erase_blocking(&url, Target::Ad(a)).unwrap(),
            erase_blocking(&url, Target::Campaign(c)).unwrap(),
            erase_blocking(&url, Target::Ad(987654))
                .unwrap_err()
                .to_string(),
        )
    });
    assert_eq!((ep.photos, ep.images), (1, 1));
    assert_eq!((ea.ads, ea.photos), (1, 1));
    assert_eq!((ec.campaigns, ec.ads, ec.photos), (1, 1, 2));
    assert!(missing.contains("ad 987654 does not exist"), "{missing}");
    assert_eq!(image(p).await.status, 404);
    let audit = get(s.addr, "/v1/audit?limit=3", k).await.json();
    let last: Vec<(&str, Option<i64>)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["key_id"].as_i64()))
        .collect();
    assert_eq!(last, vec![("cli", None); 3]);
    let db = Db::connect(db_url).await.unwrap();
    assert_eq!(db.list_campaigns(1).await.unwrap().len(), 2);
    db.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_the_erase_command_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    retention_and_cli(&dir.path().join("ret.db").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_and_the_erase_command_on_postgres() {
    let pg = Postgres::start();
    retention_and_cli(&pg.url).await;
}
