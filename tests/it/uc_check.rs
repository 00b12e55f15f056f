//! The Unity Catalog schema check: the wrapper reads the table's columns from the local
//! server's Unity Catalog endpoint (with an OAuth token) and checks, casts and filters
//! batches before they are sent; what landed is read back and compared.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Decimal128Type, Field, Int64Type, Schema, SchemaRef};
use arrow_zerobus_sdk_wrapper::{
    ConversionErrorKind, WrapperConfiguration, ZerobusError, ZerobusWrapper,
};
use secrecy::ExposeSecret;
use zerobus_local::{Auth, Landing, LocalZerobus};

const TABLE: &str = "cat.sch.uc_checked";

/// The table: `id BIGINT NOT NULL, amount DECIMAL(12,2), n BIGINT, name STRING`.
fn table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("n", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]))
}

async fn server() -> LocalZerobus {
    LocalZerobus::builder()
        .landing(Landing::Memory)
        .auth(Auth::OAuth)
        .table(TABLE, table_schema())
        .start()
        .await
        .expect("local server")
}

async fn checked_wrapper(server: &LocalZerobus) -> ZerobusWrapper {
    ZerobusWrapper::new(checked_config(server))
        .await
        .expect("wrapper")
}

fn checked_config(server: &LocalZerobus) -> WrapperConfiguration {
    WrapperConfiguration::new(server.endpoint(), TABLE)
        .with_credentials(
            server.client_id(),
            server.client_secret().expose_secret().to_string(),
        )
        .with_unity_catalog(server.unity_catalog_url())
        .with_retry_config(3, 5, 50)
        .with_schema_check(true)
}

