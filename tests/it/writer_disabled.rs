//! ZerobusWrapper in writer-disabled mode, end to end: per-row outcomes, debug files read
//! back with arrow-ipc and prost-reflect, concurrency, retention, shutdown.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Int64Array, ListArray, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{Int32Type, Int64Type};
use arrow::ipc::reader::StreamReader;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use prost_types::FileDescriptorSet;

use arrow_zerobus_sdk_wrapper::{
    ConversionErrorKind, WrapperConfiguration, ZerobusError, ZerobusWrapper,
};

fn config(dir: &Path, table: &str) -> WrapperConfiguration {
    WrapperConfiguration::new("https://workspace.cloud.databricks.com", table)
        .with_debug_output(dir.to_path_buf())
        .with_zerobus_writer_disabled(true)
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let names: Vec<String> = ids.clone().map(|i| format!("name-{i}")).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from_iter_values(ids))),
        ("name", Arc::new(StringArray::from(names))),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Every batch of every Arrow debug file of `table` (rotated ones included).
fn read_arrow_files(dir: &Path, table: &str) -> Vec<RecordBatch> {
    let arrow_dir = dir.join("zerobus/arrow");
    let mut paths: Vec<_> = std::fs::read_dir(&arrow_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(table)
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .flat_map(|path| {
            let reader = StreamReader::try_new(std::fs::File::open(path).unwrap(), None).unwrap();
            reader.map(Result::unwrap).collect::<Vec<_>>()
        })
        .collect()
}

/// The records of the active protobuf debug file, decoded with its descriptor set.
fn read_proto_records(dir: &Path, table: &str) -> Vec<DynamicMessage> {
    let proto_dir = dir.join("zerobus/proto");
    let descriptor = std::fs::read(proto_dir.join(format!("{table}.desc"))).unwrap();
    let set = FileDescriptorSet::decode(descriptor.as_slice()).unwrap();
    let pool = DescriptorPool::from_file_descriptor_set(set).unwrap();
    let message = pool.all_messages().next().unwrap();
    let data = std::fs::read(proto_dir.join(format!("{table}.pb"))).unwrap();
    let mut buf = data.as_slice();
    let mut records = Vec::new();
    while !buf.is_empty() {
        let len = prost::encoding::decode_varint(&mut buf).unwrap() as usize;
        records.push(DynamicMessage::decode(message.clone(), &buf[..len]).unwrap());
        buf = &buf[len..];
    }
    records
}

#[tokio::test]
async fn debug_files_hold_exactly_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = ZerobusWrapper::new(config(dir.path(), "cat.sch.events"))
        .await
        .unwrap();
    let input = batch(0..100);
    let result = wrapper.send_batch(input.clone()).await.unwrap();
    assert!(result.success);
    assert_eq!((result.total_rows, result.successful_count), (100, 100));
    assert_eq!(result.attempts, 0, "nothing goes over the network");
    assert!(result.batch_size_bytes > 0);
    wrapper.flush().await.unwrap();

    let landed = read_arrow_files(dir.path(), "cat.sch.events");
    assert_eq!(landed, vec![input.clone()]);

    let records = read_proto_records(dir.path(), "cat.sch.events");
    assert_eq!(records.len(), 100);
    for (row, record) in records.iter().enumerate() {
        let id = record.get_field_by_name("id").unwrap();
        let name = record.get_field_by_name("name").unwrap();
        assert_eq!(*id, Value::I64(row as i64));
        assert_eq!(*name, Value::String(format!("name-{row}")));
    }
    wrapper.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_rows_fail_alone_and_are_left_out_of_the_protobuf_file() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = ZerobusWrapper::new(config(dir.path(), "t")).await.unwrap();
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1)]),
        Some(vec![None]),
        Some(vec![]),
        Some(vec![Some(4)]),
    ]);
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(vec![0, 1, 2, 3]))),
        ("xs", Arc::new(lists)),
        ("big", Arc::new(UInt64Array::from(vec![0, 0, 0, u64::MAX]))),
    ];
    let input = RecordBatch::try_from_iter(columns).unwrap();
    let result = wrapper.send_batch(input.clone()).await.unwrap();

    assert!(result.is_partial_success());
    assert_eq!(result.get_failed_row_indices(), [1, 3]);
    let kinds: Vec<_> = result
        .failed_row_details()
        .map(|(row, failure)| (row, failure.kind, failure.column.clone().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, ConversionErrorKind::NullListElement, "xs[0]".to_string()),
            (3, ConversionErrorKind::ValueOutOfRange, "big".to_string()),
        ]
    );
    let quarantine = result.extract_failed_batch(&input).unwrap();
    assert_eq!(
        quarantine.column(0).as_primitive::<Int64Type>().values(),
        &[1, 3]
    );
    wrapper.flush().await.unwrap();
    let ids: Vec<Value> = read_proto_records(dir.path(), "t")
        .iter()
        .map(|r| r.get_field_by_name("id").unwrap().into_owned())
        .collect();
    assert_eq!(ids, [Value::I64(0), Value::I64(2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_account_for_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = ZerobusWrapper::new(config(dir.path(), "concurrent"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let wrapper = wrapper.clone();
            tokio::spawn(async move {
                let mut rows = 0;
                for i in 0..10 {
                    let start = (task * 10 + i) * 50;
                    let result = wrapper.send_batch(batch(start..start + 50)).await.unwrap();
                    assert_eq!(result.successful_count, 50);
                    rows += result.total_rows;
                }
                rows
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 16 * 10 * 50);
    wrapper.shutdown().await.unwrap();

    let ids: BTreeSet<i64> = read_arrow_files(dir.path(), "concurrent")
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, (0..8000).collect::<BTreeSet<i64>>());
}

#[tokio::test]
async fn retention_keeps_the_newest_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "rotating")
        .with_debug_arrow_enabled(true)
        .with_debug_protobuf_enabled(false)
        .with_debug_max_file_size(Some(1))
        .with_debug_max_files_retained(Some(3));
    let wrapper = ZerobusWrapper::new(config).await.unwrap();
    for i in 0..8 {
        wrapper
            .send_batch(batch(i * 10..i * 10 + 10))
            .await
            .unwrap();
    }
    wrapper.shutdown().await.unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path().join("zerobus/arrow"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !dir.path().join("zerobus/proto").exists(),
        "protobuf output is off"
    );
    // Each write fills the 1-byte limit, so each batch ends in its own rotated file.
    assert_eq!(names.len(), 3, "{names:?}");
    let landed = read_arrow_files(dir.path(), "rotating");
    let first_ids: Vec<i64> = landed
        .iter()
        .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
        .collect();
    assert_eq!(first_ids, [50, 60, 70], "the newest three batches survive");
}

#[tokio::test]
async fn schema_errors_and_shutdown_are_batch_level_errors() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = ZerobusWrapper::new(config(dir.path(), "t")).await.unwrap();
    let time = arrow::array::Time64MicrosecondArray::from(vec![1]);
    let bad = RecordBatch::try_from_iter(vec![("at", Arc::new(time) as ArrayRef)]).unwrap();
    let err = wrapper.send_batch(bad).await.unwrap_err();
    let failure = err.conversion_failure().unwrap();
    assert_eq!(failure.kind, ConversionErrorKind::UnsupportedType);
    assert_eq!(failure.column.as_deref(), Some("at"));

    wrapper.shutdown().await.unwrap();
    wrapper.shutdown().await.unwrap();
    let err = wrapper.send_batch(batch(0..1)).await.unwrap_err();
    assert!(matches!(err, ZerobusError::ShutdownError { .. }), "{err}");
}

#[tokio::test]
async fn writer_disabled_mode_needs_a_debug_format() {
    let config = WrapperConfiguration::new("https://x.cloud.databricks.com", "t")
        .with_zerobus_writer_disabled(true);
    let err = ZerobusWrapper::new(config).await.unwrap_err();
    assert!(
        matches!(err, ZerobusError::ConfigurationError { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("zerobus_writer_disabled"), "{err}");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "t").with_credentials("client-id", "s3cr3t-value");
    let wrapper = ZerobusWrapper::new(config).await.unwrap();
    let printed = format!("{wrapper:?} {:?}", wrapper.config());
    assert!(!printed.contains("s3cr3t-value"), "{printed}");
    assert!(printed.contains("client-id"));
    wrapper.send_batch(batch(0..3)).await.unwrap();
    wrapper.shutdown().await.unwrap();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let needle = b"s3cr3t-value";
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "secret found in {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
