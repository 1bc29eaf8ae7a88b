//! The plaintext of an upload as the pipeline reads it: bytes already read
//! (or rewritten, such as a JPEG header without its metadata) first, then
//! the rest of the upload.
use rocket::tokio::io::{AsyncRead, AsyncReadExt};

pub struct Source<'a> {
    prefix: Vec<u8>,
    pos: usize,
    input: &'a mut (dyn AsyncRead + Send + Unpin),
}

impl<'a> Source<'a> {
    pub fn new(prefix: Vec<u8>, input: &'a mut (dyn AsyncRead + Send + Unpin)) -> Self {
        Self { prefix, pos: 0, input }
    }

    /// Put `bytes` in front of what is still unread.
    pub fn with_prefix(self, mut bytes: Vec<u8>) -> Self {
        bytes.extend_from_slice(&self.prefix[self.pos..]);
        Self { prefix: bytes, pos: 0, input: self.input }
    }

    /// Fill `buf` unless the input ends first; returns how many bytes were read.
    pub async fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.pos < self.prefix.len() {
                let n = (self.prefix.len() - self.pos).min(buf.len() - filled);
                buf[filled..filled + n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
                self.pos += n;
                filled += n;
                continue;
            }
            let n = self.input.read(&mut buf[filled..]).await?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        Ok(filled)
    }

    /// Read exactly `n` bytes or fail with `UnexpectedEof`.
    pub async fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0u8; n];
        if self.fill(&mut out).await? != n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rocket::async_test]
    async fn bytes_put_in_front_come_before_the_unread_rest() {
        let mut input = std::io::Cursor::new(b"-tail".to_vec());
        let mut source = Source::new(b"abcdef".to_vec(), &mut input);
        assert_eq!(source.take(2).await.unwrap(), b"ab");
        let mut source = source.with_prefix(b"XY".to_vec());
        let mut out = vec![0u8; 32];
        let n = source.fill(&mut out).await.unwrap();
        assert_eq!(&out[..n], b"XYcdef-tail");
    }
}
