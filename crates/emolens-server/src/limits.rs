//! Fair limits on the API (issue 17, findings 3 and 7): who a request is (its key, or the client's
//! address when it has no valid key), per-key and per-client rate and concurrency limits,
//! separate pools for keyed and anonymous work (so anonymous traffic never takes the slots of
//! authenticated work), a read timeout on request bodies, and refused bodies drained (within a
//! bound) so a refused client reads its 429 instead of a broken pipe.

use crate::error::ServerError;
use crate::workspace::Principal;
use crate::{auth, SharedState};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Who a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Who {
    /// A valid API key (by id).
    Key(i64),
    /// A request without a valid key, by the client's address.
    Client(IpAddr),
    /// A live viewing session's page (a valid session credential), by session: the viewers of
    /// one room behind one address each get their own limits, from the keyed pool (the session
    /// was opened through a link a key made), so anonymous traffic cannot starve them.
    Session(i64),
}

/// Requests a minute of one live viewing session: its page sends at most
/// [`crate::live::MAX_LIVE_FPS`] frames a second, with room for retries and its other calls.
pub const SESSION_RATE_PER_MINUTE: u32 = (crate::live::MAX_LIVE_FPS as u32) * 60 * 2;
/// Requests of one live viewing session in flight (its page keeps at most two frames in flight).
pub const SESSION_IN_FLIGHT: usize = 4;

/// The limits, as `ServerConfig` sets them.
#[derive(Debug, Clone, Copy)]
pub struct FairLimits {
    /// Keyed requests in flight, all keys together.
    pub keyed: usize,
    /// Requests without a valid key in flight, all clients together.
    pub anonymous: usize,
    /// Requests in flight per key.
    pub per_key: usize,
    /// Requests without a valid key in flight per client address.
    pub per_client: usize,
    /// Requests per minute per key (0: no rate limit).
    pub key_rate_per_minute: u32,
    /// Requests without a valid key per minute per client address (0: no rate limit).
    pub client_rate_per_minute: u32,
}

/// One key's or client's state: requests in flight and its token bucket.
#[derive(Debug)]
struct Entry {
    in_flight: usize,
    tokens: f64,
    refilled: Instant,
}

/// Entries kept before idle ones are swept.
const SWEEP_ABOVE: usize = 4096;

/// Refused bodies drained at once; beyond, the 429 is sent and the connection closed.
const MAX_DRAINS: usize = 256;

/// Admission state of a running server.
#[derive(Debug)]
pub struct Limiter {
    limits: FairLimits,
    keyed: Arc<Semaphore>,
    anonymous: Arc<Semaphore>,
    entries: Mutex<HashMap<Who, Entry>>,
    drains: Arc<Semaphore>,
}

/// A request's admission: its pool slot and its place in its key's or client's count, both
/// given back on drop.
#[derive(Debug)]
pub struct Ticket {
    limiter: Arc<Limiter>,
    who: Who,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut entries = self.limiter.lock();
        if let Some(e) = entries.get_mut(&self.who) {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
    }
}

