//! Single-file records with named sections: a header, JSON metadata and the named binary
//! sections (burnpack records of a model, of a loss with its queue, of an optimiser), written
//! atomically.
//!
//! A section is checked before it is applied ([`SectionFile::load_module`],
//! [`SectionFile::load_optimizer`]): a damaged or foreign record is an [`Error::Checkpoint`],
//! never a panic in the step that first uses it, and never a model with NaN weights or
//! parameters of another shape or type.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::{Bool, Bytes, DType, Int, Tensor, TensorData};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::atomic::write_atomic;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"RESCOMCK";
const VERSION: u32 = 1;

/// A single-file record: JSON metadata plus named binary sections (burnpack records), each
/// checked before it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct SectionFile<M> {
    /// Metadata (training position, configuration, history).
    pub meta: M,
    /// Named binary sections, e.g. `("model", burnpack bytes)`.
    pub sections: Vec<(String, Vec<u8>)>,
}

impl<M: Serialize + DeserializeOwned> SectionFile<M> {
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
        // Each section takes at least its two 8-byte lengths: a count the rest of the file
        // cannot hold is damage, caught before anything is allocated for it.
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > cursor.len() / 16 {
            return Err(corrupt(&format!(
                "{count} sections declared, the remaining {} bytes hold at most {}",
                cursor.len(),
                cursor.len() / 16
            )));
        }
        let meta = serde_json::from_slice(meta)
            .map_err(|e| corrupt(&format!("metadata does not parse: {e}")))?;
        let mut sections = Vec::with_capacity(count);
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

