//! AMQP 0-9-1 field-table values, as far as exchanges need them: binding
//! arguments and the message headers a headers exchange matches. Knows the
//! value types (one variant per AMQP field type, so a front door maps them
//! one to one) and two equalities: identity, for telling bindings apart, and
//! RabbitMQ's matching equality. Knows no wire encoding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A field table: binding arguments, message headers. Ordered by name, so
/// equal tables compare equal and serialize the same way.
pub type FieldTable = BTreeMap<String, HeaderValue>;

/// One AMQP field-table value.
///
/// `PartialEq`/`Eq` are *identity*: same type and same value (floats by
/// bits, so a NaN argument still identifies its binding). Matching a headers
/// binding uses [`HeaderValue::matches`] instead, which is RabbitMQ's looser,
/// type-aware equality.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HeaderValue {
    /// No value. In a headers binding: "the header must be present".
    Void,
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// AMQP decimal: `value / 10^scale`.
    Decimal {
        scale: u8,
        value: u32,
    },
    /// Seconds since the epoch.
    Timestamp(u64),
    /// A short or long string that is valid UTF-8.
    String(String),
    /// A byte array, or a long string that is not UTF-8.
    Bytes(Vec<u8>),
    Array(Vec<HeaderValue>),
    Table(FieldTable),
}

/// A number as RabbitMQ (Erlang) compares it: integers exactly, floats as
/// floats, an integer equal to a float when they denote the same number.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn equals(self, other: Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            (Number::Int(i), Number::Float(f)) | (Number::Float(f), Number::Int(i)) => int_equals_float(i, f),
        }
    }
}

/// Exact comparison: `1 == 1.0`, `2^53 + 1 != 2^53 as f64`.
fn int_equals_float(i: i128, f: f64) -> bool {
    // Every integer variant fits in i64, so anything beyond ±2^64 is unequal;
    // inside that range a whole float converts to i128 exactly.
    const BOUND: f64 = 18_446_744_073_709_551_616.0; // 2^64
    if !f.is_finite() || f.fract() != 0.0 || f.abs() >= BOUND {
        return false;
    }
    #[allow(clippy::cast_possible_truncation)] // Whole and within ±2^64: exact.
    let whole = f as i128;
    whole == i
}

impl HeaderValue {
    fn number(&self) -> Option<Number> {
        let number = match *self {
            HeaderValue::I8(v) => Number::Int(v.into()),
            HeaderValue::U8(v) => Number::Int(v.into()),
            HeaderValue::I16(v) => Number::Int(v.into()),
            HeaderValue::U16(v) => Number::Int(v.into()),
            HeaderValue::I32(v) => Number::Int(v.into()),
            HeaderValue::U32(v) => Number::Int(v.into()),
            HeaderValue::I64(v) => Number::Int(v.into()),
            // RabbitMQ decodes a timestamp to a plain integer.
            HeaderValue::Timestamp(v) => Number::Int(v.into()),
            HeaderValue::F32(v) => Number::Float(v.into()),
            HeaderValue::F64(v) => Number::Float(v),
            _ => return None,
        };
        Some(number)
    }

    fn octets(&self) -> Option<&[u8]> {
        match self {
            HeaderValue::String(s) => Some(s.as_bytes()),
            HeaderValue::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Whether it is an AMQP integer of any width (not a timestamp).
    pub fn is_integer(&self) -> bool {
        matches!(
            self,
            HeaderValue::I8(_)
                | HeaderValue::U8(_)
                | HeaderValue::I16(_)
                | HeaderValue::U16(_)
                | HeaderValue::I32(_)
                | HeaderValue::U32(_)
                | HeaderValue::I64(_)
        )
    }

    /// RabbitMQ's name of the value's field type, as its error messages
    /// give it (`{unacceptable_type,longstr}`).
    pub fn type_name(&self) -> &'static str {
        match self {
            HeaderValue::Void => "void",
            HeaderValue::Bool(_) => "bool",
            HeaderValue::I8(_) => "byte",
            HeaderValue::U8(_) => "unsignedbyte",
            HeaderValue::I16(_) => "short",
            HeaderValue::U16(_) => "unsignedshort",
            HeaderValue::I32(_) => "signedint",
            HeaderValue::U32(_) => "unsignedint",
            HeaderValue::I64(_) => "long",
            HeaderValue::F32(_) => "float",
            HeaderValue::F64(_) => "double",
            HeaderValue::Decimal { .. } => "decimal",
            HeaderValue::Timestamp(_) => "timestamp",
            HeaderValue::String(_) => "longstr",
            HeaderValue::Bytes(_) => "binary",
            HeaderValue::Array(_) => "array",
            HeaderValue::Table(_) => "table",
        }
    }

    /// RabbitMQ's equality for headers matching (Erlang's `==` on decoded
    /// values): numbers compare by value whatever their width or signedness
    /// (`I8(1)` matches `I64(1)` and `F64(1.0)`; a timestamp is a number);
    /// strings and byte arrays compare by bytes; booleans by value; decimals,
    /// arrays and tables structurally, types included, as RabbitMQ keeps the
    /// type tags inside nested values. `Void` matches only `Void` here; a void
    /// *binding argument* means "present", which the matcher handles.
    pub fn matches(&self, other: &HeaderValue) -> bool {
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return a.equals(b);
        }
        if let (Some(a), Some(b)) = (self.octets(), other.octets()) {
            return a == b;
        }
        self == other
    }
}

