//! End to end on one machine: start the embedded local Zerobus server, send Arrow batches
//! through `ZerobusWrapper` (the official SDK's protobuf stream over real gRPC), land more
//! rows with SQL (`INSERT INTO ... SELECT` through the DataFusion sink), and read back what
//! landed in the Delta table.
//!
//! ```text
//! cargo run --features datafusion --example local_end_to_end [DATA_DIR]
//! ```
//!
//! With `DATA_DIR`, the Delta table stays there afterwards
//! (`DATA_DIR/main/demo/sensor_readings`), readable by any Delta reader.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_zerobus_sdk_wrapper::{WrapperConfiguration, ZerobusWrapper};
use datafusion::prelude::SessionContext;
use zerobus_local::LocalZerobus;

const TABLE: &str = "main.demo.sensor_readings";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("sensor", DataType::Utf8, true),
        Field::new("reading", DataType::Float64, true),
    ]));
    let mut builder = LocalZerobus::builder().table(TABLE, schema.clone());
    if let Some(dir) = std::env::args().nth(1) {
        builder = builder.data_dir(dir);
    }
    let server = builder.start().await?;
    println!("local Zerobus listening on {}", server.endpoint());
    // A data directory used before may already hold rows of earlier runs.
    let before = server.read_table(TABLE).await?.num_rows();

    // A plain-http loopback endpoint needs no credentials.
    let wrapper = ZerobusWrapper::new(WrapperConfiguration::new(server.endpoint(), TABLE)).await?;

    let mut sent = 0;
    for start in (0..3_000).step_by(1_000) {
        let ids: Vec<i64> = (start..start + 1_000).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter(
                ids.iter().map(|i| Some(format!("sensor-{}", i % 8))),
            )),
            Arc::new(Float64Array::from_iter(
                ids.iter().map(|i| Some(*i as f64 * 0.5)),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let result = wrapper.send_batch(batch).await?;
        println!(
            "batch at id {start}: {} rows acknowledged, {} failed, {} bytes, {:?} ms",
            result.successful_count,
            result.failed_count,
            result.batch_size_bytes,
            result.latency_ms
        );
        assert!(result.success && result.failed_rows.is_empty());
        sent += result.successful_count;
    }
    wrapper.shutdown().await?;

    // The same table from SQL: rows 3000..4000 through the DataFusion sink, which streams
    // them through the same wrapper.
    let ctx = SessionContext::new();
    arrow_zerobus_sdk_wrapper::sql::register(&ctx);
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE readings (id BIGINT NOT NULL, sensor VARCHAR, reading DOUBLE) \
         STORED AS ZEROBUS LOCATION '{TABLE}' OPTIONS ('endpoint' '{}')",
        server.endpoint()
    ))
    .await?;
    let inserted = ctx
        .sql(
            "INSERT INTO readings \
             SELECT value AS id, 'sensor-' || CAST(value % 8 AS VARCHAR), value * 0.5 \
             FROM generate_series(3000, 3999)",
        )
        .await?
        .collect()
        .await?;
    let count = inserted[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .ok_or("INSERT returns a UInt64 count")?
        .value(0);
    println!("INSERT INTO readings SELECT ...: {count} rows landed");
    assert_eq!(count, 1_000);
    sent += count as usize;

    let landed = server.read_table(TABLE).await?;
    println!(
        "{TABLE} now holds {} rows (Delta table in {})",
        landed.num_rows(),
        server
            .data_dir()
            .join("main/demo/sensor_readings")
            .display()
    );
    assert_eq!(landed.num_rows(), before + sent);
    // Rows come back in commit order: this run's are the last ones.
    let ours = landed.slice(before, sent);
    let ids = ours
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("id column is not Int64")?;
    let mut landed_ids: Vec<i64> = ids.values().to_vec();
    landed_ids.sort_unstable();
    assert_eq!(landed_ids, (0..4_000).collect::<Vec<_>>());
    assert_eq!(ours.column(1).null_count(), 0);
    println!("every row landed exactly once");
    server.shutdown().await;
    Ok(())
}
