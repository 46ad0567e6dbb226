//! Model-based test of the partition log: random sequences of appends, reads,
//! time lookups, rolls, retention runs and close-and-reopen cycles run against
//! the real log and against an in-memory model (segments of batches with their
//! offsets, bytes and record timestamps). After every step the log must agree
//! with the model on offsets, bounds, segment layout and every byte it serves.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use conveyor_log::batch::{self, check_batch};
use conveyor_log::clock::ManualClock;
use conveyor_log::record::{BatchBuilder, Record};
use conveyor_log::{Durability, Log, LogConfig, LogError, ReadOutcome};
use proptest::prelude::*;
use proptest::sample::Index;

const START_MS: i64 = 1_700_000_000_000;

/// One batch to append: per record, a timestamp relative to the clock and a value.
#[derive(Debug, Clone)]
struct BatchSpec {
    records: Vec<(i64, Vec<u8>)>,
}

#[derive(Debug, Clone)]
enum Op {
    /// One append call carrying one or more concatenated batches.
    Append(Vec<BatchSpec>),
    /// A read at an offset picked in `[0, high_watermark + 4)`, so reads below
    /// the start offset (after retention) and past the end happen too.
    Read {
        offset: Index,
        max_bytes: usize,
        min_one: bool,
    },
    /// `offset_for_timestamp` at the clock's time plus this.
    TimeLookup(i64),
    Roll,
    /// Moves the clock, sets these retention limits and enforces retention.
    Retention {
        advance_ms: i64,
        retention_ms: Option<i64>,
        retention_bytes: Option<u64>,
    },
    /// Closes the log and opens it again from its directory.
    Reopen,
}

fn arb_batch() -> impl Strategy<Value = BatchSpec> {
    proptest::collection::vec((-5_000i64..5_000, proptest::collection::vec(any::<u8>(), 0..160)), 1..8)
        .prop_map(|records| BatchSpec { records })
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec(arb_batch(), 1..=3).prop_map(Op::Append),
        4 => (any::<Index>(), prop_oneof![0usize..120, 0usize..3_000, Just(1usize << 20)], any::<bool>())
            .prop_map(|(offset, max_bytes, min_one)| Op::Read { offset, max_bytes, min_one }),
        2 => (-7_000i64..7_000).prop_map(Op::TimeLookup),
        1 => Just(Op::Roll),
        2 => (0i64..20_000, proptest::option::of(0i64..20_000), proptest::option::of(0u64..12_000))
            .prop_map(|(advance_ms, retention_ms, retention_bytes)| Op::Retention { advance_ms, retention_ms, retention_bytes }),
        1 => Just(Op::Reopen),
    ]
}

fn arb_config() -> impl Strategy<Value = LogConfig> {
    (
        200u64..6_000,
        1_000i64..60_000,
        1u32..2_000,
        prop_oneof![
            Just(Durability::Always),
            Just(Durability::Never),
            Just(Durability::Interval(Duration::from_millis(2)))
        ],
    )
        .prop_map(|(segment_bytes, segment_ms, index_interval_bytes, durability)| LogConfig {
            segment_bytes,
            segment_ms,
            retention_ms: None,
            retention_bytes: None,
            index_interval_bytes,
            durability,
            log_append_time: false,
            // The writer also enforces retention on its own every interval of
            // real time; an hour keeps that out of the test, which enforces it
            // explicitly with the manual clock.
            retention_check_interval_ms: 3_600_000,
            reserve_bytes: 0,
        })
}

#[derive(Debug, Clone)]
struct ModelBatch {
    base_offset: u64,
    /// The bytes as appended, with the base offset the log must assign.
    bytes: Bytes,
    /// Timestamp of each record, in offset order.
    timestamps_ms: Vec<i64>,
}

impl ModelBatch {
    fn last_offset(&self) -> u64 {
        self.base_offset + self.timestamps_ms.len() as u64 - 1
    }

    fn max_timestamp_ms(&self) -> i64 {
        self.timestamps_ms.iter().copied().max().unwrap_or(i64::MIN)
    }
}

#[derive(Debug, Clone)]
struct ModelSegment {
    base_offset: u64,
    bytes: u64,
    batches: Vec<ModelBatch>,
}

