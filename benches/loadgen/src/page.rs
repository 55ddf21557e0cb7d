//! `page`: the chat's page (`GET /`, gzip, keep-alive) asked for by 100
//! connections at once, as fast as they can, beside nginx serving the same bytes
//! precompressed (`gzip_static`, one worker, `open_file_cache`). Each server alone
//! on core 0, `wrk` on core 1.

use std::io::{Read as _, Write as _};

use super::*;

/// Requests per second for the page, and nginx's in the same run.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub(crate) requests_per_s: f64,
    pub(crate) nginx_per_s: Option<f64>,
}

impl std::fmt::Display for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "page: {:.0} requests/s", self.requests_per_s)?;
        if let Some(n) = self.nginx_per_s {
            write!(
                f,
                ", nginx {n:.0} requests/s ({:.2} × nginx)",
                self.requests_per_s / n
            )?;
        }
        Ok(())
    }
}

/// Connections `wrk` keeps open, each asking again as soon as it has its answer.
const CONNECTIONS: usize = 100;

pub(crate) fn page(o: &Opts) -> Result<Page, String> {
    let server = Server::start(o, None)?;
    let plain = fetch(server.addr, false)?;
    let gzipped = fetch(server.addr, true)?;
    let requests_per_s = wrk(&format!("http://{}/", server.addr), o.seconds)?;
    drop(server);
    let nginx_per_s = match nginx_installed() {
        true => Some(nginx_page(&plain, &gzipped, o.seconds)?),
        false => None,
    };
    Ok(Page {
        requests_per_s,
        nginx_per_s,
    })
}

/// The page's body as a browser gets it, gzipped or not.
fn fetch(addr: SocketAddr, gzip: bool) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let encoding = if gzip { "gzip" } else { "identity" };
    let head = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: {encoding}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).map_err(|e| e.to_string())?;
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no head in the answer to GET /")?;
    let head = String::from_utf8_lossy(&all[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!(
            "GET / answered {}",
            head.lines().next().unwrap_or("")
        ));
    }
    if gzip != head.contains("content-encoding: gzip") {
        return Err(format!(
            "GET / with Accept-Encoding: {encoding} came back otherwise"
        ));
    }
    Ok(all[end + 4..].to_vec())
}

/// `wrk`'s requests per second for `url`; an error if any answer was not a success.
fn wrk(url: &str, seconds: u64) -> Result<f64, String> {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s")])
        .args(["-H", "Accept-Encoding: gzip", url])
        .output()
        .map_err(|e| format!("cannot run wrk (apt install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // An error page is small and fast: a rate of them says nothing of the page.
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(format!(
            "{url} did not answer every request with the page:\n{text}"
        ));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no rate in wrk's output:\n{text}"))
}

fn nginx_installed() -> bool {
    Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// nginx, one worker on core 0, serving `plain` and `gzipped` as `/`.
fn nginx_page(plain: &[u8], gzipped: &[u8], seconds: u64) -> Result<f64, String> {
    let dir = std::env::temp_dir().join(format!("lanchat-page-{}", std::process::id()));
    let root = dir.join("root");
    let io = |e: std::io::Error| format!("cannot set up nginx in {}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("logs")).map_err(io)?;
    std::fs::create_dir_all(&root).map_err(io)?;
    std::fs::write(root.join("index.html"), plain).map_err(io)?;
    std::fs::write(root.join("index.html.gz"), gzipped).map_err(io)?;
    // Its worker runs as another user, which must be able to read the files.
    for d in [&dir, &root] {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(io)?
        .port();
    let d = dir.display();
    let conf = format!(
        "worker_processes 1; daemon off; error_log {d}/logs/error.log; pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000; sendfile on; gzip_static on;
  open_file_cache max=100; types {{ text/html html; }}
  server {{ listen 127.0.0.1:{port}; root {d}/root; add_header Cache-Control no-cache; }} }}
"
    );
    std::fs::write(dir.join("nginx.conf"), conf).map_err(io)?;
    let mut nginx = Command::new("taskset")
        .args(["-c", "0", "nginx", "-c"])
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(&dir)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let url = format!("http://127.0.0.1:{port}/");
    // Listening once a connection is taken; it starts in milliseconds.
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(5) {
            let _ = nginx.kill();
            return Err("nginx did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rate = wrk(&url, seconds);
    // Asked to stop, so that its worker stops with it; killed it would stay.
    let pid = i32::try_from(nginx.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    match pid {
        Some(pid) => {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        None => {
            let _ = nginx.kill();
        }
    }
    let _ = nginx.wait();
    let _ = std::fs::remove_dir_all(&dir);
    rate
}
