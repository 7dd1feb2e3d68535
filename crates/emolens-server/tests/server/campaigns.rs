//! Campaigns, ads, uploads, results, comparison and export against real SQLite and PostgreSQL.

use crate::common::*;
use emolens_server::ServerConfig;
use serde_json::json;

/// The whole campaign flow on one database; returns nothing, panics on the first wrong answer.
async fn campaign_flow(db_url: &str) {
    let s = TestServer::start(ServerConfig::default(), db_url, false).await;
    let key = emolens_server::auth::create_key(&s.state.db, "test")
        .await
        .unwrap()
        .key;
    let k = Some(key.as_str());

    // Access: no key, malformed key, unknown key.
    let r = get(s.addr, "/v1/campaigns", None).await;
    assert_eq!(r.status, 401);
    assert!(r.error().contains("missing API key"));
    assert_eq!(
        get(s.addr, "/v1/campaigns", Some("Basic abc")).await.status,
        401
    );
    let r = get(s.addr, "/v1/campaigns", Some("emk_0000")).await;
    assert_eq!(r.status, 401);
    assert!(r.error().contains("invalid"));

    // Bad bodies.
    let r = request(
        s.addr,
        "POST",
        "/v1/campaigns",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "application/json"),
        ],
        b"{\"name\": ",
    )
    .await;
    assert_eq!(r.status, 400);
    let r = request(
        s.addr,
        "POST",
        "/v1/campaigns",
        &[
            ("Authorization", &format!("Bearer {key}")),
            ("Content-Type", "text/plain"),
        ],
        b"name",
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(
        post_json(s.addr, "/v1/campaigns", k, &json!({"name": "  "}))
            .await
            .status,
        400
    );

    let r = post_json(
        s.addr,
        "/v1/campaigns",
        k,
        &json!({"name": "Spring launch", "description": "two cuts"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let cid = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["keep_images"], false);
    let a = post_json(
        s.addr,
        &format!("/v1/campaigns/{cid}/ads"),
        k,
        &json!({"name": "Cut A"}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    let b = post_json(
        s.addr,
        &format!("/v1/campaigns/{cid}/ads"),
        k,
        &json!({"name": "Cut B"}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();

    // Unknown ids.
    let r = get(s.addr, "/v1/campaigns/9999", k).await;
    assert_eq!(r.status, 404);
    assert!(r.error().contains("9999"));
    assert_eq!(
        post_json(s.addr, "/v1/campaigns/9999/ads", k, &json!({"name": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(get(s.addr, "/v1/ads/9999/results", k).await.status, 404);
    assert_eq!(get(s.addr, "/v1/campaigns/abc", k).await.status, 400);

    // Upload: audience photos of each ad (one bad file in A is recorded, the rest go on).
    let happy = fer_images("happy", 6);
    let sad = fer_images("sad", 6);
    let mut parts: Vec<(&str, &str, &[u8])> = happy
        .iter()
        .map(|(n, b)| ("files", n.as_str(), b.as_slice()))
        .collect();
    parts.push(("files", "broken.jpg", b"\xFF\xD8\xFF\xE0 not really"));
    let r = post_multipart(
        s.addr,
        &format!("/v1/ads/{a}/photos?assume_crop=true"),
        k,
        &parts,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let up = r.json();
    assert_eq!(up["summary"]["ok"], 6);
    assert_eq!(up["summary"]["failed"], 1);
    assert_eq!(up["images_kept"], false);
    assert!(
        up["items"][6]["photo_id"].as_i64().is_some(),
        "failed uploads are recorded"
    );
    let parts: Vec<(&str, &str, &[u8])> = sad
        .iter()
        .map(|(n, b)| ("files", n.as_str(), b.as_slice()))
        .collect();
    assert_eq!(
        post_multipart(
            s.addr,
            &format!("/v1/ads/{b}/photos?assume_crop=true"),
            k,
            &parts
        )
        .await
        .status,
        200
    );

    // Too many files: refused whole, nothing written.
    let config_files = s.state.config.max_files;
    let many: Vec<(&str, &str, &[u8])> = (0..=config_files)
        .map(|_| ("files", happy[0].0.as_str(), happy[0].1.as_slice()))
        .collect();
    assert_eq!(
        post_multipart(s.addr, &format!("/v1/ads/{a}/photos"), k, &many)
            .await
            .status,
        413
    );
    let photos = get(s.addr, &format!("/v1/ads/{a}/photos"), k).await.json();
    assert_eq!(
        photos["photos"].as_array().unwrap().len(),
        7,
        "413 wrote nothing"
    );
    assert_eq!(photos["photos"][6]["status"], "error");
    // Images are not kept for this campaign.
    let pid = photos["photos"][0]["id"].as_i64().unwrap();
    assert_eq!(
        get(s.addr, &format!("/v1/photos/{pid}/image"), k)
            .await
            .status,
        404
    );

    // Results.
    let res = get(s.addr, &format!("/v1/ads/{a}/results"), k).await.json();
    assert_eq!(res["ad"]["photos"], 6);
    assert_eq!(res["ad"]["failed_photos"], 1);
    let faces = res["results"]["faces"].as_u64().unwrap()
        + res["results"]["uncertain_faces"].as_u64().unwrap();
    assert_eq!(faces, 6);
    if res["results"]["faces"].as_u64().unwrap() > 0 {
        // Six photos are under the minimum for an interval: the value alone, and why.
        let v = &res["results"]["valence"];
        assert!(v["value"].is_f64() && v["ci_low"].is_null(), "{res}");
        assert!(v["interval_note"]
            .as_str()
            .unwrap()
            .starts_with("too few faces"));
        let total: f64 = res["results"]["mean_probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|x| x.as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-3);
    }

    // Comparison and exports.
    let cmp = get(s.addr, &format!("/v1/campaigns/{cid}/compare"), k)
        .await
        .json();
    assert_eq!(cmp["baseline_ad_id"], a);
    assert_eq!(cmp["ads"].as_array().unwrap().len(), 2);
    assert!(cmp["ads"][0]["difference_vs_baseline"].is_null());
    assert_eq!(
        get(
            s.addr,
            &format!("/v1/campaigns/{cid}/compare?baseline=12345"),
            k
        )
        .await
        .status,
        400
    );
    let csv = get(s.addr, &format!("/v1/ads/{a}/export?format=csv"), k).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = std::str::from_utf8(&csv.body).unwrap().lines().collect();
    assert_eq!(lines.len(), 1 + 6, "header + one row per face");
    assert!(lines[0].starts_with("ad_id,ad_name,photo_id,file_name,face_id"));
    let cols = lines[0].split(',').count();
    assert!(lines[1..].iter().all(|l| l.split(',').count() == cols));
    let j = get(s.addr, &format!("/v1/ads/{a}/export?format=json"), k)
        .await
        .json();
    assert_eq!(j["faces"].as_array().unwrap().len(), 6);
    let c = get(s.addr, &format!("/v1/campaigns/{cid}/export?format=csv"), k).await;
    assert_eq!(std::str::from_utf8(&c.body).unwrap().lines().count(), 3);
    let cj = get(
        s.addr,
        &format!("/v1/campaigns/{cid}/export?format=json"),
        k,
    )
    .await
    .json();
    assert_eq!(
        cj["faces_by_ad"][b.to_string()].as_array().unwrap().len(),
        6
    );
    assert_eq!(
        get(s.addr, &format!("/v1/ads/{a}/export?format=xls"), k)
            .await
            .status,
        400
    );

    // A campaign that keeps images serves them back.
    let keep = post_json(
        s.addr,
        "/v1/campaigns",
        k,
        &json!({"name": "Kept", "keep_images": true}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    let ad = post_json(
        s.addr,
        &format!("/v1/campaigns/{keep}/ads"),
        k,
        &json!({"name": "K"}),
    )
    .await
    .json()["id"]
        .as_i64()
        .unwrap();
    let up = post_multipart(
        s.addr,
        &format!("/v1/ads/{ad}/photos?assume_crop=true"),
        k,
        &[("files", &happy[0].0, &happy[0].1)],
    )
    .await
    .json();
    let pid = up["items"][0]["photo_id"].as_i64().unwrap();
    let img = get(s.addr, &format!("/v1/photos/{pid}/image"), k).await;
    assert_eq!(img.status, 200);
    assert_eq!(img.body, happy[0].1);
    assert_eq!(img.header("content-type"), Some("image/jpeg"));
    s.stop().await;

    // Results survive a restart.
    let s = TestServer::start(ServerConfig::default(), db_url, false).await;
    let res2 = get(s.addr, &format!("/v1/ads/{a}/results"), k).await.json();
    assert_eq!(res2["results"], res["results"]);
    assert_eq!(
        get(s.addr, "/v1/campaigns", k).await.json()["campaigns"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Revoked keys stop working.
    let id = s.state.db.list_keys(None).await.unwrap()[0].id;
    assert!(s.state.db.revoke_key(None, id).await.unwrap());
    assert_eq!(get(s.addr, "/v1/campaigns", k).await.status, 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_flow_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    campaign_flow(&dir.path().join("campaigns.db").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_flow_on_postgres() {
    let pg = Postgres::start();
    campaign_flow(&pg.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = emolens_server::db::Db::connect(&dir.path().join("t.db").display().to_string())
        .await
        .unwrap();
    let actor = emolens_server::workspace::Actor {
        workspace_id: 1,
        key_id: None,
        name: "test".into(),
    };
    let c = db
        .create_campaign(&actor, "c", "", false, Default::default())
        .await
        .unwrap();
    let ad = db.create_ad(&actor, c.id, "a", None).await.unwrap();
    let good = emolens_server::db::NewPhoto {
        file_name: "ok.jpg".into(),
        sha256: "x".into(),
        error: None,
        width: 48,
        height: 48,
        image: None,
        faces: vec![],
    };
    db.insert_photos(&actor, ad.id, std::slice::from_ref(&good))
        .await
        .unwrap();
    // The second photo's face has a NaN quality, which SQLite stores as NULL and the NOT NULL
    // constraint refuses: the batch fails after its first photo was inserted.
    let mut bad = good.clone();
    // Other content: a photo the ad already has would be stored as a duplicate, without faces.
    bad.sha256 = "y".into();
    bad.faces.push(emolens_server::db::NewFace {
        x: 0.0,
        y: 0.0,
        w: 48.0,
        h: 48.0,
        probabilities: Default::default(),
        top_class: "happy".into(),
        top_probability: 0.9,
        quality: f64::NAN,
        uncertain: false,
    });
    assert!(db.insert_photos(&actor, ad.id, &[good, bad]).await.is_err());
    assert_eq!(
        db.ad_photos(ad.id).await.unwrap().len(),
        1,
        "the failed batch left no rows"
    );
    let audit = db.audit_entries(1, 100).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["upload", "create", "create"],
        "nor an audit entry"
    );
}
