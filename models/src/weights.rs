//! Strict checkpoint loading: a `VarBuilder` backend over a flat state dict that records which
//! keys the model asked for, so that missing keys (construction fails) and unexpected keys
//! ([`Weights::finish`]) are both one-line errors naming the file.
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::pickle::{Limits, PthFile};
use crate::ModelError;

/// A loaded state dict (safetensors, or a PyTorch zip checkpoint `.bin`/`.pth`/`.pt`).
pub struct Weights {
    path: PathBuf,
    tensors: Arc<HashMap<String, Tensor>>,
    used: Arc<Mutex<HashSet<String>>>,
}

impl Weights {
    /// Reads every tensor of `path`: safetensors (the crate checks the header against the file),
    /// or a PyTorch zip checkpoint through the bounded [`crate::pickle`] reader, which allows only
    /// a state dict's globals and checks every storage and view before reading data.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let err = |e: candle_core::Error| {
            ModelError::weights(path, format!("cannot read: {}", first_line(&e)))
        };
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let tensors: HashMap<String, Tensor> = if is_safetensors {
            candle_core::safetensors::load(path, &Device::Cpu).map_err(err)?
        } else {
            let pth = PthFile::open(path, Limits::DEFAULT)?;
            let names: Vec<String> = pth.infos().map(|(k, _, _)| k.clone()).collect();
            names
                .into_iter()
                .map(|k| Ok((k.clone(), pth.get(&k).map_err(err)?)))
                .collect::<Result<_, ModelError>>()?
        };
        if tensors.is_empty() {
            return Err(ModelError::weights(path, "no tensors"));
        }
        Ok(Self { path: path.to_owned(), tensors: Arc::new(tensors), used: Default::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }

    /// A `VarBuilder` reading from this state dict (tensors converted to `dtype` on `device`).
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        let backend = Tracked { tensors: self.tensors.clone(), used: self.used.clone() };
        VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
    }

    /// Maps a model-construction error to a one-line error naming this file (a missing key or a
    /// shape mismatch).
    pub fn construction_error(&self, e: candle_core::Error) -> ModelError {
        ModelError::weights(&self.path, first_line(&e))
    }

    /// Fails on keys the model did not read, except those `ignore` accepts.
    pub fn finish(&self, ignore: impl Fn(&str) -> bool) -> Result<(), ModelError> {
        let used = self
            .used
            .lock()
            .map_err(|_| ModelError::weights(&self.path, "key tracker poisoned"))?;
        let mut unexpected: Vec<&String> =
            self.tensors.keys().filter(|k| !used.contains(*k) && !ignore(k)).collect();
        unexpected.sort();
        match unexpected.as_slice() {
            [] => Ok(()),
            [first, ..] => Err(ModelError::weights(
                &self.path,
                format!("{} unexpected key(s), first `{first}`", unexpected.len()),
            )),
        }
    }
}

/// First line of a candle error (candle appends backtraces on later lines).
pub(crate) fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

struct Tracked {
    tensors: Arc<HashMap<String, Tensor>>,
    used: Arc<Mutex<HashSet<String>>>,
}

impl Tracked {
    fn fetch(&self, name: &str) -> candle_core::Result<&Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("missing key `{name}`")))?;
        if let Ok(mut used) = self.used.lock() {
            used.insert(name.to_owned());
        }
        Ok(t)
    }
}

impl candle_nn::var_builder::SimpleBackend for Tracked {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("missing key `{name}`")))?;
        if t.shape() != &s {
            candle_core::bail!("`{name}`: shape {:?}, the model expects {:?}", t.dims(), s.dims());
        }
        self.fetch(name)?.to_device(dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.fetch(name)?.to_device(dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}
