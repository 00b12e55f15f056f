//! The main job without a workspace: encode a sample batch, write the debug files, and
//! report per-row outcomes, with no network access and no credentials.
//!
//! ```text
//! cargo run --example writer_disabled [OUTPUT_DIR]
//! ```
//!
//! OUTPUT_DIR defaults to `./debug_output`. Afterwards `zerobus/arrow/*.arrows` holds the
//! batch as received (Arrow IPC stream: `pyarrow.ipc.open_stream`, DuckDB `read_arrow`) and
//! `zerobus/proto/*.pb` the encoded records (length-delimited; descriptor in `*.desc`).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use arrow::datatypes::Int32Type;
use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusWrapper};

fn sample_batch() -> Result<RecordBatch, arrow::error::ArrowError> {
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
        (
            "name",
            Arc::new(StringArray::from(vec![
                Some("Alice"),
                Some("Bob"),
                None,
                Some("Dave"),
            ])),
        ),
        (
            "score",
            Arc::new(Float64Array::from(vec![91.5, 78.0, 88.25, 64.0])),
        ),
        (
            "active",
            Arc::new(BooleanArray::from(vec![true, false, true, true])),
        ),
        (
            "seen_at",
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_700_000_000_000_000; 4])
                    .with_timezone("UTC"),
            ),
        ),
        // Row 2 holds a value BIGINT cannot represent: it fails alone, with its reason.
        (
            "counter",
            Arc::new(UInt64Array::from(vec![10, 20, u64::MAX, 40])),
        ),
        (
            "tags",
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(1), Some(2)]),
                Some(vec![]),
                None,
                Some(vec![Some(7)]),
            ])),
        ),
    ];
    RecordBatch::try_from_iter(columns)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let output_dir = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from("./debug_output"), PathBuf::from);
    let config =
        WrapperConfiguration::new("https://workspace.cloud.databricks.com", "main.demo.events")
            .with_debug_output(output_dir.clone())
            .with_zerobus_writer_disabled(true);
    let wrapper = ZerobusWrapper::new(config).await?;

    let batch = sample_batch()?;
    let result = wrapper.send_batch(batch.clone()).await?;
    wrapper.shutdown().await?;

    println!(
        "{} rows: {} encoded ({} bytes of protobuf), {} failed, in {} ms",
        result.total_rows,
        result.successful_count,
        result.batch_size_bytes,
        result.failed_count,
        result.latency_ms.unwrap_or_default()
    );
    for (row, error) in &result.failed_rows {
        println!("  row {row} failed: {error}");
    }
    if let Some(quarantine) = result.extract_failed_batch(&batch) {
        println!("  quarantine batch: {} row(s)", quarantine.num_rows());
    }
    println!(
        "debug files under {}:",
        output_dir.join("zerobus").display()
    );
    for kind in ["arrow", "proto"] {
        let dir = output_dir.join("zerobus").join(kind);
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|entry| {
                entry
                    .ok()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
            })
            .collect();
        names.sort();
        println!("  {kind}/: {}", names.join(", "));
    }
    Ok(())
}
