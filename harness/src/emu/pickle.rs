//! Safety check for PyTorch zip checkpoints before `candle_core::pickle` reads them.
//!
//! `candle_core::pickle` interprets pickles in Rust and never runs Python code, but it silently
//! skips dict entries whose callable it does not know. A checkpoint must be a plain state dict, so
//! every `data.pkl` is walked opcode by opcode with candle's interpreter and any global outside
//! the tensor-rebuild whitelist (or any opcode candle does not implement) is refused.
use std::io::{BufRead, Read};
use std::path::Path;

use candle_core::pickle::{Object, Stack};

/// Globals a `torch.save(state_dict)` pickle may reference.
pub const ALLOWED_GLOBALS: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "DoubleStorage"),
    ("torch", "LongStorage"),
    ("torch", "ByteStorage"),
];

#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("{0}: not a PyTorch zip checkpoint: {1}")]
    NotZip(String, String),
    #[error("{0}: {1}: refused global `{2}.{3}` (only tensor storage and torch rebuild helpers are allowed)")]
    Refused(String, String, String, String),
    #[error("{0}: {1}: unsupported pickle content: {2}")]
    Unsupported(String, String, String),
    #[error("{0}: no data.pkl inside the archive")]
    NoPickle(String),
}

/// Checks every `*.pkl` member of the zip at `path` against [`ALLOWED_GLOBALS`].
pub fn check_pth(path: &Path) -> Result<(), PickleError> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| PickleError::NotZip(origin.clone(), e.to_string()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| PickleError::NotZip(origin.clone(), e.to_string()))?;
    let names: Vec<String> = zip.file_names().filter_map(|s| s.ok().map(|s| s.into_owned())).collect();
    let mut seen = false;
    for name in names.iter().filter(|n| n.ends_with(".pkl")) {
        seen = true;
        let mut bytes = Vec::new();
        zip.by_name(name)
            .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
            .map_err(|e| PickleError::Unsupported(origin.clone(), name.clone(), e.to_string()))?;
        check_pickle_bytes(&bytes).map_err(|e| match e {
            GuardError::Refused(m, c) => PickleError::Refused(origin.clone(), name.clone(), m, c),
            GuardError::Other(m) => PickleError::Unsupported(origin.clone(), name.clone(), m),
        })?;
    }
    if !seen {
        return Err(PickleError::NoPickle(origin));
    }
    Ok(())
}

#[derive(Debug)]
pub enum GuardError {
    Refused(String, String),
    Other(String),
}

/// Walks one pickle stream; refuses any `GLOBAL` outside the whitelist.
pub fn check_pickle_bytes(bytes: &[u8]) -> Result<(), GuardError> {
    let mut reader = std::io::BufReader::new(bytes);
    let mut stack = Stack::empty();
    loop {
        let next = reader.fill_buf().map_err(|e| GuardError::Other(e.to_string()))?.first().copied();
        let Some(op) = next else {
            return Err(GuardError::Other("pickle ends without STOP".into()));
        };
        let done = stack.read(&mut reader).map_err(|e| GuardError::Other(e.to_string()))?;
        if op == b'c' {
            match stack.stack().last() {
                Some(Object::Class { module_name, class_name }) => {
                    if !ALLOWED_GLOBALS.iter().any(|(m, c)| m == module_name && c == class_name) {
                        return Err(GuardError::Refused(module_name.clone(), class_name.clone()));
                    }
                }
                _ => return Err(GuardError::Other("GLOBAL did not produce a class".into())),
            }
        }
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"x": os.system("echo hi")}` as protocol 2 pickle.
    fn evil() -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}', b'X'];
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(b'x');
        p.extend_from_slice(b"cposix\nsystem\n");
        p.push(b'X');
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"echo hi");
        p.extend_from_slice(&[0x85, b'R', b's', b'.']);
        p
    }

    #[test]
    fn refuses_foreign_global() {
        match check_pickle_bytes(&evil()) {
            Err(GuardError::Refused(m, c)) => assert_eq!((m.as_str(), c.as_str()), ("posix", "system")),
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    #[test]
    fn accepts_plain_dict_and_fixture() {
        let p = [0x80, 2, b'}', b'.'];
        assert!(check_pickle_bytes(&p).is_ok());
        let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/emu-tiny/");
        check_pth(&Path::new(fx).join("model.pt")).unwrap();
        check_pth(&Path::new(fx).join("dtype_probe.pt")).unwrap();
    }
}
