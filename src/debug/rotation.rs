//! File naming, rotation and retention for debug output.
//!
//! Every format keeps one *active* file per table, `<base>.<ext>`, and renames it
//! aside when it is rotated:
//!
//! | case | rotated name |
//! |---|---|
//! | normal | `<base>_<YYYYMMDD_HHMMSS>.<ext>` (UTC) |
//! | that second already has a rotated file | `<base>_<YYYYMMDD_HHMMSS>_<N>.<ext>`, `N` = 1, 2, ... |
//! | the name could exceed 255 bytes | `<truncated base>_<n>.<ext>`, `n` = 1, 2, ... |
//!
//! The naming and ordering rules are pure functions ([`strip_rotation_suffix`],
//! [`RotatedNames`], [`files_to_delete`]); [`RotatingFile`] applies them to a directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::error::ZerobusError;

/// The longest file name common file systems (ext4, APFS, NTFS) accept, in bytes.
pub(crate) const MAX_FILE_NAME_BYTES: usize = 255;

/// The longest extension this module writes (`arrows`). Every stem leaves room
/// for it, so one length budget holds for `.arrows`, `.pb` and `.desc` alike.
const MAX_EXT_BYTES: usize = 6;

/// The longest stem: a file name minus `.` and the longest extension.
pub(crate) const MAX_STEM_BYTES: usize = MAX_FILE_NAME_BYTES - 1 - MAX_EXT_BYTES;

/// `_YYYYMMDD_HHMMSS`.
const TIMESTAMP_SUFFIX_BYTES: usize = 16;

/// `_N` for a same-second counter of up to 10 digits. Reserved up front so the
/// choice between timestamp and sequence naming depends only on the base.
const COUNTER_SUFFIX_BYTES: usize = 11;

/// `_n` for any `u64` sequence number.
const SEQUENCE_SUFFIX_BYTES: usize = 21;

/// When and how much to rotate; the wrapper-level settings, minus the paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RotationPolicy {
    /// Rotate once the active file holds this many bytes.
    pub(crate) max_file_size: Option<u64>,
    /// Rotate once the active file is older than this.
    pub(crate) rotation_interval: Option<Duration>,
    /// Keep at most this many rotated files; `None` keeps all.
    pub(crate) max_files_retained: Option<usize>,
}

impl RotationPolicy {
    /// Whether a file of `bytes` bytes is full.
    pub(crate) fn full(&self, bytes: u64) -> bool {
        self.max_file_size.is_some_and(|limit| bytes >= limit)
    }

    /// Whether a file opened `age` ago is due for rotation.
    pub(crate) fn expired(&self, age: Duration) -> bool {
        self.rotation_interval.is_some_and(|limit| age > limit)
    }
}

/// Turns a table name into the stem of its debug files.
///
/// Dots stay (`cat.sch.tbl` is a fine file name); path separators, characters
/// Windows forbids in names and control characters become `_`, so a table name
/// can never point outside the output directory. The result is cut (on a
/// character boundary) to [`MAX_STEM_BYTES`] so the active file name fits 255 bytes.
pub(crate) fn file_base_for_table(table_name: &str) -> Result<String, ZerobusError> {
    if table_name.is_empty() {
        return Err(ZerobusError::configuration(
            "debug output: table name is empty".to_string(),
        ));
    }
    let cleaned: String = table_name
        .chars()
        .map(|c| if is_forbidden_in_file_name(c) { '_' } else { c })
        .collect();
    Ok(truncate_to_bytes(&cleaned, MAX_STEM_BYTES).to_owned())
}

