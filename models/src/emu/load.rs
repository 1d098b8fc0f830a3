//! Strict checkpoint loading (emu-model.md §2): safetensors (memory-mapped; the safetensors crate
//! checks the header against the file) or PyTorch zip pickles (read by the bounded
//! [`super::pickle::PthFile`]), official key names under either LLaMA prefix,
//! Emu-I LoRA factors merged at load, and every missing, unexpected or mis-shaped key reported by
//! name. The model's constructors ask for weights through a `VarBuilder` backed by [`Checkpoint`].
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;

use super::config::LoraConfig;
use crate::pickle;

/// Prefix of the LLaMA in Emu-I (peft-wrapped) checkpoints.
pub const PEFT_PREFIX: &str = "decoder.lm.base_model.model.";
/// Prefix of the LLaMA in pretrained checkpoints.
pub const LM_PREFIX: &str = "decoder.lm.";

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: {1}")]
    Io(String, String),
    #[error(transparent)]
    Pickle(#[from] pickle::PickleError),
    #[error("{0}: {1}")]
    Format(String, String),
    #[error("{0}: unexpected key(s) not used by the model: {1}")]
    Unexpected(String, String),
    #[error("{0}: keys `{1}` and `{2}` both map to `{3}`")]
    Duplicate(String, String, String, String),
    #[error("no weights given and {0} holds no single checkpoint (model.safetensors, *.safetensors, *.pt, *.bin, *.pth); use --weights")]
    NoWeights(String),
}

/// Unused tensors of the official checkpoint that a loader tolerates (emu-model.md §2.2/§2.3).
pub fn is_ignorable(canonical: &str) -> bool {
    canonical.ends_with(".rotary_emb.inv_freq")
        || canonical.starts_with("visual.head.")
        || canonical.starts_with("visual.norm.")
        || canonical == "cformer.cformer.embed_tokens.weight"
}

/// Maps a checkpoint key to the model's canonical name: `decoder.lm.base_model.model.` →
/// `decoder.lm.`, peft ≥ 0.7 `…_proj.base_layer.weight` → `…_proj.weight`. LoRA factors come back
/// as `Lora(base weight name, is_b)`.
#[derive(Debug, PartialEq)]
pub enum KeyKind {
    Plain(String),
    Lora(String, bool),
}

pub fn canonical_key(key: &str) -> KeyKind {
    let key = match key.strip_prefix(PEFT_PREFIX) {
        Some(rest) => format!("{LM_PREFIX}{rest}"),
        None => key.to_string(),
    };
    for (tag, is_b) in [(".lora_A", false), (".lora_B", true)] {
        if let Some(pos) = key.find(tag) {
            let rest = &key[pos + tag.len()..];
            // `.weight` or `.<adapter>.weight`
            if rest == ".weight"
                || (rest.starts_with('.')
                    && rest.len() > 8
                    && rest.ends_with(".weight")
                    && !rest[1..rest.len() - 7].contains('.'))
            {
                return KeyKind::Lora(format!("{}.weight", &key[..pos]), is_b);
            }
        }
    }
    match key.strip_suffix(".base_layer.weight") {
        Some(base) => KeyKind::Plain(format!("{base}.weight")),
        None => KeyKind::Plain(key),
    }
}

enum Store {
    Safetensors(candle_core::safetensors::MmapedSafetensors),
    Pth(pickle::PthFile),
}

/// What loading found beyond the model's weights.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub path: PathBuf,
    /// Ignorable keys present in the file (not loaded).
    pub ignored: Vec<String>,
    /// Number of weights with a LoRA update merged in.
    pub lora_merged: usize,
}

/// An opened checkpoint: canonical name → file key, LoRA pairs, shapes, usage tracking.
pub struct Checkpoint {
    store: Store,
    origin: String,
    keys: HashMap<String, String>,
    shapes: HashMap<String, Vec<usize>>,
    lora: HashMap<String, (Option<String>, Option<String>)>,
    lora_cfg: Option<LoraConfig>,
    used: Mutex<HashSet<String>>,
}

