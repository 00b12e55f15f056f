//! Encodes the encoder bench's batches (`zerobus_test_support::data`) N times: a small,
//! deterministic driver for instruction counts under callgrind, which do not move with the
//! load of a shared machine the way wall-clock timings do.
//!
//! ```bash
//! cargo build --profile bench --example encode_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/encode_profile mixed 10
//! ```
//!
//! Arguments: `mixed` or `nested` (default `mixed`), then the number of encodes (default 10).
//! Prints the output bytes of one encode and the fastest and median wall time of one
//! encode (the fastest is the least disturbed by other load on a shared machine).

use std::hint::black_box;
use std::sync::Arc;

use arrow_zerobus_sdk_wrapper::encode::RowEncoder;
use arrow_zerobus_sdk_wrapper::schema::TableSchema;
use zerobus_test_support::data::{mixed_batch, nested_batch, ROWS};

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "mixed".to_string());
    let times: usize = args
        .next()
        .map_or(10, |n| n.parse().expect("a number of encodes"))
        .max(1);
    let batch = match which.as_str() {
        "mixed" => mixed_batch(ROWS),
        "nested" => nested_batch(ROWS),
        other => panic!("unknown batch {other}: mixed or nested"),
    };
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "bench").unwrap());
    let encoder = RowEncoder::new(schema);
    let mut bytes = 0;
    let mut millis = Vec::with_capacity(times);
    for _ in 0..times {
        let start = std::time::Instant::now();
        bytes = black_box(encoder.encode(black_box(&batch)).unwrap()).encoded_len();
        millis.push(start.elapsed().as_secs_f64() * 1e3);
    }
    millis.sort_by(f64::total_cmp);
    let (fastest, median) = (millis[0], millis[times / 2]);
    println!(
        "{which}: {bytes} bytes per encode, {times} encodes, fastest {fastest:.2} ms \
         ({:.0} MB/s), median {median:.2} ms",
        bytes as f64 / fastest / 1e3
    );
}
