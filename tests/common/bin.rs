//! The built binary as a user runs it: `LANCHAT_TEST_BIN` names another build of it
//! (the cross-built aarch64 one) and `LANCHAT_TEST_RUNNER` a program to run it with
//! (`qemu-aarch64-static`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn command(args: &[&str]) -> Command {
    let bin =
        std::env::var("LANCHAT_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lanchat").into());
    let mut cmd = match std::env::var("LANCHAT_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    cmd.args(args)
        .env_remove("LANCHAT_LISTEN")
        .stdin(Stdio::null());
    cmd
}

/// Waits for the child to exit, at most `limit`.
pub fn wait_exit(child: Child, limit: Duration) -> Option<std::process::Output> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(limit).ok().and_then(Result::ok)
}

/// A running binary, found by its start-up log line.
pub struct Running {
    /// Taken by `terminate`; killed on drop otherwise (a test that failed).
    child: Option<Child>,
    pub addr: SocketAddr,
    pub lines: mpsc::Receiver<String>,
    /// What it logged before it was listening.
    pub before: Vec<String>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        Running::spawn(command(args))
    }

    pub fn spawn(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lanchat");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Port 0 picks a free port; the log line says which.
        let mut before = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(30))
                .expect("a start-up line");
            if let Some(rest) = line.split(" listening on ").nth(1) {
                break rest.split(' ').next().unwrap().parse().expect("an address");
            }
            before.push(line);
        };
        Running {
            child: Some(child),
            addr,
            lines,
            before,
        }
    }

    /// The process id, for what `/proc` says of it.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// The first log line that contains all of `words`, logged before it was
    /// listening or since; panics after a while without one.
    pub fn line_with(&self, words: &[&str]) -> String {
        let fits = |l: &String| words.iter().all(|w| l.contains(w));
        if let Some(line) = self.before.iter().find(|l| fits(l)) {
            return line.clone();
        }
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if fits(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {words:?}"),
            }
        }
    }

    /// Sends SIGTERM and returns the exit output and the log lines after start.
    pub fn terminate(mut self) -> (std::process::Output, Vec<String>) {
        let child = self.child.take().expect("running");
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let out = wait_exit(child, Duration::from_secs(5)).expect("exited after SIGTERM");
        // The reader thread may still hold the last lines: take them until it ends
        // at end-of-file (the channel then disconnects).
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (out, rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
