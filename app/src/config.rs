//! One typed `Settings`, loaded through Rocket's figment (`Rocket.toml`
//! profiles, `ROCKET_*` and `APP_*` environment, plus plain `DATABASE_URL`)
//! and validated before the app ignites. Secrets never print.
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::Figment;
use serde::Deserialize;
use zeroize::Zeroizing;

/// A secret value: printing it shows `[redacted]`.
#[derive(Clone)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What the operator gave us, before validation.
#[derive(Debug, Deserialize)]
struct RawSettings {
    database_url: Option<String>,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    jwt_secret: Option<String>,
    master_key: Option<String>,
    blind_index_key: Option<String>,
    #[serde(default = "default_session_hours")]
    session_hours: i64,
    cookie_secure: Option<bool>,
    #[serde(default = "default_bootstrap_email")]
    bootstrap_admin_email: String,
    #[serde(default = "default_max_failures")]
    login_max_failures: i32,
    #[serde(default = "default_lockout_minutes")]
    lockout_minutes: i64,
    #[serde(default = "default_ip_per_minute")]
    login_attempts_per_ip_per_minute: u32,
    #[serde(default = "default_idle_minutes_staff")]
    idle_minutes_staff: i64,
    #[serde(default = "default_idle_minutes_claimant")]
    idle_minutes_claimant: i64,
    #[serde(default = "default_registrations_per_ip")]
    registrations_per_ip_per_hour: u32,
    #[serde(default = "default_registrations_per_minute")]
    registrations_per_minute: u32,
    #[serde(default = "default_db_connections")]
    db_max_connections: u32,
    #[serde(default)]
    profile_is_release: bool,
    evidence_dir: Option<PathBuf>,
    #[serde(default = "default_max_evidence_bytes")]
    max_evidence_bytes: u64,
    #[serde(default = "default_max_evidence_files")]
    max_evidence_files: u64,
    #[serde(default = "default_evidence_store")]
    evidence_store: String,
    s3_endpoint: Option<String>,
    s3_bucket: Option<String>,
    #[serde(default = "default_s3_region")]
    s3_region: String,
    #[serde(default = "default_true")]
    s3_path_style: bool,
    s3_server_side_encryption: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    #[serde(default = "default_claim_views_per_hour")]
    claim_views_per_hour: u32,
    #[serde(default = "default_evidence_downloads_per_hour")]
    evidence_downloads_per_hour: u32,
    #[serde(default = "default_exports_per_hour")]
    exports_per_hour: u32,
    #[serde(default = "default_claim_views_per_day")]
    claim_views_per_day: u32,
    #[serde(default = "default_evidence_downloads_per_day")]
    evidence_downloads_per_day: u32,
    #[serde(default = "default_exports_per_day")]
    exports_per_day: u32,
    #[serde(default = "default_bundle_downloads_per_hour")]
    bundle_downloads_per_hour: u32,
    #[serde(default = "default_bundle_downloads_per_day")]
    bundle_downloads_per_day: u32,
    smtp_url: Option<String>,
    #[serde(default = "default_mail_from")]
    mail_from: String,
    #[serde(default = "default_public_url")]
    public_url: String,
    #[serde(default = "default_workers")]
    workers: u32,
    #[serde(default = "default_job_lease_seconds")]
    job_lease_seconds: u64,
    #[serde(default = "default_job_poll_ms")]
    job_poll_ms: u64,
    #[serde(default = "default_job_retry_seconds")]
    job_retry_seconds: u64,
    #[serde(default = "default_sweep_seconds")]
    reminder_sweep_seconds: u64,
    #[serde(default = "default_review_overdue_days")]
    review_overdue_days: u32,
    /// Comma-separated addresses or networks of the reverse proxies in front.
    #[serde(default)]
    trusted_proxies: String,
}