impl Limiter {
    pub fn new(limits: FairLimits) -> Arc<Self> {
        Arc::new(Limiter {
            keyed: Arc::new(Semaphore::new(limits.keyed.max(1))),
            anonymous: Arc::new(Semaphore::new(limits.anonymous.max(1))),
            entries: Mutex::new(HashMap::new()),
            drains: Arc::new(Semaphore::new(MAX_DRAINS)),
            limits,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Who, Entry>> {
        // A panic while holding the lock leaves plain counters behind: keep using them.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (rate per minute, in-flight cap, pool) for `who`.
    fn rules(&self, who: Who) -> (u32, usize, &Arc<Semaphore>) {
        match who {
            Who::Key(_) => (
                self.limits.key_rate_per_minute,
                self.limits.per_key.max(1),
                &self.keyed,
            ),
            Who::Client(_) => (
                self.limits.client_rate_per_minute,
                self.limits.per_client.max(1),
                &self.anonymous,
            ),
            Who::Session(_) => (SESSION_RATE_PER_MINUTE, SESSION_IN_FLIGHT, &self.keyed),
        }
    }

    /// Admits a request of `who` or says why not: its own requests in flight (429), its rate
    /// (429 with the seconds until its next request), or its pool full (429). Only an admitted
    /// request uses up rate.
    pub fn admit(self: &Arc<Self>, who: Who) -> Result<Ticket, ServerError> {
        let (rate, cap, pool) = self.rules(who);
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, e| e.in_flight > 0 || now.duration_since(e.refilled).as_secs() < 60);
        }
        // A bucket holds 10 seconds' worth of requests (at least one): short bursts pass.
        let burst = (rate as f64 / 6.0).max(1.0);
        let e = entries.entry(who).or_insert(Entry {
            in_flight: 0,
            tokens: burst,
            refilled: now,
        });
        let what = match who {
            Who::Key(_) => "this API key".to_string(),
            Who::Client(ip) => format!("requests without a valid key from {ip}"),
            Who::Session(id) => format!("viewing session {id}"),
        };
        if e.in_flight >= cap {
            return Err(ServerError::RateLimited {
                message: format!(
                    "{what} has {cap} requests in flight (the limit); wait for one to finish"
                ),
                retry_after_s: 1,
            });
        }
        if rate > 0 {
            let per_s = rate as f64 / 60.0;
            e.tokens = (e.tokens + now.duration_since(e.refilled).as_secs_f64() * per_s).min(burst);
            e.refilled = now;
            if e.tokens < 1.0 {
                let wait = ((1.0 - e.tokens) / per_s).ceil().max(1.0) as u64;
                return Err(ServerError::RateLimited {
                    message: format!(
                        "{what} sent more than {rate} requests a minute (the limit); retry in {wait} s"
                    ),
                    retry_after_s: wait,
                });
            }
        }
        let Ok(slot) = pool.clone().try_acquire_owned() else {
            let pool_name = match who {
                Who::Key(_) | Who::Session(_) => "requests with a key",
                Who::Client(_) => "requests without a key",
            };
            return Err(ServerError::Busy(format!(
                "the server has all the {pool_name} in flight it takes; retry shortly"
            )));
        };
        if rate > 0 {
            e.tokens -= 1.0;
        }
        e.in_flight += 1;
        drop(entries);
        Ok(Ticket {
            limiter: self.clone(),
            who,
            _slot: slot,
        })
    }
}

/// The client's address from the connection (loopback when the router is served without one,
/// as in unit tests).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Middleware on every API route: finds who the request is (a valid key is looked up once and
/// handed to the key checks as the request's [`Principal`]), admits it or answers 429, and
/// bounds the time its body may take to arrive (408 past it, and the connection closed).
pub async fn admit(State(state): State<SharedState>, mut req: Request, next: Next) -> Response {
    let principal = match auth::bearer(&req) {
        Some(token) => auth::check(&state, Some(token)).await.ok(),
        None => None,
    };
    let session = match (&principal, crate::live::session_of(req.headers())) {
        (None, Some((id, secret))) => state
            .db
            .live_session_exists(id, &secret)
            .await
            .unwrap_or(false)
            .then_some(id),
        _ => None,
    };
    let who = match (&principal, session) {
        (Some(p), _) => Who::Key(p.key_id),
        (None, Some(id)) => Who::Session(id),
        (None, None) => Who::Client(client_ip(&req)),
    };
    let ticket = match state.limiter.admit(who) {
        Ok(t) => t,
        Err(e) => {
            let drained = drain(&state, req).await;
            let mut resp = e.into_response();
            if !drained {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return resp;
        }
    };
    if let Some(p) = principal {
        req.extensions_mut().insert::<Principal>(p);
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let timeout = state.config.body_timeout;
    let req = req.map(|body| {
        Body::new(TimedBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timed_out: timed_out.clone(),
        })
    });
    let resp = next.run(req).await;
    drop(ticket);
    if timed_out.load(Ordering::Relaxed) {
        return ServerError::Timeout(format!(
            "the request body did not arrive within {} s (the body read timeout, --body-timeout-secs); send it faster or in smaller requests",
            timeout.as_secs_f64()
        ))
        .into_response();
    }
    resp
}

/// Reads and discards a refused request's body, so the client has sent it all when the answer
/// comes (a client still writing when the server closes gets a broken pipe, not its 429).
/// Bounded: at most the body limit, within the body read timeout, and at most [`MAX_DRAINS`]
/// at once. `false` when the body was not drained (the connection should then close).
async fn drain(state: &SharedState, req: Request) -> bool {
    use http_body_util::BodyExt;
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        // The client waits for our go-ahead before sending: nothing to drain, nothing sent.
        return true;
    }
    let limit = state.config.max_body_bytes as u64;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared == Some(0) {
        return true;
    }
    if declared.is_some_and(|n| n > limit) {
        return false;
    }
    let Ok(_permit) = state.limiter.drains.clone().try_acquire_owned() else {
        return false;
    };
    let mut body = req.into_body();
    let read = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > limit {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(state.config.body_timeout, read)
        .await
        .unwrap_or(false)
}

/// The error a body gives when its read timeout passes.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body read timeout")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body that fails once its deadline passes, and marks the request as timed out (the
/// middleware then answers 408, whatever the handler made of the failed read).
struct TimedBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> FairLimits {
        FairLimits {
            keyed: 3,
            anonymous: 2,
            per_key: 2,
            per_client: 1,
            key_rate_per_minute: 0,
            client_rate_per_minute: 0,
        }
    }

    #[test]
    fn pools_and_per_who_caps_are_separate() {
        let l = Limiter::new(limits());
        let a = Who::Client(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let b = Who::Client(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        let c = Who::Client(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)));
        let ta = l.admit(a).unwrap();
        assert!(matches!(l.admit(a), Err(ServerError::RateLimited { .. })));
        let _tb = l.admit(b).unwrap();
        // The anonymous pool is full; keys still get in.
        assert!(matches!(l.admit(c), Err(ServerError::Busy(_))));
        let k1 = l.admit(Who::Key(1)).unwrap();
        let _k1b = l.admit(Who::Key(1)).unwrap();
        assert!(matches!(
            l.admit(Who::Key(1)),
            Err(ServerError::RateLimited { .. })
        ));
        let _k2 = l.admit(Who::Key(2)).unwrap();
        assert!(matches!(l.admit(Who::Key(3)), Err(ServerError::Busy(_))));
        drop(k1);
        let _k3 = l.admit(Who::Key(3)).unwrap();
        drop(ta);
        let _tc = l.admit(c).unwrap();
    }

    #[test]
    fn rate_limit_says_when_to_retry() {
        let l = Limiter::new(FairLimits {
            key_rate_per_minute: 12,
            ..limits()
        });
        // 12 a minute: a burst of 2 (10 s worth), then one every 5 s.
        drop(l.admit(Who::Key(1)).unwrap());
        drop(l.admit(Who::Key(1)).unwrap());
        match l.admit(Who::Key(1)) {
            Err(ServerError::RateLimited { retry_after_s, .. }) => {
                assert!((4..=5).contains(&retry_after_s), "{retry_after_s}")
            }
            other => panic!("{other:?}"),
        }
        // Another key has its own bucket.
        assert!(l.admit(Who::Key(2)).is_ok());
    }
}
