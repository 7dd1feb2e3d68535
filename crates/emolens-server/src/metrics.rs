//! Prometheus metrics, kept with atomics and a small map (no exporter dependency).

use crate::SharedState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
    in_flight: AtomicI64,
    images_ok: AtomicU64,
    images_failed: AtomicU64,
    faces: AtomicU64,
}

impl Metrics {
    /// Counts an analysed image.
    pub fn image(&self, ok: bool) {
        if ok {
            &self.images_ok
        } else {
            &self.images_failed
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts classified faces.
    pub fn faces(&self, n: u64) {
        self.faces.fetch_add(n, Ordering::Relaxed);
    }

    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut map = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let s = map
            .entry((method.to_string(), route.to_string()))
            .or_default();
        *s.by_status.entry(status).or_default() += 1;
        s.count += 1;
        s.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, uptime_secs: f64, model: &str) -> String {
        let mut o = String::new();
        let map = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        o.push_str("# HELP emolens_http_requests_total HTTP requests by route and status.\n# TYPE emolens_http_requests_total counter\n");
        for ((m, r), s) in map.iter() {
            for (code, n) in &s.by_status {
                let _ = writeln!(o, "emolens_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{code}\"}} {n}");
            }
        }
        o.push_str("# HELP emolens_http_request_duration_seconds Request latency.\n# TYPE emolens_http_request_duration_seconds histogram\n");
        for ((m, r), s) in map.iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(o, "emolens_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{b}\"}} {}", s.buckets[i]);
            }
            let _ = writeln!(o, "emolens_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(
                o,
                "emolens_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {}",
                s.sum
            );
            let _ = writeln!(
                o,
                "emolens_http_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\"}} {}",
                s.count
            );
        }
        drop(map);
        let _ = write!(
            o,
            "# HELP emolens_requests_in_flight Requests being served.\n# TYPE emolens_requests_in_flight gauge\nemolens_requests_in_flight {}\n\
             # HELP emolens_images_total Images analysed, by outcome.\n# TYPE emolens_images_total counter\nemolens_images_total{{outcome=\"ok\"}} {}\nemolens_images_total{{outcome=\"error\"}} {}\n\
             # HELP emolens_faces_total Faces classified.\n# TYPE emolens_faces_total counter\nemolens_faces_total {}\n\
             # HELP emolens_uptime_seconds Seconds since start.\n# TYPE emolens_uptime_seconds gauge\nemolens_uptime_seconds {uptime_secs:.3}\n\
             # HELP emolens_model_info The model served.\n# TYPE emolens_model_info gauge\nemolens_model_info{{model=\"{}\",version=\"{}\"}} 1\n",
            self.in_flight.load(Ordering::Relaxed),
            self.images_ok.load(Ordering::Relaxed),
            self.images_failed.load(Ordering::Relaxed),
            self.faces.load(Ordering::Relaxed),
            model.replace('"', "'"),
            env!("CARGO_PKG_VERSION"),
        );
        o
    }
}

/// Middleware: counts and times every request by its route pattern (not its raw path, so ids
/// do not explode the label set).
pub async fn track(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let resp = next.run(req).await;
    state.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    state
        .metrics
        .record(&method, &route, resp.status().as_u16(), secs);
    tracing::debug!(%method, %route, status = resp.status().as_u16(), ms = secs * 1e3, "request");
    resp
}
