//! Encoder unit tests: exact bytes for small cases, per-row failures.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};

use super::codec::FieldCodec;
use super::*;

fn encode(columns: Vec<(&str, ArrayRef)>) -> EncodedBatch {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "t").unwrap());
    RowEncoder::new(schema).encode(&batch).unwrap()
}

#[test]
fn negative_int32_is_sign_extended_to_ten_bytes() {
    let encoded = encode(vec![(
        "v",
        Arc::new(Int32Array::from(vec![-1])) as ArrayRef,
    )]);
    let mut expected = vec![0x08];
    prost::encoding::encode_varint(-1i64 as u64, &mut expected);
    assert_eq!(encoded.record(0).unwrap(), expected);
    assert_eq!(expected.len(), 11);
}

#[test]
fn out_of_range_rows_fail_alone() {
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
    let big: ArrayRef = Arc::new(UInt64Array::from(vec![Some(5), Some(u64::MAX), None]));
    let encoded = encode(vec![("id", ids), ("big", big)]);
    assert_eq!(encoded.num_rows(), 3);
    assert_eq!(encoded.successful_count(), 2);
    let (row, failure) = &encoded.failures()[0];
    assert_eq!(*row, 1);
    assert_eq!(failure.kind, ConversionErrorKind::ValueOutOfRange);
    assert_eq!(failure.column.as_deref(), Some("big"));
    assert_eq!(failure.row, Some(1));
    assert!(
        failure.message.starts_with("column `big`:"),
        "{}",
        failure.message
    );
    assert!(encoded.record(1).is_none());
    assert_eq!(encoded.record(2).unwrap(), &[0x08, 0x03]);
    let rows: Vec<usize> = encoded.records().map(|(row, _)| row).collect();
    assert_eq!(rows, [0, 2]);
    // Failed rows take no space.
    assert_eq!(encoded.encoded_len(), 2 + 2 + 2);
}

#[test]
fn null_list_elements_fail_the_row_with_a_path() {
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        Some(vec![Some(3), None]),
        None,
        Some(vec![]),
    ]);
    let encoded = encode(vec![("xs", Arc::new(lists) as ArrayRef)]);
    assert_eq!(encoded.failures().len(), 1);
    let (row, failure) = &encoded.failures()[0];
    assert_eq!(
        (*row, failure.kind),
        (1, ConversionErrorKind::NullListElement)
    );
    assert_eq!(failure.column.as_deref(), Some("xs[1]"));
    // Unpacked repeated field: one key per element.
    assert_eq!(encoded.record(0).unwrap(), &[0x08, 1, 0x08, 2]);
    assert_eq!(encoded.record(2).unwrap(), &[] as &[u8]);
    assert_eq!(encoded.record(3).unwrap(), &[] as &[u8]);
}

#[test]
fn records_over_the_limit_fail_with_the_readme_message() {
    let text: ArrayRef = Arc::new(StringArray::from(vec!["short", &"x".repeat(100)]));
    let batch = RecordBatch::try_from_iter(vec![("s", text)]).unwrap();
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "t").unwrap());
    let encoded = RowEncoder::new(schema)
        .with_max_record_size(50)
        .encode(&batch)
        .unwrap();
    let (row, failure) = &encoded.failures()[0];
    assert_eq!(*row, 1);
    assert_eq!(failure.kind, ConversionErrorKind::RecordTooLarge);
    assert!(
        failure.contains("exceeds Zerobus limit of 50 bytes"),
        "{}",
        failure.message
    );
    assert!(
        failure.contains("record of 102 bytes"),
        "{}",
        failure.message
    );
}

#[test]
fn a_batch_of_another_schema_is_rejected_by_encode_and_by_measure() {
    let batch =
        RecordBatch::try_from_iter(vec![("a", Arc::new(Int32Array::from(vec![1])) as ArrayRef)])
            .unwrap();
    let other = Schema::new(vec![Field::new("a", DataType::Int64, true)]);
    let encoder = RowEncoder::new(Arc::new(
        TableSchema::try_new(Arc::new(other), "t").unwrap(),
    ));
    for err in [
        encoder.encode(&batch).unwrap_err(),
        encoder.measure(&batch).unwrap_err(),
    ] {
        assert_eq!(
            err.conversion_failure().unwrap().kind,
            ConversionErrorKind::SchemaMismatch
        );
    }
}

