//! The JWT secret of the development and test profiles, which carry none: a fixed secret in a
//! profile is public the day it is committed, and anyone could sign ADMIN tokens for every
//! server that forgot to set its own. Development generates one per data directory, in
//! `<data dir>/jwt-secret` (the directory of the SQLite database, else `data/`), so the server
//! and `rentgraph token` run from the same place agree and tokens survive restarts; the test
//! profile makes a new one in memory per process.
use std::io::Write;
use std::path::{Path, PathBuf};

/// A 256-bit random secret, hex (two v4 UUIDs: 244 random bits from the OS generator).
pub(super) fn random() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The test profile's secret: one per process, so every server and token of one test run agree.
pub(super) fn per_process() -> String {
    static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECRET.get_or_init(random).clone()
}

/// Where development keeps its secret for a database URL.
pub(super) fn path_for(database_url: &str) -> PathBuf {
    let dir = database_url
        .strip_prefix("sqlite://")
        .and_then(|rest| rest.split('?').next())
        .filter(|p| !p.is_empty() && *p != ":memory:")
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("data"));
    dir.join("jwt-secret")
}

/// The secret in `path`, made on first use. Two processes starting at once agree: the secret
/// is written to a temporary file and linked into place, which fails if another got there
/// first, and then theirs is read.
pub(super) fn load_or_create(path: &Path) -> Result<String, String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    if path.exists() {
        return read(path);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(random().as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            eprintln!(
                "  development: generated a JWT secret in {} (tokens from `rentgraph token` run here verify against it)",
                path.display()
            );
            read(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_lives_beside_the_sqlite_database_and_is_made_once() {
        assert_eq!(
            path_for("sqlite://data/rentgraph.db?mode=rwc"),
            PathBuf::from("data/jwt-secret")
        );
        assert_eq!(
            path_for("postgres://localhost/db"),
            PathBuf::from("data/jwt-secret")
        );
        let dir = std::env::temp_dir().join(format!("rg-secret-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("jwt-secret");
        let first = load_or_create(&path).expect("made");
        assert_eq!(first.len(), 64);
        assert_eq!(load_or_create(&path).expect("read"), first, "made once");
        assert_ne!(random(), random());
        let _ = std::fs::remove_dir_all(dir);
    }
}
