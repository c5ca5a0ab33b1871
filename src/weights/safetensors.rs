//! A model's own weights as one safetensors file (`model.safetensors`), for bundles, snapshots,
//! GAN nets and tabular models; and the string metadata of such a file's header.
//!
//! Loading parses the file's header once and reads every tensor's bytes in one pass, then hands
//! them to burn-store's `ModuleSnapshot::apply`: burn-store's `SafetensorsStore` parses the whole
//! header again for every tensor it materialises, which is quadratic in the number of tensors (a
//! tabular model has one embedding per categorical column, so thousands of them).

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use burn::module::Module;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Bytes, DType};

use crate::error::{Error, Result};

/// The weight file of a bundle, snapshot or net folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The largest header read (the `safetensors` crate's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// The bytes of `model`'s weights as a safetensors file, with `metadata` in its header.
pub fn weights_bytes<M: Module>(
    model: &M,
    metadata: &[(&str, String)],
    what: &Path,
) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    for (k, v) in metadata {
        store = store.metadata(*k, v.clone());
    }
    model
        .save_into(&mut store)
        .map_err(|e| Error::model(what, e.to_string()))?;
    store
        .get_bytes()
        .map_err(|e| Error::model(what, e.to_string()))
}

/// Writes any model's weights as `model.safetensors` in `dir` (created if needed), replacing
/// the folder's previous weights atomically; streamed to disk, never whole in memory.
pub fn save_weights<M: Module>(dir: &Path, model: &M) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(WEIGHTS_FILE);
    crate::io::write_atomic_with(&path, |tmp| {
        let mut store = SafetensorsStore::from_file(tmp).overwrite(true);
        model
            .save_into(&mut store)
            .map_err(|e| Error::model(&path, e.to_string()))
    })
}

/// Loads `weights` (a safetensors file) strictly into `model`: every tensor present and matching
/// (`what` names the configuration it should match, for the error).
pub fn load_weights<M: Module>(mut model: M, weights: &Path, what: &str) -> Result<M> {
    if !weights.is_file() {
        return Err(Error::model(weights, "weight file missing"));
    }
    let tensors = read_tensors(weights)?;
    let result = model.apply(tensors, None, None, false);
    if !result.missing.is_empty() || !result.errors.is_empty() {
        return Err(Error::model(
            weights,
            format!("does not match {what}: {result}"),
        ));
    }
    Ok(model)
}

/// The string metadata in the header of the safetensors file `path` (its `__metadata__`).
pub fn safetensors_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let (mut file, _) = crate::io::open_regular(path).map_err(|e| Error::io(path, e))?;
    Ok(read_header(path, &mut file)?.metadata)
}

/// One tensor of a safetensors header.
struct Entry {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    /// Byte range in the data section.
    begin: u64,
    end: u64,
}

/// A safetensors header: its tensors, sorted by where their bytes lie, and its metadata.
struct Header {
    entries: Vec<Entry>,
    metadata: HashMap<String, String>,
}

/// Reads and checks the header of the safetensors file `path` (open as `file`, at its start):
/// every tensor's dtype known and its byte range inside the file, of the length its shape
/// needs, not overlapping another's. Leaves `file` at the start of the data section.
fn read_header(path: &Path, file: &mut std::fs::File) -> Result<Header> {
    let bad = |m: &str| Error::model(path, format!("not a safetensors file: {m}"));
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("shorter than its header"))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(bad("header larger than 100 MB"));
    }
    if len > file_len - 8 {
        return Err(bad("truncated header"));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| bad("truncated header"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(&e.to_string()))?;
    let data_len = file_len - 8 - len;
    let mut metadata = HashMap::new();
    let mut entries = Vec::with_capacity(header.len());
    for (name, v) in header {
        if name == "__metadata__" {
            metadata = serde_json::from_value(v)
                .map_err(|e| bad(&format!("`__metadata__` is not a map of strings: {e}")))?;
            continue;
        }
        let field = |k: &str| {
            v.get(k)
                .ok_or_else(|| bad(&format!("tensor \"{name}\" has no `{k}`")))
        };
        let dtype = field("dtype")?.as_str().and_then(dtype_of).ok_or_else(|| {
            bad(&format!(
                "tensor \"{name}\": unsupported `dtype` {}",
                v["dtype"]
            ))
        })?;
        let shape: Vec<usize> = serde_json::from_value(field("shape")?.clone())
            .map_err(|e| bad(&format!("tensor \"{name}\": `shape`: {e}")))?;
        let [begin, end]: [u64; 2] = serde_json::from_value(field("data_offsets")?.clone())
            .map_err(|e| bad(&format!("tensor \"{name}\": `data_offsets`: {e}")))?;
        let need = shape
            .iter()
            .try_fold(dtype.size() as u64, |n, &d| n.checked_mul(d as u64));
        if begin > end || end > data_len || need != Some(end - begin) {
            return Err(bad(&format!(
                "tensor \"{name}\": bytes {begin}..{end} do not fit its shape {shape:?} or the file"
            )));
        }
        entries.push(Entry {
            name,
            dtype,
            shape,
            begin,
            end,
        });
    }
    entries.sort_unstable_by_key(|e| (e.begin, e.end));
    if let Some(w) = entries.windows(2).find(|w| w[1].begin < w[0].end) {
        return Err(bad(&format!(
            "tensors \"{}\" and \"{}\" overlap",
            w[0].name, w[1].name
        )));
    }
    Ok(Header { entries, metadata })
}

