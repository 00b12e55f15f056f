//! Names as the server accepts them: table names as Unity Catalog does, column names as
//! Zerobus does.
//!
//! - A table name is `catalog.schema.table`; each part has 1 to [`MAX_NAME_PART_CHARS`]
//!   characters, none of them a period, a space, a slash, an ASCII control character or
//!   DEL (Unity Catalog's rules), nor a backslash (a part names a directory of the Delta
//!   landing). A part also takes at most [`MAX_NAME_PART_BYTES`] bytes of UTF-8, the
//!   longest directory name most file systems allow (only names with non-ASCII characters
//!   can reach it within 255 characters).
//! - Unity Catalog stores object names in lowercase: `c.s.AbC` and `c.s.abc` are the same
//!   table, whose [key](table_key) is the lowercase name.
//! - Columns (and struct fields) are named `[A-Za-z_][A-Za-z0-9_]*` (what a protobuf field
//!   and the wrapper's own check accept), unique ignoring case (Delta column names are
//!   case-insensitive); a table has at most [`MAX_COLUMNS`] top-level columns.

use std::collections::HashSet;

use arrow::datatypes::{DataType, Fields, Schema};
use tonic::Status;

/// The longest name part Unity Catalog accepts, in characters.
pub(crate) const MAX_NAME_PART_CHARS: usize = 255;

/// The longest name part the local server accepts, in bytes of UTF-8: a part is a
/// directory name of the Delta landing, and file systems cap those at 255 bytes.
pub(crate) const MAX_NAME_PART_BYTES: usize = 255;

/// Most top-level columns of a table (the service's limit).
pub(crate) const MAX_COLUMNS: usize = 2000;

/// Accepts `catalog.schema.table` as Unity Catalog does (see the [module](self)).
pub(crate) fn validate_table_name(table: &str) -> Result<(), Status> {
    table_key(table).map(drop)
}

