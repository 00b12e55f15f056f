//! Sends a Parquet file through `ZerobusWrapper::send_stream` and prints what it took, as
//! one JSON line: the Rust contender of the Python benchmark (`python/benches/`), which
//! measures the Python package against the wrapper driven from Rust on the same batches.
//!
//! ```text
//! cargo run --release --features datafusion --example send_parquet -- FILE ENDPOINT TABLE
//! ```
//!
//! The file is read into memory first (65,536-row batches); only the send is timed, as
//! the Python contenders time theirs from a table in memory. The wrapper's environment
//! variables apply (e.g. `ZEROBUS_TRANSPORT=arrow_flight`, `ZEROBUS_MAX_REQUEST_BYTES`).

use std::fs::File;
use std::time::Instant;

use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusWrapper};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const BATCH_ROWS: usize = 65_536;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, endpoint, table] = args.as_slice() else {
        return Err("usage: send_parquet FILE ENDPOINT TABLE".into());
    };
    let batches = ParquetRecordBatchReaderBuilder::try_new(File::open(file)?)?
        .with_batch_size(BATCH_ROWS)
        .build()?
        .collect::<Result<Vec<_>, _>>()?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let wrapper =
        ZerobusWrapper::new(WrapperConfiguration::new(endpoint, table).with_env_overrides()?)
            .await?;
    let started = Instant::now();
    let result = wrapper
        .send_stream(futures::stream::iter(batches.into_iter().map(Ok)), 4)
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    wrapper.shutdown().await?;
    assert_eq!(
        result.successful_count,
        rows,
        "{:?}",
        result.failed_rows.first()
    );
    println!(
        "{{\"seconds\": {seconds}, \"rows_per_s\": {}, \"peak_rss_mib\": {}}}",
        rows as f64 / seconds,
        peak_rss_mib()
    );
    Ok(())
}

/// `VmHWM` of this process, in MiB (0 where /proc is not there).
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
