//! Reading and writing 2-D `.npy` matrices (NumPy format versions 1.0, 2.0 and 3.0).
//!
//! Layout (numpy `lib/format.py`): magic `\x93NUMPY`, major and minor version bytes, header
//! length (u16 little-endian for 1.0, u32 for 2.0/3.0), an ASCII (3.0: UTF-8) Python dict
//! literal `{'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }` padded with spaces and
//! ended by `\n`, then the raw data. Only little-endian `f4`/`f8` 2-D arrays are accepted;
//! Fortran-order data is transposed into row-major order.
use crate::input::Invalid;
use std::path::Path;

use crate::input::InputError;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Element type of a matrix file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }
}

/// A problem found in the bytes: `(header field such as "header.descr", message)`.
pub type ParseError = (Option<String>, String);

/// The parsed header of an `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub dtype: Dtype,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Byte offset of the first data byte.
    pub data_offset: usize,
}

/// Reads a 2-D float matrix: `(rows, cols, row-major values as f64)`.
pub fn read_matrix(path: &Path) -> Result<(usize, usize, Vec<f64>), InputError> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    parse_matrix(&bytes).map_err(|(field, msg)| InputError::new(path, field, msg))
}

/// Parses the bytes of an `.npy` file; errors are `(field, message)`.
pub fn parse_matrix(bytes: &[u8]) -> Result<(usize, usize, Vec<f64>), ParseError> {
    let header = parse_header(bytes)?;
    let (rows, cols) = match header.shape[..] {
        [r, c] => (r, c),
        _ => {
            return Err(field_err(
                "shape",
                format!(
                    "expected a 2-D array, found {} dimensions {:?}",
                    header.shape.len(),
                    header.shape
                ),
            ))
        }
    };
    let count = rows.checked_mul(cols).ok_or_else(|| field_err("shape", "too many elements"))?;
    let size = header.dtype.size();
    let want = count.checked_mul(size).ok_or_else(|| field_err("shape", "too many elements"))?;
    let data = &bytes[header.data_offset..];
    if data.len() != want {
        let what = if data.len() < want { "truncated" } else { "trailing bytes after" };
        return Err((
            None,
            format!(
                "data {what} the array: shape ({rows}, {cols}) of {} needs {want} bytes from byte {}, file has {} (ends at byte {})",
                header.dtype.descr(),
                header.data_offset,
                data.len(),
                bytes.len()
            ),
        ));
    }
    let values: Vec<f64> = match header.dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
    };
    let values =
        if header.fortran_order { transpose_column_major(rows, cols, &values) } else { values };
    Ok((rows, cols, values))
}

/// Column-major `rows x cols` data to row-major order.
fn transpose_column_major(rows: usize, cols: usize, data: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; data.len()];
    for j in 0..cols {
        for i in 0..rows {
            out[i * cols + j] = data[j * rows + i];
        }
    }
    out
}

fn field_err(field: &str, msg: impl Into<String>) -> ParseError {
    (Some(format!("header.{field}")), msg.into())
}

fn plain_err(msg: impl Into<String>) -> ParseError {
    (None, msg.into())
}