/// The table's identity: `table` checked (see [`validate_table_name`]) and in lowercase,
/// as Unity Catalog stores it.
pub(crate) fn table_key(table: &str) -> Result<String, Status> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() != 3 {
        return Err(invalid_name(
            table,
            format!(
                "expected catalog.schema.table, got {} dot-separated part{}",
                parts.len(),
                if parts.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    for (part, which) in parts.iter().zip(["catalog", "schema", "table"]) {
        part_problem(part).map_err(|why| invalid_name(table, format!("the {which} name {why}")))?;
    }
    Ok(table.to_lowercase())
}

/// Why `part` is not a valid name part.
fn part_problem(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("is empty".into());
    }
    let chars = part.chars().count();
    if chars > MAX_NAME_PART_CHARS {
        return Err(format!(
            "has {chars} characters; Unity Catalog accepts at most {MAX_NAME_PART_CHARS}"
        ));
    }
    if part.len() > MAX_NAME_PART_BYTES {
        return Err(format!(
            "takes {} bytes of UTF-8; the local server accepts at most {MAX_NAME_PART_BYTES} \
             (it names a directory)",
            part.len()
        ));
    }
    match part
        .chars()
        .find(|&c| c == ' ' || c == '/' || c == '\\' || c.is_ascii_control())
    {
        Some(c) => Err(format!(
            "contains {c:?}; names cannot contain a space, a slash, a backslash or an ASCII \
             control character"
        )),
        None => Ok(()),
    }
}

/// `INVALID_ARGUMENT` naming the table (shown with escapes, at most 300 characters of it:
/// the name came from the client and may be huge).
fn invalid_name(table: &str, why: String) -> Status {
    const SHOWN: usize = 300;
    let shown: String = table.chars().take(SHOWN).collect();
    let more = if shown.len() < table.len() { "…" } else { "" };
    Status::invalid_argument(format!("invalid table name {shown:?}{more}: {why}"))
}

/// Checks the column names of a table about to be created (see the [module](self)): at
/// most [`MAX_COLUMNS`] columns, each column and struct field named
/// `[A-Za-z_][A-Za-z0-9_]*`, unique ignoring case among its siblings.
///
/// # Errors
/// `INVALID_ARGUMENT` naming the column at fault by its path (`outer.inner`).
pub(crate) fn validate_columns(schema: &Schema) -> Result<(), Status> {
    let count = schema.fields().len();
    if count > MAX_COLUMNS {
        return Err(Status::invalid_argument(format!(
            "the table would have {count} columns; Zerobus accepts at most {MAX_COLUMNS}"
        )));
    }
    check_fields(schema.fields(), None).map_err(Status::invalid_argument)
}

fn check_fields(fields: &Fields, parent: Option<&str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for field in fields {
        let name = field.name();
        let path = match parent {
            Some(parent) => format!("{parent}.{name}"),
            None => name.clone(),
        };
        if !is_valid_column_name(name) {
            return Err(format!(
                "column {path:?}: {}; column names must match [A-Za-z_][A-Za-z0-9_]* (ASCII \
                 letters, digits and underscores, not starting with a digit)",
                if name.is_empty() {
                    "the name is empty".to_string()
                } else {
                    format!("the name {name:?} is not accepted by Zerobus")
                }
            ));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!(
                "column {path:?}: another column has the same name ignoring case (Delta \
                 column names are case-insensitive)"
            ));
        }
        check_nested(field.data_type(), &path)?;
    }
    Ok(())
}

/// Checks the struct fields inside `data_type` (list items and map entries have names
/// fixed by Arrow and Delta; only the structs inside them are checked).
fn check_nested(data_type: &DataType, path: &str) -> Result<(), String> {
    match data_type {
        DataType::Struct(fields) => check_fields(fields, Some(path)),
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => check_nested(item.data_type(), path),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => kv
                .iter()
                .try_for_each(|f| check_nested(f.data_type(), &format!("{path}.{}", f.name()))),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_valid_column_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;

    use super::*;

    #[test]
    fn table_names() {
        assert!(validate_table_name("a.b.c").is_ok());
        // Unity Catalog accepts hyphens, non-ASCII letters and most punctuation.
        assert!(validate_table_name("my-cat.sch_1.événements$").is_ok());
        let long = "x".repeat(MAX_NAME_PART_CHARS);
        assert!(validate_table_name(&format!("a.b.{long}")).is_ok());
        for bad in [
            "",
            "a.b",
            "a..c",
            "a.b.c.d",
            ".b.c",
            "a.b./etc",
            "a.b\\c.d",
            "a.b c.d",
            "a.b.c\u{7f}",
            "a.b.c\n",
            "a.b.c\0",
        ] {
            let err = validate_table_name(bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn a_part_longer_than_unity_catalog_allows_is_refused_naming_the_part() {
        let name = format!("c.s.{}", "t".repeat(MAX_NAME_PART_CHARS + 45));
        let err = validate_table_name(&name).unwrap_err();
        assert!(
            err.message().contains("the table name has 300 characters"),
            "{}",
            err.message()
        );
        // The name is shortened in the message.
        assert!(err.message().len() < 600, "{}", err.message());
        // 200 two-byte characters: within UC's 255 characters, not within 255 bytes.
        let wide = format!("c.{}.t", "é".repeat(200));
        let err = validate_table_name(&wide).unwrap_err();
        assert!(
            err.message().contains("the schema name takes 400 bytes"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn the_key_is_the_lowercase_name() {
        assert_eq!(table_key("C.s.AbC").unwrap(), "c.s.abc");
        assert_eq!(table_key("c.s.Été").unwrap(), "c.s.été");
    }

    fn schema(fields: Vec<Field>) -> Schema {
        Schema::new(fields)
    }

    #[test]
    fn column_names() {
        let int = |name: &str| Field::new(name, DataType::Int64, true);
        assert!(validate_columns(&schema(vec![int("id"), int("_x1"), int("Name")])).is_ok());
        for (bad, named) in [
            (vec![int("")], "\"\""),
            (vec![int("a b")], "\"a b\""),
            (vec![int("a.b")], "\"a.b\""),
            (vec![int("a,b")], "\"a,b\""),
            (vec![int("1st")], "\"1st\""),
            (vec![int("id"), int("ID")], "\"ID\""),
            (
                vec![Field::new(
                    "outer",
                    DataType::Struct(vec![int("ok"), int("bad key")].into()),
                    true,
                )],
                "\"outer.bad key\"",
            ),
            (
                vec![Field::new(
                    "items",
                    DataType::new_list(DataType::Struct(vec![int("in list")].into()), true),
                    true,
                )],
                "\"items.in list\"",
            ),
        ] {
            let err = validate_columns(&schema(bad)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().contains(named), "{named}: {}", err.message());
        }
    }

    #[test]
    fn at_most_2000_columns() {
        let wide = |n: usize| {
            schema(
                (0..n)
                    .map(|i| Field::new(format!("c{i}"), DataType::Int64, true))
                    .collect(),
            )
        };
        assert!(validate_columns(&wide(MAX_COLUMNS)).is_ok());
        let err = validate_columns(&wide(MAX_COLUMNS + 1)).unwrap_err();
        assert!(err.message().contains("2001 columns"), "{}", err.message());
        assert!(err.message().contains("at most 2000"), "{}", err.message());
    }
}