impl ModelSegment {
    fn new(base_offset: u64) -> ModelSegment {
        ModelSegment {
            base_offset,
            bytes: 0,
            batches: Vec::new(),
        }
    }

    fn max_timestamp_ms(&self) -> i64 {
        self.batches.iter().map(ModelBatch::max_timestamp_ms).max().unwrap_or(i64::MIN)
    }
}

/// What the log should hold: Kafka's rules for rolling and retention written
/// out plainly over a list of segments.
#[derive(Debug)]
struct Model {
    config: LogConfig,
    segments: Vec<ModelSegment>,
    next_offset: u64,
    active_created_ms: i64,
}

impl Model {
    fn start_offset(&self) -> u64 {
        self.segments[0].base_offset
    }

    fn active(&mut self) -> &mut ModelSegment {
        self.segments.last_mut().expect("the model always has an active segment")
    }

    fn roll(&mut self, now_ms: i64) {
        if self.active().bytes > 0 {
            let base = self.next_offset;
            self.segments.push(ModelSegment::new(base));
            self.active_created_ms = now_ms;
        }
    }

    /// Appends batches (each with base offset 0); returns the expected base offset.
    fn append(&mut self, batches: &[Bytes], timestamps_ms: &[Vec<i64>], now_ms: i64) -> u64 {
        let incoming: u64 = batches.iter().map(|batch| batch.len() as u64).sum();
        let active_bytes = self.active().bytes;
        let full = active_bytes + incoming > self.config.segment_bytes;
        let old = now_ms - self.active_created_ms >= self.config.segment_ms;
        if active_bytes > 0 && (full || old) {
            self.roll(now_ms);
        }
        let first = self.next_offset;
        for (bytes, timestamps_ms) in batches.iter().zip(timestamps_ms) {
            let mut bytes = bytes.to_vec();
            batch::set_base_offset(&mut bytes, self.next_offset as i64);
            let model_batch = ModelBatch {
                base_offset: self.next_offset,
                bytes: bytes.into(),
                timestamps_ms: timestamps_ms.clone(),
            };
            self.next_offset = model_batch.last_offset() + 1;
            let active = self.active();
            active.bytes += model_batch.bytes.len() as u64;
            active.batches.push(model_batch);
        }
        first
    }

    /// Kafka's retention: drop the oldest sealed segments whose newest record
    /// is older than `retention_ms`, then the oldest sealed segments while what
    /// remains is at least `retention_bytes`. Returns how many were dropped.
    fn enforce_retention(&mut self, now_ms: i64) -> usize {
        let sealed = self.segments.len() - 1;
        let mut delete = 0;
        if let Some(retention_ms) = self.config.retention_ms {
            while delete < sealed && now_ms - self.segments[delete].max_timestamp_ms() > retention_ms {
                delete += 1;
            }
        }
        if let Some(retention_bytes) = self.config.retention_bytes {
            let mut total: u64 = self.segments[delete..].iter().map(|segment| segment.bytes).sum();
            while delete < sealed && total - self.segments[delete].bytes >= retention_bytes {
                total -= self.segments[delete].bytes;
                delete += 1;
            }
        }
        self.segments.drain(..delete);
        delete
    }

    /// What `read(offset, max_bytes, min_one)` must return: an error outside
    /// `[start, high watermark]`, nothing at the high watermark, else whole
    /// batches from the one holding `offset`, as many of its segment's as fit.
    fn read(&self, offset: u64, max_bytes: usize, min_one: bool) -> Result<Vec<u8>, (u64, u64)> {
        if offset < self.start_offset() || offset > self.next_offset {
            return Err((self.start_offset(), self.next_offset));
        }
        let mut out = Vec::new();
        let Some(segment) = self.segments.iter().rev().find(|segment| segment.base_offset <= offset) else {
            return Ok(out);
        };
        let batches = segment.batches.iter().skip_while(|batch| batch.last_offset() < offset);
        for (index, batch) in batches.enumerate() {
            if out.len() + batch.bytes.len() <= max_bytes || (index == 0 && min_one) {
                out.extend_from_slice(&batch.bytes);
            } else {
                break;
            }
        }
        Ok(out)
    }

