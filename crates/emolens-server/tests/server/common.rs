//! Shared test parts: a real model, a real server on a loopback port, a tiny HTTP client, real
//! FER2013 files, and a private PostgreSQL server.
#![allow(dead_code)] // each module of the binary uses a part

use emolens_core::{ColourMode, EmotionClassifier, InputSpec, ModelMeta};
use emolens_server::analysis::{FacesAnalyzer, PhotoAnalyzer};
use emolens_server::db::Db;
use emolens_server::{AppState, ServerConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A small architecture in the original design's format, for when the bundled model is absent.
const TINY_ARCH: &str = r#"{
 "Conv2D_1": {"filters": 8, "kernel_size": 3, "activation": "relu", "input_shape": [48, 48, 1]},
 "MaxPooling2D_1": {"pool_size": 4},
 "Flatten_1": {},
 "Dense_1": {"units": 7, "activation": "softmax"}
}"#;

/// The model under test: the bundled default model through the real loader; until a bundled
/// model exists, a real (untrained) network written to a real model file and loaded through the
/// same loader. Class names are taken from the file either way.
pub fn classifier() -> Arc<dyn EmotionClassifier> {
    static C: OnceLock<Arc<dyn EmotionClassifier>> = OnceLock::new();
    C.get_or_init(|| {
        if emolens_model::BUNDLED_MODEL.is_some() {
            return emolens_model::load_classifier(None).expect("bundled model loads");
        }
        let imp =
            emolens_model::parse_architecture(TINY_ARCH, "tiny").expect("tiny architecture parses");
        let device = emolens_model::inference_device();
        let net =
            emolens_model::Network::new(&imp.arch, 1, 48, 48, &device).expect("network builds");
        let meta = ModelMeta {
            flip_tta: false,
            flip_tta_below: None,
            int8: None,
            format_version: ModelMeta::FORMAT_VERSION,
            name: "tiny-untrained-test-model".into(),
            classes: [
                "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            input: InputSpec::fer(ColourMode::Grayscale),
            architecture: serde_json::from_str(&imp.arch.to_json()).expect("architecture json"),
            training: Value::Null,
            data_fingerprint: None,
            metrics: Default::default(),
        };
        let bytes = emolens_model::ModelFile::encode(&meta, net).expect("model encodes");
        let dir =
            std::env::temp_dir().join(format!("emolens-server-test-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tiny.emolens");
        std::fs::write(&path, bytes).unwrap();
        emolens_model::load_classifier(Some(&path)).expect("model file loads")
    })
    .clone()
}

/// `n` real FER2013 test images of a class, read from the shared data.
pub fn fer_images(class: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let dir = emolens_test_support::shared(&format!("data/fer2013/test/{class}"));
    let files = emolens_test_support::sorted_entries(&dir);
    files
        .into_iter()
        .take(n)
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// A server running on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: emolens_server::SharedState,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Job settings for tests: quick polls, short leases.
pub fn test_jobs(workers: usize) -> emolens_server::jobs::JobSettings {
    emolens_server::jobs::JobSettings {
        workers,
        lease: std::time::Duration::from_secs(10),
        poll: std::time::Duration::from_millis(100),
        ..Default::default()
    }
}

impl TestServer {
    pub async fn start(config: ServerConfig, db_url: &str, detect_faces: bool) -> TestServer {
        Self::start_with_jobs(config, db_url, detect_faces, test_jobs(0)).await
    }

    /// A server with `jobs.workers` reaction-video job workers of its own.
    pub async fn start_with_jobs(
        config: ServerConfig,
        db_url: &str,
        detect_faces: bool,
        jobs: emolens_server::jobs::JobSettings,
    ) -> TestServer {
        let db = Db::connect(db_url).await.expect("database opens");
        let c = classifier();
        let photos: Option<Arc<dyn PhotoAnalyzer>> = detect_faces.then(|| {
            Arc::new(
                FacesAnalyzer::for_classifier(
                    c.clone(),
                    config.decode_limits(),
                    config.uncertain_below,
                )
                .unwrap(),
            ) as Arc<dyn PhotoAnalyzer>
        });
        let uncertain_below = config.uncertain_below;
        let state = AppState::new(config, c.clone(), photos, db.clone());
        let workers = (jobs.workers > 0).then(|| {
            let analyzer = emolens_server::jobs::video_analyzer(c, uncertain_below).unwrap();
            emolens_server::jobs::Workers::start(db, analyzer, jobs, state.wake.clone())
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(emolens_server::serve_with_workers(
            listener,
            state.clone(),
            workers,
            async move {
                let _ = rx.await;
            },
        ));
        TestServer {
            addr,
            state,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Signals shutdown and waits for the server to finish its in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The JSON error message (and checks the body is a JSON error).
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {}", self.text()))
            .to_string()
    }
}

/// Raw request bytes for `method path` with headers and body.
pub fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Parses a full HTTP/1.1 response (content-length or chunked).
pub fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// Sends a request and reads the whole response.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&raw_request(addr, method, path, headers, body))
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    parse_response(&raw)
}

pub async fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Resp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request(addr, "GET", path, &h, b"").await
}

pub async fn post_json(addr: SocketAddr, path: &str, key: Option<&str>, body: &Value) -> Resp {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    request(addr, "POST", path, &h, body.to_string().as_bytes()).await
}

pub const BOUNDARY: &str = "emolens-test-boundary-7d1f";

/// A multipart/form-data body with the given (field, file name, bytes) parts.
pub fn multipart(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (field, name, bytes) in parts {
        b.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        b.extend_from_slice(bytes);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

pub async fn post_multipart(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
    parts: &[(&str, &str, &[u8])],
) -> Resp {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", ct.as_str())];
    if let Some(a) = &auth {
        h.push(("Authorization", a.as_str()));
    }
    request(addr, "POST", path, &h, &multipart(parts)).await
}

/// A private PostgreSQL server (shared with the CLI's tests).
pub use emolens_test_support::Postgres;

/// Runs `tests/browser/<script>` with node (at most `limit_s` seconds) and the given
/// environment, prints its output, asserts it succeeded and printed `"ok":true`; returns stdout.
pub async fn run_browser_test(
    script: &str,
    limit_s: u32,
    envs: Vec<(&'static str, String)>,
) -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let name = script.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg(limit_s.to_string())
            .arg("node")
            .arg(&name)
            .current_dir(&dir)
            .envs(envs)
            .output()
            .expect("node runs (install nodejs)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    stdout
}
