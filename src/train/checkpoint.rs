//! Atomic files and single-file training checkpoints.
//!
//! Every file is written to a temporary sibling, flushed to disk and renamed over the target,
//! so an interrupted run leaves either the old or the new file, never a torn one. A checkpoint
//! is one file: a header, JSON metadata and the named binary sections (burnpack records of the
//! model, the loss with its queue, and the optimiser).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"RESCOMCK";
const VERSION: u32 = 1;

/// Writes `bytes` to `path` atomically (temporary file, `fsync`, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::config("path", format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
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

/// A checkpoint: JSON metadata plus named binary sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint<M> {
    /// Metadata (training position, configuration, history).
    pub meta: M,
    /// Named binary sections, e.g. `("model", burnpack bytes)`.
    pub sections: Vec<(String, Vec<u8>)>,
}

impl<M: Serialize + DeserializeOwned> Checkpoint<M> {
    /// The bytes of section `name`.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// Serialises the checkpoint.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let meta = serde_json::to_vec(&self.meta)?;
        let mut out = Vec::with_capacity(
            64 + meta.len()
                + self
                    .sections
                    .iter()
                    .map(|(n, b)| n.len() + b.len() + 16)
                    .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        put(&mut out, &meta);
        for (name, bytes) in &self.sections {
            put(&mut out, name.as_bytes());
            put(&mut out, bytes);
        }
        Ok(out)
    }

    /// Parses a checkpoint; `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |reason: &str| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a rescom checkpoint (bad magic)"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().map_err(|_| corrupt("header"))?);
        if version != VERSION {
            return Err(corrupt(&format!(
                "unsupported checkpoint version {version}"
            )));
        }
        let count = u32::from_le_bytes(bytes[12..16].try_into().map_err(|_| corrupt("header"))?);
        let mut cursor = &bytes[16..];
        let meta = take(&mut cursor).ok_or_else(|| corrupt("truncated metadata"))?;
        let meta = serde_json::from_slice(meta)
            .map_err(|e| corrupt(&format!("metadata does not parse: {e}")))?;
        let mut sections = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let name = take(&mut cursor).ok_or_else(|| corrupt("truncated section name"))?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| corrupt("section name"))?;
            let data = take(&mut cursor).ok_or_else(|| corrupt("truncated section"))?;
            sections.push((name, data.to_vec()));
        }
        if !cursor.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Self { meta, sections })
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, path)
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(cursor: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u64::from_le_bytes(cursor.get(..8)?.try_into().ok()?) as usize;
    let data = cursor.get(8..8usize.checked_add(len)?)?;
    *cursor = &cursor[8 + len..];
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint<Vec<u32>> {
        Checkpoint {
            meta: vec![1, 2, 3],
            sections: vec![("model".into(), vec![9; 100]), ("empty".into(), vec![])],
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("ck.bin");
        let ck = sample();
        ck.save(&path).unwrap();
        assert_eq!(Checkpoint::<Vec<u32>>::load(&path).unwrap(), ck);
        assert_eq!(ck.section("model").unwrap().len(), 100);

        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 10, 20, bytes.len() - 1] {
            let err = Checkpoint::<Vec<u32>>::from_bytes(&bytes[..cut], &path).unwrap_err();
            assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(Checkpoint::<Vec<u32>>::from_bytes(&bad, &path).is_err());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ck.bin")]);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = Checkpoint::<Vec<u32>>::load(Path::new("/nonexistent/ck.bin")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ck.bin"), "{err}");
    }
}