/// Every tensor of the safetensors file `path`, read in one pass over the file.
fn read_tensors(path: &Path) -> Result<Vec<PackTensor>> {
    let (mut file, _) = crate::io::open_regular(path).map_err(|e| Error::io(path, e))?;
    let header = read_header(path, &mut file)?;
    let start = file.stream_position().map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut at = 0u64;
    let mut tensors = Vec::with_capacity(header.entries.len());
    for e in header.entries {
        if e.begin != at {
            reader
                .seek(SeekFrom::Start(start + e.begin))
                .map_err(|err| Error::io(path, err))?;
        }
        let mut bytes = vec![0u8; (e.end - e.begin) as usize];
        reader
            .read_exact(&mut bytes)
            .map_err(|err| Error::io(path, err))?;
        at = e.end;
        tensors.push(PackTensor::new(
            e.name,
            e.dtype,
            e.shape,
            None,
            Bytes::from_bytes_vec(bytes),
        ));
    }
    Ok(tensors)
}

/// The burn dtype of a safetensors dtype name.
fn dtype_of(name: &str) -> Option<DType> {
    Some(match name {
        "F64" => DType::F64,
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "I8" => DType::I8,
        "U64" => DType::U64,
        "U32" => DType::U32,
        "U16" => DType::U16,
        "U8" => DType::U8,
        "BOOL" => DType::Bool(burn::tensor::BoolStore::Native),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Embedding, EmbeddingConfig};

    use super::*;

    /// A module of many small tensors, as a wide table's model has.
    #[derive(Module, Debug)]
    struct Many {
        embeds: Vec<Embedding>,
    }

    fn many(n: usize) -> Many {
        let device = crate::device();
        Many {
            embeds: (0..n)
                .map(|_| EmbeddingConfig::new(3, 2).init(&device))
                .collect(),
        }
    }

    fn values(m: &Many, i: usize) -> Vec<f32> {
        m.embeds[i]
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn twenty_thousand_tensors_load_in_one_pass() {
        let saved = many(20_000);
        let dir = tempfile::tempdir().unwrap();
        save_weights(dir.path(), &saved).unwrap();
        let t0 = std::time::Instant::now();
        let loaded = load_weights(many(20_000), &dir.path().join(WEIGHTS_FILE), "Many").unwrap();
        let seconds = t0.elapsed().as_secs_f64();
        for i in [0, 9_999, 19_999] {
            assert_eq!(values(&loaded, i), values(&saved, i), "tensor {i}");
        }
        // Parsing the header once per tensor took minutes here (20 000 × 20 000 entries).
        assert!(seconds < 20.0, "{seconds:.1} s to load 20 000 tensors");
        let e = load_weights(many(3), &dir.path().join(WEIGHTS_FILE), "Many")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.is_none(),
            "extra tensors in the file are not an error: {e:?}"
        );
        let e = load_weights(many(20_001), &dir.path().join(WEIGHTS_FILE), "Many")
            .expect_err("a missing tensor")
            .to_string();
        assert!(
            e.contains("does not match Many") && e.contains("embeds.20000"),
            "{e}"
        );
    }

    #[test]
    fn a_header_whose_offsets_do_not_fit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WEIGHTS_FILE);
        let write = |header: &str, data: usize| {
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend(header.as_bytes());
            bytes.extend(vec![0u8; data]);
            std::fs::write(&path, bytes).unwrap();
        };
        let cases = [
            (
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#,
                12,
                "do not fit",
            ),
            (
                r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#,
                8,
                "do not fit",
            ),
            (
                r#"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#,
                8,
                "dtype",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
                "overlap",
            ),
            ("{not json", 0, "not a safetensors file"),
        ];
        for (header, data, want) in cases {
            write(header, data);
            let e = read_tensors(&path).expect_err(header).to_string();
            assert!(
                e.contains("not a safetensors file") && e.contains(want),
                "{header}: {e}"
            );
        }
        write(
            r#"{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            8,
        );
        assert_eq!(read_tensors(&path).unwrap().len(), 1);
        assert_eq!(safetensors_metadata(&path).unwrap()["k"], "v");
    }
}
