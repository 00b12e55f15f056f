//! Table names as the server accepts them.

use tonic::Status;

/// Accepts `catalog.schema.table` with three non-empty parts (no path separators: each
/// part names a directory of the Delta landing).
pub(crate) fn validate_table_name(table: &str) -> Result<(), Status> {
    let parts: Vec<&str> = table.split('.').collect();
    let valid_part = |p: &&str| !p.is_empty() && !p.contains(['/', '\\', '\0']);
    if parts.len() == 3 && parts.iter().all(valid_part) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "invalid table name {table:?}: expected catalog.schema.table"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(validate_table_name("a.b.c").is_ok());
        for bad in ["", "a.b", "a..c", "a.b.c.d", ".b.c", "a.b./etc", "a.b\\c.d"] {
            let err = validate_table_name(bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }
}