fn default_mail_from() -> String {
    "noreply@portal.invalid".into()
}
fn default_public_url() -> String {
    "http://localhost:8000".into()
}
fn default_workers() -> u32 {
    2
}
fn default_job_lease_seconds() -> u64 {
    60
}
fn default_job_poll_ms() -> u64 {
    1000
}
fn default_job_retry_seconds() -> u64 {
    30
}
fn default_sweep_seconds() -> u64 {
    300
}
fn default_review_overdue_days() -> u32 {
    14
}

/// A day's caps are well under 24 hours at the hourly cap: a reader who
/// stays just under the hourly cap all day is stopped and reported.
fn default_claim_views_per_day() -> u32 {
    1_000
}
fn default_evidence_downloads_per_day() -> u32 {
    3_000
}
fn default_exports_per_day() -> u32 {
    10
}
fn default_bundle_downloads_per_hour() -> u32 {
    5
}
fn default_bundle_downloads_per_day() -> u32 {
    10
}
fn default_exports_per_hour() -> u32 {
    DEFAULT_EXPORTS_PER_HOUR
}
/// Filing bundles hold every plaintiff's data: a few an hour is plenty (`APP_EXPORTS_PER_HOUR`).
pub const DEFAULT_EXPORTS_PER_HOUR: u32 = 5;

fn default_claim_views_per_hour() -> u32 {
    DEFAULT_CLAIM_VIEWS_PER_HOUR
}
fn default_evidence_downloads_per_hour() -> u32 {
    DEFAULT_EVIDENCE_DOWNLOADS_PER_HOUR
}
/// A careful reviewer reads perhaps 60 claims an hour; 200 leaves room and
/// still stops a bulk copy (`APP_CLAIM_VIEWS_PER_HOUR`).
pub const DEFAULT_CLAIM_VIEWS_PER_HOUR: u32 = 200;
/// Previews count as downloads, so the cap is higher (`APP_EVIDENCE_DOWNLOADS_PER_HOUR`).
pub const DEFAULT_EVIDENCE_DOWNLOADS_PER_HOUR: u32 = 600;

fn default_evidence_store() -> String {
    "local".into()
}
fn default_s3_region() -> String {
    "ap-northeast-1".into()
}
fn default_true() -> bool {
    true
}

fn default_max_evidence_bytes() -> u64 {
    DEFAULT_MAX_EVIDENCE_BYTES
}
fn default_max_evidence_files() -> u64 {
    30
}

/// 20 MiB a file unless configured (`APP_MAX_EVIDENCE_BYTES`).
pub const DEFAULT_MAX_EVIDENCE_BYTES: u64 = 20 * 1024 * 1024;

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_session_hours() -> i64 {
    8
}
fn default_bootstrap_email() -> String {
    "admin@portal.invalid".into()
}
fn default_max_failures() -> i32 {
    5
}
fn default_lockout_minutes() -> i64 {
    15
}
fn default_ip_per_minute() -> u32 {
    30
}
fn default_idle_minutes_staff() -> i64 {
    30
}
fn default_idle_minutes_claimant() -> i64 {
    120
}
/// Households behind one carrier-grade NAT share an address: generous.
fn default_registrations_per_ip() -> u32 {
    20
}
fn default_registrations_per_minute() -> u32 {
    120
}
fn default_db_connections() -> u32 {
    16
}

