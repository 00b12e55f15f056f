//! Fault injection: per-table switches that tests flip at run time.

use std::sync::{Mutex, MutexGuard};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use std::time::Duration;

use tonic::{Code, Status};

/// Fault switches of one table, shared by every stream that writes to it.
///
/// Obtained with [`LocalZerobus::faults`](super::LocalZerobus::faults) (also before the
/// table exists); every switch takes effect for the next stream or message. One-shot faults
/// (`fail_stream_creation`, `fail_after_records`, `close_stream_after_records`) disarm
/// themselves once they fired.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

#[derive(Debug, Default, Clone)]
struct FaultState {
    fail_creation: Option<(u32, Code)>,
    fail_after: Option<(u64, Code)>,
    close_after: Option<u64>,
    ack_delay: Option<Duration>,
    withhold_acks: bool,
    reject_connections: bool,
    reject_pattern: Option<Vec<u8>>,
}

/// What a stream must do after receiving records (see [`Faults::after_records`]).
#[derive(Debug, Clone)]
pub(crate) enum RecordFault {
    /// Nothing injected.
    None,
    /// End the stream with this status.
    Fail(Status),
    /// Ask the client to rotate (CloseStreamSignal / `close_stream_duration_ms`).
    Close,
}

impl Faults {
    fn state(&self) -> MutexGuard<'_, FaultState> {
        crate::lock(&self.state)
    }

    /// The next `times` stream creations fail with `code`.
    pub fn fail_stream_creation(&self, times: u32, code: Code) {
        self.state().fail_creation = (times > 0).then_some((times, code));
    }

    /// Once `records` more records have been received on the table (counted across its
    /// streams from now on), the stream that received them ends with `code` (for example
    /// [`Code::Unavailable`], which the client recovers from). Fires once.
    pub fn fail_after_records(&self, records: u64, code: Code) {
        self.state().fail_after = Some((records, code));
    }

    /// Once `records` more records have been received, the stream that received them is
    /// asked to close (CloseStreamSignal on gRPC, `close_stream_duration_ms` on Flight), as
    /// the service does before its stream lifetime runs out. Fires once.
    pub fn close_stream_after_records(&self, records: u64) {
        self.state().close_after = Some(records);
    }

    /// Every acknowledgement is sent `delay` after the rows are durable (`None`: at once).
    pub fn delay_acks(&self, delay: Option<Duration>) {
        self.state().ack_delay = delay;
    }

    /// While `true`, no acknowledgement is sent at all (rows are still stored), so the
    /// client's ack timeout trips.
    pub fn withhold_acks(&self, withhold: bool) {
        self.state().withhold_acks = withhold;
    }

    /// While `true`, new streams of the table are refused with `UNAUTHENTICATED`.
    pub fn reject_connections(&self, reject: bool) {
        self.state().reject_connections = reject;
    }

    /// While set, a request message carrying a record whose bytes contain `pattern` (the
    /// protobuf encoding, the JSON text, or on Arrow Flight a string or binary column
    /// value of the row) is refused: the stream ends with
    /// `INVALID_ARGUMENT`, as the service does for a record it cannot take, and none of
    /// that message's records are stored. `None` (or an empty pattern) switches it off.
    pub fn reject_records_containing(&self, pattern: Option<Vec<u8>>) {
        self.state().reject_pattern = pattern.filter(|p| !p.is_empty());
    }

    /// Switches every fault off.
    pub fn clear(&self) {
        *self.state() = FaultState::default();
    }

    /// Called when a stream of the table is being created.
    pub(crate) fn on_create(&self) -> Result<(), Status> {
        let mut state = self.state();
        if state.reject_connections {
            return Err(Status::unauthenticated(
                "injected fault: new connections are rejected",
            ));
        }
        if let Some((times, code)) = state.fail_creation {
            state.fail_creation = (times > 1).then_some((times - 1, code));
            return Err(Status::new(
                code,
                "injected fault: stream creation failed".to_string(),
            ));
        }
        Ok(())
    }

    /// Called after a stream received `count` records; says what to inject, if anything.
    pub(crate) fn after_records(&self, count: u64) -> RecordFault {
        let mut state = self.state();
        if let Some((left, code)) = state.fail_after {
            if count >= left {
                state.fail_after = None;
                return RecordFault::Fail(Status::new(
                    code,
                    "injected fault: stream failed after records".to_string(),
                ));
            }
            state.fail_after = Some((left - count, code));
        }
        if let Some(left) = state.close_after {
            if count >= left {
                state.close_after = None;
                return RecordFault::Close;
            }
            state.close_after = Some(left - count);
        }
        RecordFault::None
    }

    /// Called with the records of one request message before they are stored; refuses
    /// the message if one of them matches [`Faults::reject_records_containing`].
    pub(crate) fn check_records<'r>(
        &self,
        records: impl IntoIterator<Item = &'r [u8]>,
    ) -> Result<(), Status> {
        let state = self.state();
        let Some(pattern) = state.reject_pattern.as_deref() else {
            return Ok(());
        };
        let bad = records
            .into_iter()
            .position(|record| record.windows(pattern.len()).any(|w| w == pattern));
        match bad {
            Some(index) => Err(Status::invalid_argument(format!(
                "injected fault: record {index} of the request is rejected"
            ))),
            None => Ok(()),
        }
    }

    /// Called with each Arrow Flight batch before it is stored; refuses the batch if a
    /// top-level string or binary value of one of its rows contains the
    /// [`Faults::reject_records_containing`] pattern.
    pub(crate) fn check_batch(&self, batch: &RecordBatch) -> Result<(), Status> {
        let state = self.state();
        let Some(pattern) = state.reject_pattern.as_deref() else {
            return Ok(());
        };
        let contains = |value: &[u8]| value.windows(pattern.len()).any(|w| w == pattern);
        let bad = (0..batch.num_rows()).find(|row| {
            batch.columns().iter().any(|column| {
                if column.is_null(*row) {
                    return false;
                }
                match column.data_type() {
                    DataType::Utf8 => contains(column.as_string::<i32>().value(*row).as_bytes()),
                    DataType::LargeUtf8 => {
                        contains(column.as_string::<i64>().value(*row).as_bytes())
                    }
                    DataType::Binary => contains(column.as_binary::<i32>().value(*row)),
                    DataType::LargeBinary => contains(column.as_binary::<i64>().value(*row)),
                    _ => false,
                }
            })
        });
        match bad {
            Some(row) => Err(Status::invalid_argument(format!(
                "injected fault: row {row} of the batch is rejected"
            ))),
            None => Ok(()),
        }
    }

    /// How long to hold each acknowledgement back, `None` to withhold it entirely.
    pub(crate) fn ack_delay(&self) -> Option<Duration> {
        let state = self.state();
        if state.withhold_acks {
            None
        } else {
            Some(state.ack_delay.unwrap_or_default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_failures_count_down() {
        let faults = Faults::default();
        faults.fail_stream_creation(2, Code::Unavailable);
        assert_eq!(faults.on_create().unwrap_err().code(), Code::Unavailable);
        assert_eq!(faults.on_create().unwrap_err().code(), Code::Unavailable);
        assert!(faults.on_create().is_ok());
    }

    #[test]
    fn record_faults_fire_once_at_the_threshold() {
        let faults = Faults::default();
        faults.fail_after_records(10, Code::Unavailable);
        assert!(matches!(faults.after_records(6), RecordFault::None));
        match faults.after_records(4) {
            RecordFault::Fail(s) => assert_eq!(s.code(), Code::Unavailable),
            other => panic!("expected a failure, got {other:?}"),
        }
        assert!(matches!(faults.after_records(100), RecordFault::None));
        faults.close_stream_after_records(1);
        assert!(matches!(faults.after_records(1), RecordFault::Close));
    }

    #[test]
    fn withheld_acks_win_over_delays() {
        let faults = Faults::default();
        assert_eq!(faults.ack_delay(), Some(Duration::ZERO));
        faults.delay_acks(Some(Duration::from_millis(5)));
        assert_eq!(faults.ack_delay(), Some(Duration::from_millis(5)));
        faults.withhold_acks(true);
        assert_eq!(faults.ack_delay(), None);
        faults.clear();
        assert_eq!(faults.ack_delay(), Some(Duration::ZERO));
        faults.reject_connections(true);
        assert_eq!(
            faults.on_create().unwrap_err().code(),
            Code::Unauthenticated
        );
    }

    #[test]
    fn records_containing_the_pattern_are_refused() {
        let faults = Faults::default();
        let records: [&[u8]; 3] = [b"good", b"has POISON inside", b"good too"];
        assert!(faults.check_records(records).is_ok());
        faults.reject_records_containing(Some(b"POISON".to_vec()));
        let refused = faults.check_records(records).unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(refused.message().contains("record 1"), "{refused}");
        assert!(faults.check_records([b"fine".as_slice()]).is_ok());
        faults.reject_records_containing(Some(Vec::new()));
        assert!(faults.check_records(records).is_ok());
    }
}
