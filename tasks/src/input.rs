//! Reading user input: one error type that names the file and the field or position.
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// An error a user can cause: bad file, bad JSON, missing or mistyped field.
/// Displays as one line: `FILE: FIELD: MESSAGE` (field omitted when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub file: PathBuf,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line whatever the input echoed into the message: line breaks are escaped.
        let esc = |t: &str| t.replace('\n', "\\n").replace('\r', "\\r");
        match &self.field {
            Some(field) => {
                write!(f, "{}: {}: {}", self.file.display(), esc(field), esc(&self.message))
            }
            None => write!(f, "{}: {}", self.file.display(), esc(&self.message)),
        }
    }
}

impl std::error::Error for InputError {}

impl InputError {
    pub fn new(
        file: impl Into<PathBuf>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self { file: file.into(), field, message: message.into() }
    }
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self::new(file, None, message)
    }
    pub fn field(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(file, Some(field.into()), message)
    }
}

/// A value that fails a check; the caller names the file and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(s: String) -> Self {
        Invalid(s)
    }
}

impl From<&str> for Invalid {
    fn from(s: &str) -> Self {
        Invalid(s.to_owned())
    }
}

/// Reads a whole file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String, InputError> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        InputError::file(path, format!("not UTF-8 (byte offset {})", e.utf8_error().valid_up_to()))
    })
}

/// Parses JSON text; a syntax error names line and column.
pub fn parse_json(path: &Path, text: &str) -> Result<Value, InputError> {
    serde_json::from_str(text).map_err(|e| {
        InputError::file(
            path,
            format!("malformed JSON at line {} column {}: {}", e.line(), e.column(), e),
        )
    })
}

/// Reads and parses a JSON file.
pub fn read_json(path: &Path) -> Result<Value, InputError> {
    parse_json(path, &read_text(path)?)
}

/// Typed access to JSON values that reports the field path (`images[3].references[1]`).
pub struct Json<'a> {
    pub file: &'a Path,
}

impl<'a> Json<'a> {
    pub fn new(file: &'a Path) -> Self {
        Self { file }
    }
    pub fn err(&self, field: &str, message: impl Into<String>) -> InputError {
        InputError::field(self.file, field, message)
    }
    fn type_err(&self, field: &str, want: &str, got: &Value) -> InputError {
        self.err(field, format!("expected {want}, found {}", type_name(got)))
    }
    /// `obj[key]`, required; `field` is the path of the object itself ("" for the root).
    pub fn get<'v>(&self, obj: &'v Value, field: &str, key: &str) -> Result<&'v Value, InputError> {
        let path = join(field, key);
        let map =
            obj.as_object().ok_or_else(|| self.type_err(field_or_root(field), "an object", obj))?;
        map.get(key).ok_or_else(|| self.err(&path, "missing field"))
    }
    /// `obj[key]`, optional (absent or null gives None).
    pub fn opt<'v>(
        &self,
        obj: &'v Value,
        field: &str,
        key: &str,
    ) -> Result<Option<&'v Value>, InputError> {
        let map =
            obj.as_object().ok_or_else(|| self.type_err(field_or_root(field), "an object", obj))?;
        Ok(map.get(key).filter(|v| !v.is_null()))
    }
    pub fn str<'v>(&self, v: &'v Value, field: &str) -> Result<&'v str, InputError> {
        v.as_str().ok_or_else(|| self.type_err(field, "a string", v))
    }
    pub fn f64(&self, v: &Value, field: &str) -> Result<f64, InputError> {
        v.as_f64().ok_or_else(|| self.type_err(field, "a number", v))
    }
    pub fn i64(&self, v: &Value, field: &str) -> Result<i64, InputError> {
        v.as_i64().ok_or_else(|| self.type_err(field, "an integer", v))
    }
    pub fn u64(&self, v: &Value, field: &str) -> Result<u64, InputError> {
        v.as_u64().ok_or_else(|| self.type_err(field, "a non-negative integer", v))
    }
    /// A non-negative integer that must fit 32 bits (the type the official format uses); larger
    /// values are errors, never truncated.
    pub fn u32(&self, v: &Value, field: &str) -> Result<u32, InputError> {
        let n = self.u64(v, field)?;
        u32::try_from(n).map_err(|_| {
            self.err(field, format!("{n} does not fit a 32-bit integer (at most {})", u32::MAX))
        })
    }
    pub fn array<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Vec<Value>, InputError> {
        v.as_array().ok_or_else(|| self.type_err(field, "an array", v))
    }
    /// An array of strings.
    pub fn strings(&self, v: &Value, field: &str) -> Result<Vec<String>, InputError> {
        self.array(v, field)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.str(x, &format!("{field}[{i}]")).map(str::to_owned))
            .collect()
    }
    /// An array of numbers.
    pub fn f64s(&self, v: &Value, field: &str) -> Result<Vec<f64>, InputError> {
        self.array(v, field)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.f64(x, &format!("{field}[{i}]")))
            .collect()
    }
    /// An array of integers.
    pub fn i64s(&self, v: &Value, field: &str) -> Result<Vec<i64>, InputError> {
        self.array(v, field)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.i64(x, &format!("{field}[{i}]")))
            .collect()
    }
}

/// `a.b` or `a[3]`-style path building.
pub fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_owned()
    } else {
        format!("{field}.{key}")
    }
}

/// `field[i]`.
pub fn index(field: &str, i: usize) -> String {
    format!("{field}[{i}]")
}

fn field_or_root(field: &str) -> &str {
    if field.is_empty() {
        "(root)"
    } else {
        field
    }
}

/// JSON type name for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_field_names_path() {
        let p = Path::new("f.json");
        let j = Json::new(p);
        let v = json!({"images": [{"candidate": 3}]});
        let img = &v["images"][0];
        let e = j.get(img, "images[0]", "references").unwrap_err();
        assert_eq!(e.to_string(), "f.json: images[0].references: missing field");
        let e = j
            .str(j.get(img, "images[0]", "candidate").unwrap(), "images[0].candidate")
            .unwrap_err();
        assert_eq!(e.to_string(), "f.json: images[0].candidate: expected a string, found a number");
    }

    #[test]
    fn u32_fields_are_never_truncated() {
        let j = Json::new(Path::new("p.json"));
        assert_eq!(j.u32(&json!(4294967295u64), "r").unwrap(), u32::MAX);
        let e = j.u32(&json!(4294967297u64), "[0].ranks[3]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.json: [0].ranks[3]: 4294967297 does not fit a 32-bit integer (at most 4294967295)"
        );
    }

    #[test]
    fn malformed_json_names_position() {
        let e = parse_json(Path::new("x.json"), "{\"a\": [1,\n 2,}").unwrap_err();
        assert!(e.to_string().starts_with("x.json: malformed JSON at line 2 column"), "{e}");
    }
}
