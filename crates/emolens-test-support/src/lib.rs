//! What the workspace's tests share, so each test file holds only its checks:
//!
//! - [`shared`]: the project's shared data (FER2013, the FER+ votes, the original design's
//!   reference files; never committed), asserted present, so a test without it fails with one
//!   message naming the folder.
//! - [`emolens!`] and [`program`]: the `emolens` program built for the tests, quiet.
//! - [`scratch`]: a fresh, empty folder per test.
//! - [`Postgres`]: a private PostgreSQL server, or the one `EMOLENS_TEST_PG_URL` names.
//!
//! A dev-dependency only (`publish = false`).

mod postgres;

pub use postgres::Postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `shared/REL` (`$EMOLENS_SHARED`, else the `shared/` folder beside the checkout; see
/// [`emolens_core::paths::shared_dir`]), which must exist: a test that needs it and does not
/// find it fails here, with one message naming the folder and how to provide it.
pub fn shared(rel: &str) -> PathBuf {
    let root = emolens_core::paths::shared_dir();
    let path = root.join(rel);
    assert!(
        path.exists(),
        "{} is missing: this test needs the shared data folder {} (not in git: FER2013 under \
         data/fer2013, the FER+ votes under data/ferplus, the original's files under \
         seed-reference). Put it beside the checkout or set EMOLENS_SHARED to it.",
        path.display(),
        root.display()
    );
    path
}

/// `shared/data/fer2013` (its `train` and `test` splits, one folder per class).
pub fn fer2013() -> PathBuf {
    shared("data/fer2013")
}

/// `shared/seed-reference`: the original design's architectures and training histories.
pub fn seed_reference() -> PathBuf {
    shared("seed-reference")
}

/// The repository's root (for `assets/`, `tests/browser/`, `.venv-test/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh, empty folder `emolens-test-NAME-PID` under the system's temporary folder (removed
/// first if a previous run left it).
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("emolens-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)
        .unwrap_or_else(|e| panic!("cannot create the scratch folder {}: {e}", d.display()));
    d
}

/// The `emolens` program at `path` (a test passes `env!("CARGO_BIN_EXE_emolens")`; see
/// [`emolens!`]), quiet: logs at `warn`, no progress bars.
pub fn program(path: &str) -> Command {
    let mut c = Command::new(path);
    c.env("EMOLENS_LOG", "warn")
        .env("EMOLENS_NO_PROGRESS", "true");
    c
}

/// The `emolens` program built for this test binary, as [`program`] sets it up. A macro, since
/// only the package of the binary knows its path (`CARGO_BIN_EXE_emolens`).
#[macro_export]
macro_rules! emolens {
    () => {
        $crate::program(env!("CARGO_BIN_EXE_emolens"))
    };
}

/// Runs `c` to its end; panics only if it cannot start.
pub fn output(c: &mut Command) -> Output {
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", c.get_program()))
}

/// Runs `c` to its end and panics, with its stderr, unless it succeeds.
pub fn success(c: &mut Command) -> Output {
    let out = output(c);
    assert!(
        out.status.success(),
        "{:?} {:?} failed: {}\n{}",
        c.get_program(),
        c.get_args().collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The entries of the folder `dir`, sorted by name (tests take "the first N files" of a shared
/// folder, so the same files on every machine); panics naming the folder when it cannot be read.
pub fn sorted_entries(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    let dir = dir.as_ref();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    entries.sort();
    entries
}
