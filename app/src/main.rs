//! The `app` binary: serve the portal (default) or run an operator command.
use clap::Parser;

fn main() -> std::process::ExitCode {
    app::tune_allocator();
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
