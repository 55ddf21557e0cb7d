//! Any bytes a client can send on a connection (heads, bodies, several requests one
//! after another) go to the real server, its routes and its registry: no panic
//! anywhere (libFuzzer's panic hook aborts even where the server would contain it),
//! and whatever comes back starts as an HTTP/1.1 response.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use lanchat::Config;
use libfuzzer_sys::fuzz_target;

/// One server for the whole run, with short deadlines so that no input holds it.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let config = Config {
            threads: 1,
            history: 50,
            backlog: 10,
            head_timeout: Duration::from_millis(200),
            body_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(200),
            write_timeout: Duration::from_secs(1),
            // Every route in reach: the moderator's, and hotspot mode's for hosts
            // other than the seeds' `localhost`.
            mod_key: Some("m".into()),
            portal: true,
            ..Config::default()
        };
        std::thread::spawn(move || lanchat::run(listener, config, std::future::pending()));
        addr
    })
}

fuzz_target!(|bytes: &[u8]| {
    let addr = server();
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    // The server may answer and close before it has read everything: that is fine.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    if !answer.is_empty() {
        assert!(
            answer.starts_with(b"HTTP/1.1 "),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
    }
});