/// Parses magic, version, header length and the header dict (numpy `read_array_header_*`).
pub fn parse_header(bytes: &[u8]) -> Result<Header, ParseError> {
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(plain_err("not an .npy file (missing \\x93NUMPY magic at byte 0)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_size, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => {
            return Err(plain_err(format!(
                "unsupported .npy format version {major}.{minor} (byte 6)"
            )))
        }
    };
    let start = 8 + len_size;
    if bytes.len() < start {
        return Err(plain_err(format!(
            "truncated header length at byte 8 (file has {} bytes)",
            bytes.len()
        )));
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let end = start + header_len;
    if bytes.len() < end {
        return Err(plain_err(format!(
            "truncated header: {header_len} header bytes from byte {start} need {end} bytes, file has {}",
            bytes.len()
        )));
    }
    let raw = &bytes[start..end];
    let text = if utf8 {
        std::str::from_utf8(raw).map_err(|e| {
            plain_err(format!("header not UTF-8 at byte {}", start + e.valid_up_to()))
        })?
    } else {
        match raw.iter().position(|b| !b.is_ascii()) {
            Some(i) => return Err(plain_err(format!("header not ASCII at byte {}", start + i))),
            None => std::str::from_utf8(raw).map_err(|_| plain_err("header not ASCII"))?,
        }
    };
    let dict =
        parse_dict(text).map_err(|m| plain_err(format!("header (bytes {start}..{end}): {m}")))?;
    let mut dtype = None;
    let mut fortran = None;
    let mut shape = None;
    for (key, value) in dict {
        match (key.as_str(), value) {
            ("descr", Lit::Str(s)) => dtype = Some(parse_descr(&s)?),
            ("fortran_order", Lit::Bool(b)) => fortran = Some(b),
            ("shape", Lit::Tuple(t)) => shape = Some(t),
            ("descr", _) => return Err(field_err("descr", "expected a string")),
            ("fortran_order", _) => {
                return Err(field_err("fortran_order", "expected True or False"))
            }
            ("shape", _) => return Err(field_err("shape", "expected a tuple of integers")),
            (other, _) => {
                return Err(field_err(&other.escape_debug().to_string(), "unexpected key"))
            }
        }
    }
    Ok(Header {
        dtype: dtype.ok_or_else(|| field_err("descr", "missing"))?,
        fortran_order: fortran.ok_or_else(|| field_err("fortran_order", "missing"))?,
        shape: shape.ok_or_else(|| field_err("shape", "missing"))?,
        data_offset: end,
    })
}

/// `descr`: only little-endian `'<f4'` / `'<f8'`.
fn parse_descr(s: &str) -> Result<Dtype, ParseError> {
    match s {
        "<f4" => Ok(Dtype::F32),
        "<f8" => Ok(Dtype::F64),
        ">f4" | ">f8" => Err(field_err(
            "descr",
            format!("big-endian dtype '{s}' not supported (need '<f4' or '<f8')"),
        )),
        _ => Err(field_err(
            "descr",
            format!("unsupported dtype '{}' (need '<f4' or '<f8')", s.escape_debug()),
        )),
    }
}

/// A value in the header dict.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses the restricted Python dict literal numpy writes (string keys; string, bool or
/// int-tuple values; optional trailing commas).
fn parse_dict(text: &str) -> Result<Vec<(String, Lit)>, Invalid> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    p.expect(b'{')?;
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let value = p.value()?;
        out.push((key, value));
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.ws();
        p.expect(b'}')?;
        break;
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text after the dict at offset {}", p.i).into());
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), Invalid> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at offset {}", c as char, self.i).into())
        }
    }
    fn string(&mut self) -> Result<String, Invalid> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at offset {}", self.i).into()),
        };
        let start = self.i + 1;
        let len = self.s[start..].iter().position(|&c| c == q).ok_or("unterminated string")?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }
    fn value(&mut self) -> Result<Lit, Invalid> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            return Ok(Lit::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.i += 5;
            return Ok(Lit::Bool(false));
        }
        if self.eat(b'(') {
            let mut dims = Vec::new();
            loop {
                self.ws();
                if self.eat(b')') {
                    break;
                }
                dims.push(self.int()?);
                self.ws();
                if !self.eat(b',') {
                    self.ws();
                    self.expect(b')')?;
                    break;
                }
            }
            return Ok(Lit::Tuple(dims));
        }
        self.string().map(Lit::Str)
    }
    fn int(&mut self) -> Result<usize, Invalid> {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        // numpy may write `3L` in very old files.
        self.eat(b'L');
        digits
            .parse()
            .map_err(|_| Invalid(format!("expected a non-negative integer at offset {start}")))
    }
}

/// Writes a row-major `rows x cols` matrix as `.npy` version 1.0, C order, header padded to a
/// multiple of 64 bytes as numpy does.
pub fn write_matrix(
    path: &Path,
    rows: usize,
    cols: usize,
    data: &[f64],
    dtype: Dtype,
) -> std::io::Result<()> {
    std::fs::write(path, encode_matrix(rows, cols, data, dtype)?)
}

