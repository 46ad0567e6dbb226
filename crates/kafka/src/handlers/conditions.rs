//! Conveyor's conditional-append record headers in Kafka's words:
//! `conveyor.expected-offset` and `conveyor.expected-key-offset`, decimal,
//! read off the records of a produced batch and turned into the core's
//! `AppendCondition`s. Knows the header names and their syntax; the check
//! itself (and the key index) is the core's.

use conveyor_core::append_condition::{AppendCondition, Expectation};
use conveyor_log::batch::whole_batches;
use conveyor_log::record::record_views;

/// The record gets exactly this offset in its partition.
pub const EXPECTED_OFFSET: &str = "conveyor.expected-offset";
/// The latest record with the record's key in its partition is at this
/// offset (`-1`: no record has the key yet).
pub const EXPECTED_KEY_OFFSET: &str = "conveyor.expected-key-offset";

/// What both names begin with: a batch without it has no conditions, and
/// its records are not walked.
const PREFIX: &[u8] = b"conveyor.expected-";

/// The conditions the records of `records` (whole batches as produced)
/// carry, by their position among the records of uncompressed batches —
/// the positions the core counts. A compressed batch's headers are not
/// read (the broker does not decompress). An unparsable value is an error
/// naming the record.
pub fn conditions_of(records: &[u8]) -> Result<Vec<AppendCondition>, String> {
    if memchr::memmem::find(records, PREFIX).is_none() {
        return Ok(Vec::new());
    }
    let mut conditions = Vec::new();
    let mut record = 0;
    for (_, batch) in whole_batches(records) {
        if let Ok(views) = record_views(batch) {
            for view in views {
                for (name, value) in &view.headers {
                    let expectation = match *name {
                        name if name == EXPECTED_OFFSET.as_bytes() => {
                            let offset = decimal(EXPECTED_OFFSET, record, *value)?;
                            let offset = u64::try_from(offset)
                                .map_err(|_| format!("record {record}: {EXPECTED_OFFSET} must be 0 or more, not {offset}"))?;
                            Expectation::Offset(offset)
                        }
                        name if name == EXPECTED_KEY_OFFSET.as_bytes() => match decimal(EXPECTED_KEY_OFFSET, record, *value)? {
                            -1 => Expectation::KeyOffset(None),
                            offset => Expectation::KeyOffset(Some(
                                u64::try_from(offset)
                                    .map_err(|_| format!("record {record}: {EXPECTED_KEY_OFFSET} must be -1 or more, not {offset}"))?,
                            )),
                        },
                        _ => continue,
                    };
                    conditions.push(AppendCondition { record, expectation });
                }
                record += 1;
            }
        }
    }
    Ok(conditions)
}

fn decimal(name: &str, record: usize, value: Option<&[u8]>) -> Result<i64, String> {
    let text = value
        .and_then(|value| std::str::from_utf8(value).ok())
        .ok_or_else(|| format!("record {record}: {name} must be a decimal offset"))?;
    text.trim()
        .parse::<i64>()
        .map_err(|_| format!("record {record}: {name} must be a decimal offset, not {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_log::record::{BatchBuilder, Record};

    #[test]
    fn headers_become_conditions_on_their_records_position() {
        let mut builder = BatchBuilder::new(1);
        builder.push(Record::new(Some(b"a".to_vec()), None));
        builder.push(
            Record::new(Some(b"a".to_vec()), None)
                .with_header(EXPECTED_OFFSET, Some(b"7".to_vec()))
                .with_header(EXPECTED_KEY_OFFSET, Some(b"-1".to_vec())),
        );
        let mut second = BatchBuilder::new(1);
        second.push(Record::new(None, None).with_header(EXPECTED_KEY_OFFSET, Some(b"12".to_vec())));
        let bytes = [builder.build(), second.build()].concat();
        assert_eq!(
            conditions_of(&bytes),
            Ok(vec![
                AppendCondition {
                    record: 1,
                    expectation: Expectation::Offset(7)
                },
                AppendCondition {
                    record: 1,
                    expectation: Expectation::KeyOffset(None)
                },
                AppendCondition {
                    record: 2,
                    expectation: Expectation::KeyOffset(Some(12))
                },
            ])
        );
    }

    #[test]
    fn a_value_that_is_not_an_offset_is_refused_with_the_record_named() {
        for value in [&b"seven"[..], b"-2", b""] {
            let mut builder = BatchBuilder::new(1);
            builder.push(Record::new(None, None).with_header(EXPECTED_KEY_OFFSET, Some(value.to_vec())));
            let error = conditions_of(&builder.build()).expect_err("refused");
            assert!(error.contains("record 0") && error.contains(EXPECTED_KEY_OFFSET), "{error}");
        }
        let mut builder = BatchBuilder::new(1);
        builder.push(Record::new(None, None).with_header(EXPECTED_OFFSET, Some(b"-1".to_vec())));
        assert!(conditions_of(&builder.build()).is_err());
    }

    #[test]
    fn records_without_the_headers_have_no_conditions() {
        let mut builder = BatchBuilder::new(1);
        builder.push(Record::new(Some(b"conveyor.expected-offset".to_vec()), None).with_header("other", None));
        assert_eq!(conditions_of(&builder.build()), Ok(vec![]));
    }
}
