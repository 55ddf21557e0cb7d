//! `suite`: every figure for every server, several runs, as a Markdown table.

use super::*;

pub(crate) fn suite(o: &Opts) -> Result<(), String> {
    let mut servers = vec![
        ("lanchat, 1 thread".to_string(), o.server.clone(), 1),
        ("lanchat, 2 threads".to_string(), o.server.clone(), 2),
    ];
    for peer in &o.peers {
        let (name, cmd) = peer.split_once('=').ok_or("--peer wants NAME=COMMAND")?;
        servers.push((name.to_string(), cmd.to_string(), 1));
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| subscribers | server | KiB/subscriber idle (after traffic) | idle RSS KiB | CPU µs/delivery (× floor) | publish→last p50 / p99 ms (p50 × floor round) | flat-out deliveries/s | flat-out posts/s | flat-out p50 ms | lost | dup | reconnects |"
    );
    let _ = writeln!(
        table,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let mut floor_lines = String::new();
    for subscribers in [10, 1_000, 10_000] {
        let mut results: Vec<(Vec<FanOut>, Vec<FlatOut>)> =
            vec![(Vec::new(), Vec::new()); servers.len()];
        let mut failed: Vec<Option<String>> = vec![None; servers.len()];
        for run in 0..o.runs {
            for (i, (name, cmd, threads)) in servers.iter().enumerate() {
                if failed[i].is_some() {
                    continue;
                }
                let o = Opts {
                    subscribers,
                    server: cmd.clone(),
                    threads: *threads,
                    ..o.clone()
                };
                // A server that fails is reported as such; the others go on.
                match fanout(&o).and_then(|fan| Ok((fan, flatout(&o)?))) {
                    Ok((fan, flat)) => {
                        eprintln!("run {run}: {name}: {fan}");
                        eprintln!("run {run}: {name}: {flat}");
                        results[i].0.push(fan);
                        results[i].1.push(flat);
                    }
                    Err(e) => {
                        eprintln!("run {run}: {name}: failed: {e}");
                        failed[i] = Some(e);
                    }
                }
            }
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // Every fan-out measured its own floor rounds, between its messages.
        let floors: Vec<&Floor> = results
            .iter()
            .flat_map(|(fans, _)| &fans[..])
            .map(|f| &f.floor)
            .collect();
        if let Some(first) = floors.first() {
            let _ = writeln!(
                floor_lines,
                "- {subscribers} subscribers: floor {:.2} µs of CPU per write, {:.1} ms per round over {subscribers} sockets (medians of the rounds beside every server's runs; measured over {} sockets)",
                median(floors.iter().map(|f| us(f.per_write)).collect()),
                median(floors.iter().map(|f| ms(f.round)).collect()),
                first.sockets
            );
        }
        for (((name, _, _), (fans, flats)), failure) in servers.iter().zip(&results).zip(&failed) {
            if let Some(e) = failure {
                let _ = writeln!(table, "| {subscribers} | {name} | failed: {e} |||||||||");
                continue;
            }
            let _ = writeln!(
                table,
                "{}",
                Row::of(fans, flats).markdown(subscribers, name)
            );
        }
    }
    let page_table = page_rounds(o)?;
    let report = format!("{table}\n{floor_lines}\n{page_table}");
    print!("{report}");
    if let Some(path) = &o.out {
        std::fs::write(path, &report).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}

/// One line of the table: the medians of one server's runs at one size.
struct Row {
    rss_per_sub: f64,
    rss_per_sub_after: f64,
    rss_idle_kib: f64,
    cpu_us: f64,
    cpu_ratio: f64,
    last_p50_ms: f64,
    last_p99_ms: f64,
    last_ratio: f64,
    deliveries_per_s: f64,
    posts_per_s: f64,
    flat_p50_ms: f64,
    /// Summed over every run, not medians: one lost message anywhere counts.
    lost: u64,
    duplicated: u64,
    reconnects: u64,
}

impl Row {
    fn of(fans: &[FanOut], flats: &[FlatOut]) -> Row {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let fan = |f: fn(&FanOut) -> f64| median(fans.iter().map(f).collect());
        let flat = |f: fn(&FlatOut) -> f64| median(flats.iter().map(f).collect());
        Row {
            rss_per_sub: fan(|f| f.rss_per_sub),
            rss_per_sub_after: fan(|f| f.rss_per_sub_after),
            rss_idle_kib: fan(|f| f.rss_idle_kib as f64),
            cpu_us: median(fans.iter().map(|f| us(f.cpu_per_delivery)).collect()),
            cpu_ratio: fan(|f| f.cpu_ratio),
            last_p50_ms: median(fans.iter().map(|f| ms(f.last_p50)).collect()),
            last_p99_ms: median(fans.iter().map(|f| ms(f.last_p99)).collect()),
            last_ratio: fan(|f| f.last_ratio),
            deliveries_per_s: flat(|f| f.deliveries_per_s),
            posts_per_s: flat(|f| f.posts_per_s),
            flat_p50_ms: median(flats.iter().map(|f| ms(f.last_p50)).collect()),
            lost: fans.iter().map(|f| f.lost).sum::<u64>()
                + flats.iter().map(|f| f.lost).sum::<u64>(),
            duplicated: fans.iter().map(|f| f.duplicated).sum::<u64>()
                + flats.iter().map(|f| f.duplicated).sum::<u64>(),
            reconnects: flats.iter().map(|f| f.reconnects).sum(),
        }
    }

    fn markdown(&self, subscribers: usize, name: &str) -> String {
        let r = self;
        format!(
            "| {subscribers} | {name} | {:.2} ({:.2}) | {:.0} | {:.2} ({:.2}×) | {:.2} / {:.2} ({:.2}×) | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
            r.rss_per_sub,
            r.rss_per_sub_after,
            r.rss_idle_kib,
            r.cpu_us,
            r.cpu_ratio,
            r.last_p50_ms,
            r.last_p99_ms,
            r.last_ratio,
            r.deliveries_per_s,
            r.posts_per_s,
            r.flat_p50_ms,
            r.lost,
            r.duplicated,
            r.reconnects,
        )
    }
}

/// The page beside nginx: lanchat on one thread, `o.runs` alternated rounds, each
/// with its own ratio; medians.
fn page_rounds(o: &Opts) -> Result<String, String> {
    let o = Opts {
        threads: 1,
        ..o.clone()
    };
    let mut pages = Vec::new();
    for run in 0..o.runs {
        let page = page(&o)?;
        eprintln!("run {run}: {page}");
        pages.push(page);
    }
    let mut table = String::from(
        "| `GET /`, gzip, 100 keep-alive connections | requests/s | × nginx in its round |\n| --- | --- | --- |\n",
    );
    let ours = median(pages.iter().map(|p| p.requests_per_s).collect());
    let ratios: Vec<f64> = pages
        .iter()
        .filter_map(|p| Some(p.requests_per_s / p.nginx_per_s?))
        .collect();
    let ratio = match ratios.is_empty() {
        true => "(no nginx)".to_string(),
        false => format!("{:.2}", median(ratios)),
    };
    let _ = writeln!(table, "| lanchat, 1 thread | {ours:.0} | {ratio} |");
    let theirs: Vec<f64> = pages.iter().filter_map(|p| p.nginx_per_s).collect();
    if !theirs.is_empty() {
        let _ = writeln!(
            table,
            "| nginx, 1 worker, `gzip_static` | {:.0} | 1 |",
            median(theirs)
        );
    }
    Ok(table)
}