#[test]
fn empty_batches_encode_to_nothing() {
    let encoded = encode(vec![(
        "a",
        Arc::new(Int32Array::from(Vec::<i32>::new())) as ArrayRef,
    )]);
    assert_eq!(encoded.num_rows(), 0);
    assert_eq!(encoded.records().count(), 0);
    assert!(encoded.failures().is_empty());
}

#[test]
fn nulls_of_a_sliced_batch_are_read_at_its_offset() {
    // 700 rows span several blocks; the slice starts mid-byte of the validity bits, so the
    // write pass must find the valid rows at the null buffer's offset, block by block.
    let values: Vec<Option<i64>> = (0..700)
        .map(|i| (i % 3 != 0 && i % 7 != 0).then_some(i * 1000))
        .collect();
    let column: ArrayRef = Arc::new(Int64Array::from(values.clone()));
    let batch = RecordBatch::try_from_iter(vec![("v", column)]).unwrap();
    let sliced = batch.slice(5, 690);
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "t").unwrap());
    let encoded = RowEncoder::new(schema).encode(&sliced).unwrap();
    assert_eq!(encoded.num_rows(), 690);
    for (row, value) in values[5..695].iter().enumerate() {
        let mut expected = Vec::new();
        if let Some(value) = value {
            expected.push(0x08);
            prost::encoding::encode_varint(*value as u64, &mut expected);
        }
        assert_eq!(encoded.record(row).unwrap(), expected, "row {row}");
    }
}

/// A codec whose write disagrees with its size: `written` bytes per row against `sized`.
struct Miscounted {
    sized: usize,
    written: usize,
}

impl FieldCodec for Miscounted {
    fn size(&self, _: usize) -> Result<usize, ValueError> {
        Ok(self.sized)
    }
    fn nulls(&self) -> Option<&arrow::buffer::NullBuffer> {
        None
    }
    fn write_valid(&self, _: usize, out: &mut wire::Out<'_>) {
        out.bytes(&vec![0xAB; self.written]);
    }
}

/// The bytes a block of `rows` rows gets from `codec`, and its failures.
fn write_block(codec: Miscounted, rows: usize) -> EncodedBatch {
    let codecs: Vec<BoxedCodec<'_>> = vec![Box::new(codec)];
    let fields = arrow::datatypes::Fields::from(vec![Field::new("c", DataType::Int32, true)]);
    let mut block = BlockState::default();
    let mut encoded = EncodedBatch {
        offsets: vec![0],
        written: true,
        ..EncodedBatch::default()
    };
    block.size(0..rows, &codecs, &fields, usize::MAX);
    block.write(0..rows, &codecs, &mut encoded);
    encoded
}

#[test]
fn a_block_whose_writes_fill_its_sizes_is_kept() {
    let encoded = write_block(
        Miscounted {
            sized: 3,
            written: 3,
        },
        4,
    );
    assert_eq!(encoded.successful_count(), 4);
    assert_eq!(encoded.record(2), Some(&[0xAB; 3][..]));
}

#[test]
fn a_codec_writing_less_than_it_sized_fails_its_block_and_never_sends_unwritten_bytes() {
    for written in [0, 2] {
        let encoded = write_block(Miscounted { sized: 3, written }, 5);
        assert_eq!(encoded.successful_count(), 0, "written {written}");
        assert_eq!(encoded.failures().len(), 5);
        for (row, failure) in encoded.failures() {
            assert_eq!(failure.kind, ConversionErrorKind::Other);
            assert_eq!(failure.row, Some(*row));
            assert!(
                failure.message.starts_with("internal encoder error"),
                "{}",
                failure.message
            );
        }
        // The block's bytes were zeroed rather than left as they were.
        assert_eq!(encoded.encoded_len(), 15);
        assert!(encoded.data.iter().all(|&b| b == 0));
    }
}

