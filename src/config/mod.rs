//! Settings: [`Config`] with its defaults, and the command line and environment that
//! fill it. Every flag has an environment variable (`LANCHAT_<NAME>`); a flag wins
//! over its variable. One table, [`FLAGS`], drives parsing and `--help` alike, so
//! the help can never drift from what is parsed.

mod flags;

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. All interfaces by default: the phones are on the LAN.
    pub listen: SocketAddr,
    /// Messages kept for replay to clients that reconnect. At ~300 bytes a message,
    /// 1,000 cost well under a MiB.
    pub history: usize,
    /// Messages a new client sees first: enough to follow the conversation.
    pub backlog: usize,
    /// Frames a subscriber may have queued before it is dropped; it reconnects and
    /// catches up from history, so this bounds memory, not delivery.
    pub queue: usize,
    /// Interval between heartbeat comments: home routers drop idle TCP connections
    /// after a minute or two, and a write is how a dead client is found.
    pub heartbeat: Duration,
    /// The reconnection delay sent to browsers in `retry:`.
    pub retry: Duration,
    /// Open connections allowed at once; past it, requests get `503` (streams a
    /// `retry:`). Each open stream costs a file descriptor and a few KiB.
    pub max_connections: usize,
    /// Largest request body: by default the largest a valid message can take in any
    /// script ([`crate::message::MAX_FORM_BYTES`]).
    pub max_body: usize,
    /// Time allowed for a whole request head once its first byte has arrived.
    pub head_timeout: Duration,
    /// Time allowed for a request body, and for each read of a large one.
    pub body_timeout: Duration,
    /// The slowest a large body (a post with files) may come, on average, once
    /// `body_timeout` has passed, in bytes a second: a photo on a poor Wi-Fi link
    /// comes at tens of KiB a second, a body trickled to hold a connection far slower.
    pub body_rate: u64,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
    /// How long one write to a stream may make no progress before the client is
    /// taken for gone.
    pub write_timeout: Duration,
    /// Executor threads; the writing of streams spreads over them. One by default:
    /// a room of tens of phones costs least on one thread (docs/perf-journal.md,
    /// "Threads"); more only pay with thousands of streams under a flood of posts.
    pub threads: usize,
    /// Where history is kept across restarts; none by default, so nothing is
    /// written to the Pi's SD card unless asked.
    pub data_dir: Option<std::path::PathBuf>,
    /// A shared secret that the page, the stream and posting need, when set: the
    /// start-up URL and QR code carry it, and the page keeps it in a cookie.
    pub key: Option<String>,
    /// The moderator's key, when set: a browser that opened `/?mod=KEY` may delete
    /// messages and mute their senders, and its posts are marked as the host's. At
    /// least [`crate::keys::MOD_KEY_MIN`] characters.
    pub mod_key: Option<String>,
    /// `--mod-key auto`: the moderator key is made by the server (and kept in the
    /// data directory), see [`crate::keys::auto_mod_key`].
    pub mod_key_auto: bool,
    /// Posts each client address may make: a burst, then one more per interval;
    /// `None` (`off`) for none. Enough for anyone typing; a flood is slowed.
    pub post_rate: Option<Rate>,
    /// The largest file one upload may carry: a photo from a phone, or a PDF.
    pub max_upload: u64,
    /// Bytes of files kept, the oldest going first; `None`: 1 GiB with
    /// `--data-dir`, 64 MiB in memory without.
    pub media_quota: Option<u64>,
    /// The cost of one client address's files, its oldest going first; `None`: an
    /// eighth of the quota, and at least `max_upload`, so that one phone cannot push
    /// everyone else's photos out.
    pub media_share: Option<u64>,
    /// Bytes the disk under `--data-dir` keeps free: files never take them, so the
    /// history always has room to grow (its largest file is a few MiB).
    pub min_free: u64,
    /// Hotspot mode: requests for other sites are answered as a captive portal
    /// that leads to the chat (see [`crate::portal`]).
    pub portal: bool,
    /// Open connections one client address may hold: a browser needs a handful,
    /// so one script cannot take every slot from everyone else.
    pub max_per_client: usize,
}

