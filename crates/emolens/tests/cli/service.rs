//! `emolens keys` with workspaces and roles, and `emolens erase`, run as the built program on a
//! real SQLite database.

use std::process::Output;

/// `emolens ARGS --database-url DB`.
fn emolens(args: &[&str], db: &str) -> Output {
    emolens_test_support::output(
        emolens_test_support::emolens!()
            .args(args)
            .args(["--database-url", db]),
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn keys_live_in_workspaces_with_roles_and_erase_names_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.db");
    // An empty file is a database to migrate (what `emolens serve` would have created).
    std::fs::File::create(&path).unwrap();
    let db = path.display().to_string();

    let o = emolens(
        &[
            "keys",
            "create",
            "--name",
            "reader",
            "--workspace",
            "acme",
            "--role",
            "viewer",
        ],
        &db,
    );
    assert!(o.status.success(), "{}", text(&o));
    let key = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(key.starts_with("emk_"), "{key}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("viewer of workspace 'acme'"),
        "{}",
        text(&o)
    );
    let o = emolens(&["keys", "create", "--name", "ops"], &db);
    assert!(o.status.success(), "{}", text(&o));

    let o = emolens(&["keys", "list"], &db);
    assert!(o.status.success(), "{}", text(&o));
    let keys: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let shown: Vec<(&str, &str, &str)> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap(),
                k["workspace"].as_str().unwrap(),
                k["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![("reader", "acme", "viewer"), ("ops", "default", "admin")]
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains(&key),
        "keys list never shows a key"
    );

    for (args, needle) in [
        (
            vec!["keys", "create", "--role", "owner"],
            "unknown role 'owner'",
        ),
        (
            vec!["keys", "create", "--workspace", "a b"],
            "workspace name 'a b' is not valid",
        ),
        (vec!["erase", "--ad", "5"], "ad 5 does not exist"),
        (vec!["erase"], "--campaign"),
        (
            vec!["erase", "--ad", "1", "--photo", "2"],
            "cannot be used with",
        ),
    ] {
        let o = emolens(&args, &db);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
    }

    let o = emolens(&["erase", "--expired"], &db);
    assert!(o.status.success(), "{}", text(&o));
    let erased: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(erased["erased"]["photos"], 0);
    assert_eq!(erased["erased"]["images"], 0);
}