/// `measure` must agree with `encode` on everything but the bytes.
fn assert_measure_agrees(batch: &RecordBatch, max_record_size: usize) {
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "t").unwrap());
    let encoder = RowEncoder::new(schema).with_max_record_size(max_record_size);
    let encoded = encoder.encode(batch).unwrap();
    let measured = encoder.measure(batch).unwrap();
    assert!(encoded.has_records());
    assert!(!measured.has_records());
    assert_eq!(measured.num_rows(), encoded.num_rows());
    assert_eq!(measured.successful_count(), encoded.successful_count());
    assert_eq!(measured.encoded_len(), encoded.encoded_len());
    let failures = |b: &EncodedBatch| {
        b.failures()
            .iter()
            .map(|(row, f)| (*row, f.kind, f.column.clone(), f.message.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(failures(&measured), failures(&encoded));
    for row in 0..encoded.num_rows() + 1 {
        let len = encoded.record(row).map(<[u8]>::len);
        assert_eq!(encoded.record_len(row), len, "row {row}");
        assert_eq!(measured.record_len(row), len, "row {row}");
        assert_eq!(measured.record(row), None, "row {row}");
        assert_eq!(measured.is_failed(row), encoded.is_failed(row), "row {row}");
    }
    let lens: Vec<(usize, usize)> = encoded.records().map(|(r, b)| (r, b.len())).collect();
    assert_eq!(encoded.record_lens().collect::<Vec<_>>(), lens);
    assert_eq!(measured.record_lens().collect::<Vec<_>>(), lens);
    assert_eq!(measured.records().count(), 0);
}

#[test]
fn measuring_gives_the_sizes_and_failures_of_encoding() {
    // 700 rows over several blocks: out-of-range values, null list elements, rows over
    // the size limit, empty (all-null) rows, and rows that fail in two columns at once.
    let rows = 700;
    let big: ArrayRef = Arc::new(UInt64Array::from_iter((0..rows as u64).map(|i| {
        match i % 11 {
            0 => None,
            5 => Some(u64::MAX - i),
            _ => Some(i * 1_000_003),
        }
    })));
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
        (0..rows as i32).map(|i| match i % 13 {
            0 => None,
            4 => Some(vec![Some(i), None]),
            _ => Some((0..i % 5).map(Some).collect()),
        }),
    ));
    let text: ArrayRef =
        Arc::new(StringArray::from_iter((0..rows).map(|i| {
            (i % 11 != 0).then(|| "x".repeat(if i % 17 == 0 { 90 } else { i % 20 }))
        })));
    let batch = RecordBatch::try_from_iter(vec![("big", big), ("xs", lists), ("s", text)]).unwrap();
    let encoded = encode_all(&batch, 100);
    assert!(encoded.failures().len() > 50, "the batch has failures");
    assert!(
        encoded.record(0).is_some_and(<[u8]>::is_empty),
        "row 0 is empty"
    );
    assert_measure_agrees(&batch, 100);
    assert_measure_agrees(&batch.slice(3, 600), 100);
    assert_measure_agrees(&batch, DEFAULT_MAX_RECORD_SIZE_BYTES);
    assert_measure_agrees(&batch.slice(0, 0), 100);
}

fn encode_all(batch: &RecordBatch, max_record_size: usize) -> EncodedBatch {
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "t").unwrap());
    RowEncoder::new(schema)
        .with_max_record_size(max_record_size)
        .encode(batch)
        .unwrap()
}

/// Row `i` of the null-slot test is null when this holds: rows around the 64-row words of
/// the validity bits, and a sprinkle elsewhere.
fn null_row(i: usize) -> bool {
    matches!(i % 64, 0 | 1 | 62 | 63) || i % 7 == 3
}