impl Checkpoint {
    /// Opens `path` (`.safetensors` memory-mapped, anything else as a PyTorch zip pickle).
    pub fn open(path: &Path, lora_cfg: Option<LoraConfig>) -> Result<Self, LoadError> {
        let origin = path.display().to_string();
        let is_st = path.extension().is_some_and(|e| e == "safetensors");
        let (store, raw): (Store, Vec<(String, Vec<usize>)>) = if is_st {
            // SAFETY: the file is mapped read-only; it must not be modified while loaded.
            let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }
                .map_err(|e| LoadError::Format(origin.clone(), e.to_string()))?;
            let raw = st.tensors().into_iter().map(|(k, v)| (k, v.shape().to_vec())).collect();
            (Store::Safetensors(st), raw)
        } else {
            let pth = pickle::PthFile::open(path, pickle::Limits::DEFAULT)?;
            if pth.is_empty() {
                return Err(LoadError::Format(origin, "no tensors found".into()));
            }
            let raw = pth.infos().map(|(k, _, shape)| (k.clone(), shape.to_vec())).collect();
            (Store::Pth(pth), raw)
        };
        // DDP `module.` prefix on every key.
        let strip_module = !raw.is_empty() && raw.iter().all(|(k, _)| k.starts_with("module."));
        let mut keys = HashMap::new();
        let mut shapes = HashMap::new();
        let mut lora: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
        for (file_key, shape) in raw {
            let k = if strip_module { &file_key["module.".len()..] } else { file_key.as_str() };
            shapes.insert(file_key.clone(), shape);
            match canonical_key(k) {
                KeyKind::Plain(c) => {
                    if let Some(prev) = keys.insert(c.clone(), file_key.clone()) {
                        return Err(LoadError::Duplicate(origin, prev, file_key, c));
                    }
                }
                KeyKind::Lora(c, is_b) => {
                    let slot = lora.entry(c.clone()).or_default();
                    let dst = if is_b { &mut slot.1 } else { &mut slot.0 };
                    if let Some(prev) = dst.replace(file_key.clone()) {
                        return Err(LoadError::Duplicate(origin, prev, file_key, c));
                    }
                }
            }
        }
        Ok(Self { store, origin, keys, shapes, lora, lora_cfg, used: Mutex::new(HashSet::new()) })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Canonical names with their file shapes (LoRA factors excluded).
    pub fn canonical_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        self.keys.iter().map(|(c, f)| (c.clone(), self.shapes[f].clone())).collect()
    }

    /// Every key of the file as stored (LoRA factors included).
    pub fn file_keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.shapes.keys().cloned().collect();
        k.sort();
        k
    }

    /// Stored dtype and shape of a file key, without reading its data.
    pub fn file_dtype_shape(&self, file_key: &str) -> candle_core::Result<(DType, Vec<usize>)> {
        match &self.store {
            Store::Safetensors(st) => {
                let v = st.get(file_key)?;
                let dtype = match v.dtype() {
                    safetensors::Dtype::F32 => DType::F32,
                    safetensors::Dtype::F16 => DType::F16,
                    safetensors::Dtype::BF16 => DType::BF16,
                    safetensors::Dtype::F64 => DType::F64,
                    safetensors::Dtype::U8 => DType::U8,
                    safetensors::Dtype::I64 => DType::I64,
                    safetensors::Dtype::U32 => DType::U32,
                    other => candle_core::bail!("{file_key}: unsupported dtype {other:?}"),
                };
                Ok((dtype, v.shape().to_vec()))
            }
            Store::Pth(p) => {
                p.info(file_key).map(|(dtype, shape)| (dtype, shape.to_vec())).ok_or_else(|| {
                    candle_core::Error::Msg(format!("{}: no key {file_key}", self.origin))
                })
            }
        }
    }

    /// Reads a tensor by its file key, in its stored dtype, on the CPU.
    pub fn read_file_key(&self, file_key: &str) -> candle_core::Result<Tensor> {
        match &self.store {
            Store::Safetensors(st) => st.load(file_key, &Device::Cpu),
            Store::Pth(p) => p.get(file_key),
        }
    }

    /// Loads canonical `name` with the LoRA update merged (f32 merge), without shape checks.
    fn load_merged(&self, name: &str) -> candle_core::Result<Tensor> {
        let file_key = self.keys.get(name).ok_or_else(|| {
            candle_core::Error::Msg(format!("{}: missing key `{name}`", self.origin))
        })?;
        let w = self.read_file_key(file_key)?;
        let Some((a, b)) = self.lora.get(name) else { return Ok(w) };
        let (Some(a), Some(b)) = (a, b) else {
            return Err(candle_core::Error::Msg(format!(
                "{}: LoRA for `{name}` lacks its A or B factor",
                self.origin
            )));
        };
        let a = self.read_file_key(a)?.to_dtype(DType::F32)?; // (r, in)
        let b = self.read_file_key(b)?.to_dtype(DType::F32)?; // (out, r)
        let (r, inp) = a.dims2()?;
        let (out, r2) = b.dims2()?;
        let (wo, wi) = w.dims2()?;
        if r != r2 || inp != wi || out != wo {
            return Err(candle_core::Error::Msg(format!(
                "{}: LoRA for `{name}`: A {:?} / B {:?} do not fit weight {:?}",
                self.origin,
                a.dims(),
                b.dims(),
                w.dims()
            )));
        }
        let cfg = self.lora_cfg.clone().unwrap_or(LoraConfig { r: 16, lora_alpha: 16.0 });
        if cfg.r != r {
            return Err(candle_core::Error::Msg(format!(
                "{}: LoRA for `{name}` has rank {r}, the configuration says {}",
                self.origin, cfg.r
            )));
        }
        let dtype = w.dtype();
        (w.to_dtype(DType::F32)? + (b.matmul(&a)? * cfg.scaling())?)?.to_dtype(dtype)
    }

    /// After the model is built: errors on unexpected keys, returns the ignorable ones.
    pub fn finish(&self) -> Result<LoadReport, LoadError> {
        let used = self
            .used
            .lock()
            .map_err(|_| LoadError::Format(self.origin.clone(), "poisoned".into()))?;
        let mut ignored = Vec::new();
        let mut unexpected = Vec::new();
        for (c, f) in &self.keys {
            if used.contains(c) {
                continue;
            }
            if is_ignorable(c) {
                ignored.push(f.clone());
            } else {
                unexpected.push(f.clone());
            }
        }
        let mut lora_merged = 0;
        for (c, (a, b)) in &self.lora {
            if used.contains(c) {
                lora_merged += 1;
            } else {
                unexpected.extend(a.iter().chain(b.iter()).cloned());
            }
        }
        if !unexpected.is_empty() {
            unexpected.sort();
            return Err(LoadError::Unexpected(self.origin.clone(), unexpected.join(", ")));
        }
        ignored.sort();
        Ok(LoadReport { path: PathBuf::from(&self.origin), ignored, lora_merged })
    }
}