/// A token bucket: `burst` at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Posts allowed at once.
    pub burst: u32,
    /// The time in which one more is allowed.
    pub every: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.every.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}/{}s", self.burst, ms / 1000)
        } else {
            write!(f, "{}/{ms}ms", self.burst)
        }
    }
}

impl Config {
    /// The limits of the files kept, with the defaults worked out.
    pub fn media_limits(&self) -> crate::media::Limits {
        let quota = self
            .media_quota
            .unwrap_or(match self.data_dir {
                Some(_) => 1 << 30,
                None => 64 << 20,
            })
            .max(self.max_upload);
        let share = self.media_share.unwrap_or(quota / 8).max(self.max_upload);
        crate::media::Limits {
            quota,
            share: share.min(quota),
            floor: self.min_free,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            history: 1_000,
            backlog: 100,
            queue: 256,
            heartbeat: Duration::from_secs(15),
            retry: Duration::from_millis(2_000),
            max_connections: 10_000,
            max_body: crate::message::MAX_FORM_BYTES,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_rate: 4 << 10,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            threads: 1,
            data_dir: None,
            key: None,
            mod_key: None,
            mod_key_auto: false,
            portal: false,
            max_upload: 16 << 20,
            media_quota: None,
            media_share: None,
            min_free: 64 << 20,
            post_rate: Some(Rate {
                burst: 20,
                every: Duration::from_secs(1),
            }),
            max_per_client: 64,
        }
    }
}

/// Settings of the binary itself, beside the server's [`Config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// No start-up banner.
    pub quiet: bool,
    /// Which log lines are printed.
    pub log_level: crate::log::Level,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    /// Run the server.
    Run(Box<Config>, Output),
    /// Print the help.
    Help,
    /// Print the version.
    Version,
}

