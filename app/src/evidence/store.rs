//! Where evidence objects live. One trait, chosen by configuration: a local
//! directory (the embedded default) now; S3 is the next implementation.
//! Objects are opaque ciphertext under server-minted keys.
use std::path::{Path, PathBuf};

use rocket::tokio::fs;
use rocket::tokio::io::{AsyncRead, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the evidence store is unavailable: {0}")]
    Unavailable(String),
    #[error("object not found")]
    NotFound,
    #[error("invalid object key")]
    BadKey,
}

/// Receives an object's bytes; nothing is visible under the key until `finish`.
#[rocket::async_trait]
pub trait ObjectWriter: Send {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError>;
    /// Make the object durable and visible; returns its size in bytes.
    async fn finish(self: Box<Self>) -> Result<u64, StoreError>;
    async fn abort(self: Box<Self>);
}

/// A stored object as listed by the store.
#[derive(Clone, Debug)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

#[rocket::async_trait]
pub trait EvidenceStore: Send + Sync {
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError>;
    async fn reader(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Every finished object.
    async fn list(&self) -> Result<Vec<ObjectInfo>, StoreError>;
    /// Remove uploads that never finished (a crash mid-upload) older than `age`.
    async fn remove_unfinished(&self, age: std::time::Duration) -> Result<usize, StoreError>;
}

/// The key of the audit log's latest checkpoint, kept here as well as in
/// the database and the data directory.
pub const CHECKPOINT_OBJECT: &str = "a0d17c0000000000000000000000000000000000000000000000000000000001";

/// The audit log's copy of its latest checkpoint, in this store.
pub struct CheckpointInStore(pub std::sync::Arc<dyn EvidenceStore>);

#[rocket::async_trait]
impl crate::audit::CheckpointCopy for CheckpointInStore {
    async fn put(&self, note: &str) -> Result<(), String> {
        let mut writer = self.0.writer(CHECKPOINT_OBJECT).await.map_err(|e| e.to_string())?;
        writer.write(note.as_bytes()).await.map_err(|e| e.to_string())?;
        writer.finish().await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn get(&self) -> Option<String> {
        use rocket::tokio::io::AsyncReadExt;
        let mut reader = self.0.reader(CHECKPOINT_OBJECT).await.ok()?;
        let mut note = String::new();
        // A note is a few hundred bytes; anything far larger is not one.
        (&mut reader).take(64 * 1024).read_to_string(&mut note).await.ok()?;
        Some(note)
    }
}

/// Keys are minted by the server: lowercase hex only, so a key can never
/// name a path outside the store.
pub(crate) fn checked(key: &str) -> Result<&str, StoreError> {
    if !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        Ok(key)
    } else {
        Err(StoreError::BadKey)
    }
}

fn unavailable(e: std::io::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A directory: objects under `objects/`, uploads in progress under `incoming/`,
/// moved into place with fsync + rename so a crash never leaves a partial object.
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        for sub in ["objects", "incoming"] {
            fs::create_dir_all(root.join(sub)).await.map_err(unavailable)?;
        }
        Ok(Self { root: root.to_path_buf() })
    }
    fn object(&self, key: &str) -> Result<PathBuf, StoreError> {
        Ok(self.root.join("objects").join(checked(key)?))
    }
}

struct LocalWriter {
    file: fs::File,
    temp: PathBuf,
    target: PathBuf,
    written: u64,
    /// Where the range not yet handed to the disk begins.
    writeback_from: u64,
}

/// Objects up to this size are read whole when opened.
const READ_WHOLE_UP_TO: u64 = 192 * 1024;

