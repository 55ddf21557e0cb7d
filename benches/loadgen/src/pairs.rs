//! `pairs`: the flat-out room, lanchat and each peer by turns, run after run, so
//! that the machine's drift (other tenants, clock speed) falls on both alike. Each
//! run of a peer is compared with lanchat's run just before it; the figures are the
//! medians of these ratios, with their range.

use super::*;

pub(crate) fn pairs(o: &Opts) -> Result<(), String> {
    let mut servers = vec![("lanchat".to_string(), o.server.clone())];
    for peer in &o.peers {
        let (name, cmd) = peer.split_once('=').ok_or("--peer wants NAME=COMMAND")?;
        servers.push((name.to_string(), cmd.to_string()));
    }
    if servers.len() < 2 {
        return Err("pairs wants at least one --peer NAME=COMMAND".into());
    }
    let mut runs: Vec<Vec<FlatOut>> = vec![Vec::new(); servers.len()];
    for run in 0..o.runs {
        for (i, (name, cmd)) in servers.iter().enumerate() {
            let o = Opts {
                server: cmd.clone(),
                ..o.clone()
            };
            let flat = flatout(&o)?;
            eprintln!("run {run}: {name}: {flat}");
            runs[i].push(flat);
        }
    }
    let mut table = format!(
        "| {} subscribers, {} publishers flat out, {} s × {} runs | posts/s | CPU µs/post | lanchat's posts/s ÷ this | lanchat's CPU/post ÷ this | lost | dup |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        o.subscribers, o.publishers, o.seconds, o.runs
    );
    let ours = &runs[0];
    for ((name, _), theirs) in servers.iter().zip(&runs) {
        let us = |f: &FlatOut| f.cpu_per_post.as_secs_f64() * 1e6;
        let spread = |v: Vec<f64>| {
            let (lo, hi) = (percentile(v.clone(), 0.0), percentile(v.clone(), 1.0));
            format!("{:.2} ({lo:.2} to {hi:.2})", median(v))
        };
        let posts = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| a.posts_per_s / b.posts_per_s)
            .collect();
        let cpu = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| us(a) / us(b))
            .collect();
        let _ = writeln!(
            table,
            "| {name} | {:.0} | {:.1} | {} | {} | {} | {} |",
            median(theirs.iter().map(|f| f.posts_per_s).collect()),
            median(theirs.iter().map(us).collect()),
            spread(posts),
            spread(cpu),
            theirs.iter().map(|f| f.lost).sum::<u64>(),
            theirs.iter().map(|f| f.duplicated).sum::<u64>(),
        );
    }
    print!("{table}");
    if let Some(path) = &o.out {
        std::fs::write(path, &table).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}
