//! Workspaces and roles over real sockets, on SQLite and PostgreSQL: every workspace endpoint
//! tried by every role of another workspace (404, or 403 when the role is too low anyway) and
//! of the owning workspace (403 naming the role needed, or success); keys managed through the
//! API; a database made by the previous schema migrated into the `default` workspace.

use crate::common::*;
use emolens_server::auth::create_key_in;
use emolens_server::workspace::Role;
use emolens_server::ServerConfig;
use serde_json::{json, Value};

/// A request body of a case.
#[derive(Clone)]
enum Body {
    None,
    Json(Value),
    /// FER2013 crops uploaded as `files`.
    Photos(usize),
    /// A reaction video (raw body); each send gets a unique `free` box at its end, so no two
    /// sends are the same file.
    Video(Vec<u8>),
}

/// One endpoint with the lowest role allowed to call it.
#[derive(Clone)]
struct Case {
    method: &'static str,
    path: String,
    body: Body,
    min: Role,
    /// The same request on an id that exists nowhere (what a foreign id must look like);
    /// None for endpoints without an id.
    nowhere: Option<String>,
}

fn case(method: &'static str, path: String, body: Body, min: Role) -> Case {
    let nowhere = path
        .split('/')
        .nth(3)
        .filter(|seg| seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty())
        .map(|id| path.replacen(&format!("/{id}"), "/987654321", 1));
    Case {
        method,
        path,
        body,
        min,
        nowhere,
    }
}

async fn send(addr: std::net::SocketAddr, c: &Case, path: &str, key: &str) -> Resp {
    let auth = format!("Bearer {key}");
    match &c.body {
        Body::None => request(addr, c.method, path, &[("Authorization", &auth)], b"").await,
        Body::Json(v) => {
            request(
                addr,
                c.method,
                path,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                v.to_string().as_bytes(),
            )
            .await
        }
        Body::Video(bytes) => {
            static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let mut b = bytes.clone();
            b.extend_from_slice(&16u32.to_be_bytes());
            b.extend_from_slice(b"free");
            b.extend_from_slice(
                &SENT
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .to_be_bytes(),
            );
            request(
                addr,
                c.method,
                path,
                &[("Authorization", &auth), ("Content-Type", "video/mp4")],
                &b,
            )
            .await
        }
        Body::Photos(n) => {
            let imgs = fer_images("happy", *n);
            let parts: Vec<(&str, &str, &[u8])> = imgs
                .iter()
                .map(|(name, b)| ("files", name.as_str(), b.as_slice()))
                .collect();
            post_multipart(addr, path, Some(key), &parts).await
        }
    }
}

/// Keys of every role in a workspace.
async fn keys_of(db: &emolens_server::db::Db, workspace: &str) -> Vec<(Role, String, i64)> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let k = create_key_in(db, workspace, &format!("{workspace}-{role}"), role)
            .await
            .unwrap();
        assert_eq!((k.role, k.workspace.as_str()), (role, workspace));
        out.push((role, k.key, k.id));
    }
    out
}