fn is_forbidden_in_file_name(c: char) -> bool {
    matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary.
pub(crate) fn truncate_to_bytes(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Removes trailing `_YYYYMMDD_HHMMSS` / `_YYYYMMDD_HHMMSS_N` suffixes, repeatedly,
/// so a rotated name is never rotated into `file_<ts>_<ts>`. A stem that is
/// nothing but a suffix is kept whole, since an empty base is no name at all.
pub(crate) fn strip_rotation_suffix(stem: &str) -> &str {
    let mut current = stem;
    while let Some(base) = strip_one_rotation_suffix(current) {
        if base.is_empty() {
            break;
        }
        current = base;
    }
    current
}

fn strip_one_rotation_suffix(stem: &str) -> Option<&str> {
    let with_counter = split_counter_suffix(stem)
        .and_then(|(head, _)| split_timestamp_suffix(head))
        .map(|(base, _)| base);
    with_counter.or_else(|| split_timestamp_suffix(stem).map(|(base, _)| base))
}

/// Splits `<head>_YYYYMMDD_HHMMSS` into `head` and the number `YYYYMMDDHHMMSS`.
fn split_timestamp_suffix(stem: &str) -> Option<(&str, u64)> {
    let split = stem.len().checked_sub(TIMESTAMP_SUFFIX_BYTES)?;
    if !stem.is_char_boundary(split) {
        return None;
    }
    let (head, suffix) = stem.split_at(split);
    let bytes = suffix.as_bytes();
    let digits_ok = bytes[1..9]
        .iter()
        .chain(&bytes[10..])
        .all(u8::is_ascii_digit);
    if bytes[0] != b'_' || bytes[9] != b'_' || !digits_ok {
        return None;
    }
    let value = format!("{}{}", &suffix[1..9], &suffix[10..]).parse().ok()?;
    Some((head, value))
}

/// Splits `<head>_<n>` into `head` and `n`, for canonical decimals only (no
/// leading zero), so only names this module writes are recognised.
fn split_counter_suffix(stem: &str) -> Option<(&str, u64)> {
    let (head, digits) = stem.rsplit_once('_')?;
    Some((head, parse_canonical_number(digits)?))
}

fn parse_canonical_number(digits: &str) -> Option<u64> {
    let canonical = !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    if canonical {
        digits.parse().ok()
    } else {
        None
    }
}

/// `YYYYMMDDHHMMSS` as a number, which sorts like the time it names.
fn timestamp_value(now: DateTime<Utc>) -> u64 {
    // The format yields only digits, so parsing cannot fail for years 0..=9999.
    now.format("%Y%m%d%H%M%S")
        .to_string()
        .parse()
        .unwrap_or_default()
}

fn format_timestamp_value(value: u64) -> String {
    format!("{:08}_{:06}", value / 1_000_000, value % 1_000_000)
}

/// Where a rotated file sits in rotation order: the timestamp and same-second
/// counter, or the sequence number (`minor` = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RotationKey {
    major: u64,
    minor: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NamingMode {
    /// `<base>_<YYYYMMDD_HHMMSS>[_N]`.
    Timestamp,
    /// `<base>_<n>`, for bases too long for a timestamp within 255 bytes.
    Sequence,
}

/// The rotated-name scheme of one active file: how new names are made and which
/// existing names belong to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RotatedNames {
    base: String,
    mode: NamingMode,
}

impl RotatedNames {
    /// The scheme for rotating the active file whose stem is `active_stem`.
    pub(crate) fn new(active_stem: &str) -> Self {
        let base = strip_rotation_suffix(active_stem);
        let timestamp_fits =
            base.len() + TIMESTAMP_SUFFIX_BYTES + COUNTER_SUFFIX_BYTES <= MAX_STEM_BYTES;
        if timestamp_fits {
            Self {
                base: base.to_owned(),
                mode: NamingMode::Timestamp,
            }
        } else {
            let room = MAX_STEM_BYTES - SEQUENCE_SUFFIX_BYTES;
            Self {
                base: truncate_to_bytes(base, room).to_owned(),
                mode: NamingMode::Sequence,
            }
        }
    }

    /// The rotation order of `stem`, or `None` if `stem` is not one of this scheme's names.
    pub(crate) fn key_of(&self, stem: &str) -> Option<RotationKey> {
        let rest = stem.strip_prefix(self.base.as_str())?;
        match self.mode {
            NamingMode::Timestamp => Self::timestamp_key(rest),
            NamingMode::Sequence => {
                let number = parse_canonical_number(rest.strip_prefix('_')?)?;
                Some(RotationKey {
                    major: number,
                    minor: 0,
                })
            }
        }
    }

    /// Parses `_YYYYMMDD_HHMMSS` or `_YYYYMMDD_HHMMSS_N` (the part after the base).
    fn timestamp_key(rest: &str) -> Option<RotationKey> {
        if let Some(("", major)) = split_timestamp_suffix(rest) {
            return Some(RotationKey { major, minor: 0 });
        }
        let (head, minor) = split_counter_suffix(rest)?;
        match split_timestamp_suffix(head) {
            Some(("", major)) => Some(RotationKey { major, minor }),
            _ => None,
        }
    }

    /// The stem for the next rotated file, given the keys already on disk.
    pub(crate) fn next_stem(&self, now: DateTime<Utc>, existing: &[RotationKey]) -> String {
        let newest = existing.iter().map(|key| key.major).max();
        match self.mode {
            NamingMode::Timestamp => {
                // If the clock stepped back, reuse the newest second so names keep
                // sorting in rotation order and retention deletes the right files.
                let second = newest.map_or(timestamp_value(now), |n| n.max(timestamp_value(now)));
                let taken = existing
                    .iter()
                    .filter(|key| key.major == second)
                    .map(|key| key.minor)
                    .max();
                let stamp = format_timestamp_value(second);
                match taken {
                    None => format!("{}_{stamp}", self.base),
                    Some(counter) => format!("{}_{stamp}_{}", self.base, counter + 1),
                }
            }
            // max + 1 rather than the first free number: after retention deleted
            // the oldest files, a reused low number would sort as the oldest.
            NamingMode::Sequence => format!("{}_{}", self.base, newest.unwrap_or(0) + 1),
        }
    }
}

/// A rotated file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RotatedFile {
    pub(crate) path: PathBuf,
    pub(crate) key: RotationKey,
}

