//! The original wrapper README's per-row error handling, run end to end in writer-disabled
//! mode: partial success, quarantine of failed rows, error statistics and grouping.
//!
//! ```text
//! cargo run --example per_row_errors
//! ```

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusError, ZerobusWrapper};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let debug_dir = tempfile::tempdir()?;
    let config = WrapperConfiguration::new("https://workspace.cloud.databricks.com", "my_table")
        .with_debug_output(debug_dir.path().to_path_buf())
        .with_zerobus_writer_disabled(true)
        // A small limit so that the long row below exceeds it.
        .with_max_record_size_bytes(64);
    let wrapper = ZerobusWrapper::new(config).await?;

    let long = "x".repeat(100);
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5]))),
        (
            "payload",
            Arc::new(StringArray::from(vec!["a", "b", long.as_str(), "d", "e"])),
        ),
        (
            "counter",
            Arc::new(UInt64Array::from(vec![1, u64::MAX, 3, 4, 5])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns)?;
    let result = wrapper.send_batch(batch.clone()).await?;

    if result.success {
        println!("Batch sent successfully!");
        // Handle per-row errors (if any)
        if result.is_partial_success() {
            println!(
                "Partial success: {} succeeded, {} failed",
                result.successful_count, result.failed_count
            );
            // Extract and quarantine failed rows
            if let Some(failed_batch) = result.extract_failed_batch(&batch) {
                println!("Quarantining {} failed rows", failed_batch.num_rows());
                assert_eq!(failed_batch.num_rows(), 2);
            }
            // Extract and write successful rows
            if let Some(successful_batch) = result.extract_successful_batch(&batch) {
                println!("Writing {} successful rows", successful_batch.num_rows());
                assert_eq!(successful_batch.num_rows(), 3);
            }
        }
        // Analyze error patterns
        if result.has_failed_rows() {
            let stats = result.get_error_statistics();
            println!("Success rate: {:.1}%", stats.success_rate * 100.0);
            let grouped = result.group_errors_by_type();
            for (error_type, indices) in &grouped {
                println!(" {}: {} rows", error_type, indices.len());
            }
        }
    }
    // Records exceeding the limit are rejected with a clear error
    for (idx, error) in &result.failed_rows {
        if let ZerobusError::ConversionError(msg) = error {
            if msg.contains("exceeds Zerobus limit") {
                println!("Row {} exceeds the record size limit", idx);
            } else {
                println!("Row {} failed: {}", idx, msg);
            }
        }
    }
    assert_eq!(result.get_failed_row_indices(), [1, 2]);
    wrapper.shutdown().await?;
    Ok(())
}
