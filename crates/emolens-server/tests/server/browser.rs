//! The web app in a real headless browser: starts the server on a loopback port and runs
//! `tests/browser/app.test.js` (playwright-core driving Debian's chromium).

use crate::common::*;
use emolens_server::ServerConfig;
use std::path::PathBuf;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_app_predicts_uploads_and_compares_in_a_real_browser() {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let chromium = std::env::var("EMOLENS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/install-test-deps.sh (installs Debian's chromium)"
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in {}: run scripts/install-test-deps.sh (runs npm ci there)",
        browser_dir.display()
    );

    // Real FER2013 crops for the audiences of two ads: enough faces for the comparison to carry an
    // interval (fewer would show "too few faces" instead).
    let n = emolens_server::stats::MIN_FACES_FOR_INTERVAL;
    let images = tempfile::tempdir().unwrap();
    for class in ["happy", "sad"] {
        let d = images.path().join(class);
        std::fs::create_dir_all(&d).unwrap();
        for (name, bytes) in fer_images(class, n) {
            std::fs::write(d.join(name), bytes).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("browser.db").display().to_string();
    // The audience photos are face crops, so each is one face (no detection). Every face counts
    // (no uncertainty threshold), so the charts have data whatever model the build bundles.
    let config = ServerConfig {
        uncertain_below: 0.0,
        min_quality: 0.0,
        ..Default::default()
    };
    // A reaction video of one viewer for the timeline (analysed by the server's own worker).
    let video = images.path().join("reaction.mp4");
    crate::videos::one_viewer(&video, &crate::videos::faces("happy", 1)[0], 3.0);
    let s = TestServer::start_with_jobs(config, &db, false, test_jobs(1)).await;
    let key = emolens_server::auth::create_key(&s.state.db, "browser")
        .await
        .unwrap()
        .key;
    let url = format!("http://{}", s.addr);
    let out = tokio::task::spawn_blocking({
        let (browser_dir, images) = (browser_dir.clone(), images.path().to_path_buf());
        move || {
            Command::new("timeout")
                .arg("180")
                .arg("node")
                .arg("app.test.js")
                .current_dir(&browser_dir)
                .env("EMOLENS_URL", url)
                .env("EMOLENS_KEY", key)
                .env("EMOLENS_IMAGES", &images)
                .env("EMOLENS_VIDEO", images.join("reaction.mp4"))
                .env("EMOLENS_CHROMIUM", chromium)
                .output()
                .expect("node runs (install nodejs)")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    // What the browser did is in the database.
    // (The key is an admin of the `default` workspace, the migration's first: id 1.)
    let campaigns = s.state.db.list_campaigns(1).await.unwrap();
    assert_eq!(campaigns.len(), 1);
    let ads = s.state.db.list_ads(campaigns[0].id).await.unwrap();
    assert_eq!(
        ads.iter().map(|a| a.photos).collect::<Vec<_>>(),
        vec![n as i64, n as i64]
    );
    assert_eq!(
        ads.iter()
            .map(|a| (a.reaction_videos, a.duration_s))
            .collect::<Vec<_>>(),
        vec![(1, Some(3.0)), (0, None)],
        "the page set Cut A's length and its reaction video was analysed"
    );
    // The keys page made a viewer key and revoked it.
    let keys = s.state.db.list_keys(None).await.unwrap();
    let made: Vec<(&str, String, bool)> = keys
        .iter()
        .map(|k| (k.name.as_str(), k.role.to_string(), k.revoked))
        .collect();
    assert_eq!(
        made,
        vec![
            ("browser", "admin".to_string(), false),
            ("browser viewer", "viewer".to_string(), true)
        ]
    );
    s.stop().await;
}