/// The keys the portal cannot run without.
#[derive(Clone, Debug)]
pub struct SecretKeys {
    pub jwt: Secret<Zeroizing<Vec<u8>>>,
    pub master: Secret<Zeroizing<[u8; 32]>>,
    pub blind_index: Secret<Zeroizing<[u8; 32]>>,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    /// True when running on the embedded default (SQLite under `data_dir`).
    pub embedded: bool,
    pub data_dir: PathBuf,
    pub keys: SecretKeys,
    pub session_hours: i64,
    pub cookie_secure: bool,
    pub bootstrap_admin_email: String,
    pub login_max_failures: i32,
    pub lockout_minutes: i64,
    pub login_attempts_per_ip_per_minute: u32,
    /// A session unused this long ends: staff, claimants.
    pub idle_minutes_staff: i64,
    pub idle_minutes_claimant: i64,
    /// New accounts per client address per hour, and for the whole portal per minute.
    pub registrations_per_ip_per_hour: u32,
    pub registrations_per_minute: u32,
    pub db_max_connections: u32,
    /// The local evidence store's directory.
    pub evidence_dir: PathBuf,
    pub max_evidence_bytes: u64,
    pub max_evidence_files: u64,
    /// `None`: the local directory store; `Some`: S3.
    pub s3: Option<Secret<S3Settings>>,
    /// Per-user hourly caps on staff reads of claims and evidence (S9).
    pub claim_views_per_hour: u32,
    pub evidence_downloads_per_hour: u32,
    pub exports_per_hour: u32,
    /// The same caps over the last 24 hours, and for bundle downloads.
    pub claim_views_per_day: u32,
    pub evidence_downloads_per_day: u32,
    pub exports_per_day: u32,
    pub bundle_downloads_per_hour: u32,
    pub bundle_downloads_per_day: u32,
    pub background: Background,
    /// `APP_TRUSTED_PROXIES`: requests from these peers name the client in
    /// `X-Forwarded-For`; from anyone else that header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Mail and background work. Every setting is optional.
#[derive(Clone, Debug)]
pub struct Background {
    /// `APP_SMTP_URL`: `smtp://host:25` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465` (implicit TLS). Without it,
    /// mail waits in the outbox and the admin page says so.
    pub smtp_url: Option<Secret<String>>,
    /// `APP_MAIL_FROM`: the sender address.
    pub mail_from: String,
    /// `APP_PUBLIC_URL`: where mail tells people to sign in; its host names the `Message-ID`s.
    pub public_url: String,
    /// `APP_WORKERS`: job runners in this process (0: this server runs no background work).
    pub workers: u32,
    /// `APP_JOB_LEASE_SECONDS`: how long a claimed job is held without a heartbeat.
    pub job_lease: chrono::Duration,
    /// `APP_JOB_POLL_MS`: how often an idle runner looks for work.
    pub job_poll: std::time::Duration,
    /// `APP_JOB_RETRY_SECONDS`: the first retry's delay; it doubles per attempt up to an hour.
    pub job_retry: chrono::Duration,
    /// `APP_REMINDER_SWEEP_SECONDS`: how often due reminders are looked for.
    pub reminder_sweep: chrono::Duration,
    /// `APP_REVIEW_OVERDUE_DAYS`: a submitted claim undecided this long is overdue in review.
    pub review_overdue_days: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration is invalid: {0}")]
    Invalid(String),
    #[error(
        "secret `{0}` is missing. When DATABASE_URL points to a database other than the \
         embedded default, or in a release profile, every secret must be given: \
         APP_JWT_SECRET, APP_MASTER_KEY and APP_BLIND_INDEX_KEY (base64, at least 32 bytes). \
         Generate one with: head -c 32 /dev/urandom | base64"
    )]
    MissingSecret(&'static str),
    #[error("secret `{0}` is too weak: it must be base64 of at least 32 random bytes")]
    WeakSecret(&'static str),
    #[error("could not prepare the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}

/// The figment every entry point uses: Rocket's own (Rocket.toml + ROCKET_*),
/// then APP_* and DATABASE_URL, over safe defaults.
pub fn figment() -> Figment {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let figment = rocket::Config::figment()
        .join(Serialized::default("template_dir", templates))
        // Never trust X-Real-IP unless an operator says a proxy sets it.
        .join(Serialized::default("ip_header", false))
        .merge(Toml::file("Rocket.toml").nested())
        .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database_url".into()))
        .merge(Env::raw().only(&["AWS_ACCESS_KEY_ID"]).map(|_| "s3_access_key_id".into()))
        .merge(Env::raw().only(&["AWS_SECRET_ACCESS_KEY"]).map(|_| "s3_secret_access_key".into()))
        .merge(Env::prefixed("APP_").global());
    with_upload_limits(figment)
}

/// Rocket's body limits follow the evidence size limit: a file part may be
/// that large, the whole multipart form a little larger for its other fields.
pub fn with_upload_limits(figment: Figment) -> Figment {
    let max: u64 = figment.extract_inner("max_evidence_bytes").unwrap_or(DEFAULT_MAX_EVIDENCE_BYTES);
    figment
        .merge(("limits.file", max))
        .merge(("limits.data-form", max + 64 * 1024))
        .merge(("limits.form", 64 * 1024))
        .merge(("limits.json", 1024 * 1024))
}

impl Settings {
    /// Extract and validate. On the embedded default, missing secrets are
    /// generated once into `data_dir` with 0600 permissions.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut raw: RawSettings = figment.extract().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let profile = figment.profile().as_str().to_string();
        raw.profile_is_release = raw.profile_is_release || profile == "release";
        let embedded = raw.database_url.is_none();
        let database_url = match &raw.database_url {
            Some(url) => url.clone(),
            None => {
                ensure_dir(&raw.data_dir)?;
                format!("sqlite://{}?mode=rwc", raw.data_dir.join("portal.db").display())
            }
        };
        let keys = raw.keys(embedded && !raw.profile_is_release)?;
        raw.check_sessions_and_limits()?;
        let s3 = raw.s3()?;
        raw.check_evidence_caps_and_jobs()?;
        let background = raw.background();
        let trusted_proxies = raw.trusted_proxies()?;
        Ok(Settings {
            trusted_proxies,
            background,
            claim_views_per_hour: raw.claim_views_per_hour,
            evidence_downloads_per_hour: raw.evidence_downloads_per_hour,
            exports_per_hour: raw.exports_per_hour,
            claim_views_per_day: raw.claim_views_per_day,
            evidence_downloads_per_day: raw.evidence_downloads_per_day,
            exports_per_day: raw.exports_per_day,
            bundle_downloads_per_hour: raw.bundle_downloads_per_hour,
            bundle_downloads_per_day: raw.bundle_downloads_per_day,
            evidence_dir: raw.evidence_dir.clone().unwrap_or_else(|| raw.data_dir.join("evidence")),
            max_evidence_bytes: raw.max_evidence_bytes,
            max_evidence_files: raw.max_evidence_files,
            s3,
            database_url,
            embedded,
            data_dir: raw.data_dir,
            keys,
            session_hours: raw.session_hours,
            cookie_secure: raw.cookie_secure.unwrap_or(profile != "debug"),
            bootstrap_admin_email: raw.bootstrap_admin_email,
            login_max_failures: raw.login_max_failures,
            lockout_minutes: raw.lockout_minutes,
            login_attempts_per_ip_per_minute: raw.login_attempts_per_ip_per_minute,
            // Never longer than a session lasts anyway.
            idle_minutes_staff: raw.idle_minutes_staff.min(raw.session_hours * 60),
            idle_minutes_claimant: raw.idle_minutes_claimant.min(raw.session_hours * 60),
            registrations_per_ip_per_hour: raw.registrations_per_ip_per_hour,
            registrations_per_minute: raw.registrations_per_minute,
            db_max_connections: raw.db_max_connections,
        })
    }
}

impl RawSettings {
    /// The three secrets: given, or (on the embedded default outside the
    /// release profile) generated once into the data directory.
    fn keys(&self, may_generate: bool) -> Result<SecretKeys, ConfigError> {
        Ok(SecretKeys {
            jwt: Secret::new(Zeroizing::new(
                secret_bytes("jwt_secret", self.jwt_secret.as_deref(), &self.data_dir, may_generate)?.to_vec(),
            )),
            master: Secret::new(secret_bytes("master_key", self.master_key.as_deref(), &self.data_dir, may_generate)?),
            blind_index: Secret::new(secret_bytes(
                "blind_index_key",
                self.blind_index_key.as_deref(),
                &self.data_dir,
                may_generate,
            )?),
        })
    }

    fn check_sessions_and_limits(&self) -> Result<(), ConfigError> {
        if self.session_hours < 1 || self.session_hours > 24 * 14 {
            return Err(ConfigError::Invalid("session_hours must be between 1 and 336".into()));
        }
        if self.idle_minutes_staff < 1 || self.idle_minutes_claimant < 1 {
            return Err(ConfigError::Invalid("idle_minutes_staff and idle_minutes_claimant must be positive".into()));
        }
        if self.login_max_failures < 1
            || self.lockout_minutes < 1
            || self.login_attempts_per_ip_per_minute < 1
            || self.registrations_per_ip_per_hour < 1
            || self.registrations_per_minute < 1
        {
            return Err(ConfigError::Invalid(
                "login_max_failures, lockout_minutes, login_attempts_per_ip_per_minute, registrations_per_ip_per_hour \
                 and registrations_per_minute must be positive"
                    .into(),
            ));
        }
        if self.db_max_connections < 1 {
            return Err(ConfigError::Invalid("db_max_connections must be at least 1".into()));
        }
        Ok(())
    }

    /// The S3 store's settings when `evidence_store = "s3"`.
    fn s3(&self) -> Result<Option<Secret<S3Settings>>, ConfigError> {
        Ok(match self.evidence_store.as_str() {
            "local" => None,
            "s3" => {
                let missing = |name: &str| ConfigError::Invalid(format!("evidence_store = \"s3\" needs {name}"));
                Some(Secret::new(S3Settings {
                    endpoint: self.s3_endpoint.clone(),
                    bucket: self.s3_bucket.clone().ok_or_else(|| missing("APP_S3_BUCKET"))?,
                    region: self.s3_region.clone(),
                    path_style: self.s3_path_style,
                    access_key_id: self.s3_access_key_id.clone().ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?,
                    secret_access_key: self
                        .s3_secret_access_key
                        .clone()
                        .ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?,
                    server_side_encryption: self.s3_server_side_encryption.clone(),
                }))
            }
            other => {
                return Err(ConfigError::Invalid(format!("evidence_store must be \"local\" or \"s3\", not {other:?}")))
            }
        })
    }

    fn check_evidence_caps_and_jobs(&self) -> Result<(), ConfigError> {
        if self.max_evidence_bytes == 0 || self.max_evidence_files == 0 {
            return Err(ConfigError::Invalid("max_evidence_bytes and max_evidence_files must be positive".into()));
        }
        if self.claim_views_per_hour == 0 || self.evidence_downloads_per_hour == 0 || self.exports_per_hour == 0 {
            return Err(ConfigError::Invalid(
                "claim_views_per_hour and evidence_downloads_per_hour must be positive".into(),
            ));
        }
        if self.job_lease_seconds < 2
            || self.job_poll_ms == 0
            || self.job_retry_seconds == 0
            || self.reminder_sweep_seconds == 0
        {
            return Err(ConfigError::Invalid(
                "job_lease_seconds must be at least 2; job_poll_ms, job_retry_seconds and reminder_sweep_seconds \
                 positive"
                    .into(),
            ));
        }
        if let Some(url) = &self.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(ConfigError::Invalid("smtp_url must start with smtp:// or smtps://".into()));
            }
        }
        Ok(())
    }

    fn background(&self) -> Background {
        let seconds = |s: u64| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        Background {
            smtp_url: self.smtp_url.clone().filter(|u| !u.trim().is_empty()).map(Secret::new),
            mail_from: self.mail_from.clone(),
            public_url: self.public_url.trim_end_matches('/').to_string(),
            workers: self.workers,
            job_lease: seconds(self.job_lease_seconds),
            job_poll: std::time::Duration::from_millis(self.job_poll_ms),
            job_retry: seconds(self.job_retry_seconds),
            reminder_sweep: seconds(self.reminder_sweep_seconds),
            review_overdue_days: self.review_overdue_days,
        }
    }

    fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError::Invalid(format!("trusted_proxies: {p:?} is not an address or a network")))
            })
            .collect()
    }
}

