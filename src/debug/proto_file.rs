//! Protobuf debug output: length-delimited records (`.pb`) plus the descriptor
//! set that decodes them (`.desc`).
//!
//! Each record is written as its length (a protobuf varint) followed by its
//! bytes, the `writeDelimitedTo` / `parseDelimitedFrom` format. The `.desc` file
//! is the encoded `FileDescriptorSet`, written when a `.pb` file is opened; a
//! new descriptor rotates the `.pb` first, so every `.pb` holds records of one
//! descriptor. A rotated `.pb` takes its `.desc` along under the same stem.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use prost_types::FileDescriptorSet;
use tracing::warn;

use super::active::ActiveFile;
use super::rotation::RotatingFile;
use crate::error::ZerobusError;

/// Extension of the record files.
pub(crate) const PROTO_EXT: &str = "pb";

/// Extension of the descriptor set files.
pub(crate) const DESCRIPTOR_EXT: &str = "desc";

/// The protobuf writer of one table. Not thread-safe by itself; `DebugWriter` wraps it in a `Mutex`.
#[derive(Debug)]
pub(crate) struct ProtoSink {
    file: RotatingFile,
    descriptor_path: PathBuf,
    flush_interval: Duration,
    active: Option<ActiveRecords>,
}

#[derive(Debug)]
struct ActiveRecords {
    out: ActiveFile,
    /// The descriptor of every record in `out`, to detect a change.
    descriptor: FileDescriptorSet,
}

impl ProtoSink {
    /// `file` must have [`DESCRIPTOR_EXT`] as its companion extension.
    pub(crate) fn new(file: RotatingFile, flush_interval: Duration) -> Self {
        let descriptor_path = file
            .companion_path()
            .unwrap_or_else(|| file.active_path().with_extension(DESCRIPTOR_EXT));
        Self {
            file,
            descriptor_path,
            flush_interval,
            active: None,
        }
    }

    /// Appends `records`, rotating before (descriptor change, age) or after (size) as needed.
    ///
    /// On a write failure the active file is abandoned, as for Arrow: the next
    /// write rotates it aside and starts clean.
    pub(crate) fn write<'a>(
        &mut self,
        descriptor: &FileDescriptorSet,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), ZerobusError> {
        if self.must_rotate_before(descriptor) {
            self.rotate()?;
        }
        let mut active = match self.active.take() {
            Some(active) => active,
            None => self.open(descriptor)?,
        };
        active
            .append(records, self.flush_interval)
            .map_err(|err| ZerobusError::io(self.file.active_path(), err))?;
        let full = self.file.policy().full(active.out.bytes_written());
        self.active = Some(active);
        if full {
            self.rotate()?;
        }
        Ok(())
    }

    fn must_rotate_before(&self, descriptor: &FileDescriptorSet) -> bool {
        self.active.as_ref().is_some_and(|active| {
            active.descriptor != *descriptor || self.file.policy().expired(active.out.age())
        })
    }

    /// Starts a new `.pb` and writes its `.desc`, first rotating aside any pair
    /// left at the active paths.
    fn open(&self, descriptor: &FileDescriptorSet) -> Result<ActiveRecords, ZerobusError> {
        self.file.rotate_existing()?;
        fs::write(&self.descriptor_path, descriptor.encode_to_vec())
            .map_err(|err| ZerobusError::io(&self.descriptor_path, err))?;
        Ok(ActiveRecords {
            out: ActiveFile::create(self.file.active_path())?,
            descriptor: descriptor.clone(),
        })
    }

    /// Closes the active `.pb` and renames it (with its `.desc`) to its rotated name.
    fn rotate(&mut self) -> Result<(), ZerobusError> {
        let finished = self.finish();
        let rotated = self.file.rotate_existing();
        finished.and(rotated).map(drop)
    }

    /// Writes buffered records to disk.
    pub(crate) fn flush(&mut self) -> Result<(), ZerobusError> {
        let Some(mut active) = self.active.take() else {
            return Ok(());
        };
        active
            .out
            .flush()
            .map_err(|err| ZerobusError::io(self.file.active_path(), err))?;
        self.active = Some(active);
        Ok(())
    }

    /// Flushes and closes the active `.pb`, leaving it (and its `.desc`) at the active paths.
    pub(crate) fn finish(&mut self) -> Result<(), ZerobusError> {
        match self.active.take() {
            Some(mut active) => active
                .out
                .flush()
                .map_err(|err| ZerobusError::io(self.file.active_path(), err)),
            None => Ok(()),
        }
    }

    /// Drops the active file after a panic left its state unknown.
    pub(crate) fn abandon(&mut self) {
        self.active = None;
    }
}

impl ActiveRecords {
    fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a [u8]>,
        flush_interval: Duration,
    ) -> io::Result<()> {
        let mut prefix = Vec::with_capacity(10);
        for record in records {
            prefix.clear();
            prost::encoding::encode_varint(record.len() as u64, &mut prefix);
            self.out.write_all(&prefix)?;
            self.out.write_all(record)?;
        }
        if self.out.flush_due(flush_interval) {
            self.out.flush()?;
        }
        Ok(())
    }
}

