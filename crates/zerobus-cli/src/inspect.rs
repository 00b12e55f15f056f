//! `zerobus debug inspect PATH`: the wrapper's debug files (and the quarantine files of
//! `zerobus ingest`) for people and scripts.
//!
//! - `.arrows` / `.arrow` (Arrow IPC stream or file): the schema, the row count and the
//!   first `--limit` rows.
//! - `.pb` (length-delimited protobuf records) with the `.desc` of the same stem (the
//!   descriptor set the wrapper writes next to it): the record count and the first
//!   `--limit` records decoded to JSON.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use clap::Args;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, MessageDescriptor, Value};
use prost_types::FileDescriptorSet;
use serde_json::json;

use crate::error::{CliError, CliResult, Context};
use crate::input::{Format, InputFile, ReadOptions, Reading};

/// `zerobus debug inspect`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  zerobus debug inspect debug/zerobus/arrow/main.demo.events.arrows
  zerobus debug inspect debug/zerobus/proto/main.demo.events.pb --limit 3 --json
  zerobus debug inspect failed/events.failed.arrows

DuckDB and pyarrow read the .arrows files too (docs/debugging.md).")]
pub struct InspectArgs {
    /// A .arrows/.arrow file, or a .pb file with its .desc next to it.
    #[arg(value_name = "PATH")]
    path: PathBuf,

    /// Rows or records shown.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 10)]
    limit: usize,

    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Prints what `args.path` holds.
///
/// # Errors
/// The file cannot be read or decoded; the message names it.
pub fn run(args: &InspectArgs) -> CliResult<()> {
    let extension = args
        .path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("pb") => inspect_protobuf(args),
        Some("desc") => Err(CliError::new(format!(
            "{}: a descriptor set; inspect the .pb file of the same name",
            args.path.display()
        ))),
        _ => inspect_arrow(args),
    }
}

fn inspect_arrow(args: &InspectArgs) -> CliResult<()> {
    let size = std::fs::metadata(&args.path)
        .context(args.path.display())?
        .len();
    let file = InputFile {
        path: args.path.clone(),
        format: Format::Arrows,
        size,
    };
    let options = ReadOptions {
        format: None,
        batch_rows: 8192,
        infer_rows: 0,
        delimiter: ',',
        no_header: false,
    };
    let mut reading = Reading::open(&file, &options)?;
    let mut rows = 0;
    let mut first = Vec::new();
    let mut kept = 0;
    while let Some(next) = reading.next_batch() {
        let (batch, _) = next.map_err(|e| CliError::new(format!("{}: {e}", file.name())))?;
        rows += batch.num_rows();
        if kept < args.limit {
            let take = batch.num_rows().min(args.limit - kept);
            first.push(batch.slice(0, take));
            kept += take;
        }
    }
    let first = concat_batches(&reading.schema, &first).context(file.name())?;
    if args.json {
        let schema: Vec<_> = reading
            .schema
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
            .collect();
        let output = json!({
            "file": file.name(),
            "schema": schema,
            "rows": rows,
            "first_rows": rows_json(&first).context(file.name())?,
        });
        println!("{output}");
        return Ok(());
    }
    println!("{}: Arrow IPC, {rows} row(s)", file.name());
    println!("schema:");
    for field in reading.schema.fields() {
        let null = if field.is_nullable() { "" } else { " not null" };
        println!("  {}: {}{null}", field.name(), field.data_type());
    }
    if first.num_rows() > 0 {
        println!("first {} row(s):", first.num_rows());
        let table = arrow::util::pretty::pretty_format_batches(&[first]).context(file.name())?;
        println!("{table}");
    }
    Ok(())
}

/// `batch` as JSON objects, one per row.
fn rows_json(batch: &RecordBatch) -> Result<serde_json::Value, String> {
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(json!([]));
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

fn inspect_protobuf(args: &InspectArgs) -> CliResult<()> {
    let path = &args.path;
    let descriptor_path = path.with_extension("desc");
    let message = record_descriptor(&descriptor_path)?;
    let bytes = std::fs::read(path).context(path.display())?;
    let mut rest = &bytes[..];
    let mut count = 0;
    let mut records = Vec::new();
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let corrupt = |what: String| {
            CliError::new(format!(
                "{}: record {count} at byte {offset}: {what}",
                path.display()
            ))
        };
        let len = prost::encoding::decode_varint(&mut rest).map_err(|e| corrupt(e.to_string()))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > rest.len() {
            return Err(corrupt(format!(
                "a length of {len} bytes, past the end of the file (truncated?)"
            )));
        }
        let (record, tail) = rest.split_at(len);
        rest = tail;
        if records.len() < args.limit {
            let decoded = DynamicMessage::decode(message.clone(), record)
                .map_err(|e| corrupt(format!("not a {} record: {e}", message.full_name())))?;
            records.push(message_json(&decoded));
        }
        count += 1;
    }
    if args.json {
        let output = json!({
            "file": path.display().to_string(),
            "message": message.full_name(),
            "records": count,
            "first_records": records,
        });
        println!("{output}");
        return Ok(());
    }
    println!(
        "{}: {count} protobuf record(s) of message {} (descriptor {})",
        path.display(),
        message.full_name(),
        descriptor_path.display()
    );
    for record in records {
        println!("{record}");
    }
    Ok(())
}

/// The top-level message of the descriptor set at `path` (the wrapper's `.desc` holds one
/// file with one message, the table's row).
fn record_descriptor(path: &Path) -> CliResult<MessageDescriptor> {
    let bytes = std::fs::read(path).context(format!(
        "{} (the descriptor set of the .pb file)",
        path.display()
    ))?;
    let set = FileDescriptorSet::decode(&bytes[..]).context(format!(
        "{}: not a protobuf FileDescriptorSet",
        path.display()
    ))?;
    let pool = DescriptorPool::from_file_descriptor_set(set).context(path.display())?;
    let message = pool.all_messages().find(|m| m.parent_message().is_none());
    message.ok_or_else(|| {
        CliError::new(format!(
            "{}: no message in the descriptor set",
            path.display()
        ))
    })
}

/// A decoded record as JSON: its set fields by name.
fn message_json(message: &DynamicMessage) -> serde_json::Value {
    let fields = message
        .fields()
        .map(|(field, value)| (field.name().to_string(), value_json(value)))
        .collect();
    serde_json::Value::Object(fields)
}

fn value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(v) => json!(v),
        Value::I32(v) => json!(v),
        Value::I64(v) => json!(v),
        Value::U32(v) => json!(v),
        Value::U64(v) => json!(v),
        Value::F32(v) => float_json(f64::from(*v)),
        Value::F64(v) => float_json(*v),
        Value::String(v) => json!(v),
        Value::Bytes(v) => json!(v.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Value::EnumNumber(v) => json!(v),
        Value::Message(v) => message_json(v),
        Value::List(values) => values.iter().map(value_json).collect(),
        Value::Map(entries) => {
            let mut entries: Vec<_> = entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let object = entries
                .into_iter()
                .map(|(key, value)| (map_key(key), value_json(value)))
                .collect();
            serde_json::Value::Object(object)
        }
    }
}

/// NaN and the infinities as strings (JSON has no numbers for them).
fn float_json(value: f64) -> serde_json::Value {
    serde_json::Number::from_f64(value).map_or_else(|| json!(value.to_string()), Into::into)
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(v) => v.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
        MapKey::String(v) => v.clone(),
    }
}
