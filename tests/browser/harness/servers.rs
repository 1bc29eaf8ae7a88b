//! The portal's release binary, started as an operator starts it, and
//! ChromeDriver, each on a free loopback port.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Where a journey's screenshots and server log go (not committed).
pub fn output_dir(journey: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser").join(journey);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output directory");
    dir
}

/// Optional backends for a portal: PostgreSQL and an S3 store.
#[derive(Default)]
pub struct Backends {
    pub database_url: Option<String>,
    pub s3: Option<Vec<(String, String)>>,
}

/// The portal, run from the release binary named by `PORTAL_APP_BIN`.
pub struct Portal {
    child: Child,
    pub base: String,
    /// The mail server the portal sends to; the journeys read their mail here.
    pub smtp: portal::SmtpServer,
    env: Vec<(String, String)>,
    stdout: Arc<Mutex<String>>,
    data: tempfile::TempDir,
}

impl Portal {
    pub async fn start(out: &Path, backends: Backends) -> Portal {
        let data = tempfile::tempdir().expect("data directory");
        let key = |_| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes().repeat(2))
        };
        let keys: [String; 3] = std::array::from_fn(key);
        let port = free_port();
        let smtp = portal::SmtpServer::start();
        let base = format!("http://localhost:{port}");
        let mut env = vec![
            ("APP_SMTP_URL".to_string(), smtp.url()),
            ("APP_PUBLIC_URL".to_string(), base.clone()),
            ("APP_JOB_POLL_MS".to_string(), "100".to_string()),
            ("APP_DATA_DIR".to_string(), data.path().display().to_string()),
            ("APP_JWT_SECRET".into(), keys[0].clone()),
            ("APP_MASTER_KEY".into(), keys[1].clone()),
            ("APP_BLIND_INDEX_KEY".into(), keys[2].clone()),
            ("ROCKET_PORT".into(), port.to_string()),
            ("ROCKET_LOG_LEVEL".into(), "critical".into()),
        ];
        if let Some(url) = backends.database_url {
            env.push(("DATABASE_URL".into(), url));
        }
        env.extend(backends.s3.unwrap_or_default());
        let bin = std::env::var("PORTAL_APP_BIN").expect("PORTAL_APP_BIN names the release binary (see .ci/browser)");
        let log = std::fs::File::create(out.join("server.log")).expect("server log");
        let mut child = Command::new(bin)
            .arg("serve")
            .envs(env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the portal starts");
        // The bootstrap administrator's password is printed once, to stdout.
        let stdout = Arc::new(Mutex::new(String::new()));
        let (pipe, sink) = (child.stdout.take().expect("stdout"), stdout.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        for _ in 0..400 {
            if reqwest::get(format!("{base}/health")).await.is_ok_and(|r| r.status().is_success()) {
                return Portal { child, base, smtp, env, stdout, data };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the portal did not come up; see {}", out.join("server.log").display());
    }

    /// The path of the confirmation link in the mail sent to `to` (waits for it).
    pub async fn confirmation_link(&self, to: &str) -> String {
        for _ in 0..600 {
            let link =
                self.smtp.messages().into_iter().filter(|m| m.to == [to]).find_map(|m| {
                    m.body.split_whitespace().find(|w| w.contains("/confirm?token=")).map(str::to_string)
                });
            if let Some(link) = link {
                assert!(link.starts_with(&self.base), "the link leads to this portal: {link}");
                return link[self.base.len()..].to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no confirmation mail reached {to}");
    }

    /// What the portal printed to its terminal.
    pub fn printed(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The bootstrap administrator's credentials, from the file the portal
    /// said it wrote them to (readable by its own user only).
    pub fn bootstrap_admin(&self) -> (String, String) {
        let printed = self.printed();
        let path = printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("Its one-time password is in ").map(|v| v.to_string()))
            .and_then(|v| v.split(" (").next().map(str::to_string))
            .unwrap_or_else(|| panic!("the portal said where the bootstrap password is: {printed}"));
        let file = std::path::Path::new(&path);
        assert!(file.starts_with(self.data.path()), "in the data directory: {path}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file).expect("the file").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "only its owner reads it");
        }
        assert!(!printed.contains("password:"), "the password itself is not printed");
        let text = std::fs::read_to_string(file).expect("the bootstrap file");
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_else(|| panic!("the file holds the {name}"))
        };
        (field("e-mail:"), field("password:"))
    }

    /// Whether the bootstrap administrator's password file is still there.
    pub fn bootstrap_file_exists(&self) -> bool {
        self.data.path().join(app::auth::lifecycle::BOOTSTRAP_FILE).exists()
    }

    /// Run an operator command (`app …`) against this portal's data.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let bin = std::env::var("PORTAL_APP_BIN").expect("PORTAL_APP_BIN");
        let mut child = Command::new(bin)
            .args(args)
            .envs(self.env.iter().cloned())
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the CLI starts");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("CLI input");
        }
        let out = child.wait_with_output().expect("the CLI ends");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "app {args:?} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ChromeDriver process on a loopback port.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = free_port();
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let mut child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} starts (Debian package chromium-driver): {e}"));
        let url = format!("http://127.0.0.1:{port}/");
        for _ in 0..200 {
            if reqwest::get(format!("{url}status")).await.is_ok_and(|r| r.status().is_success()) {
                return Driver { child, url };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not come up");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
