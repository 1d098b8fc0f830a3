//! The last guard before a result is written: the first NaN or infinite number anywhere in a
//! `Serialize` value, with its JSON path. serde_json writes such numbers as `null`, which a
//! reader cannot tell from a missing value, so every JSON output is checked with [`check`].
use std::fmt;

use serde::ser::{self, Serialize};

/// A non-finite number at `path` (`rounds[3].ndcg`; empty for a bare number).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{value} is not a finite number", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct NonFinite {
    pub path: String,
    pub value: f64,
}

/// `Err` naming the first non-finite `f32`/`f64` in `v`, depth first in serialization order.
/// Values that fail to serialize for other reasons pass (their writer reports them).
pub fn check<T: Serialize + ?Sized>(v: &T) -> Result<(), NonFinite> {
    let mut c = Checker { path: String::new() };
    match v.serialize(&mut c) {
        Err(Stop::NonFinite(e)) => Err(e),
        Ok(()) | Err(Stop::Other) => Ok(()),
    }
}

#[derive(Debug)]
enum Stop {
    NonFinite(NonFinite),
    Other,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::NonFinite(e) => e.fmt(f),
            Stop::Other => f.write_str("not serializable"),
        }
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop::Other
    }
}

struct Checker {
    path: String,
}

impl Checker {
    fn float(&self, x: f64) -> Result<(), Stop> {
        if x.is_finite() {
            Ok(())
        } else {
            let path = self.path.trim_start_matches('.').to_owned();
            Err(Stop::NonFinite(NonFinite { path, value: x }))
        }
    }

    /// Runs `f` with `segment` appended to the path.
    fn under<T: Serialize + ?Sized>(&mut self, segment: &str, v: &T) -> Result<(), Stop> {
        let len = self.path.len();
        self.path.push_str(segment);
        let r = v.serialize(&mut *self);
        self.path.truncate(len);
        r
    }
}

/// A map key as the path shows it: the JSON string without quotes.
fn key_text<K: Serialize + ?Sized>(k: &K) -> String {
    let text = serde_json::to_string(k).unwrap_or_else(|_| "?".into());
    format!(".{}", text.trim_matches('"'))
}

/// Sequence-like containers: elements are `[i]`.
struct Seq<'a> {
    c: &'a mut Checker,
    i: usize,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        let segment = format!("[{}]", self.i);
        self.i += 1;
        self.c.under(&segment, v)
    }
}

macro_rules! seq_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Stop;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
                self.element(v)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    };
}
seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

/// Maps and structs: entries are `.key`.
struct Map<'a> {
    c: &'a mut Checker,
    key: String,
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Stop> {
        self.key = key_text(k);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        let key = std::mem::take(&mut self.key);
        self.c.under(&key, v)
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

macro_rules! struct_impl {
    ($trait:ident) => {
        impl ser::$trait for Map<'_> {
            type Ok = ();
            type Error = Stop;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                k: &'static str,
                v: &T,
            ) -> Result<(), Stop> {
                self.c.under(&format!(".{k}"), v)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    };
}
struct_impl!(SerializeStruct);
struct_impl!(SerializeStructVariant);

macro_rules! ok_scalars {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, _: $t) -> Result<(), Stop> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for &'a mut Checker {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Map<'a>;
    type SerializeStructVariant = Map<'a>;

    ok_scalars!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8], serialize_unit_struct: &'static str);

    fn serialize_f32(self, x: f32) -> Result<(), Stop> {
        self.float(x as f64)
    }
    fn serialize_f64(self, x: f64) -> Result<(), Stop> {
        self.float(x)
    }
    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Stop> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        self.under(&format!(".{variant}"), v)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Stop> {
        Ok(Seq { c: self, i: 0 })
    }
    fn serialize_tuple(self, _: usize) -> Result<Seq<'a>, Stop> {
        Ok(Seq { c: self, i: 0 })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Seq<'a>, Stop> {
        Ok(Seq { c: self, i: 0 })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Seq<'a>, Stop> {
        Ok(Seq { c: self, i: 0 })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Map<'a>, Stop> {
        Ok(Map { c: self, key: String::new() })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Map<'a>, Stop> {
        Ok(Map { c: self, key: String::new() })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Map<'a>, Stop> {
        Ok(Map { c: self, key: String::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Serialize)]
    struct Round {
        ndcg: Option<f64>,
        ranks: Vec<f32>,
    }

    #[derive(serde::Serialize)]
    struct Scores {
        mean: f64,
        rounds: Vec<Round>,
    }

    #[test]
    fn finite_values_and_nulls_pass() {
        let r = Scores { mean: 1.5, rounds: vec![Round { ndcg: None, ranks: vec![1.0] }] };
        assert_eq!(check(&r), Ok(()));
        assert_eq!(check(&json!({"a": [1, 2.5, null, "x"]})), Ok(()));
    }

    #[test]
    fn the_first_non_finite_number_is_named_by_its_path() {
        let r = Scores {
            mean: 0.5,
            rounds: vec![
                Round { ndcg: Some(0.1), ranks: vec![1.0] },
                Round { ndcg: Some(f64::NAN), ranks: vec![f32::INFINITY] },
            ],
        };
        let e = check(&r).unwrap_err();
        assert_eq!(e.path, "rounds[1].ndcg");
        assert_eq!(e.to_string(), "rounds[1].ndcg: NaN is not a finite number");
        let e = check(&vec![(String::from("k"), 1.0), (String::from("z"), f64::NEG_INFINITY)]);
        assert_eq!(e.unwrap_err().path, "[1][1]");
        let mut m = std::collections::BTreeMap::new();
        m.insert("yes/no", f64::INFINITY);
        assert_eq!(check(&m).unwrap_err().to_string(), "yes/no: inf is not a finite number");
        assert_eq!(check(&f64::NAN).unwrap_err().to_string(), "NaN is not a finite number");
    }
}
