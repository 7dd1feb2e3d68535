//! Streaming parse of a TF-Serving `:predict` body: instances are read one by one straight into
//! compact form (flat `f32` values with their shape, or an image's base64 text), their number is
//! checked as they arrive and each numeric instance may hold at most as many values as the model
//! takes, so no request builds a whole JSON document in memory (a 23 MB body once took the
//! server to 2 GB that way). Pure: no HTTP, so the fuzz targets call it as the server does.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::fmt;

/// One instance, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Instance {
    /// Numbers in row-major order and the shape of their nesting.
    Numbers { values: Vec<f32>, shape: Vec<usize> },
    /// `{"b64": ...}`: an encoded image, still base64.
    Image(String),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    pub instances: Vec<Instance>,
    /// Sent as `inputs` (columnar; answered with `outputs`) rather than `instances`.
    pub columnar: bool,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// More instances than `max_instances` (the count at which reading stopped).
    TooMany { limit: usize },
    /// Anything else, in words naming the instance.
    Bad(String),
}

/// Deepest nesting of a numeric instance (`H x W x C` needs 3).
const MAX_DEPTH: usize = 4;

/// Parses `body`, stopping at instance `max_instances + 1` and at value `max_values + 1` of an
/// instance.
pub fn parse_predict(
    body: &[u8],
    max_instances: usize,
    max_values: usize,
) -> Result<PredictRequest, ParseError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Bad(
            "empty request body: send {\"instances\": [...]}".into(),
        ));
    }
    let too_many = Cell::new(false);
    let ctx = Ctx {
        max_instances,
        max_values,
        too_many: &too_many,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = TopSeed(&ctx)
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    match parsed {
        Ok(r) => r,
        Err(_) if too_many.get() => Err(ParseError::TooMany {
            limit: max_instances,
        }),
        Err(e) => Err(ParseError::Bad(format!("JSON Parse error: {e}"))),
    }
}

struct Ctx<'a> {
    max_instances: usize,
    max_values: usize,
    too_many: &'a Cell<bool>,
}

/// The top-level object. Its value is itself a result so that the request-level errors
/// (both or neither of `instances`/`inputs`) read as such, not as JSON errors.
struct TopSeed<'a, 'c>(&'a Ctx<'c>);

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = Result<PredictRequest, ParseError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = Result<PredictRequest, ParseError>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `instances` (a list) or `inputs`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Option<(Vec<Instance>, bool)> = None;
        let mut both = false;
        // Refusals wait until the whole object is read (the parser checks it is well formed).
        let mut refusal = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "instances" | "inputs" => {
                    let columnar = key == "inputs";
                    if found.is_some() {
                        both = true;
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    let list = map.next_value_seed(ListSeed {
                        ctx: self.0,
                        named_ok: columnar,
                    })?;
                    found = Some((list, columnar));
                }
                "signature_name" => {
                    let sig: Option<String> = map.next_value()?;
                    if let Some(sig) = sig.filter(|s| !s.is_empty() && s != "serving_default") {
                        refusal = Some(ParseError::Bad(format!(
                            "Serving signature name: \"{sig}\" not found in signature def; use serving_default"
                        )));
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(r) = refusal {
            return Ok(Err(r));
        }
        if both {
            return Ok(Err(ParseError::Bad(
                "send either `instances` or `inputs`, not both".into(),
            )));
        }
        let Some((instances, columnar)) = found else {
            return Ok(Err(ParseError::Bad(
                "missing 'instances' (a list) in the request body".into(),
            )));
        };
        if instances.is_empty() {
            return Ok(Err(ParseError::Bad("`instances` is empty".into())));
        }
        Ok(Ok(PredictRequest {
            instances,
            columnar,
        }))
    }
}

/// The list of instances (or, for `inputs`, an object holding the one input's list).
struct ListSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
    named_ok: bool,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = Vec<Instance>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = Vec<Instance>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.named_ok {
            f.write_str("`inputs` as a list, or an object with the one input's list")
        } else {
            f.write_str("`instances` as a list")
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        loop {
            if out.len() == self.ctx.max_instances {
                // One more instance is one too many: stop reading here.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    self.ctx.too_many.set(true);
                    return Err(de::Error::custom(format_args!(
                        "more than {} instances in one request (the limit)",
                        self.ctx.max_instances
                    )));
                }
                return Ok(out);
            }
            let at = out.len();
            match seq.next_element_seed(InstanceSeed {
                ctx: self.ctx,
                at,
                named_ok: true,
            })? {
                Some(i) => out.push(i),
                None => return Ok(out),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if !self.named_ok {
            return Err(de::Error::custom("`instances` must be a list"));
        }
        let Some(_name) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "`inputs` must be a list, or an object with the one input's list",
            ));
        };
        let list = map.next_value_seed(ListSeed {
            ctx: self.ctx,
            named_ok: false,
        })?;
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "this model has one input; `inputs` names more than one",
            ));
        }
        Ok(list)
    }
}