impl PartialEq for HeaderValue {
    fn eq(&self, other: &HeaderValue) -> bool {
        use HeaderValue as V;
        match (self, other) {
            (V::Void, V::Void) => true,
            (V::Bool(a), V::Bool(b)) => a == b,
            (V::I8(a), V::I8(b)) => a == b,
            (V::U8(a), V::U8(b)) => a == b,
            (V::I16(a), V::I16(b)) => a == b,
            (V::U16(a), V::U16(b)) => a == b,
            (V::I32(a), V::I32(b)) => a == b,
            (V::U32(a), V::U32(b)) => a == b,
            (V::I64(a), V::I64(b)) => a == b,
            (V::F32(a), V::F32(b)) => a.to_bits() == b.to_bits(),
            (V::F64(a), V::F64(b)) => a.to_bits() == b.to_bits(),
            (V::Decimal { scale: sa, value: va }, V::Decimal { scale: sb, value: vb }) => sa == sb && va == vb,
            (V::Timestamp(a), V::Timestamp(b)) => a == b,
            (V::String(a), V::String(b)) => a == b,
            (V::Bytes(a), V::Bytes(b)) => a == b,
            (V::Array(a), V::Array(b)) => a == b,
            (V::Table(a), V::Table(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for HeaderValue {}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> HeaderValue {
        HeaderValue::String(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_different_widths_match_by_value() {
        assert!(HeaderValue::I8(1).matches(&HeaderValue::I64(1)));
        assert!(HeaderValue::U32(7).matches(&HeaderValue::I16(7)));
        assert!(HeaderValue::Timestamp(5).matches(&HeaderValue::I64(5)));
        assert!(!HeaderValue::I32(-1).matches(&HeaderValue::U32(u32::MAX)));
    }

    #[test]
    fn an_integer_matches_the_float_of_the_same_number_only() {
        assert!(HeaderValue::I32(1).matches(&HeaderValue::F64(1.0)));
        assert!(HeaderValue::F32(2.0).matches(&HeaderValue::U8(2)));
        assert!(!HeaderValue::I32(1).matches(&HeaderValue::F64(1.5)));
        assert!(!HeaderValue::I64(i64::MAX).matches(&HeaderValue::F64(f64::NAN)));
        assert!(!HeaderValue::I64((1 << 53) + 1).matches(&HeaderValue::F64(9_007_199_254_740_992.0)));
    }

    #[test]
    fn strings_match_byte_arrays_with_the_same_bytes() {
        assert!(HeaderValue::from("eu").matches(&HeaderValue::Bytes(b"eu".to_vec())));
        assert!(!HeaderValue::from("eu").matches(&HeaderValue::from("us")));
        assert!(!HeaderValue::from("1").matches(&HeaderValue::I32(1)));
    }

    #[test]
    fn booleans_never_match_numbers() {
        assert!(HeaderValue::Bool(true).matches(&HeaderValue::Bool(true)));
        assert!(!HeaderValue::Bool(true).matches(&HeaderValue::I8(1)));
    }

    #[test]
    fn identity_tells_widths_apart_and_is_reflexive_for_nan() {
        assert_ne!(HeaderValue::I8(1), HeaderValue::I64(1));
        assert_eq!(HeaderValue::F64(f64::NAN), HeaderValue::F64(f64::NAN));
        let table = FieldTable::from([("k".to_owned(), HeaderValue::Array(vec![HeaderValue::Void]))]);
        assert_eq!(HeaderValue::Table(table.clone()), HeaderValue::Table(table));
    }
}