/// The bytes [`write_matrix`] writes.
pub fn encode_matrix(
    rows: usize,
    cols: usize,
    data: &[f64],
    dtype: Dtype,
) -> std::io::Result<Vec<u8>> {
    if rows.checked_mul(cols) != Some(data.len()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("matrix data has {} values, shape ({rows}, {cols})", data.len()),
        ));
    }
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}",
        dtype.descr()
    );
    // magic(6) + version(2) + length(2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let header_len_u16 = u16::try_from(header_len).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "npy header too long")
    })?;
    let mut out = Vec::with_capacity(10 + header_len + data.len() * dtype.size());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len_u16.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    match dtype {
        Dtype::F32 => data.iter().for_each(|&x| out.extend_from_slice(&(x as f32).to_le_bytes())),
        Dtype::F64 => data.iter().for_each(|&x| out.extend_from_slice(&x.to_le_bytes())),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> std::path::PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/fid")).join(name)
    }

    fn with_header(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version, 0]);
        let text = format!("{dict}\n");
        if version == 1 {
            out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_numpy_written_golden_file() {
        let (r, c, v) = read_matrix(&golden("identical_a.npy")).unwrap();
        assert_eq!((r, c, v.len()), (1000, 32, 32000));
        assert!(v.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn roundtrip_f32_and_f64() {
        let data: Vec<f64> = (0..12).map(|i| i as f64 * 0.25 - 1.0).collect();
        for dtype in [Dtype::F32, Dtype::F64] {
            let bytes = encode_matrix(3, 4, &data, dtype).unwrap();
            let h = parse_header(&bytes).unwrap();
            assert_eq!(h.data_offset % 64, 0);
            assert_eq!((h.dtype, h.shape.clone()), (dtype, vec![3, 4]));
            assert_eq!(parse_matrix(&bytes).unwrap(), (3, 4, data.clone()));
        }
    }

    #[test]
    fn write_then_read_file() {
        let path = std::env::temp_dir().join(format!("npy_rw_{}.npy", std::process::id()));
        let data = vec![1.5, -2.0, 3.25, 1e-3];
        write_matrix(&path, 2, 2, &data, Dtype::F64).unwrap();
        let got = read_matrix(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got, (2, 2, data));
    }

    #[test]
    fn versions_2_and_3_and_fortran_order() {
        let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        for v in [2, 3] {
            let b = with_header(
                v,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                &data,
            );
            assert_eq!(parse_matrix(&b).unwrap(), (2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        }
        // Column-major 2x3: columns (1,2), (3,4), (5,6).
        let b = with_header(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}", &data);
        assert_eq!(parse_matrix(&b).unwrap(), (2, 3, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]));
    }

    #[test]
    fn wrong_dtype_dims_and_length_are_errors() {
        let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
        let b =
            with_header(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", &data);
        let e = parse_matrix(&b).unwrap_err();
        assert_eq!(e.0.as_deref(), Some("header.descr"));
        assert!(e.1.contains("'<i4'"), "{}", e.1);
        let b =
            with_header(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", &data);
        assert!(parse_matrix(&b).unwrap_err().1.contains("big-endian"));
        let b = with_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", &data);
        let e = parse_matrix(&b).unwrap_err();
        assert_eq!(e.0.as_deref(), Some("header.shape"));
        assert!(e.1.contains("2-D"), "{}", e.1);
        let b =
            with_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", &data);
        let e = parse_matrix(&b).unwrap_err();
        assert!(e.1.contains("truncated") && e.1.contains("needs 24 bytes"), "{}", e.1);
        let b =
            with_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", &data);
        assert!(parse_matrix(&b).unwrap_err().1.contains("trailing bytes"));
        let b = with_header(1, "{'descr': '<f4', 'shape': (2, 2), }", &data);
        assert_eq!(parse_matrix(&b).unwrap_err().0.as_deref(), Some("header.fortran_order"));
    }

    #[test]
    fn bad_magic_and_truncated_header() {
        assert!(parse_matrix(b"PK\x03\x04 zip").unwrap_err().1.contains("magic"));
        let mut b =
            with_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", &[0; 4]);
        b.truncate(30);
        assert!(parse_matrix(&b).unwrap_err().1.contains("truncated header"));
    }

    #[test]
    fn read_error_names_file() {
        let path = std::env::temp_dir().join(format!("npy_bad_{}.npy", std::process::id()));
        std::fs::write(
            &path,
            with_header(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", &[0; 8]),
        )
        .unwrap();
        let e = read_matrix(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