/// Arrays whose null slots hold data (a value, a non-empty string) as Arrow allows, next to
/// the same values built the usual way (null slots empty): both must encode to the same
/// records, and `measure` must agree with `encode` on both, sliced or not.
#[test]
fn data_under_nulls_is_neither_sized_nor_written() {
    use arrow::array::{BinaryViewArray, BooleanArray, Float64Array, StringViewArray};
    use arrow::buffer::{NullBuffer, OffsetBuffer};

    let rows = 300;
    let validity = NullBuffer::from_iter((0..rows).map(|i| !null_row(i)));
    let text = |i: usize| format!("{i:0>width$}", width = 1 + i % 140);
    // Every slot holds its value, nulls included.
    let texts: Vec<String> = (0..rows).map(text).collect();
    let offsets = OffsetBuffer::from_lengths(texts.iter().map(String::len));
    let string_views = StringViewArray::from_iter_values(&texts);
    let binary_views = BinaryViewArray::from_iter_values(texts.iter().map(String::as_bytes));
    let dirty: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::new(
            (0..rows as i64).map(|i| i * 1_000_003).collect(),
            Some(validity.clone()),
        )),
        Arc::new(Float64Array::new(
            (0..rows).map(|i| i as f64).collect(),
            Some(validity.clone()),
        )),
        Arc::new(BooleanArray::new(
            (0..rows).map(|i| i % 2 == 0).collect(),
            Some(validity.clone()),
        )),
        Arc::new(StringArray::new(
            offsets,
            texts.concat().into_bytes().into(),
            Some(validity.clone()),
        )),
        Arc::new(StringViewArray::new(
            string_views.views().clone(),
            string_views.data_buffers().to_vec(),
            Some(validity.clone()),
        )),
        Arc::new(BinaryViewArray::new(
            binary_views.views().clone(),
            binary_views.data_buffers().to_vec(),
            Some(validity.clone()),
        )),
    ];
    let valid = |i: usize| !null_row(i);
    let clean: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter(
            (0..rows).map(|i| valid(i).then_some(i as i64 * 1_000_003)),
        )),
        Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| valid(i).then_some(i as f64)),
        )),
        Arc::new(BooleanArray::from_iter(
            (0..rows).map(|i| valid(i).then_some(i % 2 == 0)),
        )),
        Arc::new(StringArray::from_iter(
            (0..rows).map(|i| valid(i).then(|| text(i))),
        )),
        Arc::new(StringViewArray::from_iter(
            (0..rows).map(|i| valid(i).then(|| text(i))),
        )),
        Arc::new(BinaryViewArray::from_iter(
            (0..rows).map(|i| valid(i).then(|| text(i).into_bytes())),
        )),
    ];
    let names = ["i", "f", "b", "s", "sv", "bv"];
    let batch = |columns: Vec<ArrayRef>| {
        RecordBatch::try_from_iter(names.iter().copied().zip(columns)).unwrap()
    };
    let (dirty, clean) = (batch(dirty), batch(clean));
    assert!(
        dirty
            .column(3)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value_length(0)
            > 0,
        "row 0 is null and its slot holds a string"
    );
    for (start, len) in [(0, rows), (3, 200), (61, 70), (64, 1), (5, 0)] {
        let (dirty, clean) = (dirty.slice(start, len), clean.slice(start, len));
        let encoded = encode_all(&dirty, DEFAULT_MAX_RECORD_SIZE_BYTES);
        assert_eq!(encoded.successful_count(), len, "slice {start}+{len}");
        let expected = encode_all(&clean, DEFAULT_MAX_RECORD_SIZE_BYTES);
        let records = |e: &EncodedBatch| e.records().map(|(_, r)| r.to_vec()).collect::<Vec<_>>();
        assert_eq!(records(&encoded), records(&expected), "slice {start}+{len}");
        assert_measure_agrees(&dirty, DEFAULT_MAX_RECORD_SIZE_BYTES);
        assert_measure_agrees(&clean, DEFAULT_MAX_RECORD_SIZE_BYTES);
    }
}

#[test]
fn a_struct_past_19000_fields_round_trips_with_the_descriptor_s_numbers() {
    use arrow::array::StructArray;
    use prost_reflect::{DescriptorPool, DynamicMessage};

    const FIELDS: usize = 19_001;
    let arrow = crate::schema::tests::wide_struct(FIELDS);
    let DataType::Struct(fields) = arrow.field(0).data_type().clone() else {
        unreachable!()
    };
    let columns: Vec<ArrayRef> = (0..FIELDS)
        .map(|i| Arc::new(Int32Array::from(vec![i as i32 * 3 + 1])) as ArrayRef)
        .collect();
    let wide = StructArray::new(fields, columns, None);
    let batch = RecordBatch::try_from_iter(vec![("wide", Arc::new(wide) as ArrayRef)]).unwrap();
    let schema = Arc::new(TableSchema::try_new(batch.schema(), "c.s.t").unwrap());
    let encoded = RowEncoder::new(Arc::clone(&schema)).encode(&batch).unwrap();
    assert_eq!(encoded.successful_count(), 1);

    let pool = DescriptorPool::from_file_descriptor_set(schema.file_descriptor_set()).unwrap();
    let message = pool.get_message_by_name(schema.message_name()).unwrap();
    let decoded = DynamicMessage::decode(message, encoded.record(0).unwrap()).unwrap();
    let wide = decoded.get_field_by_name("wide").unwrap();
    let wide = wide.as_message().unwrap();
    // A field written under another number than the descriptor's would be unknown here.
    assert_eq!(wide.unknown_fields().count(), 0);
    for i in [0, 18_997, 18_998, 18_999, 19_000] {
        let value = wide.get_field_by_name(&format!("f{i}")).unwrap();
        assert_eq!(value.as_i32(), Some(i * 3 + 1), "f{i}");
    }
}
