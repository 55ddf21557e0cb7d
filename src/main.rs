//! The `lanchat` binary: flags and environment into a `Config`, the listening
//! socket, signals, the start-up banner, then `lanchat::run`.
//!
//! Exit codes: 0 after a clean stop, 1 when the server cannot start or fails, 2 for
//! a command line that needs fixing.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;

use futures_lite::StreamExt as _;
use lanchat::config::{self, Action};
use lanchat::{error, info, net};

fn main() -> ExitCode {
    let action = match config::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(action) => action,
        Err(e) => {
            eprintln!("lanchat: {e}");
            return ExitCode::from(2);
        }
    };
    let (config, output) = match action {
        Action::Help => {
            print!("{}", config::help());
            return ExitCode::SUCCESS;
        }
        Action::Version => {
            println!("lanchat {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Action::Run(config, output) => (*config, output),
    };
    lanchat::log::set_level(output.log_level);
    let mut config = config;
    if config.mod_key_auto {
        match lanchat::auto_mod_key(config.data_dir.as_deref()) {
            Ok(key) => config.mod_key = Some(key),
            Err(e) => {
                error!("cannot make a moderator key (--mod-key auto): {e}");
                return ExitCode::from(1);
            }
        }
    }
    raise_open_file_limit(config.max_connections);

    let listener = match std::net::TcpListener::bind(config.listen) {
        Ok(l) => l,
        Err(e) => {
            error!("cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    let local = listener.local_addr().unwrap_or(config.listen);
    let signals =
        match async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int]) {
            Ok(s) => s,
            Err(e) => {
                error!("cannot watch for signals: {e}");
                return ExitCode::from(1);
            }
        };
    let shutdown = async move {
        let mut signals = signals;
        if let Some(Ok(signal)) = signals.next().await {
            info!("received {signal:?}; stopping");
        }
    };

    if !output.quiet {
        banner(local, &config);
    }
    info!(
        "lanchat {} listening on {local} ({} thread{})",
        env!("CARGO_PKG_VERSION"),
        config.threads,
        if config.threads == 1 { "" } else { "s" }
    );
    match lanchat::run(listener, config, shutdown) {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// The lines a person reads at start: where to point a phone.
fn banner(local: std::net::SocketAddr, config: &lanchat::Config) {
    let (key, mod_key) = (config.key.as_deref(), config.mod_key.as_deref());
    let mut urls = net::urls(local, &net::lan_ipv4(), net::hostname().as_deref());
    if let Some(key) = key {
        // The key is limited to characters a URL carries as they are.
        for url in &mut urls {
            url.push_str("?key=");
            url.push_str(key);
        }
    }
    let mut out = format!("lanchat {}\n", env!("CARGO_PKG_VERSION"));
    out.push_str("Open on a phone on this network:\n");
    for url in &urls {
        out.push_str(&format!("  {url}\n"));
    }
    // A QR code only helps a person at a terminal, and only for an address a phone
    // can reach.
    if let Some(first) = urls.first().filter(|u| !net::is_loopback_url(u)) {
        if std::io::stdout().is_terminal() {
            for line in net::qr_lines(first) {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    if let (Some(mod_key), Some(first)) = (mod_key, urls.first()) {
        // Only to a person at the terminal, never in the QR code (which anyone near
        // the screen can scan), nor to a log file that others may read.
        if std::io::stdout().is_terminal() {
            let join = if first.contains('?') { '&' } else { '?' };
            out.push_str(&format!(
                "Moderator (keep to yourself): {first}{join}mod={mod_key}\n"
            ));
        } else if let (true, Some(dir)) = (config.mod_key_auto, &config.data_dir) {
            out.push_str(&format!(
                "Moderator: open the chat with ?mod= and the key in {}\n",
                dir.join("mod-key").display()
            ));
        } else if config.mod_key_auto {
            out.push_str(
                "Moderator: the key made for this run is shown only on a terminal; \
                 start with --data-dir to keep it in a file\n",
            );
        } else {
            out.push_str("Moderator: open the chat with ?mod= and the --mod-key value\n");
        }
    }
    print!("{out}");
}

/// Raises the open-file limit, and says when the cap is still above what the
/// system allows.
fn raise_open_file_limit(max_connections: usize) {
    let soft = match lanchat::raise_open_file_limit() {
        Ok((before, after)) => {
            if let (Some(before), Some(after)) = (before, after) {
                if before != after {
                    lanchat::debug!("raised the open-file limit from {before} to {after}");
                }
            }
            after
        }
        Err(e) => {
            lanchat::warn!("cannot raise the open-file limit: {e}");
            rustix::process::getrlimit(rustix::process::Resource::Nofile).current
        }
    };
    // The listener, the executor's own descriptors and the history file need a few.
    const SPARE: u64 = 32;
    if let Some(soft) = soft {
        if max_connections as u64 + SPARE > soft {
            lanchat::warn!(
                "--max-connections {max_connections} is above what the open-file limit of {soft} \
                 allows; past about {} connections new ones wait. Raise it with `ulimit -n` \
                 or LimitNOFILE= in the systemd unit",
                soft.saturating_sub(SPARE)
            );
        }
    }
}