/// The files to delete so that only the newest `keep` remain, oldest first.
pub(crate) fn files_to_delete(mut files: Vec<RotatedFile>, keep: usize) -> Vec<PathBuf> {
    files.sort_by_key(|file| file.key);
    let excess = files.len().saturating_sub(keep);
    files
        .into_iter()
        .take(excess)
        .map(|file| file.path)
        .collect()
}

/// One format's active file of one table, with its rotation and retention rules.
#[derive(Debug)]
pub(crate) struct RotatingFile {
    dir: PathBuf,
    stem: String,
    ext: &'static str,
    /// A file that travels with each rotated file (the `.desc` of a `.pb`).
    companion_ext: Option<&'static str>,
    active_path: PathBuf,
    names: RotatedNames,
    policy: RotationPolicy,
}

impl RotatingFile {
    /// The active file `<dir>/<stem>.<ext>`.
    pub(crate) fn new(
        dir: PathBuf,
        stem: &str,
        ext: &'static str,
        companion_ext: Option<&'static str>,
        policy: RotationPolicy,
    ) -> Self {
        let active_path = dir.join(format!("{stem}.{ext}"));
        Self {
            dir,
            stem: stem.to_owned(),
            ext,
            companion_ext,
            active_path,
            names: RotatedNames::new(stem),
            policy,
        }
    }

    /// The path new data is written to.
    pub(crate) fn active_path(&self) -> &Path {
        &self.active_path
    }

    /// The active companion file (e.g. `<stem>.desc`), if this format has one.
    pub(crate) fn companion_path(&self) -> Option<PathBuf> {
        self.companion_ext
            .map(|ext| self.dir.join(format!("{}.{ext}", self.stem)))
    }

    /// The rotation rules.
    pub(crate) fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    /// Renames the active file (and its companion) to the next rotated name and
    /// applies retention. Does nothing if there is no active file on disk, e.g.
    /// right after a size rotation or when nothing was written yet.
    ///
    /// The caller must have closed the active file first.
    pub(crate) fn rotate_existing(&self) -> Result<Option<PathBuf>, ZerobusError> {
        match fs::symlink_metadata(&self.active_path) {
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(ZerobusError::io(&self.active_path, err)),
        }
        let mut rotated = self.list_rotated()?;
        let keys: Vec<RotationKey> = rotated.iter().map(|file| file.key).collect();
        let stem = self.names.next_stem(Utc::now(), &keys);
        let target = self.dir.join(format!("{stem}.{}", self.ext));
        fs::rename(&self.active_path, &target)
            .map_err(|err| ZerobusError::io(&self.active_path, err))?;
        self.move_companion(&stem)?;
        debug!(from = %self.active_path.display(), to = %target.display(), "rotated debug file");

        if let Some(key) = self.names.key_of(&stem) {
            rotated.push(RotatedFile {
                path: target.clone(),
                key,
            });
        }
        self.enforce_retention(rotated);
        Ok(Some(target))
    }