/// A batch with narrower types than the table (DECIMAL(10,2), INT) and a nullable `id`.
fn narrow_batch(ids: Vec<Option<i64>>) -> RecordBatch {
    let rows = ids.len();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("n", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(
            Decimal128Array::from_iter((0..rows as i128).map(|i| Some(i * 12_345 - 99_999_999)))
                .with_precision_and_scale(10, 2)
                .expect("decimal"),
        ),
        Arc::new(Int32Array::from_iter(
            (0..rows as i32).map(|i| (i % 3 != 0).then_some(i * -1000)),
        )),
        Arc::new(StringArray::from_iter(
            (0..rows).map(|i| Some(format!("row {i}"))),
        )),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

fn schema_error(
    result: Result<arrow_zerobus_sdk_wrapper::TransmissionResult, ZerobusError>,
) -> String {
    match result {
        Err(error @ ZerobusError::ConversionError(_)) => {
            let failure = error.conversion_failure().expect("conversion failure");
            assert_eq!(failure.kind, ConversionErrorKind::SchemaMismatch, "{error}");
            error.to_string()
        }
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
}

/// Rows the check rejects (null keys) are taken out before encoding; a row after them
/// that fails encoding is still reported under its input number, in the failed-row index
/// and in its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_after_rejected_ones_keep_their_input_numbers() {
    let server = server().await;
    let config = checked_config(&server).with_max_record_size_bytes(64);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    let narrow = narrow_batch(vec![Some(1), None, Some(3), None, Some(5), Some(6)]);
    // Row 4's name makes its record larger than 64 bytes.
    let names = StringArray::from_iter_values((0..6).map(|i| {
        if i == 4 {
            "x".repeat(100)
        } else {
            format!("row {i}")
        }
    }));
    let mut columns = narrow.columns().to_vec();
    columns[3] = Arc::new(names);
    let batch = RecordBatch::try_new(narrow.schema(), columns).expect("batch");

    let result = wrapper.send_batch(batch).await.expect("send");
    assert_eq!(result.get_failed_row_indices(), vec![1, 3, 4]);
    let (_, too_large) = &result.failed_rows[2];
    let failure = too_large.conversion_failure().expect("conversion failure");
    assert_eq!(failure.kind, ConversionErrorKind::RecordTooLarge);
    assert_eq!(failure.row, Some(4));
    assert!(failure.message.starts_with("record of"), "{too_large}");
    wrapper.shutdown().await.expect("shutdown");

    let landed = server.read_table(TABLE).await.expect("read back");
    let ids = landed.column(0).as_primitive::<Int64Type>();
    let mut ids: Vec<i64> = ids.values().to_vec();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 3, 6], "rows 0, 2 and 5");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_cast_to_the_catalog_types_and_null_keys_become_row_errors() {
    let server = server().await;
    let wrapper = checked_wrapper(&server).await;
    let ids = vec![Some(10), Some(11), None, Some(13), None, Some(15)];
    let batch = narrow_batch(ids.clone());
    let result = wrapper.send_batch(batch.clone()).await.expect("send");

    assert_eq!(result.total_rows, 6);
    assert_eq!(result.get_failed_row_indices(), vec![2, 4]);
    for (row, error) in &result.failed_rows {
        let failure = error.conversion_failure().expect("conversion failure");
        assert_eq!(failure.kind, ConversionErrorKind::NullInNonNullableColumn);
        assert_eq!(failure.column.as_deref(), Some("id"), "{error}");
        assert_eq!(failure.row, Some(*row), "{error}");
        assert!(
            error
                .to_string()
                .ends_with("is NOT NULL in table cat.sch.uc_checked but the row holds a null"),
            "{error}"
        );
    }
    // The quarantine batch holds exactly the rejected input rows.
    let quarantine = result.extract_failed_batch(&batch).expect("failed rows");
    assert_eq!(quarantine.num_rows(), 2);
    assert_eq!(quarantine.column(0).null_count(), 2);
    wrapper.shutdown().await.expect("shutdown");

    // What landed: the good rows, widened to the table's types, value by value.
    let landed = server.read_table(TABLE).await.expect("read back");
    assert_eq!(landed.num_rows(), 4);
    assert_eq!(
        landed.schema().field(1).data_type(),
        &DataType::Decimal128(12, 2)
    );
    let landed_ids = landed.column(0).as_primitive::<Int64Type>();
    let amounts = landed.column(1).as_primitive::<Decimal128Type>();
    let ns = landed.column(2).as_primitive::<Int64Type>();
    let names = landed.column(3).as_string::<i32>();
    let mut seen = Vec::new();
    for row in 0..landed.num_rows() {
        let id = landed_ids.value(row);
        let input = ids.iter().position(|i| *i == Some(id)).expect("known id");
        assert_eq!(amounts.value(row), input as i128 * 12_345 - 99_999_999);
        let n = (input % 3 != 0).then_some(input as i64 * -1000);
        assert_eq!(ns.is_valid(row).then(|| ns.value(row)), n);
        assert_eq!(names.value(row), format!("row {input}"));
        seen.push(id);
    }
    seen.sort_unstable();
    assert_eq!(seen, vec![10, 11, 13, 15]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_schemas_are_refused_naming_the_columns() {
    let server = server().await;
    let wrapper = checked_wrapper(&server).await;
    let good = narrow_batch(vec![Some(1), Some(2)]);

    // Missing `name`, extra `note`.
    let mut columns = good.columns()[..3].to_vec();
    columns.push(Arc::new(StringArray::from(vec!["x", "y"])));
    let mut fields: Vec<Field> = good.schema().fields()[..3]
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("note", DataType::Utf8, true));
    let other = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
    let message = schema_error(wrapper.send_batch(other).await);
    assert!(message.contains("missing columns [\"name\"]"), "{message}");
    assert!(message.contains("extra columns [\"note\"]"), "{message}");

    // Columns out of order: field numbers would not match the table's positions.
    let swapped = good.project(&[0, 2, 1, 3]).expect("projection");
    let message = schema_error(wrapper.send_batch(swapped).await);
    assert!(
        message.contains("column 'n' is column 1 of the batch (field number 2) but position 2 of the table (field number 3)"),
        "{message}"
    );

    // A type that does not convert without loss (a string for BIGINT `n`).
    let mut columns = good.columns().to_vec();
    columns[2] = Arc::new(StringArray::from(vec!["1", "2"]));
    let mut fields: Vec<Field> = good
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[2] = Field::new("n", DataType::Utf8, true);
    let wrong = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
    let message = schema_error(wrapper.send_batch(wrong).await);
    assert!(
        message.contains("column 'n': the table has BIGINT, the batch has Utf8"),
        "{message}"
    );

    // A narrowing decimal (DECIMAL(14,4) into DECIMAL(12,2)) would lose digits.
    let mut columns = good.columns().to_vec();
    columns[1] = Arc::new(
        Decimal128Array::from(vec![1, 2])
            .with_precision_and_scale(14, 4)
            .expect("decimal"),
    );
    let mut fields: Vec<Field> = good
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[1] = Field::new("amount", DataType::Decimal128(14, 4), true);
    let narrowing = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch");
    let message = schema_error(wrapper.send_batch(narrowing).await);
    assert!(
        message.contains("column 'amount': the table has DECIMAL(12,2)"),
        "{message}"
    );

    // Nothing was sent; the good batch still goes through.
    let result = wrapper.send_batch(good).await.expect("send");
    assert!(result.success, "{:?}", result.failed_rows);
    wrapper.shutdown().await.expect("shutdown");
    assert_eq!(server.read_table(TABLE).await.expect("read").num_rows(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_table_is_a_configuration_error() {
    let server = server().await;
    let config = WrapperConfiguration::new(server.endpoint(), "cat.sch.not_there")
        .with_credentials(
            server.client_id(),
            server.client_secret().expose_secret().to_string(),
        )
        .with_unity_catalog(server.unity_catalog_url())
        .with_schema_check(true);
    let wrapper = ZerobusWrapper::new(config).await.expect("wrapper");
    let error = wrapper
        .send_batch(narrow_batch(vec![Some(1)]))
        .await
        .expect_err("no such table");
    assert!(
        matches!(error, ZerobusError::ConfigurationError { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("cat.sch.not_there"), "{error}");
    server.shutdown().await;
}