async fn cross_workspace(db_url: &str) {
    let config = ServerConfig {
        uncertain_below: 0.0,
        min_quality: 0.0,
        ..Default::default()
    };
    let s = TestServer::start(config, db_url, false).await;
    let alpha = keys_of(&s.state.db, "alpha").await;
    let beta = keys_of(&s.state.db, "beta").await;
    let admin_a = alpha[2].1.clone();
    let ka = Some(admin_a.as_str());

    // Workspace alpha's data: a campaign keeping images, an ad, three photos.
    let r = post_json(
        s.addr,
        "/v1/campaigns",
        ka,
        &json!({"name": "alpha launch", "keep_images": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = r.json()["id"].as_i64().unwrap();
    let r = post_json(
        s.addr,
        &format!("/v1/campaigns/{c}/ads"),
        ka,
        &json!({"name": "cut"}),
    )
    .await;
    let d = r.json()["id"].as_i64().unwrap();
    let imgs = fer_images("sad", 3);
    let parts: Vec<(&str, &str, &[u8])> = imgs
        .iter()
        .map(|(n, b)| ("files", n.as_str(), b.as_slice()))
        .collect();
    let r = post_multipart(
        s.addr,
        &format!("/v1/ads/{d}/photos?assume_crop=true"),
        ka,
        &parts,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let photos: Vec<i64> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["photo_id"].as_i64().unwrap())
        .collect();
    // A reaction video of alpha's ad (no worker here: it stays queued).
    let vdir = tempfile::tempdir().unwrap();
    let face = &crate::videos::faces("happy", 1)[0];
    let clip = crate::videos::one_viewer(&vdir.path().join("v.mp4"), face, 1.0);
    let r = crate::videos::post_raw(
        s.addr,
        &format!("/v1/ads/{d}/videos"),
        &admin_a,
        "video/mp4",
        &clip,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    // Beta has a campaign of its own.
    let r = post_json(
        s.addr,
        "/v1/campaigns",
        Some(&beta[1].1),
        &json!({"name": "beta only"}),
    )
    .await;
    assert_eq!(r.status, 201);
    let beta_campaign = r.json()["id"].as_i64().unwrap();
    let alpha_viewer_key_id = alpha[0].2;

    let by_id = vec![
        case(
            "GET",
            format!("/v1/campaigns/{c}"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/campaigns/{c}/compare"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/campaigns/{c}/export?format=csv"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/campaigns/{c}/export?format=json"),
            Body::None,
            Role::Viewer,
        ),
        case("GET", format!("/v1/ads/{d}"), Body::None, Role::Viewer),
        case(
            "GET",
            format!("/v1/ads/{d}/photos"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/ads/{d}/results"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/ads/{d}/export?format=csv"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/ads/{d}/export?format=json"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/photos/{}/image", photos[0]),
            Body::None,
            Role::Viewer,
        ),
        case("GET", format!("/v1/jobs/{job}"), Body::None, Role::Viewer),
        case(
            "GET",
            format!("/v1/ads/{d}/videos"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/ads/{d}/timeline"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/ads/{d}/timeline/export?format=csv"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "GET",
            format!("/v1/ads/{d}/timeline/compare?with={d}"),
            Body::None,
            Role::Viewer,
        ),
        case(
            "PATCH",
            format!("/v1/ads/{d}"),
            Body::Json(json!({"duration_s": 30})),
            Role::Analyst,
        ),
        case(
            "POST",
            format!("/v1/ads/{d}/videos"),
            Body::Video(clip.clone()),
            Role::Analyst,
        ),
        case(
            "PUT",
            format!("/v1/ads/{d}/creative"),
            Body::Video(clip.clone()),
            Role::Analyst,
        ),
        case("DELETE", format!("/v1/jobs/{job}"), Body::None, Role::Admin),
        case(
            "POST",
            format!("/v1/campaigns/{c}/ads"),
            Body::Json(json!({"name": "x"})),
            Role::Analyst,
        ),
        case(
            "POST",
            format!("/v1/ads/{d}/photos?assume_crop=true"),
            Body::Photos(2),
            Role::Analyst,
        ),
        case(
            "DELETE",
            format!("/v1/photos/{}", photos[2]),
            Body::None,
            Role::Admin,
        ),
        case("DELETE", format!("/v1/ads/{d}"), Body::None, Role::Admin),
        case(
            "DELETE",
            format!("/v1/campaigns/{c}"),
            Body::None,
            Role::Admin,
        ),
        case(
            "DELETE",
            format!("/v1/keys/{alpha_viewer_key_id}"),
            Body::None,
            Role::Admin,
        ),
    ];

    // Every role of beta on every alpha id: 403 when the role is too low whatever the id, else
    // 404 exactly like an id that exists nowhere.
    for c in &by_id {
        for (role, key, _) in &beta {
            let r = send(s.addr, c, &c.path, key).await;
            let what = format!("beta {role} {} {}", c.method, c.path);
            if *role < c.min {
                assert_eq!(r.status, 403, "{what}: {}", r.text());
                assert!(
                    r.error().contains(&format!("needs the {} role", c.min)),
                    "{what}: {}",
                    r.error()
                );
                continue;
            }
            assert_eq!(r.status, 404, "{what}: {}", r.text());
            assert_eq!(r.json()["code"], "not_found", "{what}");
            let nowhere = c.nowhere.as_ref().expect("id endpoint");
            let n = send(s.addr, c, nowhere, key).await;
            assert_eq!(n.status, 404, "{what} (nowhere): {}", n.text());
            let id_of = |p: &str| format!(" {} ", p.split('/').nth(3).unwrap());
            assert_eq!(
                r.error().replace(&id_of(&c.path), " N "),
                n.error().replace(&id_of(nowhere), " N "),
                "{what}: a foreign id must read like one that does not exist"
            );
        }
    }
    // Workspace-wide endpoints show beta only its own.
    for (role, key, _) in &beta {
        let r = get(s.addr, "/v1/campaigns", Some(key)).await;
        assert_eq!(r.status, 200);
        let ids: Vec<i64> = r.json()["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![beta_campaign], "beta {role}");
        for path in ["/v1/keys", "/v1/audit"] {
            let r = get(s.addr, path, Some(key)).await;
            if *role < Role::Admin {
                assert_eq!(r.status, 403, "beta {role} {path}");
                assert!(r.error().contains("needs the admin role"), "{}", r.error());
                continue;
            }
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json()["workspace"], "beta");
            let text = r.text();
            assert!(!text.contains("alpha"), "beta sees alpha in {path}: {text}");
        }
        let r = get(s.addr, "/v1/keys", Some(key)).await;
        if *role == Role::Admin {
            assert_eq!(r.json()["keys"].as_array().unwrap().len(), 3);
            let audit = get(s.addr, "/v1/audit", Some(key)).await.json();
            let targets: Vec<(String, i64)> = audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["target_type"].as_str().unwrap().to_string(),
                        e["target_id"].as_i64().unwrap_or(-1),
                    )
                })
                .collect();
            assert_eq!(
                targets,
                vec![("campaign".to_string(), beta_campaign)],
                "beta's audit log"
            );
        }
    }
    // Nothing of alpha changed.
    let r = get(s.addr, &format!("/v1/campaigns/{c}"), ka).await;
    assert_eq!(r.status, 200);
    let ads = r.json()["ads"].as_array().unwrap().clone();
    assert_eq!(ads.len(), 1);
    assert_eq!(ads[0]["photos"], 3);
    assert_eq!(
        get(s.addr, &format!("/v1/photos/{}/image", photos[2]), ka)
            .await
            .status,
        200
    );

    // Workspace-wide writes by role.
    for (role, key, _) in &alpha {
        let r = post_json(
            s.addr,
            "/v1/campaigns",
            Some(key),
            &json!({"name": format!("by {role}")}),
        )
        .await;
        assert_eq!(
            r.status,
            if *role >= Role::Analyst { 201 } else { 403 },
            "{role}: {}",
            r.text()
        );
        let r = post_json(
            s.addr,
            "/v1/keys",
            Some(key),
            &json!({"name": "new", "role": "viewer"}),
        )
        .await;
        assert_eq!(
            r.status,
            if *role >= Role::Admin { 201 } else { 403 },
            "{role}: {}",
            r.text()
        );
    }
    // Every role of alpha on every alpha endpoint (the erasures last, the admin after the
    // roles that may not).
    for c in &by_id {
        for (role, key, _) in &alpha {
            let r = send(s.addr, c, &c.path, key).await;
            let what = format!("alpha {role} {} {}", c.method, c.path);
            if *role < c.min {
                assert_eq!(r.status, 403, "{what}: {}", r.text());
                assert_eq!(r.json()["code"], "forbidden");
                let msg = r.error();
                assert!(
                    msg.contains(&format!("needs the {} role", c.min))
                        && msg.contains(&format!("{role}")),
                    "{what}: {msg}"
                );
                continue;
            }
            assert!(
                (200..300).contains(&r.status),
                "{what}: {} {}",
                r.status,
                r.text()
            );
            if c.method == "DELETE" {
                // Erased once: the admin's second try finds nothing.
                break;
            }
        }
    }
    // The revoked viewer key fails at once.
    assert_eq!(
        get(s.addr, "/v1/campaigns", Some(&alpha[0].1)).await.status,
        401
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_crosses_workspaces_and_roles_hold_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    cross_workspace(&dir.path().join("ws.db").display().to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_crosses_workspaces_and_roles_hold_on_postgres() {
    let pg = Postgres::start();
    cross_workspace(&pg.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_their_workspace_keys_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db").display().to_string();
    let s = TestServer::start(ServerConfig::default(), &db, false).await;
    let admin = create_key_in(&s.state.db, "team", "boss", Role::Admin)
        .await
        .unwrap();
    let k = Some(admin.key.as_str());
    for (body, needle) in [
        (
            json!({"name": "x", "role": "owner"}),
            "unknown role 'owner'",
        ),
        (json!({"name": " ", "role": "viewer"}), "1 to 200"),
        (json!({"name": "x"}), "role"),
    ] {
        let r = post_json(s.addr, "/v1/keys", k, &body).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(r.error().contains(needle), "{}", r.error());
    }
    let r = post_json(
        s.addr,
        "/v1/keys",
        k,
        &json!({"name": "reader", "role": "viewer"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let new = r.json();
    assert_eq!(
        (new["role"].as_str(), new["workspace"].as_str()),
        (Some("viewer"), Some("team"))
    );
    let viewer = new["key"].as_str().unwrap().to_string();
    assert_eq!(
        get(s.addr, "/v1/campaigns", Some(&viewer)).await.status,
        200
    );
    let list = get(s.addr, "/v1/keys", k).await.json();
    assert_eq!(list["current_key_id"], admin.id);
    assert!(
        !list.to_string().contains(&viewer),
        "the list never holds a key"
    );
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);
    // The last admin key cannot revoke itself; the viewer's key is revoked at once.
    let r = request(
        s.addr,
        "DELETE",
        &format!("/v1/keys/{}", admin.id),
        &[("Authorization", &format!("Bearer {}", admin.key))],
        b"",
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error().contains("last admin key"), "{}", r.error());
    let id = new["id"].as_i64().unwrap();
    let r = request(
        s.addr,
        "DELETE",
        &format!("/v1/keys/{id}"),
        &[("Authorization", &format!("Bearer {}", admin.key))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get(s.addr, "/v1/campaigns", Some(&viewer)).await.status,
        401
    );
    let audit = get(s.addr, "/v1/audit", k).await.json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["revoke_key", "create_key"]);
    s.stop().await;
}

/// Old-schema rows: a campaign keeping images, an ad, a photo with its image and face, a key.
async fn old_database(url: &str, backend: &str) -> (String, Vec<u8>) {
    sqlx::any::install_default_drivers();
    let old = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for f in ["0001_init.sql", "0002_photo_duplicates.sql"] {
        std::fs::copy(src.join(f), old.path().join(f)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    assert_eq!(migrator.iter().count(), 2);
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    migrator.run(&pool).await.unwrap();
    let key = format!("emk_{}", "ab".repeat(32));
    let image = fer_images("happy", 1).remove(0).1;
    for sql in [
        "INSERT INTO campaigns (name, description, keep_images, created_at) VALUES ('legacy', 'before workspaces', 1, 1700000000)",
        "INSERT INTO ads (campaign_id, name, created_at) VALUES (1, 'old ad', 1700000000)",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    sqlx::query("INSERT INTO photos (ad_id, file_name, sha256, status, width, height, image, created_at) VALUES (1, 'old.jpg', 'abc', 'ok', 48, 48, $1, 1700000000)")
        .bind(image.clone())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO faces (photo_id, ad_id, x, y, w, h, top_class, top_probability, quality, uncertain, probabilities) VALUES (1, 1, 0, 0, 48, 48, 'happy', 0.9, 1, 0, '{\"happy\":0.9}')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES ('old', 'emk_abab', $1, 1700000000)")
        .bind(emolens_core::fingerprint::sha256_hex(key.as_bytes()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    (key, image)
}

async fn migrates_into_default(url: &str, backend: &str) {
    let (old_key, image) = old_database(url, backend).await;
    let s = TestServer::start(ServerConfig::default(), url, false).await;
    let k = Some(old_key.as_str());
    let r = get(s.addr, "/v1/campaigns", k).await;
    assert_eq!(r.status, 200, "the old key still works: {}", r.text());
    let list = r.json();
    assert_eq!(list["campaigns"][0]["name"], "legacy");
    let keys = get(s.addr, "/v1/keys", k).await;
    assert_eq!(keys.status, 200, "old keys are admins: {}", keys.text());
    let keys = keys.json();
    assert_eq!(keys["workspace"], "default");
    assert_eq!(keys["keys"][0]["role"], "admin");
    let r = get(s.addr, "/v1/ads/1/results", k).await;
    assert_eq!(r.json()["results"]["faces"], 1, "{}", r.text());
    assert_eq!(get(s.addr, "/v1/photos/1/image", k).await.body, image);
    // A key of a new workspace sees none of it.
    let other = create_key_in(&s.state.db, "new-team", "n", Role::Admin)
        .await
        .unwrap();
    let r = get(s.addr, "/v1/campaigns", Some(&other.key)).await;
    assert_eq!(r.json()["campaigns"].as_array().unwrap().len(), 0);
    assert_eq!(
        get(s.addr, "/v1/photos/1/image", Some(&other.key))
            .await
            .status,
        404
    );
    // New campaigns of the default workspace get fresh ids and the old key can erase.
    let r = post_json(s.addr, "/v1/campaigns", k, &json!({"name": "after"})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["id"], 2);
    let r = request(
        s.addr,
        "DELETE",
        "/v1/campaigns/1",
        &[("Authorization", &format!("Bearer {old_key}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["erased"],
        json!({"campaigns": 1, "ads": 1, "photos": 1, "faces": 1, "images": 1, "jobs": 0, "viewers": 0, "viewer_seconds": 0, "videos": 0})
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_schema_migrates_into_default_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::File::create(&path).unwrap();
    migrates_into_default(&format!("sqlite://{}", path.display()), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_schema_migrates_into_default_on_postgres() {
    let pg = Postgres::start();
    migrates_into_default(&pg.url, "postgres").await;
}