    /// The bytes of section `name`, or an [`Error::Checkpoint`] naming `path` if there is none.
    fn required(&self, name: &str, path: &Path) -> Result<&[u8]> {
        self.section(name).ok_or_else(|| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("missing section `{name}`"),
        })
    }

    /// Applies the module record in section `name` (written from [`Module::into_record`]) to
    /// `module`. The record must hold every parameter of the module with its shape and data
    /// type, a distinct id for each, and only finite floating-point values; otherwise the
    /// result is an
    /// [`Error::Checkpoint`] naming `path` and the section.
    ///
    /// ```
    /// use burn::module::Module;
    /// use burn::tensor::Device;
    /// use rescom::model::ResComHeadConfig;
    /// use rescom::train::SectionFile;
    ///
    /// let device = Device::flex();
    /// let head = |classes| ResComHeadConfig::new(8, classes, 16, 4).init(&device);
    /// let record = head(3)?.into_record().into_bytes()?.to_vec();
    /// let checkpoint = SectionFile { meta: (), sections: vec![("model".into(), record)] };
    /// let path = "run/checkpoint.bin".as_ref();
    /// assert!(checkpoint.load_module("model", head(3)?, path).is_ok());
    /// // The record of a 3-class head does not fit a 5-class one.
    /// let err = checkpoint.load_module("model", head(5)?, path).unwrap_err();
    /// assert!(err.to_string().contains("section `model`"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_module<T: Module>(&self, name: &str, module: T, path: &Path) -> Result<T> {
        let bad = |reason: String| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("section `{name}`: {reason}"),
        };
        let bytes = self.required(name, path)?;
        let tensors = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .and_then(|reader| reader.into_tensors())
            .map_err(|e| bad(e.to_string()))?;
        // Parameters are made when first read (lazily): a module larger than the record (a
        // damaged configuration) is refused before any of it is allocated.
        let recorded = tensors
            .iter()
            .map(|t| t.shape.iter().fold(1usize, |n, &d| n.saturating_mul(d)))
            .fold(0usize, usize::saturating_add);
        if module.num_params() > recorded {
            return Err(bad(format!(
                "the module has {} parameter values, the record only {recorded}: they belong to different configurations",
                module.num_params()
            )));
        }
        let expected = Params::of(&module);
        // Burn converts a recorded tensor to the type the record states, whatever the
        // parameter's kind (an integer type for a float parameter panics): types and shapes
        // are compared with the module's first, by parameter path.
        let by_path: HashMap<&str, &Described> =
            expected.0.iter().map(|p| (p.path.as_str(), p)).collect();
        for tensor in tensors {
            if let Some(p) = by_path.get(tensor.name.as_str())
                && (tensor.dtype, tensor.shape.to_vec()) != (p.dtype, p.shape.clone())
            {
                return Err(bad(format!(
                    "`{}` is {:?} {:?}, the module needs {:?} {:?}",
                    tensor.name,
                    tensor.dtype,
                    tensor.shape.to_vec(),
                    p.dtype,
                    p.shape
                )));
            }
        }
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| bad(e.to_string()))?;
        let loaded = module
            .try_load_record(record)
            .map_err(|e| bad(e.to_string()))?;
        let found = Params::of(&loaded);
        for (e, f) in expected.0.iter().zip(&found.0) {
            if (&e.shape, e.dtype) != (&f.shape, f.dtype) {
                return Err(bad(format!(
                    "`{}` is {:?} {:?}, the module needs {:?} {:?}",
                    f.path, f.dtype, f.shape, e.dtype, e.shape
                )));
            }
        }
        // Burn gives every parameter the id its record names; the optimiser keys its state and
        // the gradients by these ids, so two parameters must not share one.
        let mut ids: Vec<u64> = found.0.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(bad(format!("two parameters share the id {}", pair[0])));
        }
        if let Some(i) = found.first_non_finite().map_err(&bad)? {
            let param = &found.0[i].path;
            return Err(bad(format!("`{param}` holds NaN or infinite values")));
        }
        Ok(loaded)
    }

    /// Restores the optimiser state in section `name` (written from
    /// [`ModuleOptimizer::into_bytes`]) for the parameters of `model`. Every state tensor must
    /// belong to a parameter of `model` (by its id and by its name) and have its shape and data
    /// type, every recorded rank must be its parameter's, and every value must be finite;
    /// otherwise the result is an
    /// [`Error::Checkpoint`] naming `path` and the section. (Burn's reader trusts these, and a
    /// record that breaks them panics while loading or at the first step.)
    pub fn load_optimizer<T: Module>(
        &self,
        name: &str,
        optimizer: ModuleOptimizer,
        model: &T,
        path: &Path,
    ) -> Result<ModuleOptimizer> {
        let bad = |reason: String| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("section `{name}`: {reason}"),
        };
        let bytes = self.required(name, path)?;
        let params = Params::of(model);
        let by_id: HashMap<u64, &Described> = params.0.iter().map(|p| (p.id, p)).collect();
        let reader = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| bad(e.to_string()))?;
        for (key, value) in reader.scalars() {
            let Some(id) = key.strip_suffix(".__rank") else {
                continue;
            };
            let param = id.parse::<u64>().ok().and_then(|id| by_id.get(&id));
            let rank = usize::try_from(*value).ok();
            match (param, rank) {
                (Some(p), Some(r)) if r == p.shape.len() => {}
                _ => {
                    return Err(bad(format!(
                        "rank entry `{key}` = {value:?} matches no parameter of the model"
                    )));
                }
            }
        }
        for tensor in reader.into_tensors().map_err(|e| bad(e.to_string()))? {
            let (tensor_name, dtype, shape, id, data) =
                tensor.into_parts().map_err(|e| bad(e.to_string()))?;
            let param = id.and_then(|id| by_id.get(&id)).ok_or_else(|| {
                bad(format!(
                    "state `{tensor_name}` belongs to no parameter of the model"
                ))
            })?;
            // Burn files a state under the parameter its name starts with.
            if tensor_name.split('.').next() != Some(param.id.to_string().as_str()) {
                return Err(bad(format!(
                    "state `{tensor_name}` is recorded for parameter {} but named for another",
                    param.id
                )));
            }
            if (shape.to_vec(), dtype) != (param.shape.clone(), param.dtype) {
                return Err(bad(format!(
                    "state `{tensor_name}` is {dtype:?} {:?}, its parameter is {:?} {:?}",
                    shape.to_vec(),
                    param.dtype,
                    param.shape
                )));
            }
            if dtype.is_float() {
                let values = TensorData::from_bytes(data, shape, dtype);
                if !values.iter::<f64>().all(f64::is_finite) {
                    return Err(bad(format!(
                        "state `{tensor_name}` holds NaN or infinite values"
                    )));
                }
            }
        }
        optimizer
            .from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| bad(e.to_string()))
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint written by [`SectionFile::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, path)
    }
}

/// A parameter as a record must reproduce it.
struct Described {
    /// Its path in the module (`classifier.weight`), the key of its record tensor.
    path: String,
    id: u64,
    shape: Vec<usize>,
    dtype: DType,
    /// Whether all its values are finite (integer and boolean parameters always are).
    finite: Option<Tensor<1, Bool>>,
}

/// A module's parameters in visiting order (and the path of the module being visited).
struct Params(Vec<Described>, Vec<String>);

impl Params {
    fn of<T: Module>(module: &T) -> Self {
        let mut params = Params(Vec::new(), Vec::new());
        module.visit(&mut params);
        params
    }

    /// The index of the first parameter holding a NaN or an infinity (all are reduced on
    /// their device and read back together), or the device's message if the read fails.
    fn first_non_finite(&self) -> std::result::Result<Option<usize>, String> {
        let flags: Vec<(usize, Tensor<1, Bool>)> = self
            .0
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.finite.clone().map(|f| (i, f)))
            .collect();
        if flags.is_empty() {
            return Ok(None);
        }
        let values = Tensor::cat(flags.iter().map(|(_, f)| f.clone()).collect(), 0)
            .try_into_vec_as::<bool>()
            .map_err(|e| format!("{e:?}"))?;
        Ok(values.iter().position(|ok| !ok).map(|at| flags[at].0))
    }
}

impl ModuleVisitor for Params {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.1.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.1.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        self.0.push(Described {
            path: self.1.join("."),
            id: param.id.val(),
            shape: value.dims().to_vec(),
            dtype: value.dtype(),
            // A record can give a float parameter an integer type; only a float one has a
            // finiteness to check (and the type itself is compared with the module's).
            finite: value.dtype().is_float().then(|| value.is_finite().all()),
        });
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        let value = param.val();
        self.0.push(Described {
            path: self.1.join("."),
            id: param.id.val(),
            shape: value.dims().to_vec(),
            dtype: value.dtype(),
            finite: None,
        });
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        let value = param.val();
        self.0.push(Described {
            path: self.1.join("."),
            id: param.id.val(),
            shape: value.dims().to_vec(),
            dtype: value.dtype(),
            finite: None,
        });
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(cursor: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(u64::from_le_bytes(cursor.get(..8)?.try_into().ok()?)).ok()?;
    let data = cursor.get(8..8usize.checked_add(len)?)?;
    *cursor = &cursor[8 + len..];
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SectionFile<Vec<u32>> {
        SectionFile {
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
        assert_eq!(SectionFile::<Vec<u32>>::load(&path).unwrap(), ck);
        assert_eq!(ck.section("model").unwrap().len(), 100);

        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 10, 20, bytes.len() - 1] {
            let err = SectionFile::<Vec<u32>>::from_bytes(&bytes[..cut], &path).unwrap_err();
            assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(SectionFile::<Vec<u32>>::from_bytes(&bad, &path).is_err());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ck.bin")]);
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = SectionFile::<Vec<u32>>::load(Path::new("/nonexistent/ck.bin")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ck.bin"), "{err}");
    }
}
