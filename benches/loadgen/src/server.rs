//! The server under test: started, pinned, watched and stopped.

use super::*;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(o: &Opts, queue: Option<usize>) -> Result<Server, String> {
        use std::io::{BufRead, BufReader};
        // `--server` may carry arguments: `node benches/peers/node-tutorial.mjs`.
        // One thread: core 0, the load generator has core 1. More threads share
        // both cores with the load generator.
        let cores = if o.threads > 1 { "0,1" } else { "0" };
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", cores])
            .args(o.server.split_whitespace())
            .args(["--listen", "127.0.0.1:0", "--quiet", "--log-level", "info"])
            .args(["--threads", &o.threads.to_string()])
            .args(["--max-connections", &(o.subscribers + 1000).to_string()])
            // Every subscriber and publisher comes from one address, flat out.
            .args(["--max-per-client", &(o.subscribers + 1000).to_string()]);
        // Unless the server's own arguments set a post rate (to measure the limiter).
        if !o.server.contains("--post-rate") {
            cmd.args(["--post-rate", "off"]);
        }
        cmd.args([
            "--heartbeat",
            "60s",
            "--backlog",
            "0",
            "--history",
            "100000",
        ]);
        if let Some(q) = queue {
            cmd.args(["--queue", &q.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", o.server))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or("the server exited before listening")?
                .map_err(|e| e.to_string())?;
            if let Some(rest) = line.split(" listening on ").nth(1) {
                let addr = rest.split(' ').next().unwrap_or("");
                break addr.parse().map_err(|_| format!("bad address {addr}"))?;
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(Server { child, addr })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Asked to stop first, so that a server run under a profiler (valgrind's
        // DHAT, see scripts/alloc-profile) writes its report; killed if it has not
        // stopped within 10 s. No exit notification to wait on: look every 20 ms.
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    _ => return,
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