impl SimpleBackend for Checkpoint {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        // Shape and dtype from the header, checked before any data is read.
        if let Some(file_key) = self.keys.get(name) {
            let (stored, dims) = self.file_dtype_shape(file_key)?;
            if dims != s.dims() {
                return Err(candle_core::Error::Msg(format!(
                    "{}: key `{file_key}` has shape {dims:?}, the configuration expects {:?}",
                    self.origin,
                    s.dims()
                )));
            }
            if !stored.is_float() {
                return Err(candle_core::Error::Msg(format!(
                    "{}: key `{file_key}` is stored as {stored:?}, the model expects a floating-point weight",
                    self.origin
                )));
            }
        }
        let t = self.get_unchecked(name, dtype, dev)?;
        if t.shape() != &s {
            let file_key = self.keys.get(name).map(String::as_str).unwrap_or(name);
            return Err(candle_core::Error::Msg(format!(
                "{}: key `{file_key}` has shape {:?}, the configuration expects {:?}",
                self.origin,
                t.dims(),
                s.dims()
            )));
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let t = self.load_merged(name)?;
        if let Ok(mut used) = self.used.lock() {
            used.insert(name.to_string());
        }
        t.to_dtype(dtype)?.to_device(dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }
}

/// Picks the checkpoint file of a model directory: `model.safetensors`, else the only
/// `*.safetensors` (safetensors win over pickles), else the only `*.pt`/`*.bin`/`*.pth`.
pub fn find_weights(dir: &Path) -> Result<PathBuf, LoadError> {
    let origin = dir.display().to_string();
    let preferred = dir.join("model.safetensors");
    if preferred.is_file() {
        return Ok(preferred);
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| LoadError::Io(origin.clone(), e.to_string()))?;
    let files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    let with_ext = |exts: &[&str]| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.contains(&e)))
            .cloned()
            .collect()
    };
    let st = with_ext(&["safetensors"]);
    if st.len() == 1 {
        return Ok(st[0].clone());
    }
    if st.is_empty() {
        for name in ["model.pt", "pytorch_model.bin"] {
            if dir.join(name).is_file() {
                return Ok(dir.join(name));
            }
        }
        let pt = with_ext(&["pt", "bin", "pth"]);
        if pt.len() == 1 {
            return Ok(pt[0].clone());
        }
    }
    Err(LoadError::NoWeights(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keys_cover_peft_variants() {
        let p = |s: &str| KeyKind::Plain(s.to_string());
        let q = "decoder.lm.model.layers.3.self_attn.q_proj.weight";
        assert_eq!(
            canonical_key("decoder.lm.base_model.model.model.layers.3.self_attn.q_proj.weight"),
            p(q)
        );
        assert_eq!(
            canonical_key(
                "decoder.lm.base_model.model.model.layers.3.self_attn.q_proj.base_layer.weight"
            ),
            p(q)
        );
        assert_eq!(
            canonical_key(
                "decoder.lm.base_model.model.model.layers.3.self_attn.q_proj.lora_A.default.weight"
            ),
            KeyKind::Lora(q.to_string(), false)
        );
        assert_eq!(
            canonical_key(
                "decoder.lm.base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight"
            ),
            KeyKind::Lora(q.to_string(), true)
        );
        assert_eq!(canonical_key("visual.cls_token"), p("visual.cls_token"));
        assert!(is_ignorable("decoder.lm.model.layers.0.self_attn.rotary_emb.inv_freq"));
        assert!(!is_ignorable("decoder.lm.model.norm.weight"));
    }
}