    /// The first record (in offset order) with a timestamp at or after `timestamp_ms`.
    fn offset_for_timestamp(&self, timestamp_ms: i64) -> Option<(u64, i64)> {
        self.segments
            .iter()
            .flat_map(|segment| &segment.batches)
            .flat_map(|batch| (batch.base_offset..).zip(batch.timestamps_ms.iter().copied()))
            .find(|&(_, timestamp)| timestamp >= timestamp_ms)
    }

    fn batch_count(&self) -> usize {
        self.segments.iter().map(|segment| segment.batches.len()).sum()
    }
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    log: Log,
    model: Model,
}

impl Harness {
    fn new(config: LogConfig) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = ManualClock::new(START_MS);
        let log = Log::open_with_clock(dir.path(), config.clone(), clock.clone()).expect("open a new log");
        Harness {
            dir,
            clock,
            log,
            model: Model {
                config,
                segments: vec![ModelSegment::new(0)],
                next_offset: 0,
                active_created_ms: START_MS,
            },
        }
    }

    fn now_ms(&self) -> i64 {
        use conveyor_log::clock::Clock;
        self.clock.now_ms()
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Append(specs) => {
                let now_ms = self.now_ms();
                let mut batches = Vec::new();
                let mut timestamps = Vec::new();
                for spec in specs {
                    let (batch, batch_timestamps) = build_batch(spec, now_ms);
                    batches.push(batch);
                    timestamps.push(batch_timestamps);
                }
                let expected_base = self.model.append(&batches, &timestamps, now_ms);
                let appended = self.log.append(batches.concat().into()).wait().expect("append");
                prop_assert_eq!(appended.base_offset, expected_base, "offsets are assigned consecutively");
                prop_assert_eq!(appended.last_offset, self.model.next_offset - 1);
                prop_assert_eq!(appended.log_start_offset, self.model.start_offset());
            }
            Op::Read {
                offset,
                max_bytes,
                min_one,
            } => {
                let offset = offset.index(self.model.next_offset as usize + 4) as u64;
                self.check_read(offset, *max_bytes, *min_one)?;
            }
            Op::TimeLookup(delta_ms) => {
                let timestamp_ms = self.now_ms() + delta_ms;
                let found = self.log.offset_for_timestamp(timestamp_ms).expect("time lookup");
                prop_assert_eq!(found, self.model.offset_for_timestamp(timestamp_ms), "lookup of {}", timestamp_ms);
            }
            Op::Roll => {
                self.log.roll().expect("roll");
                self.model.roll(self.now_ms());
            }
            Op::Retention {
                advance_ms,
                retention_ms,
                retention_bytes,
            } => {
                self.clock.advance_ms(*advance_ms);
                self.model.config.retention_ms = *retention_ms;
                self.model.config.retention_bytes = *retention_bytes;
                self.log.set_config(self.model.config.clone()).expect("set config");
                let before = self.log.segment_base_offsets();
                let deleted = self.log.enforce_retention().expect("retention");
                let after = self.log.segment_base_offsets();
                prop_assert!(deleted < before.len(), "retention never deletes the active segment");
                prop_assert_eq!(&before[deleted..], &after[..], "retention deletes a prefix of whole segments");
                prop_assert_eq!(
                    deleted,
                    self.model.enforce_retention(self.now_ms()),
                    "segments deleted by retention"
                );
            }
            Op::Reopen => {
                self.log.close().expect("close");
                self.log = Log::open_with_clock(self.dir.path(), self.model.config.clone(), self.clock.clone()).expect("reopen");
                // A reopened log starts timing its active segment's age afresh.
                self.model.active_created_ms = self.now_ms();
            }
        }
        self.check_bounds()?;
        self.check_scan()?;
        if matches!(op, Op::Roll | Op::Retention { .. } | Op::Reopen) {
            self.check_every_offset()?;
        }
        Ok(())
    }

    fn check_bounds(&self) -> Result<(), TestCaseError> {
        prop_assert_eq!(self.log.high_watermark(), self.model.next_offset, "high watermark");
        prop_assert_eq!(self.log.start_offset(), self.model.start_offset(), "start offset");
        let bases: Vec<u64> = self.model.segments.iter().map(|segment| segment.base_offset).collect();
        prop_assert_eq!(self.log.segment_base_offsets(), bases, "segment layout");
        Ok(())
    }

    fn check_read(&self, offset: u64, max_bytes: usize, min_one: bool) -> Result<(), TestCaseError> {
        let got = self.log.read(offset, max_bytes, min_one);
        match (self.model.read(offset, max_bytes, min_one), got) {
            (
                Ok(expected),
                Ok(ReadOutcome {
                    bytes,
                    high_watermark,
                    log_start_offset,
                }),
            ) => {
                prop_assert_eq!(high_watermark, self.model.next_offset);
                prop_assert_eq!(log_start_offset, self.model.start_offset());
                check_whole_batches(&bytes)?;
                prop_assert!(
                    bytes[..] == expected[..],
                    "read({}, {}, {}) served {} bytes, the model expects {}",
                    offset,
                    max_bytes,
                    min_one,
                    bytes.len(),
                    expected.len()
                );
            }
            (
                Err((start, end)),
                Err(LogError::OffsetOutOfRange {
                    offset: got,
                    start: got_start,
                    end: got_end,
                }),
            ) => {
                prop_assert_eq!((got, got_start, got_end), (offset, start, end));
            }
            (expected, got) => {
                prop_assert!(
                    false,
                    "read({}, {}, {}): model {:?}, log {:?}",
                    offset,
                    max_bytes,
                    min_one,
                    expected.map(|bytes| bytes.len()),
                    got
                );
            }
        }
        Ok(())
    }

    /// Reads the whole log front to back, each read continuing after the last
    /// batch served, and checks that the batches seen are exactly the model's.
    fn check_scan(&self) -> Result<(), TestCaseError> {
        let mut offset = self.model.start_offset();
        let mut batches_seen = 0;
        while offset < self.model.next_offset {
            prop_assert!(
                batches_seen < self.model.batch_count(),
                "the scan does not end at the high watermark"
            );
            let read = self.log.read(offset, 4096, true).expect("read inside the log");
            let headers = check_whole_batches(&read.bytes)?;
            prop_assert!(!headers.is_empty(), "empty read at {} below the high watermark", offset);
            let expected = self.model.read(offset, 4096, true).expect("the model has the offset");
            prop_assert!(read.bytes[..] == expected[..], "scan read at {} differs from the model", offset);
            batches_seen += headers.len();
            offset = headers.last().map(|header| header.last_offset() as u64 + 1).unwrap_or(offset);
        }
        prop_assert_eq!(batches_seen, self.model.batch_count());
        Ok(())
    }

    /// Reads every offset the log holds one batch at a time, and the offsets
    /// just outside it.
    fn check_every_offset(&self) -> Result<(), TestCaseError> {
        for offset in self.model.start_offset()..self.model.next_offset {
            self.check_read(offset, 1, true)?;
        }
        self.check_read(self.model.next_offset, 1, true)?;
        self.check_read(self.model.next_offset + 1, 1, true)?;
        if let Some(below) = self.model.start_offset().checked_sub(1) {
            self.check_read(below, 1, true)?;
        }
        Ok(())
    }
}

