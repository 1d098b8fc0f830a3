//! What every scorer's result offers besides its JSON: the headline value on the paper's scale
//! and per-sample scores, so that `run`, `score` and reports read one type.
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether a result carries its per-sample lists (per image, question or round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Aggregate values only.
    Aggregate,
    /// Aggregate values and one entry per input item.
    PerSample,
}

impl Detail {
    pub fn per_sample(self) -> bool {
        self == Detail::PerSample
    }
}

/// A result's headline metric on the scale of the paper's tables (`spec/paper-results.md`):
/// CIDEr x 100, accuracies in %, NDCG x 100, WUPS x 100. `value` is `None` where the metric is
/// undefined (no scored item, no dense relevance).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Headline {
    /// The metric's name, as `registry::Metric::name` spells it.
    pub name: &'static str,
    pub value: Option<f64>,
}

/// The common reading of every scorer's result.
pub trait MetricResult {
    fn headline(&self) -> Headline;
    /// Each input item's score on the headline scale, in input order; `None` for an item without
    /// one (CIDEr is corpus-level). `None` overall when the result was built with
    /// [`Detail::Aggregate`].
    fn per_sample(&self) -> Option<Vec<Option<f64>>>;
    /// Drops the per-sample lists, as if built with [`Detail::Aggregate`] (e.g. after
    /// `per_sample`, for an aggregate-only summary).
    fn clear_per_sample(&mut self);
}

/// Reads `null` as NaN: serde_json writes a NaN `f64` as `null`, so this makes such values
/// read back.
pub fn null_as_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// `Some(x)` unless `x` is NaN.
pub fn finite_or_none(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

/// A JSON object whose keys are data (answer types, question types), in a given order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Keyed<T>(pub Vec<(String, T)>);

impl<T> Keyed<T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Keyed<U> {
        Keyed(self.0.iter().map(|(k, v)| (k.clone(), f(v))).collect())
    }
}

impl<T: Serialize> Serialize for Keyed<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Keyed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Keyed<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Keyed<T>, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(entry) = a.next_entry()? {
                    out.push(entry);
                }
                Ok(Keyed(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct X {
        #[serde(deserialize_with = "null_as_nan")]
        v: f64,
    }

    #[test]
    fn nan_round_trips_through_null() {
        let s = serde_json::to_string(&X { v: f64::NAN }).unwrap();
        assert_eq!(s, r#"{"v":null}"#);
        assert!(serde_json::from_str::<X>(&s).unwrap().v.is_nan());
        assert_eq!(serde_json::from_str::<X>(r#"{"v":1.5}"#).unwrap().v, 1.5);
    }

    #[test]
    fn keyed_keeps_order() {
        let k = Keyed(vec![("z".to_owned(), 1.0), ("a".to_owned(), 2.5)]);
        let s = serde_json::to_string(&k).unwrap();
        assert_eq!(s, r#"{"z":1.0,"a":2.5}"#);
        assert_eq!(serde_json::from_str::<Keyed<f64>>(&s).unwrap(), k);
        assert_eq!(k.get("a"), Some(&2.5));
    }
}