/// One instance: numbers, `{"b64": ...}`, or `{"input": <either>}`.
struct InstanceSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
    at: usize,
    named_ok: bool,
}

impl<'de> DeserializeSeed<'de> for InstanceSeed<'_, '_> {
    type Value = Instance;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InstanceSeed<'_, '_> {
    type Value = Instance;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "instance {} as a nested list of numbers or {{\"b64\": <encoded image>}}",
            self.at
        )
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let mut flat = Flat {
            values: Vec::new(),
            dims: Vec::new(),
            leaf: None,
            max_values: self.ctx.max_values,
            at: self.at,
        };
        flat.read_seq(seq, 0)?;
        let shape = match flat.leaf {
            Some(l) => flat.dims[..l].iter().map(|d| d.unwrap_or(0)).collect(),
            None => vec![0],
        };
        Ok(Instance::Numbers {
            values: flat.values,
            shape,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let at = self.at;
        let mut out = None;
        while let Some(key) = map.next_key::<String>()? {
            if out.is_some() {
                return Err(de::Error::custom(format_args!("instance {at}: this model has one input; send the instance itself, {{\"input\": ...}} or {{\"b64\": ...}}")));
            }
            if key == "b64" {
                let b64: String = map.next_value().map_err(|_| {
                    de::Error::custom(format_args!("instance {at}: `b64` must be a string"))
                })?;
                out = Some(Instance::Image(b64));
            } else if self.named_ok {
                out = Some(map.next_value_seed(InstanceSeed {
                    ctx: self.ctx,
                    at,
                    named_ok: false,
                })?);
            } else {
                return Err(de::Error::custom(format_args!(
                    "instance {at}: expected numbers or {{\"b64\": ...}} as the input"
                )));
            }
        }
        out.ok_or_else(|| de::Error::custom(format_args!("instance {at} is an empty object")))
    }
}

/// Flattens one numeric instance, tracking its shape and refusing ragged or oversized ones.
struct Flat {
    values: Vec<f32>,
    /// Length of the lists at each depth, once known.
    dims: Vec<Option<usize>>,
    /// Depth at which numbers sit.
    leaf: Option<usize>,
    max_values: usize,
    at: usize,
}

impl Flat {
    fn read_seq<'de, A: SeqAccess<'de>>(
        &mut self,
        mut seq: A,
        depth: usize,
    ) -> Result<(), A::Error> {
        let at = self.at;
        if depth >= MAX_DEPTH || self.leaf.is_some_and(|l| depth >= l) {
            return Err(de::Error::custom(format_args!(
                "instance {at} mixes numbers and arrays or nests deeper than {MAX_DEPTH} levels"
            )));
        }
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        let mut n = 0usize;
        while seq
            .next_element_seed(ElementSeed {
                flat: &mut *self,
                depth: depth + 1,
            })?
            .is_some()
        {
            n += 1;
        }
        match self.dims[depth] {
            None => self.dims[depth] = Some(n),
            Some(d) if d != n => {
                return Err(de::Error::custom(format_args!(
                    "instance {at} is ragged at depth {depth} ({n} items where others have {d})"
                )))
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn number<E: de::Error>(&mut self, x: f64, depth: usize) -> Result<(), E> {
        let at = self.at;
        match self.leaf {
            None => self.leaf = Some(depth),
            Some(l) if l != depth => {
                return Err(E::custom(format_args!(
                    "instance {at} mixes numbers and arrays at depth {depth}"
                )))
            }
            Some(_) => {}
        }
        if self.values.len() >= self.max_values {
            return Err(E::custom(format_args!(
                "instance {at} has more than {} values, more than this model takes; see GET /v1/models/emotion/metadata for its shape",
                self.max_values
            )));
        }
        let v = x as f32;
        if !v.is_finite() {
            return Err(E::custom(format_args!(
                "instance {at} has a number out of the 32-bit float range"
            )));
        }
        self.values.push(v);
        Ok(())
    }
}

/// One element of a numeric list: a number or a deeper list.
struct ElementSeed<'f> {
    flat: &'f mut Flat,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ElementSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "instance {}: a number or a list", self.flat.at)
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<(), E> {
        self.flat.number(x, self.depth)
    }
    fn visit_i64<E: de::Error>(self, x: i64) -> Result<(), E> {
        self.flat.number(x as f64, self.depth)
    }
    fn visit_u64<E: de::Error>(self, x: u64) -> Result<(), E> {
        self.flat.number(x as f64, self.depth)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.flat.read_seq(seq, self.depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PredictRequest, ParseError> {
        parse_predict(s.as_bytes(), 3, 6)
    }

    #[test]
    fn shapes_forms_and_errors() {
        let r = parse(r#"{"instances": [[[1, 2], [3, 4], [5, 6]]]}"#).unwrap();
        assert_eq!(
            r.instances,
            vec![Instance::Numbers {
                values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                shape: vec![3, 2]
            }]
        );
        assert!(!r.columnar);
        let r = parse(r#"{"inputs": {"input": [{"b64": "aGk="}]}}"#).unwrap();
        assert_eq!(r.instances, vec![Instance::Image("aGk=".into())]);
        assert!(r.columnar);
        let r = parse(r#"{"signature_name": "serving_default", "instances": [{"input": [1]}]}"#)
            .unwrap();
        assert_eq!(
            r.instances[0],
            Instance::Numbers {
                values: vec![1.0],
                shape: vec![1]
            }
        );
        for (body, needle) in [
            (r#"{"instances": [[[1, 2], [3]]]}"#, "ragged"),
            (r#"{"instances": [[1, [2]]]}"#, "mixes"),
            (r#"{"instances": [["a"]]}"#, "instance 0"),
            (r#"{"instances": [[1,2,3,4,5,6,7]]}"#, "more than 6 values"),
            (r#"{"instances": [[[[[[1]]]]]]}"#, "deeper"),
            (r#"{"instances": []}"#, "empty"),
            (r#"{"instances": [[1]], "inputs": [[1]]}"#, "not both"),
            (r#"{"x": 1}"#, "missing"),
            (
                r#"{"signature_name": "x", "instances": [[1]]}"#,
                "not found",
            ),
            (r#"{"instances": [[1e39]]}"#, "32-bit"),
            ("  ", "empty request body"),
            ("{nope", "JSON Parse error"),
        ] {
            match parse(body) {
                Err(ParseError::Bad(m)) => assert!(m.contains(needle), "{body}: {m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn instance_count_is_checked_while_reading() {
        assert_eq!(
            parse(r#"{"instances": [[1], [2], [3], [4]]}"#),
            Err(ParseError::TooMany { limit: 3 })
        );
        // Reading stops at the extra instance: what follows it is never looked at.
        assert_eq!(
            parse(r#"{"instances": [[1], [2], [3], [4], this is not JSON"#),
            Err(ParseError::TooMany { limit: 3 })
        );
        assert_eq!(
            parse(r#"{"instances": [[1], [2], [3]]}"#)
                .unwrap()
                .instances
                .len(),
            3
        );
    }
}