impl Drop for ProtoSink {
    /// Flushes what is buffered; `BufWriter` would too, but silently.
    fn drop(&mut self) {
        if let Err(err) = self.finish() {
            warn!(error = %err, "could not flush protobuf debug file on drop");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::DebugWriter;
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage};
    use prost_types::FileDescriptorSet;

    #[test]
    fn records_read_back_and_decode_with_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(proto_settings(dir.path()), "cat.sch.tbl").unwrap();
        let descriptor = row_descriptor("Row");
        let records: Vec<Vec<u8>> = (0..5)
            .map(|i| encode_row(&descriptor, i, &format!("name {i}")))
            .collect();
        writer
            .write_protobuf(&descriptor, records.iter().map(Vec::as_slice))
            .unwrap();
        writer.write_protobuf(&descriptor, [&[][..]]).unwrap();
        writer.shutdown().unwrap();

        let pb = writer.active_proto_path();
        assert_eq!(pb, dir.path().join("zerobus/proto/cat.sch.tbl.pb"));
        let mut expected = records.clone();
        expected.push(Vec::new());
        assert_eq!(read_delimited(&pb), expected);

        let desc_bytes = std::fs::read(pb.with_extension("desc")).unwrap();
        assert_eq!(
            FileDescriptorSet::decode(&desc_bytes[..]).unwrap(),
            descriptor
        );
        let pool = DescriptorPool::decode(&desc_bytes[..]).unwrap();
        let message = pool.get_message_by_name("test.Row").unwrap();
        let decoded = DynamicMessage::decode(message, &records[3][..]).unwrap();
        assert_eq!(decoded.get_field_by_number(1).unwrap().as_i64(), Some(3));
        assert_eq!(
            decoded.get_field_by_number(2).unwrap().as_str(),
            Some("name 3")
        );
    }

    #[test]
    fn long_records_use_multi_byte_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(proto_settings(dir.path()), "t").unwrap();
        let descriptor = row_descriptor("Row");
        let big = encode_row(&descriptor, 1, &"x".repeat(70_000));
        writer
            .write_protobuf(&descriptor, [big.as_slice()])
            .unwrap();
        writer.flush().unwrap();
        assert_eq!(read_delimited(&writer.active_proto_path()), vec![big]);
    }

    #[test]
    fn descriptor_change_rotates_and_each_file_keeps_its_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let writer = DebugWriter::new(proto_settings(dir.path()), "t").unwrap();
        let old = row_descriptor("Row");
        let new = row_descriptor("RowV2");
        let old_record = encode_row(&old, 1, "old");
        let new_record = encode_row(&new, 2, "new");
        writer
            .write_protobuf(&old, [old_record.as_slice()])
            .unwrap();
        writer
            .write_protobuf(&old, [old_record.as_slice()])
            .unwrap();
        writer
            .write_protobuf(&new, [new_record.as_slice()])
            .unwrap();
        writer.shutdown().unwrap();

        let files = proto_files_in_order(&writer);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(
            read_delimited(&files[0]),
            vec![old_record.clone(), old_record]
        );
        assert_eq!(read_delimited(&files[1]), vec![new_record]);
        for (file, expected) in files.iter().zip([&old, &new]) {
            let desc = std::fs::read(file.with_extension("desc")).unwrap();
            assert_eq!(&FileDescriptorSet::decode(&desc[..]).unwrap(), expected);
        }
    }

    #[test]
    fn size_rotation_splits_records_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = proto_settings(dir.path());
        settings.max_file_size = Some(100);
        let writer = DebugWriter::new(settings, "t").unwrap();
        let descriptor = row_descriptor("Row");
        let records: Vec<Vec<u8>> = (0..30)
            .map(|i| encode_row(&descriptor, i, "some text"))
            .collect();
        for chunk in records.chunks(3) {
            writer
                .write_protobuf(&descriptor, chunk.iter().map(Vec::as_slice))
                .unwrap();
        }
        writer.shutdown().unwrap();

        let files = proto_files_in_order(&writer);
        assert!(files.len() >= 3, "{files:?}");
        let read: Vec<_> = files.iter().flat_map(|f| read_delimited(f)).collect();
        assert_eq!(read, records);
        for file in &files {
            assert!(
                file.with_extension("desc").is_file(),
                "{file:?} lacks a .desc"
            );
        }
    }

    #[test]
    fn retention_deletes_descriptors_with_their_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = proto_settings(dir.path());
        settings.max_file_size = Some(1);
        settings.max_files_retained = Some(2);
        let writer = DebugWriter::new(settings, "t").unwrap();
        let descriptor = row_descriptor("Row");
        for i in 0..5 {
            let record = encode_row(&descriptor, i, "r");
            writer
                .write_protobuf(&descriptor, [record.as_slice()])
                .unwrap();
        }

        let mut names: Vec<_> = std::fs::read_dir(writer.proto_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 4, "two .pb and two .desc: {names:?}");
        let files = proto_files_in_order(&writer);
        assert_eq!(files.len(), 2);
        let ids: Vec<i64> = files
            .iter()
            .map(|f| decode_row_id(&descriptor, &read_delimited(f)[0]))
            .collect();
        assert_eq!(ids, vec![3, 4]);
    }
}
