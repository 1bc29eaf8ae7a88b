//! A real S3-protocol server (s3s-fs, the one the S3 store's tests use) as
//! its own process, for `bench/evidence.sh`: prints `endpoint=<url>` and
//! serves until killed. Objects go to a temporary directory, or to the
//! directory given as the first argument.
//!
//! `cargo run --release --example s3_server [DIR]`
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let server = portal::S3Server::start_in(std::env::args().nth(1).map(std::path::PathBuf::from)).await;
    println!("endpoint={}", server.endpoint);
    println!("access_key={}", portal::S3_ACCESS_KEY);
    println!("secret_key={}", portal::S3_SECRET_KEY);
    // Keep serving until the process is killed.
    std::future::pending::<()>().await;
}
