//! Atomic files: every file is written to a temporary sibling, flushed to disk and renamed
//! over the target, so an interrupted run leaves either the old or the new file, never a torn
//! one; what a killed process leaves behind is recognised and removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The environment variable of a test hook: when it holds a number of milliseconds, every
/// [`write_atomic`] pauses that long halfway through writing its temporary file, so that a
/// test can stop the process inside a write (`scripts/soak.sh` does). Unset in normal use,
/// where it costs one cached lookup per write.
pub(crate) const SLOW_WRITES_ENV: &str = "RESCOM_TEST_SLOW_WRITES_MS";

fn slow_writes() -> Option<std::time::Duration> {
    static PAUSE: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *PAUSE.get_or_init(|| {
        std::env::var(SLOW_WRITES_ENV)
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_millis)
    })
}

/// The temporary sibling [`write_atomic`] writes `name` into before renaming it:
/// `.NAME.tmp-PID`.
fn temporary_name(name: &str) -> String {
    format!(".{name}.tmp-{}", std::process::id())
}

/// Whether `name` is the temporary file of an atomic write ([`write_atomic`]) made by another
/// process than this one: what a process killed inside a write leaves behind.
pub(crate) fn is_stale_temporary(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    match rest.rsplit_once(".tmp-") {
        Some((target, pid)) => {
            !target.is_empty()
                && !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && pid != std::process::id().to_string()
        }
        None => false,
    }
}

/// Removes the temporary files that processes killed inside a [`write_atomic`] left in `dir`
/// (not in its subdirectories); a missing directory holds none.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed or a file cannot be removed.
pub(crate) fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if is_stale_temporary(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(&path, e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file, `fsync`, rename). On failure (a full
/// disk, say) the temporary file is removed and the previous version of `path`, if any, is
/// left as it was.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::config("path", format!("{} names no file", path.display())))?;
    let tmp = dir.join(temporary_name(&name.to_string_lossy()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        match slow_writes() {
            None => file.write_all(bytes)?,
            Some(pause) => {
                let (first, second) = bytes.split_at(bytes.len() / 2);
                file.write_all(first)?;
                std::thread::sleep(pause);
                file.write_all(second)?;
            }
        }
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable where the platform allows it.
        if let Ok(dir) = std::fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
