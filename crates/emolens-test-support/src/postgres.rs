//! A private PostgreSQL server for the tests that run the service on PostgreSQL (Debian's
//! package, `scripts/install-test-deps.sh`), or the one `EMOLENS_TEST_PG_URL` names.

use std::path::{Path, PathBuf};

/// A private PostgreSQL server in a temporary directory, or the one named by
/// `EMOLENS_TEST_PG_URL`. Panics with what to do when PostgreSQL is not installed.
pub struct Postgres {
    pub url: String,
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    as_user: Option<String>,
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/install-test-deps.sh, or set EMOLENS_TEST_PG_URL to a server"))
}

fn run_pg(bin: &Path, as_user: &Option<String>, tool: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(tool);
    let out = match as_user {
        Some(u) => std::process::Command::new("runuser")
            .arg("-u")
            .arg(u)
            .arg("--")
            .arg(&exe)
            .args(args)
            .output(),
        None => std::process::Command::new(&exe).args(args).output(),
    }
    .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    out
}

impl Postgres {
    pub fn start() -> Postgres {
        if let Ok(url) = std::env::var("EMOLENS_TEST_PG_URL") {
            return Postgres {
                url,
                dir: None,
                bin: PathBuf::new(),
                as_user: None,
            };
        }
        let bin = pg_bin();
        // PostgreSQL refuses to run as root; CI runs as root, so run it as the `postgres` user
        // the Debian package creates.
        let is_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let as_user = is_root.then(|| "postgres".to_string());
        let dir = tempfile::Builder::new()
            .prefix("emolens-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        if let Some(u) = &as_user {
            let st = std::process::Command::new("chown")
                .arg("-R")
                .arg(format!("{u}:{u}"))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown of the PostgreSQL temp dir failed");
        }
        let d = data.to_str().unwrap();
        let out = run_pg(
            &bin,
            &as_user,
            "initdb",
            &["-D", d, "-A", "trust", "-U", "emolens", "--no-sync"],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        let log = dir.path().join("pg.log");
        let out = run_pg(
            &bin,
            &as_user,
            "pg_ctl",
            &[
                "-D",
                d,
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Postgres {
            url: format!("postgres://emolens@127.0.0.1:{port}/postgres"),
            dir: Some(dir),
            bin,
            as_user,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let d = dir.path().join("data");
            let _ = run_pg(
                &self.bin,
                &self.as_user,
                "pg_ctl",
                &["-D", d.to_str().unwrap(), "-m", "immediate", "-w", "stop"],
            );
        }
    }
}