    fn move_companion(&self, rotated_stem: &str) -> Result<(), ZerobusError> {
        let Some(ext) = self.companion_ext else {
            return Ok(());
        };
        let from = self.dir.join(format!("{}.{ext}", self.stem));
        let to = self.dir.join(format!("{rotated_stem}.{ext}"));
        match fs::rename(&from, to) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(ZerobusError::io(from, err)),
            _ => Ok(()),
        }
    }

    /// This file's rotated files in its directory. Entries that are not regular
    /// files (directories, symlinks) or whose names are not this file's rotated
    /// names are never listed, so retention cannot touch them.
    fn list_rotated(&self) -> Result<Vec<RotatedFile>, ZerobusError> {
        let to_error = |err| ZerobusError::io(&self.dir, err);
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(to_error)? {
            let entry = entry.map_err(to_error)?;
            if !entry.file_type().map_err(to_error)?.is_file() {
                continue;
            }
            let path = entry.path();
            if let Some(key) = self.key_of_path(&path) {
                found.push(RotatedFile { path, key });
            }
        }
        Ok(found)
    }

    fn key_of_path(&self, path: &Path) -> Option<RotationKey> {
        if path == self.active_path || path.extension()? != self.ext {
            return None;
        }
        self.names.key_of(path.file_stem()?.to_str()?)
    }

    /// Deletes the oldest rotated files beyond the retention limit. Failures are
    /// logged, not returned: losing old debug files must not fail a write.
    fn enforce_retention(&self, rotated: Vec<RotatedFile>) {
        let Some(keep) = self.policy.max_files_retained else {
            return;
        };
        for path in files_to_delete(rotated, keep) {
            remove_logged(&path);
            if let Some(ext) = self.companion_ext {
                remove_logged(&path.with_extension(ext));
            }
        }
    }
}