pub use flags::{help, parse, FLAGS};

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<(Config, Output), String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let action = parse(args.iter().map(|s| s.to_string()), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })?;
        match action {
            Action::Run(c, o) => Ok((*c, o)),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_design() {
        let (c, o) = run(&[], &[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:3000");
        assert_eq!((c.history, c.backlog, c.queue), (1000, 100, 256));
        assert_eq!(c.heartbeat, Duration::from_secs(15));
        assert_eq!(c.retry, Duration::from_millis(2000));
        assert_eq!(
            (c.max_connections, c.max_body),
            (10_000, crate::message::MAX_FORM_BYTES)
        );
        assert!(!o.quiet);
    }

    #[test]
    fn flags_in_both_forms_and_switches() {
        let (c, o) = run(
            &["--listen", "127.0.0.1:8080", "--heartbeat=500ms", "--quiet"],
            &[],
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.heartbeat, Duration::from_millis(500));
        assert!(o.quiet);
    }

    #[test]
    fn environment_fills_in_and_flags_win() {
        let env = [("LANCHAT_LISTEN", "127.0.0.1:1"), ("LANCHAT_HISTORY", "50")];
        let (c, _) = run(&[], &env).unwrap();
        assert_eq!((c.listen.port(), c.history), (1, 50));
        let (c, _) = run(&["--listen", "127.0.0.1:2"], &env).unwrap();
        assert_eq!(c.listen.port(), 2);
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = run(&["--listen", "nope"], &[]).unwrap_err();
        assert!(e.starts_with("--listen: 'nope' is not an address"), "{e}");
        let e = run(&["--history"], &[]).unwrap_err();
        assert_eq!(e, "--history needs a value (N)");
        let e = run(&["--bogus"], &[]).unwrap_err();
        assert_eq!(e, "unknown flag '--bogus' (see --help)");
        let e = run(&[], &[("LANCHAT_HEARTBEAT", "soon")]).unwrap_err();
        assert!(
            e.starts_with("LANCHAT_HEARTBEAT: 'soon' is not a time"),
            "{e}"
        );
        let e = run(&["--queue", "0"], &[]).unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn the_key_must_fit_a_url_and_is_never_shown() {
        let (c, _) = run(&[], &[("LANCHAT_KEY", "tea-time_42")]).unwrap();
        assert_eq!(c.key.as_deref(), Some("tea-time_42"));
        let e = run(&["--key", "a b&c"], &[]).unwrap_err();
        assert!(e.starts_with("--key: the key may have"), "{e}");
        assert!(!e.contains("a b&c"), "the error does not echo the secret");
        assert!(run(&["--key", &"k".repeat(129)], &[]).is_err());
        for empty in ["", "  "] {
            let e = run(&["--key", empty], &[]).unwrap_err();
            assert!(e.starts_with("--key: the key is empty"), "{e}");
            let e = run(&[], &[("LANCHAT_KEY", empty)]).unwrap_err();
            assert!(e.starts_with("LANCHAT_KEY: the key is empty"), "{e}");
        }
    }

    #[test]
    fn the_moderator_key_is_a_key_of_its_own() {
        let (c, _) = run(&["--key", "open", "--mod-key", "host-only"], &[]).unwrap();
        assert_eq!(c.mod_key.as_deref(), Some("host-only"));
        let (c, _) = run(&[], &[("LANCHAT_MOD_KEY", "moderate")]).unwrap();
        assert_eq!(c.mod_key.as_deref(), Some("moderate"));
        let e = run(&["--mod-key", "a/b"], &[]).unwrap_err();
        assert!(e.starts_with("--mod-key: the key may have"), "{e}");
        let e = run(&[], &[("LANCHAT_MOD_KEY", " ")]).unwrap_err();
        assert!(e.contains("LANCHAT_MOD_KEY out"), "{e}");
        let e = run(&["--key", "same-key", "--mod-key", "same-key"], &[]).unwrap_err();
        assert!(e.contains("must differ"), "{e}");
        assert!(!help().contains("host-only"));
        // Guessable in a day at a few tries a minute: refused, with what to do.
        for short in ["a", "1234567"] {
            let e = run(&["--mod-key", short], &[]).unwrap_err();
            assert!(
                e.contains("at least 8 characters") && e.contains("auto"),
                "{e}"
            );
        }
        let (c, _) = run(&["--mod-key", "auto"], &[]).unwrap();
        assert!(c.mod_key_auto && c.mod_key.is_none());
    }

    #[test]
    fn post_rates_read_as_a_burst_and_an_interval_or_off() {
        let (c, _) = run(&[], &[]).unwrap();
        assert_eq!(c.post_rate.unwrap().to_string(), "20/1s");
        let (c, _) = run(&["--post-rate", "5/250ms"], &[]).unwrap();
        let rate = c.post_rate.unwrap();
        assert_eq!((rate.burst, rate.every), (5, Duration::from_millis(250)));
        let (c, _) = run(&[], &[("LANCHAT_POST_RATE", "off")]).unwrap();
        assert!(c.post_rate.is_none());
        for bad in ["20", "0/1s", "20/", "x/1s", "20/1h"] {
            let e = run(&["--post-rate", bad], &[]).unwrap_err();
            assert!(e.starts_with("--post-rate: "), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes_take_units_and_the_quota_holds_the_largest_file() {
        let (c, _) = run(&["--max-upload", "8MiB", "--media-quota", "2G"], &[]).unwrap();
        assert_eq!((c.max_upload, c.media_quota), (8 << 20, Some(2 << 30)));
        for bad in ["lots", "5TiB", "0", "-1MiB"] {
            let e = run(&["--max-upload", bad], &[]).unwrap_err();
            assert!(e.starts_with("--max-upload: "), "{bad}: {e}");
        }
        let e = run(&["--max-upload", "64MiB", "--media-quota", "32MiB"], &[]).unwrap_err();
        assert!(e.contains("--media-quota"), "{e}");
        assert_eq!(show_size(16 << 20), "16MiB");
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(duration("2m", Duration::ZERO), Ok(Duration::from_secs(120)));
        assert_eq!(duration("15", Duration::ZERO), Ok(Duration::from_secs(15)));
        assert!(duration("5h", Duration::ZERO).is_err());
        assert!(duration("5ms", Duration::from_millis(10)).is_err());
    }

    #[test]
    fn help_lists_every_flag_default_and_variable() {
        let text = help();
        for flag in FLAGS {
            assert!(text.contains(&format!("--{}", flag.name)));
            assert!(text.contains(&flag.env()));
        }
        assert!(text.contains("[default: 0.0.0.0:3000] [env: LANCHAT_LISTEN]"));
    }
}