fn ensure_dir(dir: &Path) -> Result<(), ConfigError> {
    fs::create_dir_all(dir).map_err(|source| ConfigError::DataDir { path: dir.display().to_string(), source })
}

const WEAK: &[&str] = &["changeme", "secret", "password", "test", "dev"];

fn decode_secret(name: &'static str, value: &str) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    if WEAK.contains(&value.trim().to_ascii_lowercase().as_str()) {
        return Err(ConfigError::WeakSecret(name));
    }
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| ConfigError::WeakSecret(name))?,
    );
    if bytes.len() < 32 || bytes.iter().all(|b| *b == bytes[0]) {
        return Err(ConfigError::WeakSecret(name));
    }
    // Longer secrets are folded to 32 bytes with SHA-256.
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() == 32 {
        out.copy_from_slice(&bytes);
    } else {
        use sha2::Digest;
        out.copy_from_slice(&sha2::Sha256::digest(&bytes[..]));
    }
    Ok(out)
}

fn secret_bytes(
    name: &'static str,
    given: Option<&str>,
    data_dir: &Path,
    may_generate: bool,
) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    if let Some(value) = given {
        return decode_secret(name, value);
    }
    if !may_generate {
        return Err(ConfigError::MissingSecret(name));
    }
    let path = data_dir.join(format!("{name}.key"));
    if let Ok(text) = fs::read_to_string(&path) {
        return decode_secret(name, &text);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key[..]);
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&key[..]));
    write_private(&path, encoded.as_bytes())
        .map_err(|source| ConfigError::DataDir { path: path.display().to_string(), source })?;
    Ok(key)
}

