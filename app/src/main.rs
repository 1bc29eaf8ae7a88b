//! The `app` binary: serve the portal (default) or run an operator command.
use clap::Parser;

/// glibc keeps freed memory per thread arena and raises its mmap threshold
/// after large frees (argon2 allocates 19 MiB per hash), so a long-running
/// server's RSS creeps up with blocking-pool threads. A fixed threshold and
/// two arenas keep large buffers returned to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only adjusts allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

fn main() -> std::process::ExitCode {
    tune_allocator();
    rocket::execute(run())
}

async fn run() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = app::cli::Cli::parse();
    app::cli::run(cli).await
}