fn remove_logged(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => debug!(path = %path.display(), "deleted old debug file (retention)"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => warn!(path = %path.display(), error = %err, "could not delete old debug file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, h, m, s).unwrap()
    }

    fn key(major: u64, minor: u64) -> RotationKey {
        RotationKey { major, minor }
    }

    #[test]
    fn strip_removes_a_timestamp_suffix() {
        assert_eq!(strip_rotation_suffix("file_20250101_120000"), "file");
        assert_eq!(
            strip_rotation_suffix("cat.sch.tbl_20250101_120000"),
            "cat.sch.tbl"
        );
    }

    #[test]
    fn strip_removes_a_timestamp_with_counter() {
        assert_eq!(strip_rotation_suffix("file_20250101_120000_3"), "file");
        assert_eq!(strip_rotation_suffix("file_20250101_120000_12"), "file");
    }

    #[test]
    fn strip_removes_stacked_timestamps() {
        assert_eq!(
            strip_rotation_suffix("file_20250101_120000_20250101_120001"),
            "file"
        );
        assert_eq!(
            strip_rotation_suffix("file_20250101_120000_2_20250101_120001_1"),
            "file"
        );
    }

    #[test]
    fn strip_keeps_names_without_a_timestamp() {
        for stem in [
            "file",
            "events_2",
            "cat.sch.tbl",
            "t_2025_1200",
            "t_2025010_120000",
            "t_20250101_120000x",
            "t_20250101_120000_01",
            "_20250101_120000",
            "",
            "é_20250101_12000é",
        ] {
            assert_eq!(strip_rotation_suffix(stem), stem, "stem {stem:?}");
        }
    }

    #[test]
    fn next_stem_uses_the_utc_timestamp() {
        let names = RotatedNames::new("cat.sch.tbl");
        assert_eq!(
            names.next_stem(at(14, 30, 22), &[]),
            "cat.sch.tbl_20250101_143022"
        );
    }

    #[test]
    fn next_stem_counts_rotations_within_one_second() {
        let names = RotatedNames::new("t");
        let second = 20250101143022;
        assert_eq!(
            names.next_stem(at(14, 30, 22), &[key(second, 0)]),
            "t_20250101_143022_1"
        );
        assert_eq!(
            names.next_stem(at(14, 30, 22), &[key(second, 0), key(second, 1)]),
            "t_20250101_143022_2"
        );
        // After retention deleted the first ones, numbering continues upward.
        assert_eq!(
            names.next_stem(at(14, 30, 22), &[key(second, 5)]),
            "t_20250101_143022_6"
        );
    }

    #[test]
    fn next_stem_never_sorts_before_existing_files() {
        let names = RotatedNames::new("t");
        let later = 20250101150000;
        let stem = names.next_stem(at(14, 0, 0), &[key(later, 0)]);
        assert_eq!(stem, "t_20250101_150000_1");
        assert!(names.key_of(&stem).unwrap() > key(later, 0));
    }

    #[test]
    fn next_stem_never_stacks_timestamps() {
        let names = RotatedNames::new("file_20250101_120000");
        let stem = names.next_stem(at(12, 0, 1), &[]);
        assert_eq!(stem, "file_20250101_120001");
        let names = RotatedNames::new("file_20250101_120000_4_20250101_120000");
        assert_eq!(names.next_stem(at(12, 0, 1), &[]), "file_20250101_120001");
    }

    #[test]
    fn key_of_recognises_only_this_schemes_names() {
        let names = RotatedNames::new("t");
        assert_eq!(
            names.key_of("t_20250101_120000"),
            Some(key(20250101120000, 0))
        );
        assert_eq!(
            names.key_of("t_20250101_120000_7"),
            Some(key(20250101120000, 7))
        );
        for foreign in [
            "t",
            "t_backup",
            "t_1",
            "t_20250101_120000_01",
            "t_20250101_120000_",
            "tt_20250101_120000",
            "other_20250101_120000",
            "t_20250101_1200000",
        ] {
            assert_eq!(names.key_of(foreign), None, "stem {foreign:?}");
        }
    }

    #[test]
    fn long_bases_use_sequence_numbers_within_255_bytes() {
        let long = "a".repeat(MAX_STEM_BYTES);
        let names = RotatedNames::new(&long);
        let first = names.next_stem(at(12, 0, 0), &[]);
        assert!(first.ends_with("_1"), "{first}");
        assert!(first.len() < long.len());
        let last = names.next_stem(at(12, 0, 0), &[key(u64::MAX - 1, 0)]);
        assert!(last.len() + ".arrows".len() <= MAX_FILE_NAME_BYTES);
        assert_eq!(names.key_of(&last), Some(key(u64::MAX, 0)));
        assert_eq!(names.key_of(&long), None);
    }

    #[test]
    fn timestamp_mode_is_used_while_the_longest_name_fits() {
        let fits = "b".repeat(MAX_STEM_BYTES - TIMESTAMP_SUFFIX_BYTES - COUNTER_SUFFIX_BYTES);
        let stem =
            RotatedNames::new(&fits).next_stem(at(1, 2, 3), &[key(20250101010203, 4_294_967_294)]);
        assert_eq!(stem.len() + 1 + MAX_EXT_BYTES, MAX_FILE_NAME_BYTES);
        let too_long = format!("{fits}b");
        let stem = RotatedNames::new(&too_long).next_stem(at(1, 2, 3), &[]);
        assert!(stem.ends_with("_1"), "{stem}");
    }

    #[test]
    fn files_to_delete_keeps_the_newest() {
        let file = |major, minor, name: &str| RotatedFile {
            path: PathBuf::from(name),
            key: key(major, minor),
        };
        let files = vec![
            file(2, 0, "c"),
            file(1, 10, "b"),
            file(1, 2, "a"),
            file(3, 0, "d"),
        ];
        assert_eq!(
            files_to_delete(files.clone(), 2),
            vec![PathBuf::from("a"), PathBuf::from("b")]
        );
        assert!(files_to_delete(files.clone(), 4).is_empty());
        assert_eq!(files_to_delete(files, 0).len(), 4);
    }

    #[test]
    fn table_names_keep_dots_and_lose_path_separators() {
        assert_eq!(file_base_for_table("cat.sch.tbl").unwrap(), "cat.sch.tbl");
        assert_eq!(
            file_base_for_table("../etc/passwd").unwrap(),
            ".._etc_passwd"
        );
        assert_eq!(file_base_for_table("a\\b:c\0d").unwrap(), "a_b_c_d");
        assert!(matches!(
            file_base_for_table(""),
            Err(ZerobusError::ConfigurationError { .. })
        ));
    }

    #[test]
    fn table_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(200); // 400 bytes
        let base = file_base_for_table(&name).unwrap();
        assert!(base.len() <= MAX_STEM_BYTES);
        assert!(base.len() >= MAX_STEM_BYTES - 1);
        assert!(base.chars().all(|c| c == 'é'));
    }

    #[test]
    fn policy_checks_size_and_age() {
        let policy = RotationPolicy {
            max_file_size: Some(10),
            rotation_interval: Some(Duration::from_secs(1)),
            max_files_retained: None,
        };
        assert!(!policy.full(9));
        assert!(policy.full(10));
        assert!(!policy.expired(Duration::from_secs(1)));
        assert!(policy.expired(Duration::from_millis(1001)));
        let unlimited = RotationPolicy {
            max_file_size: None,
            rotation_interval: None,
            max_files_retained: None,
        };
        assert!(!unlimited.full(u64::MAX));
        assert!(!unlimited.expired(Duration::MAX));
    }
}
