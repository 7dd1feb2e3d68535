//! The OpenAPI document is generated from the handlers' annotations and types: every route the
//! router serves is in it with exactly its methods, and the answers of a running server match
//! the schemas it documents for them (validated as JSON Schema, objects closed to undocumented
//! fields).

use crate::common::*;
use emolens_server::ServerConfig;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    dir.path().join("emolens.db").display().to_string()
}

/// A concrete path for a documented template (`{id}` and the like filled in).
fn concrete(template: &str) -> String {
    template
        .replace("{model}", "emotion")
        .replace("{token}", "no-such-token")
        .replace("{file}", "no-such-file")
        .replace("{id}", "1")
}

/// The document with every object schema that lists its properties closed to others, so an
/// answer with a field the document does not name fails validation.
fn closed(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                    o.insert("additionalProperties".into(), json!(false));
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// The documented schemas of answers, checked against real ones.
struct Doc {
    doc: Value,
}

impl Doc {
    /// The JSON schema documented for `method path` answering `status` (application/json).
    fn schema(&self, method: &str, path: &str, status: u16) -> Value {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let response = &op["responses"][status.to_string()];
        let response = match response["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                &self.doc["components"]["responses"][name]
            }
            None => response,
        };
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which its documentation does not list: {}",
            op["responses"]
        );
        let schema = &response["content"]["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{method} {path} {status} documents no JSON body"
        );
        // The operation's schema with the document's components, so its `$ref`s resolve.
        closed(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        }))
    }

    /// Why `body` does not match the schema of `method path` answering `status` (empty: it
    /// does).
    fn errors(&self, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
        let schema = self.schema(method, path, status);
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{method} {path} {status}: schema does not compile: {e}"));
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Asserts that a real answer matches its documented schema.
    #[track_caller]
    fn check(&self, method: &str, path: &str, r: &Resp) -> Value {
        let body = r.json();
        let errors = self.errors(method, path, r.status, &body);
        assert!(
            errors.is_empty(),
            "{method} {path} {}: the answer does not match the document: {errors:?}\n{body:#}",
            r.status
        );
        body
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_with_its_methods() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(ServerConfig::default(), &sqlite_url(&dir), false).await;
    let doc = get(s.addr, "/openapi.json", None).await.json();
    // Served as the generator makes it.
    assert_eq!(doc, emolens_server::system::openapi_document());
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains(emolens_server::PRIVACY_NOTICE));

    // A key, so the routes that need one get as far as method routing.
    let admin = emolens_server::auth::create_key(&s.state.db, "admin")
        .await
        .unwrap()
        .key;
    let auth = format!("Bearer {admin}");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 40, "only {} paths documented", paths.len());
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["live_session"]["in"], "header");
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for (path, item) in paths {
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        assert!(!documented.is_empty(), "{path} documents no method");
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let what = format!("{m} {path}");
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "{what}: operationId {} is not unique",
                op["operationId"]
            );
            let tag = op["tags"][0].as_str().unwrap_or_default();
            assert!(tags.contains(tag), "{what}: tag {tag:?} is not declared");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{what} has no summary"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|c| c.starts_with('2')),
                "{what} documents no success"
            );
            for (code, r) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    // Every error answer is documented with a JSON body.
                    assert!(
                        r["$ref"].is_string() || r["content"]["application/json"].is_object(),
                        "{what} {code} has no JSON body"
                    );
                }
            }
            for req in op["security"].as_array().into_iter().flatten() {
                for scheme in req.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(scheme), "{what}: unknown {scheme}");
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(path.contains(&format!("{{{name}}}")), "{what}: {name}");
                }
            }
        }
        // A method no route serves answers 405 naming the methods the router does serve on
        // this path: they must be the documented ones (HEAD comes with GET).
        let r = request(
            s.addr,
            "TRACE",
            &concrete(path),
            &[("Authorization", auth.as_str())],
            b"",
        )
        .await;
        assert_eq!(r.status, 405, "TRACE {path}: {}", r.text());
        let served: BTreeSet<String> = r
            .header("allow")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_uppercase())
            .filter(|m| !m.is_empty() && m != "HEAD")
            .collect();
        assert_eq!(served, documented, "{path}: served vs documented methods");
    }
    // The check above tells routes from unknown paths: those are the fallback's 404.
    let r = request(s.addr, "TRACE", "/v1/no-such-route", &[], b"").await;
    assert_eq!(r.status, 404);
    // Pages and their files are not API operations.
    assert!(!paths.contains_key("/app") && !paths.contains_key("/static/app.js"));

    // Every `$ref` of the document resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    out.push(r);
                }
                o.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_their_documented_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(ServerConfig::default(), &sqlite_url(&dir), false).await;
    let doc = Doc {
        doc: get(s.addr, "/openapi.json", None).await.json(),
    };
    let admin = emolens_server::auth::create_key(&s.state.db, "admin")
        .await
        .unwrap()
        .key;
    let key = Some(admin.as_str());
    let (name, img) = fer_images("happy", 1).remove(0);

    // The validation can fail: an undocumented field, a missing or mistyped one.
    let good = json!({ "status": "ok", "model": "ok", "database": "ok" });
    assert!(doc.errors("get", "/health", 200, &good).is_empty());
    for bad in [
        json!({ "status": "ok", "model": "ok", "database": "ok", "extra": 1 }),
        json!({ "status": "ok", "model": "ok" }),
        json!({ "status": 1, "model": "ok", "database": "ok" }),
    ] {
        assert!(!doc.errors("get", "/health", 200, &bad).is_empty(), "{bad}");
    }
    let err = json!({ "error": "x", "code": "not_found", "extra": true });
    assert!(!doc.errors("get", "/v1/campaigns", 401, &err).is_empty());

    for p in ["/health", "/health/live", "/health/ready"] {
        doc.check("get", p, &get(s.addr, p, None).await);
    }

    // Analysis.
    let r = post_multipart(s.addr, "/api/predict", None, &[("file", &name, &img)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    doc.check("post", "/api/predict", &r);
    let r = post_multipart(
        s.addr,
        "/api/predict",
        None,
        &[("file", "x.png", b"not an image")],
    )
    .await;
    assert_eq!(r.status, 415);
    doc.check("post", "/api/predict", &r);
    let r = post_multipart(
        s.addr,
        "/v1/analyze",
        None,
        &[("files", &name, &img), ("files", "bad.png", b"nope")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = doc.check("post", "/v1/analyze", &r);
    assert_eq!(v["items"][1]["status"], "error");

    // Errors of the keyed routes.
    let r = get(s.addr, "/v1/campaigns", None).await;
    assert_eq!(r.status, 401);
    doc.check("get", "/v1/campaigns", &r);
    let r = get(s.addr, "/v1/campaigns/999", key).await;
    assert_eq!(r.status, 404);
    doc.check("get", "/v1/campaigns/{id}", &r);
    let r = post_json(s.addr, "/v1/campaigns", key, &json!({ "nom": "x" })).await;
    assert_eq!(r.status, 400);
    doc.check("post", "/v1/campaigns", &r);

    // Campaigns, ads, photos, results.
    let r = post_json(
        s.addr,
        "/v1/campaigns",
        key,
        &json!({ "name": "Spring", "keep_images": true, "retention_days": 30 }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let campaign = doc.check("post", "/v1/campaigns", &r)["id"]
        .as_i64()
        .unwrap();
    doc.check(
        "get",
        "/v1/campaigns",
        &get(s.addr, "/v1/campaigns", key).await,
    );
    let r = post_json(
        s.addr,
        &format!("/v1/campaigns/{campaign}/ads"),
        key,
        &json!({ "name": "Ad A", "duration_s": 30.0 }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ad = doc.check("post", "/v1/campaigns/{id}/ads", &r)["id"]
        .as_i64()
        .unwrap();
    let r = post_multipart(
        s.addr,
        &format!("/v1/ads/{ad}/photos"),
        key,
        &[("files", &name, &img), ("files", &name, &img)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = doc.check("post", "/v1/ads/{id}/photos", &r);
    assert_eq!(v["summary"]["duplicates"], 1);
    for (path, template) in [
        (format!("/v1/campaigns/{campaign}"), "/v1/campaigns/{id}"),
        (format!("/v1/ads/{ad}"), "/v1/ads/{id}"),
        (format!("/v1/ads/{ad}/photos"), "/v1/ads/{id}/photos"),
        (format!("/v1/ads/{ad}/results"), "/v1/ads/{id}/results"),
        (format!("/v1/ads/{ad}/timeline"), "/v1/ads/{id}/timeline"),
        (format!("/v1/ads/{ad}/videos"), "/v1/ads/{id}/videos"),
        ("/v1/keys".to_string(), "/v1/keys"),
        ("/v1/audit".to_string(), "/v1/audit"),
    ] {
        let r = get(s.addr, &path, key).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        doc.check("get", template, &r);
    }

    // Keys and roles.
    let r = post_json(
        s.addr,
        "/v1/keys",
        key,
        &json!({ "name": "analyst", "role": "analyst" }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let analyst = doc.check("post", "/v1/keys", &r)["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = request(
        s.addr,
        "DELETE",
        &format!("/v1/ads/{ad}"),
        &[("Authorization", format!("Bearer {analyst}").as_str())],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
    doc.check("delete", "/v1/ads/{id}", &r);

    // A live viewing: link, consent, a frame, the end, the viewer's erasure.
    let r = post_json(
        s.addr,
        &format!("/v1/ads/{ad}/live-links"),
        key,
        &json!({ "label": "panel", "max_viewers": 2 }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let token = doc.check("post", "/v1/ads/{id}/live-links", &r)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = get(s.addr, &format!("/v1/ads/{ad}/live-links"), key).await;
    doc.check("get", "/v1/ads/{id}/live-links", &r);
    let r = get(s.addr, &format!("/v1/live/{token}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    doc.check("get", "/v1/live/{token}", &r);
    let r = post_json(
        s.addr,
        &format!("/v1/live/{token}/sessions"),
        None,
        &json!({ "consent": true }),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let started = doc.check("post", "/v1/live/{token}/sessions", &r);
    let (id, session) = (
        started["session_id"].as_i64().unwrap(),
        started["session"].as_str().unwrap().to_string(),
    );
    let r = request(
        s.addr,
        "POST",
        &format!("/v1/live/sessions/{id}/frames?seq=0&t=0.5"),
        &[
            ("X-Emolens-Session", session.as_str()),
            ("Content-Type", "image/png"),
        ],
        &img,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    doc.check("post", "/v1/live/sessions/{id}/frames", &r);
    let r = request(
        s.addr,
        "POST",
        &format!("/v1/live/sessions/{id}/frames?seq=1&t=1.0"),
        &[("Content-Type", "image/png")],
        &img,
    )
    .await;
    assert_eq!(r.status, 401);
    doc.check("post", "/v1/live/sessions/{id}/frames", &r);
    let r = request(
        s.addr,
        "POST",
        &format!("/v1/live/sessions/{id}/end"),
        &[
            ("X-Emolens-Session", session.as_str()),
            ("Content-Type", "application/json"),
        ],
        json!({ "reason": "ended" }).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    doc.check("post", "/v1/live/sessions/{id}/end", &r);
    let r = get(s.addr, &format!("/v1/jobs/{id}"), key).await;
    assert_eq!(r.status, 200, "{}", r.text());
    doc.check("get", "/v1/jobs/{id}", &r);
    let r = request(
        s.addr,
        "DELETE",
        &format!("/v1/live/sessions/{id}"),
        &[("X-Emolens-Session", session.as_str())],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    doc.check("delete", "/v1/live/sessions/{id}", &r);

    // Erasure.
    let r = request(
        s.addr,
        "DELETE",
        &format!("/v1/campaigns/{campaign}"),
        &[("Authorization", format!("Bearer {admin}").as_str())],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    doc.check("delete", "/v1/campaigns/{id}", &r);
    s.stop().await;
}
