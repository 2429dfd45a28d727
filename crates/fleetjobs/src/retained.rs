//! Durable retained MQTT messages: one file per topic under `DATA_DIR/retained/`, written
//! atomically (temporary file, fsync, rename, fsync of the directory), so that a retained
//! message acknowledged to its publisher survives a crash, as AWS keeps them.
//!
//! Kept apart from the engine's store: retained messages are the broker's, not Jobs state, and
//! the engine's commit pipeline knows nothing of them.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use fleetjobs_mqtt::{QoS, RetainedMessage};
use sha2::{Digest, Sha256};

/// First bytes of a retained message file, with the format version.
const MAGIC: &[u8; 5] = b"FJRM1";
const EXTENSION: &str = "msg";
const TEMPORARY_EXTENSION: &str = "tmp";

/// What [`RetainedFiles::load`] found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub messages: Vec<RetainedMessage>,
    /// Files that could not be read or decoded, skipped.
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

/// The directory of retained messages.
#[derive(Debug)]
pub struct RetainedFiles {
    dir: PathBuf,
}

impl RetainedFiles {
    /// Open (creating if needed) `dir`, removing the temporary files of writes a crash cut
    /// short.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == TEMPORARY_EXTENSION) {
                fs::remove_file(&path)?;
            }
        }
        Ok(RetainedFiles { dir })
    }

    /// Every retained message stored. An unreadable file is skipped (and reported, for the
    /// log), never fatal.
    pub fn load(&self) -> io::Result<Loaded> {
        let mut loaded = Loaded::default();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|ext| ext != EXTENSION) {
                continue;
            }
            match fs::read(&path).and_then(|bytes| decode(&bytes)) {
                Ok(message) => loaded.messages.push(message),
                Err(error) => loaded.unreadable.push((path, error)),
            }
        }
        Ok(loaded)
    }

    /// Store `message` as its topic's retained message, durably.
    pub fn put(&self, message: &RetainedMessage) -> io::Result<()> {
        let path = self.path(&message.topic);
        let temporary = path.with_extension(TEMPORARY_EXTENSION);
        let mut file = File::create(&temporary)?;
        file.write_all(&encode(message))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &path)?;
        self.sync_dir()
    }

    /// Remove `topic`'s retained message, durably.
    pub fn delete(&self, topic: &str) -> io::Result<()> {
        match fs::remove_file(self.path(topic)) {
            Ok(()) => self.sync_dir(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Topics can be long and hold any character: files are named by their SHA-256.
    fn path(&self, topic: &str) -> PathBuf {
        let name = hex::encode(Sha256::digest(topic.as_bytes()));
        self.dir.join(name).with_extension(EXTENSION)
    }

    /// A rename or removal is durable once the directory is.
    fn sync_dir(&self) -> io::Result<()> {
        sync_dir(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `MAGIC`, QoS (1 byte), topic length (4 bytes, big endian), topic, payload.
fn encode(message: &RetainedMessage) -> Vec<u8> {
    let topic = message.topic.as_bytes();
    let mut bytes = Vec::with_capacity(MAGIC.len() + 5 + topic.len() + message.payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.push(message.qos as u8);
    bytes.extend_from_slice(&(topic.len() as u32).to_be_bytes());
    bytes.extend_from_slice(topic);
    bytes.extend_from_slice(&message.payload);
    bytes
}

fn decode(bytes: &[u8]) -> io::Result<RetainedMessage> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("retained message file: {what}"));
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| invalid("unknown format"))?;
    let (&qos, rest) = rest.split_first().ok_or_else(|| invalid("truncated"))?;
    let qos = QoS::from_u8(qos).map_err(|_| invalid("bad QoS"))?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| invalid("truncated"))?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| invalid("bad topic length"))?;
    if rest.len() < len {
        return Err(invalid("truncated"));
    }
    let (topic, payload) = rest.split_at(len);
    let topic = std::str::from_utf8(topic).map_err(|_| invalid("topic is not UTF-8"))?.to_owned();
    Ok(RetainedMessage { topic, payload: Bytes::copy_from_slice(payload), qos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, payload: &'static [u8]) -> RetainedMessage {
        RetainedMessage { topic: topic.into(), payload: Bytes::from_static(payload), qos: QoS::Level1 }
    }

    fn sorted(files: &RetainedFiles) -> Vec<RetainedMessage> {
        let Loaded { mut messages, unreadable } = files.load().unwrap();
        assert!(unreadable.is_empty(), "{unreadable:?}");
        messages.sort_by(|a, b| a.topic.cmp(&b.topic));
        messages
    }

    #[test]
    fn put_replace_delete_and_reopen() {
        let dir = std::env::temp_dir().join(format!("fleetjobs-retained-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let files = RetainedFiles::open(dir.clone()).unwrap();
        files.put(&message("a/b", b"1")).unwrap();
        files.put(&message("$aws/things/t/x", b"")).unwrap();
        files.put(&message("a/b", b"2")).unwrap();
        files.delete("missing").unwrap();
        // A crash in the middle of a write leaves a temporary file: ignored, then removed.
        fs::write(dir.join("cut-short.tmp"), b"FJ").unwrap();
        // A damaged file is reported, not fatal.
        fs::write(dir.join("damaged.msg"), b"FJRM1\x01\x00\x00\x00\x09ab").unwrap();
        let files = RetainedFiles::open(dir.clone()).unwrap();
        assert!(!dir.join("cut-short.tmp").exists());
        let loaded = files.load().unwrap();
        assert_eq!(loaded.messages.len(), 2);
        assert_eq!(loaded.unreadable.len(), 1);
        fs::remove_file(dir.join("damaged.msg")).unwrap();
        assert_eq!(sorted(&files), vec![message("$aws/things/t/x", b""), message("a/b", b"2")]);
        files.delete("a/b").unwrap();
        assert_eq!(sorted(&files), vec![message("$aws/things/t/x", b"")]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
