//! API tests against the real server on a loopback port, with the real model loader, real FER2013
//! images and a real SQLite database.

use crate::common::*;
use emolens_server::ServerConfig;
use serde_json::{json, Value};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    dir.path().join("emolens.db").display().to_string()
}

async fn start_default() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(ServerConfig::default(), &sqlite_url(&dir), true).await;
    (s, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_answers_in_the_original_shape_with_the_model_labels() {
    let (s, _dir) = start_default().await;
    let classes = s.state.meta().classes.clone();
    let (name, img) = fer_images("happy", 1).remove(0);
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", &name, &img)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let idx = v["predicted_emotion"].as_u64().unwrap() as usize;
    assert_eq!(v["predicted_emotion_label"], classes[idx]);
    let probs = v["class_probabilities"]
        .as_object()
        .expect("class_probabilities is a JSON object");
    assert_eq!(probs.len(), classes.len());
    let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-3, "probabilities sum to {sum}");
    let top = classes
        .iter()
        .max_by(|a, b| {
            probs[*a]
                .as_f64()
                .unwrap()
                .total_cmp(&probs[*b].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(&v["predicted_emotion_label"], top);
    for (i, c) in classes.iter().enumerate() {
        assert_eq!(
            v["label_encodings"][i.to_string()],
            *c,
            "labels come from the model file"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_rejects_bad_input_with_named_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_image_bytes: 4000,
        max_image_side: 4000,
        ..Default::default()
    };
    let s = TestServer::start(config, &sqlite_url(&dir), false).await;
    let (_, img) = fer_images("sad", 1).remove(0);

    // Wrong content type.
    let r = request(
        s.addr,
        "POST",
        "/api/predict",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(r.error().contains("multipart/form-data"), "{}", r.error());
    // No content type, empty body.
    let r = request(s.addr, "POST", "/api/predict", &[], b"").await;
    assert_eq!(r.status, 415);
    // Multipart without a file.
    let r = post_multipart(s.addr, "/api/predict", None, &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("`file`"), "{}", r.error());
    // Empty file.
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", "empty.jpg", b"")]).await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("empty.jpg"), "{}", r.error());
    // Not an image.
    let r = post_multipart(
        s.addr,
        "/api/predict",
        None,
        &[("file", "notes.jpg", b"these are my notes, not a photo")],
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["code"], "not_an_image");
    assert!(r.error().contains("notes.jpg"));
    // Truncated image: the JPEG header survives, the data does not.
    let r = post_multipart(
        s.addr,
        "/api/predict",
        None,
        &[("file", "cut.jpg", &img[..img.len().min(160)])],
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.error().contains("cut.jpg"), "{}", r.error());
    // File over the byte limit.
    let big = vec![0xFFu8; 5000];
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", "big.jpg", &big)]).await;
    assert_eq!(r.status, 413);
    assert!(r.error().contains("big.jpg"), "{}", r.error());
    // Two files where one is expected.
    let r = post_multipart(
        s.addr,
        "/api/predict",
        None,
        &[("file", "a.jpg", &img), ("file", "b.jpg", &img)],
    )
    .await;
    assert_eq!(r.status, 400);
    // Malformed multipart.
    let r = request(
        s.addr,
        "POST",
        "/api/predict",
        &[("Content-Type", "multipart/form-data; boundary=zzz")],
        b"garbage without boundary",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Unknown route: JSON 404.
    let r = get(s.addr, "/nope", None).await;
    assert_eq!(r.status, 404);
    assert!(r.error().contains("/nope"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_pixels_are_refused_from_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_image_side: 32,
        ..Default::default()
    };
    let s = TestServer::start(config, &sqlite_url(&dir), false).await;
    let (name, img) = fer_images("fear", 1).remove(0);
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", &name, &img)]).await;
    assert_eq!(r.status, 413);
    assert!(r.error().contains("48x48"), "{}", r.error());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_reports_each_item_and_never_fails_the_batch() {
    let (s, _dir) = start_default().await;
    let imgs = fer_images("surprise", 2);
    let parts: Vec<(&str, &str, &[u8])> = vec![
        ("files", imgs[0].0.as_str(), &imgs[0].1),
        ("files", "readme.txt", b"not an image at all"),
        ("files", imgs[1].0.as_str(), &imgs[1].1),
    ];
    let r = post_multipart(s.addr, "/v1/analyze?assume_crop=true", None, &parts).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["summary"],
        json!({"items": 3, "ok": 2, "failed": 1, "faces": 2})
    );
    let items = v["items"].as_array().unwrap();
    assert_eq!(items[1]["status"], "error");
    assert_eq!(items[1]["error"]["code"], "not_an_image");
    assert!(items[1]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("readme.txt"));
    let face = &items[0]["faces"][0];
    assert_eq!(
        face["box"],
        json!({"x": 0.0, "y": 0.0, "width": 48.0, "height": 48.0})
    );
    assert!(face["quality"].as_f64().unwrap() > 0.0);
    assert!(face["probabilities"].as_object().unwrap().len() == s.state.meta().classes.len());

    // The same through JSON with base64; one item has broken base64.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&imgs[0].1);
    let body = json!({"images": [{"name": "a.jpg", "b64": b64}, {"name": "broken", "b64": "@@@"}], "assume_crop": true});
    let r = post_json(s.addr, "/v1/analyze", None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["items"][0]["status"], "ok");
    assert_eq!(j["items"][1]["status"], "error");
    assert_eq!(
        j["items"][0]["faces"][0]["probabilities"], items[0]["faces"][0]["probabilities"],
        "same image, same answer"
    );

    // Face detection on a 48x48 crop: whatever it finds, the item is ok.
    let r = post_multipart(
        s.addr,
        "/v1/analyze",
        None,
        &[("file", &imgs[0].0, &imgs[0].1)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["items"][0]["status"], "ok");

    // Request-level errors.
    let r = request(
        s.addr,
        "POST",
        "/v1/analyze",
        &[("Content-Type", "application/json")],
        b"{\"images\": [",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("malformed JSON"), "{}", r.error());
    let r = request(
        s.addr,
        "POST",
        "/v1/analyze",
        &[("Content-Type", "text/plain")],
        b"hi",
    )
    .await;
    assert_eq!(r.status, 415);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_files_is_413_for_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_files: 2,
        ..Default::default()
    };
    let s = TestServer::start(config, &sqlite_url(&dir), false).await;
    let imgs = fer_images("neutral", 3);
    let parts: Vec<(&str, &str, &[u8])> = imgs
        .iter()
        .map(|(n, b)| ("files", n.as_str(), b.as_slice()))
        .collect();
    let r = post_multipart(s.addr, "/v1/analyze", None, &parts).await;
    assert_eq!(r.status, 413);
    assert!(r.error().contains("too many files"), "{}", r.error());
    s.stop().await;
}

/// The FER image as the 48x48 array of model inputs a TF-Serving client would send.
fn as_instance(img: &[u8], s: &TestServer) -> Value {
    let pre = emolens_core::Preprocessor::new(s.state.meta().input.clone());
    let t = pre.prepare_bytes(img, "x").unwrap();
    let (h, w) = (
        s.state.meta().input.height as usize,
        s.state.meta().input.width as usize,
    );
    json!((0..h)
        .map(|y| (0..w).map(|x| t[y * w + x]).collect::<Vec<_>>())
        .collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tf_serving_shape_works_and_agrees_with_predict() {
    let (s, _dir) = start_default().await;
    let r = get(s.addr, "/v1/models/emotion", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["model_version_status"][0]["state"], "AVAILABLE");
    let r = get(s.addr, "/v1/models/emotion/metadata", None).await;
    assert_eq!(r.status, 200);
    let sig = &r.json()["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(
        sig["inputs"]["input"]["tensor_shape"]["dim"][1]["size"],
        "48"
    );
    assert_eq!(
        sig["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"],
        s.state.meta().classes.len().to_string()
    );

    if s.state.meta().input.colour_mode == emolens_core::ColourMode::Grayscale {
        let imgs = fer_images("angry", 2);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&imgs[1].1);
        let body = json!({"instances": [as_instance(&imgs[0].1, &s), {"b64": b64}]});
        let r = post_json(s.addr, "/v1/models/emotion:predict", None, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let preds = r.json()["predictions"].as_array().unwrap().clone();
        assert_eq!(preds.len(), 2);
        for (i, (name, bytes)) in imgs.iter().enumerate() {
            let p = post_multipart(s.addr, "/api/predict", None, &[("file", name, bytes)])
                .await
                .json();
            for (c, cls) in s.state.meta().classes.iter().enumerate() {
                let a = preds[i][c].as_f64().unwrap();
                let b = p["class_probabilities"][cls].as_f64().unwrap();
                assert!((a - b).abs() < 1e-4, "instance {i} class {cls}: {a} vs {b}");
            }
        }
        // Columnar form.
        let r = post_json(
            s.addr,
            "/v1/models/emotion:predict",
            None,
            &json!({"inputs": [as_instance(&imgs[0].1, &s)]}),
        )
        .await;
        assert_eq!(r.status, 200);
        let out = r.json()["outputs"][0].clone();
        for c in 0..preds[0].as_array().unwrap().len() {
            assert!((out[c].as_f64().unwrap() - preds[0][c].as_f64().unwrap()).abs() < 1e-5);
        }
    }

    // Errors, as TF Serving shapes them: {"error": ...}.
    let r = get(s.addr, "/v1/models/other", None).await;
    assert_eq!(r.status, 404);
    assert!(r.error().contains("other"));
    let r = post_json(
        s.addr,
        "/v1/models/other:predict",
        None,
        &json!({"instances": []}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = request(
        s.addr,
        "POST",
        "/v1/models/emotion:predict",
        &[("Content-Type", "application/json")],
        b"{not json",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("JSON"));
    let r = post_json(
        s.addr,
        "/v1/models/emotion:predict",
        None,
        &json!({"signature_name": "serving_default"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("instances"));
    let r = post_json(
        s.addr,
        "/v1/models/emotion:predict",
        None,
        &json!({"instances": [[[0.5, 0.5], [0.5, 0.5]]]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("shape [2, 2]"), "{}", r.error());
    let r = post_json(
        s.addr,
        "/v1/models/emotion:predict",
        None,
        &json!({"instances": [{"b64": "aGVsbG8="}]}),
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(r.error().contains("instance 0"), "{}", r.error());
    let r = post_json(
        s.addr,
        "/v1/models/emotion:classify",
        None,
        &json!({"instances": [1]}),
    )
    .await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_info_metrics_docs_and_web_pages() {
    let (s, _dir) = start_default().await;
    let r = get(s.addr, "/health", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["database"], "ok");
    assert_eq!(get(s.addr, "/health/live", None).await.status, 200);
    let info = get(s.addr, "/info", None).await.json();
    assert_eq!(info["model"]["classes"], json!(s.state.meta().classes));
    assert_eq!(info["model"]["runtime"], json!(s.state.runtime()));
    let meta = s.state.meta();
    assert_eq!(info["model"]["flip_tta"], json!(meta.flip_tta));
    assert_eq!(info["model"]["flip_tta_below"], json!(meta.flip_tta_below));
    assert_eq!(
        info["model"]["int8_calibration_images"],
        json!(meta.int8.as_ref().map(|c| c.images))
    );
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(info["privacy"].as_str().unwrap().contains("not kept"));

    let (name, img) = fer_images("happy", 1).remove(0);
    post_multipart(s.addr, "/api/predict", None, &[("file", &name, &img)]).await;
    post_multipart(s.addr, "/api/predict", None, &[("file", "x.txt", b"nope")]).await;
    let m = get(s.addr, "/metrics", None).await;
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(
        text.contains(
            "emolens_http_requests_total{method=\"POST\",route=\"/api/predict\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "emolens_http_requests_total{method=\"POST\",route=\"/api/predict\",status=\"415\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("emolens_images_total{outcome=\"ok\"} 1"));
    assert!(text.contains("emolens_http_request_duration_seconds_bucket"));

    let doc = get(s.addr, "/openapi.json", None).await.json();
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("EU AI Act"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/predict",
        "/v1/analyze",
        "/v1/models/{model}",
        "/v1/models/{model}/metadata",
        "/v1/campaigns",
        "/v1/campaigns/{id}",
        "/v1/campaigns/{id}/ads",
        "/v1/campaigns/{id}/compare",
        "/v1/campaigns/{id}/export",
        "/v1/ads/{id}",
        "/v1/ads/{id}/photos",
        "/v1/ads/{id}/results",
        "/v1/ads/{id}/export",
        "/v1/photos/{id}/image",
        "/v1/photos/{id}",
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/audit",
        "/v1/ads/{id}/creative",
        "/v1/ads/{id}/videos",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/video",
        "/v1/ads/{id}/timeline",
        "/v1/ads/{id}/timeline/export",
        "/v1/ads/{id}/timeline/compare",
        "/v1/ads/{id}/timeline/compare/export",
        "/health",
        "/info",
        "/metrics",
        "/ondevice/model.onnx",
        "/ondevice/model.json",
    ] {
        assert!(paths.contains_key(p), "openapi.json lacks {p}");
    }
    for page in [
        "/",
        "/app",
        "/docs",
        "/ondevice",
        "/static/ondevice.js",
        "/static/app.js",
        "/static/demo.js",
        "/static/charts.js",
        "/static/style.css",
    ] {
        let r = get(s.addr, page, None).await;
        assert_eq!(r.status, 200, "{page}");
        assert!(!r.body.is_empty());
    }
    assert!(get(s.addr, "/app", None).await.text().contains("not kept"));
    assert!(get(s.addr, "/app", None).await.text().contains("consent"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_server_answers_429_and_probes_still_answer() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        max_anonymous: 1,
        ..Default::default()
    };
    let s = TestServer::start(config, &sqlite_url(&dir), false).await;
    let (name, img) = fer_images("happy", 1).remove(0);
    // Hold the only slot for requests without a key: send the headers and half the body of a request.
    let body = multipart(&[("file", &name, &img)]);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let raw = raw_request(
        s.addr,
        "POST",
        "/api/predict",
        &[("Content-Type", &ct)],
        &body,
    );
    let cut = raw.len() - body.len() / 2;
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(&raw[..cut]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", &name, &img)]).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(
        get(s.addr, "/health", None).await.status,
        200,
        "probes bypass the limit"
    );
    // Finish the slow request: it succeeds, and the slot is free again.
    slow.write_all(&raw[cut..]).await.unwrap();
    let mut out = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut slow, &mut out)
        .await
        .unwrap();
    assert_eq!(parse_response(&out).status, 200);
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", &name, &img)]).await;
    assert_eq!(r.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (s, _dir) = start_default().await;
    let (name, img) = fer_images("happy", 1).remove(0);
    let body = multipart(&[("file", &name, &img)]);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let raw = raw_request(
        s.addr,
        "POST",
        "/api/predict",
        &[("Content-Type", &ct)],
        &body,
    );
    let cut = raw.len() - body.len() / 2;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(&raw[..cut]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let addr = s.addr;
    let stopping = tokio::spawn(s.stop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "server must wait for the request in flight"
    );
    conn.write_all(&raw[cut..]).await.unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).await.unwrap();
    assert_eq!(parse_response(&out).status, 200);
    tokio::time::timeout(std::time::Duration::from_secs(10), stopping)
        .await
        .expect("server stops")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_demo_needs_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        open_demo: false,
        ..Default::default()
    };
    let s = TestServer::start(config, &sqlite_url(&dir), false).await;
    let (name, img) = fer_images("happy", 1).remove(0);
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", &name, &img)]).await;
    assert_eq!(r.status, 401);
    let key = emolens_server::auth::create_key(&s.state.db, "t")
        .await
        .unwrap()
        .key;
    let r = post_multipart(s.addr, "/api/predict", Some(&key), &[("file", &name, &img)]).await;
    assert_eq!(r.status, 200);
    s.stop().await;
}
