//! FID statistics files as pytorch-fid's `--save-stats` writes them: `np.savez_compressed(path,
//! mu=mu, sigma=sigma)`, a zip archive holding `mu.npy` (d,) and `sigma.npy` (d, d), float64.
//! Entries are read stored or deflated (`np.savez` / `np.savez_compressed`); written stored.
use std::io::{Read, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

use super::npy::{self, Dtype};
use crate::input::InputError;

/// Writes `mu` (d) and row-major `sigma` (d x d) as a pytorch-fid `.npz`.
pub fn write_stats(path: &Path, mu: &[f64], sigma: &[f64]) -> Result<(), InputError> {
    let err = |e: String| InputError::file(path, format!("cannot write: {e}"));
    let d = mu.len();
    let sigma_bytes =
        npy::encode_matrix(d, d, sigma, Dtype::F64).map_err(|e| err(e.to_string()))?;
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (name, bytes) in [("mu.npy", encode_vector(mu)), ("sigma.npy", sigma_bytes)] {
        zip.start_file(name, opts).map_err(|e| err(e.to_string()))?;
        zip.write_all(&bytes).map_err(|e| err(e.to_string()))?;
    }
    zip.finish().map_err(|e| err(e.to_string()))?.flush().map_err(|e| err(e.to_string()))
}

/// Reads `(mu, sigma, d)` from a pytorch-fid `.npz` (float32 or float64 entries).
pub fn read_stats(path: &Path) -> Result<(Vec<f64>, Vec<f64>, usize), InputError> {
    let file = std::fs::File::open(path)
        .map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| InputError::file(path, format!("not an .npz (zip) file: {e}")))?;
    let mut entry = |name: &str| -> Result<(Vec<usize>, Vec<f64>), InputError> {
        let field = format!("{name}.npy");
        let mut f = zip
            .by_name(&field)
            .map_err(|e| InputError::field(path, &field, format!("missing entry: {e}")))?;
        let mut bytes = vec![];
        f.read_to_end(&mut bytes)
            .map_err(|e| InputError::field(path, &field, format!("cannot read: {e}")))?;
        parse_array(&bytes).map_err(|(f, m)| {
            InputError::field(
                path,
                format!("{field}{}", f.map(|f| format!(".{f}")).unwrap_or_default()),
                m,
            )
        })
    };
    let (mu_shape, mu) = entry("mu")?;
    let (sigma_shape, sigma) = entry("sigma")?;
    let d = match mu_shape[..] {
        [d] if d > 0 => d,
        _ => {
            return Err(InputError::field(
                path,
                "mu.npy.header.shape",
                format!("expected (d,), found {mu_shape:?}"),
            ))
        }
    };
    if sigma_shape != [d, d] {
        return Err(InputError::field(
            path,
            "sigma.npy.header.shape",
            format!("expected ({d}, {d}) to match mu, found {sigma_shape:?}"),
        ));
    }
    if let Some(x) = mu.iter().chain(&sigma).find(|x| !x.is_finite()) {
        return Err(InputError::file(path, format!("non-finite value {x}")));
    }
    Ok((mu, sigma, d))
}

/// An `.npy` array of any rank: `(shape, values as f64 in C order)`.
fn parse_array(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), npy::ParseError> {
    let h = npy::parse_header(bytes)?;
    if h.fortran_order && h.shape.len() > 1 {
        return Err((
            Some("header.fortran_order".into()),
            "Fortran-order arrays are not supported here".into(),
        ));
    }
    let count = h
        .shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or((Some("header.shape".into()), "too many elements".into()))?;
    let size = match h.dtype {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
    };
    let data = &bytes[h.data_offset..];
    if count.checked_mul(size) != Some(data.len()) {
        return Err((
            None,
            format!("{} data bytes for shape {:?} of {size}-byte values", data.len(), h.shape),
        ));
    }
    let values = match h.dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    };
    Ok((h.shape, values))
}

/// A float64 vector as `.npy` 1.0 with shape `(d,)`: the bytes of the (1, d) matrix with the
/// shape text rewritten, so the header stays padded to 64 bytes.
fn encode_vector(v: &[f64]) -> Vec<u8> {
    let d = v.len();
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({d},), }}");
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = (dict.len() + pad + 1) as u16;
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
    out
}

/// `(mu, sigma, d)` of a statistics source: an `.npz` as above, or an `.npy` feature matrix
/// (rows = samples) whose statistics are computed.
pub fn load_stats(path: &Path) -> Result<(Vec<f64>, Vec<f64>, usize), InputError> {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
        read_stats(path)
    } else {
        super::fid::file_stats(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_round_trip_through_npz() {
        let dir = std::env::temp_dir().join(format!("npz-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.npz");
        let mu = vec![0.5, -1.25, 3.0];
        let sigma: Vec<f64> = (0..9).map(|i| i as f64 * 0.1).collect();
        write_stats(&path, &mu, &sigma).unwrap();
        let (m, s, d) = read_stats(&path).unwrap();
        assert_eq!((m, s, d), (mu, sigma, 3));
        let bytes = encode_vector(&[1.0, 2.0]);
        assert_eq!(bytes.len() % 64, 16, "64-byte aligned header, then 2 values");
        assert_eq!(npy::parse_header(&bytes).unwrap().shape, vec![2]);
    }

    #[test]
    fn mismatched_sigma_is_named() {
        let dir = std::env::temp_dir().join(format!("npz-test-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.npz");
        write_stats(&path, &[1.0, 2.0], &[1.0, 0.0, 0.0, 1.0]).unwrap();
        // A 2-vector with a 1x1 sigma: rewrite with a wrong sigma by hand.
        let file = std::fs::File::create(&path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        zip.start_file("mu.npy", opts).unwrap();
        zip.write_all(&encode_vector(&[1.0, 2.0])).unwrap();
        zip.start_file("sigma.npy", opts).unwrap();
        zip.write_all(&npy::encode_matrix(1, 1, &[1.0], Dtype::F64).unwrap()).unwrap();
        zip.finish().unwrap();
        let e = read_stats(&path).unwrap_err().to_string();
        assert!(e.contains("sigma.npy.header.shape") && e.contains("(2, 2)"), "{e}");
    }

    /// Files NumPy 2.4 wrote with `savez_compressed` (testdata/make_npz.py): deflated entries.
    fn numpy_file(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
    }

    /// The values make_npz.py writes (exact in binary, also as float32).
    fn expected(d: usize) -> (Vec<f64>, Vec<f64>) {
        let mu = (0..d).map(|i| i as f64 * 0.25 - 1.0).collect();
        let sigma =
            (0..d * d).map(|k| ((k / d) + 1) as f64 * 0.5 + (k % d) as f64 * 0.125).collect();
        (mu, sigma)
    }

    #[test]
    fn reads_numpy_savez_compressed_as_pytorch_fid_writes_it() {
        let path = numpy_file("fid_stats_compressed.npz");
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(zip.by_name("sigma.npy").unwrap().compression(), CompressionMethod::Deflated);
        let (mu, sigma, d) = read_stats(&path).unwrap();
        assert_eq!(d, 6);
        assert_eq!((mu, sigma), expected(6));
    }

    #[test]
    fn reads_compressed_float32_and_ignores_extra_entries() {
        let (mu, sigma, d) = read_stats(&numpy_file("fid_stats_compressed_f32.npz")).unwrap();
        assert_eq!((d, (mu, sigma)), (6, expected(6)));
        let (mu, sigma, d) = read_stats(&numpy_file("fid_stats_extra_entry.npz")).unwrap();
        assert_eq!((d, (mu, sigma)), (6, expected(6)));
    }
}
