//! The S3 evidence store (aws-sdk-s3): path-style addressing for MinIO-style
//! servers, optional server-side encryption, multipart uploads in 5 MiB parts
//! so a large file never sits whole in memory. Checksums are computed only
//! when an operation requires them, which S3-compatible servers accept.
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use aws_sdk_s3::Client;
use rocket::tokio::io::AsyncRead;

use super::store::{EvidenceStore, ObjectInfo, ObjectWriter, StoreError};
use crate::config::S3Settings;

/// S3's minimum part size (all parts but the last).
const PART: usize = 5 * 1024 * 1024;

pub struct S3Store {
    client: Client,
    bucket: String,
    sse: Option<ServerSideEncryption>,
}

fn unavailable(e: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

impl S3Store {
    pub fn new(s: &S3Settings) -> Self {
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(s.region.clone()))
            .force_path_style(s.path_style)
            .credentials_provider(Credentials::new(
                &s.access_key_id,
                &s.secret_access_key,
                None,
                None,
                "portal-settings",
            ))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &s.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(config.build()),
            bucket: s.bucket.clone(),
            sse: s.server_side_encryption.as_deref().map(ServerSideEncryption::from),
        }
    }
}

impl S3Store {
    /// Create the bucket if it does not exist yet (first start against a
    /// fresh MinIO, for instance). An unreachable store is not fatal here:
    /// uploads will answer 503 until it is back.
    pub async fn ensure_bucket(&self) -> Result<(), StoreError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.into_service_error() {
                err if err.is_not_found() => {
                    self.client.create_bucket().bucket(&self.bucket).send().await.map_err(unavailable)?;
                    Ok(())
                }
                err => Err(unavailable(err)),
            },
        }
    }
}

struct S3Writer {
    client: Client,
    bucket: String,
    key: String,
    sse: Option<ServerSideEncryption>,
    buf: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    written: u64,
}

impl S3Writer {
    async fn send_part(&mut self, bytes: Vec<u8>) -> Result<(), StoreError> {
        if self.upload_id.is_none() {
            let created = self
                .client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .set_server_side_encryption(self.sse.clone())
                .send()
                .await
                .map_err(unavailable)?;
            self.upload_id = created.upload_id().map(str::to_string);
        }
        let upload_id = self.upload_id.clone().ok_or_else(|| StoreError::Unavailable("no upload id".into()))?;
        let number = self.parts.len() as i32 + 1;
        let part = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(unavailable)?;
        self.parts
            .push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_string)).build());
        Ok(())
    }
}

#[rocket::async_trait]
impl ObjectWriter for S3Writer {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        // Grow once to a part and this write, not by doubling: a doubled
        // buffer would reach 8 MiB for a 5 MiB part, on every upload at once.
        if self.buf.len() + bytes.len() > self.buf.capacity() {
            self.buf.reserve_exact((PART + bytes.len()).saturating_sub(self.buf.len()));
        }
        self.buf.extend_from_slice(bytes);
        self.written += bytes.len() as u64;
        while self.buf.len() >= PART {
            // The part leaves with its buffer; what follows it starts a new one.
            let rest = self.buf.split_off(PART);
            let part = std::mem::replace(&mut self.buf, rest);
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        let rest = std::mem::take(&mut self.buf);
        match self.upload_id.clone() {
            None => {
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .set_server_side_encryption(self.sse.clone())
                    .body(ByteStream::from(rest))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
            Some(upload_id) => {
                if !rest.is_empty() {
                    self.send_part(rest).await?;
                }
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .upload_id(upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(self.parts.clone())).build())
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
        }
        // Verify what the store now holds before anyone is told it is saved.
        let head = self.client.head_object().bucket(&self.bucket).key(&self.key).send().await.map_err(unavailable)?;
        let stored = head.content_length().unwrap_or(-1);
        if stored != self.written as i64 {
            return Err(StoreError::Unavailable(format!("wrote {} bytes, store holds {stored}", self.written)));
        }
        Ok(self.written)
    }

    async fn abort(self: Box<Self>) {
        if let Some(upload_id) = &self.upload_id {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
        }
    }
}

#[rocket::async_trait]
impl EvidenceStore for S3Store {
    async fn writer(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StoreError> {
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: super::store::checked(key)?.to_string(),
            sse: self.sse.clone(),
            buf: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            written: 0,
        }))
    }

    async fn reader(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, StoreError> {
        let key = super::store::checked(key)?;
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Box::new(out.body.into_async_read())),
            Err(e) => match e.into_service_error() {
                err if err.is_no_such_key() => Err(StoreError::NotFound),
                err => Err(unavailable(err)),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = super::store::checked(key)?;
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let key = super::store::checked(key)?;
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => Ok(head.content_length().map(|l| l.max(0) as u64)),
            Err(e) => match e.into_service_error() {
                err if err.is_not_found() => Ok(None),
                err => Err(unavailable(err)),
            },
        }
    }

    async fn list(&self) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(unavailable)?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if super::store::checked(key).is_err() {
                    continue;
                }
                let modified =
                    object.last_modified().and_then(|t| SystemTime::try_from(*t).ok()).unwrap_or(SystemTime::now());
                out.push(ObjectInfo { key: key.to_string(), size: object.size().unwrap_or(0).max(0) as u64, modified });
            }
        }
        Ok(out)
    }

    async fn remove_unfinished(&self, age: Duration) -> Result<usize, StoreError> {
        let listed = match self.client.list_multipart_uploads().bucket(&self.bucket).send().await {
            Ok(listed) => listed,
            Err(e) => {
                let e = e.into_service_error();
                // Some S3-compatible servers do not list uploads; a bucket
                // lifecycle rule (AbortIncompleteMultipartUpload) covers them.
                if aws_sdk_s3::error::ProvideErrorMetadata::code(&e) == Some("NotImplemented") {
                    tracing::warn!("the object store cannot list unfinished uploads; rely on a lifecycle rule");
                    return Ok(0);
                }
                return Err(unavailable(e));
            }
        };
        let mut removed = 0;
        for upload in listed.uploads() {
            let started = upload.initiated().and_then(|t| SystemTime::try_from(*t).ok());
            let old = started.and_then(|s| s.elapsed().ok()).is_some_and(|e| e >= age);
            if let (true, Some(key), Some(id)) = (old, upload.key(), upload.upload_id()) {
                if self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(id).send().await.is_ok()
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