/// Write a file readable by its owner only (0600), creating it exclusively.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Where evidence is kept when it is not the local directory: an S3-protocol bucket.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// "AES256" or "aws:kms"; none when the bucket encrypts by default.
    pub server_side_encryption: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        base64::engine::general_purpose::STANDARD.encode((0u8..32).collect::<Vec<_>>())
    }

    #[test]
    fn secrets_print_redacted() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks_and_anything_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = figment().merge(("data_dir", dir.path().display().to_string()));
        let ok = Settings::from_figment(&base.clone().merge(("trusted_proxies", "10.0.0.0/8, 192.0.2.7"))).unwrap();
        assert_eq!(ok.trusted_proxies.len(), 2);
        assert!(ok.trusted_proxies[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
        let bad = Settings::from_figment(&base.merge(("trusted_proxies", "proxy.internal"))).unwrap_err();
        assert!(bad.to_string().contains("proxy.internal"), "{bad}");
    }

    #[test]
    fn an_external_database_without_secrets_is_refused() {
        let fig = figment().merge(("database_url", "postgres://localhost/x"));
        let err = Settings::from_figment(&fig).unwrap_err();
        assert!(matches!(err, ConfigError::MissingSecret(_)), "{err}");
        assert!(err.to_string().contains("APP_MASTER_KEY"));
    }

    #[test]
    fn a_release_profile_without_secrets_is_refused_even_on_sqlite() {
        let dir = tempdir();
        let fig = figment().merge(("data_dir", dir.clone())).merge(("profile_is_release", true));
        assert!(matches!(Settings::from_figment(&fig), Err(ConfigError::MissingSecret(_))));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn weak_secrets_are_refused() {
        let fig = figment()
            .merge(("database_url", "postgres://localhost/x"))
            .merge(("jwt_secret", "changeme"))
            .merge(("master_key", key()))
            .merge(("blind_index_key", key()));
        assert!(matches!(Settings::from_figment(&fig), Err(ConfigError::WeakSecret("jwt_secret"))));
    }

    #[test]
    fn the_embedded_default_generates_private_secrets_once() {
        let dir = tempdir();
        let fig = figment().merge(("data_dir", dir.clone()));
        let first = Settings::from_figment(&fig).unwrap();
        let second = Settings::from_figment(&fig).unwrap();
        assert_eq!(first.keys.master.expose().as_slice(), second.keys.master.expose().as_slice());
        assert!(first.embedded);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("master_key.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = fs::remove_dir_all(dir);
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("portal-config-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