/// How much is written before its writeback is started.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Start writing a range of the file to the disk without waiting for it
/// (Linux `sync_file_range`; elsewhere the final fsync does all the work).
/// Only a head start: durability still comes from the fsync in `finish`.
fn start_writeback(file: &fs::File, from: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor belongs to `file`, which outlives the call;
        // the flag only queues writeback and touches no memory of ours.
        let _ =
            unsafe { libc::sync_file_range(file.as_raw_fd(), from as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, len);
}

#[rocket::async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.write_all(bytes).await.map_err(unavailable)?;
        // What the earlier writes put in the page cache is sent to the disk
        // now, in the background, so that the fsync at the end has little
        // left to wait for (large objects: exports, big uploads).
        if self.written - self.writeback_from >= WRITEBACK_STEP {
            start_writeback(&self.file, self.writeback_from, self.written - self.writeback_from);
            self.writeback_from = self.written;
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        self.file.flush().await.map_err(unavailable)?;
        self.file.sync_all().await.map_err(unavailable)?;
        fs::rename(&self.temp, &self.target).await.map_err(unavailable)?;
        if let Some(dir) = self.target.parent() {
            // Persist the rename itself.
            if let Ok(d) = fs::File::open(dir).await {
                let _ = d.sync_all().await;
            }
        }
        let on_disk = fs::metadata(&self.target).await.map_err(unavailable)?.len();
        if on_disk != self.written {
            return Err(StoreError::Unavailable(format!("wrote {} bytes, found {on_disk}", self.written)));
        }
        Ok(on_disk)
    }

    async fn abort(self: Box<Self>) {
        drop(self.file);
        let _ = fs::remove_file(&self.temp).await;
    }
}

#[rocket::async_trait]
impl EvidenceStore for LocalStore {
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let target = self.object(key)?;
        let temp = self.root.join("incoming").join(format!("{}.part", checked(key)?));
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&temp).await.map_err(unavailable)?;
        Ok(Box::new(LocalWriter { file, temp, target, written: 0, writeback_from: 0 }))
    }

    async fn reader(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, StoreError> {
        // A small object is read whole in one trip to the blocking pool (an
        // open file would take one per read); a large one is streamed.
        let path = self.object(key)?;
        let opened = rocket::tokio::task::spawn_blocking(move || -> std::io::Result<Result<Vec<u8>, std::fs::File>> {
            use std::io::Read;
            let mut file = std::fs::File::open(path)?;
            let len = file.metadata()?.len();
            if len > READ_WHOLE_UP_TO {
                return Ok(Err(file));
            }
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes)?;
            Ok(Ok(bytes))
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        match opened {
            Ok(Ok(bytes)) => Ok(Box::new(std::io::Cursor::new(bytes))),
            Ok(Err(file)) => Ok(Box::new(fs::File::from_std(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.object(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match fs::metadata(self.object(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn list(&self) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut dir = fs::read_dir(self.root.join("objects")).await.map_err(unavailable)?;
        while let Some(entry) = dir.next_entry().await.map_err(unavailable)? {
            let key = entry.file_name().to_string_lossy().to_string();
            if checked(&key).is_err() {
                continue;
            }
            let meta = entry.metadata().await.map_err(unavailable)?;
            out.push(ObjectInfo { key, size: meta.len(), modified: meta.modified().map_err(unavailable)? });
        }
        Ok(out)
    }

    async fn remove_unfinished(&self, age: std::time::Duration) -> Result<usize, StoreError> {
        let mut removed = 0;
        let mut dir = fs::read_dir(self.root.join("incoming")).await.map_err(unavailable)?;
        while let Some(entry) = dir.next_entry().await.map_err(unavailable)? {
            let meta = entry.metadata().await.map_err(unavailable)?;
            let old = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|e| e >= age);
            if old && fs::remove_file(entry.path()).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::tokio::io::AsyncReadExt;

    #[rocket::async_test]
    async fn objects_appear_only_when_finished_and_round_trip() {
        let dir = std::env::temp_dir().join(format!("portal-store-{}", uuid::Uuid::new_v4().simple()));
        let store = LocalStore::open(&dir).await.unwrap();
        let mut w = store.writer("abc123").await.unwrap();
        w.write(b"hello ").await.unwrap();
        w.write(b"world").await.unwrap();
        assert_eq!(store.size("abc123").await.unwrap(), None, "not visible before finish");
        assert_eq!(w.finish().await.unwrap(), 11);
        let mut back = String::new();
        store.reader("abc123").await.unwrap().read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "hello world");
        let w = store.writer("def456").await.unwrap();
        w.abort().await;
        assert_eq!(store.size("def456").await.unwrap(), None);
        store.delete("abc123").await.unwrap();
        assert!(matches!(store.reader("abc123").await, Err(StoreError::NotFound)));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[rocket::async_test]
    async fn keys_cannot_escape_the_store() {
        let dir = std::env::temp_dir().join(format!("portal-store-{}", uuid::Uuid::new_v4().simple()));
        let store = LocalStore::open(&dir).await.unwrap();
        for key in ["../x", "a/b", "", "ABC", "..", "x.y"] {
            assert!(matches!(store.writer(key).await, Err(StoreError::BadKey)), "{key}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