fn build_batch(spec: &BatchSpec, now_ms: i64) -> (Bytes, Vec<i64>) {
    let timestamps: Vec<i64> = spec.records.iter().map(|(delta_ms, _)| now_ms + delta_ms).collect();
    // Like Kafka producers, the base timestamp is the first record's; later
    // records may be older or newer.
    let mut builder = BatchBuilder::new(timestamps[0]);
    for ((_, value), timestamp) in spec.records.iter().zip(&timestamps) {
        let mut record = Record::new(None, Some(value.clone()));
        record.timestamp_ms = Some(*timestamp);
        builder.push(record);
    }
    (builder.build(), timestamps)
}

/// Checks that `bytes` is a sequence of whole, sound batches; returns their headers.
fn check_whole_batches(bytes: &[u8]) -> Result<Vec<batch::BatchHeader>, TestCaseError> {
    let mut headers = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header = check_batch(&bytes[position..])
            .map_err(|error| TestCaseError::fail(format!("served a bad batch at byte {position}: {error}")))?;
        position += header.total_bytes();
        headers.push(header);
    }
    Ok(headers)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // Each case does file I/O; shrinking a failure still finds a short sequence.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_behaves_like_its_model(config in arb_config(), ops in proptest::collection::vec(arb_op(), 1..80)) {
        let mut harness = Harness::new(config);
        for op in &ops {
            harness.apply(op)?;
        }
        harness.log.close().expect("close");
    }
}
