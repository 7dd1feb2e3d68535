//! The on-device page (`/ondevice`) in a real headless browser with a fake camera: starts the
//! server on a loopback port with the bundled model exported to ONNX, writes a camera feed
//! (`.y4m`) of a FER2013 face, and runs `tests/browser/ondevice.test.js` (playwright-core
//! driving Debian's chromium), which checks consent before the camera, that the page sends no
//! image (no request but GETs of its own files), and that its results match the server's.

use crate::common::*;
use emolens_server::ondevice::OnDevice;
use emolens_server::ServerConfig;
use image::{imageops::FilterType, Rgb, RgbImage};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A 640x480 frame: a FER2013 test face enlarged to 200 px on a warm background.
pub(crate) fn camera_frame() -> RgbImage {
    let (_, bytes) = fer_images("happy", 1).remove(0);
    let face = image::load_from_memory(&bytes).unwrap().to_luma8();
    let face = image::imageops::resize(&face, 200, 200, FilterType::CatmullRom);
    let mut frame = RgbImage::from_pixel(640, 480, Rgb([170, 160, 145]));
    for (x, y, p) in face.enumerate_pixels() {
        frame.put_pixel(220 + x, 140 + y, Rgb([p[0], p[0], p[0]]));
    }
    frame
}

/// Writes `frames` copies of `img` as a YUV4MPEG2 file (4:2:0, full-range BT.601, "C420jpeg"),
/// the format chromium's fake camera reads.
pub(crate) fn write_y4m(path: &Path, img: &RgbImage, frames: usize) {
    let (w, h) = img.dimensions();
    let yuv = |p: &Rgb<u8>| {
        let [r, g, b] = p.0.map(f32::from);
        (
            0.299 * r + 0.587 * g + 0.114 * b,
            128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b,
            128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b,
        )
    };
    let mut y_plane = Vec::with_capacity((w * h) as usize);
    for p in img.pixels() {
        y_plane.push(yuv(p).0.round().clamp(0.0, 255.0) as u8);
    }
    let (mut u_plane, mut v_plane) = (Vec::new(), Vec::new());
    for cy in 0..h / 2 {
        for cx in 0..w / 2 {
            let (mut u, mut v) = (0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (_, pu, pv) = yuv(img.get_pixel(2 * cx + dx, 2 * cy + dy));
                u += pu / 4.0;
                v += pv / 4.0;
            }
            u_plane.push(u.round().clamp(0.0, 255.0) as u8);
            v_plane.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg").unwrap();
    for _ in 0..frames {
        f.write_all(b"FRAME\n").unwrap();
        f.write_all(&y_plane).unwrap();
        f.write_all(&u_plane).unwrap();
        f.write_all(&v_plane).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_device_page_sends_no_image_and_agrees_with_the_server() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let browser_dir = root.join("tests/browser");
    let vendor_dir = root.join("web/vendor/node_modules");
    let chromium = std::env::var("EMOLENS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    for (what, path) in [
        ("chromium", PathBuf::from(&chromium)),
        (
            "playwright-core",
            browser_dir.join("node_modules/playwright-core"),
        ),
        ("onnxruntime-web", vendor_dir.join("onnxruntime-web")),
        (
            "@vladmandic/face-api",
            vendor_dir.join("@vladmandic/face-api"),
        ),
    ] {
        assert!(
            path.exists(),
            "{what} is missing at {}: run scripts/install-test-deps.sh",
            path.display()
        );
    }
    let bundled = emolens_model::BUNDLED_MODEL.expect(
        "the on-device test exports the bundled model (models/default.emolens) to ONNX; this build has none",
    );
    let onnx = emolens_model::onnx::export(bundled, "the bundled model").expect("exports");
    let c = classifier();
    let meta = c.meta();
    let ondevice = OnDevice::new(
        onnx.bytes,
        meta,
        emolens_model::onnx::preprocessing(meta),
        vendor_dir,
    );
    let config = ServerConfig {
        ondevice: Some(Arc::new(ondevice)),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ondevice.db").display().to_string();
    let s = TestServer::start(config, &db, true).await;
    let camera = dir.path().join("camera.y4m");
    write_y4m(&camera, &camera_frame(), 10);

    run_browser_test(
        "ondevice.test.js",
        240,
        vec![
            ("EMOLENS_URL", format!("http://{}", s.addr)),
            ("EMOLENS_CAMERA", camera.display().to_string()),
            ("EMOLENS_CHROMIUM", chromium),
        ],
    )
    .await;
    // Nothing the page did reached the database.
    assert!(s.state.db.list_campaigns(1).await.unwrap().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn on_device_routes_say_how_to_enable_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("off.db").display().to_string();
    let s = TestServer::start(ServerConfig::default(), &db, false).await;
    let page = get(s.addr, "/ondevice", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("No image leaves this device"));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("'wasm-unsafe-eval'")));
    // Only the on-device page may compile WebAssembly.
    let home = get(s.addr, "/", None).await;
    assert!(!home
        .header("content-security-policy")
        .unwrap()
        .contains("wasm"));
    for path in ["/ondevice/model.onnx", "/ondevice/model.json"] {
        let r = get(s.addr, path, None).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(r.error().contains("not enabled"), "{}", r.error());
    }
    s.stop().await;

    // Enabled, but the vendor folder is empty: the answer says what to run; unknown names and
    // paths outside the list are refused.
    let empty = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        ondevice: Some(Arc::new(OnDevice {
            model_onnx: b"onnx".to_vec(),
            model_json: serde_json::json!({"classes": []}),
            vendor_dir: empty.path().to_path_buf(),
        })),
        ..Default::default()
    };
    let s = TestServer::start(config, &db, false).await;
    let r = get(s.addr, "/ondevice/model.onnx", None).await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"onnx".as_slice()));
    let r = get(s.addr, "/ondevice/vendor/face-api.js", None).await;
    assert_eq!(r.status, 404);
    assert!(r.error().contains("install-web-deps.sh"), "{}", r.error());
    for bad in [
        "/ondevice/vendor/package.json",
        "/ondevice/vendor/..%2F..%2FCargo.toml",
    ] {
        let r = get(s.addr, bad, None).await;
        assert_eq!(r.status, 404, "{bad}");
        assert!(r.error().contains("not one of"), "{bad}: {}", r.error());
    }
    s.stop().await;
}
