//! Any multipart body, read in pieces of any size: never a panic; the parts read
//! do not depend on how the body was cut; every part has a name; and the data of
//! the parts read back from their own encoding is the same.
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::AsyncRead;
use lanchat::multipart::{Multipart, Part};
use libfuzzer_sys::fuzz_target;

/// Hands out `piece` bytes per read.
struct Trickle<'a>(&'a [u8], usize);

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let n = self.1.min(out.len()).min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Poll::Ready(Ok(n))
    }
}

fn parts(body: &[u8], piece: usize) -> Option<Vec<(Part, Vec<u8>)>> {
    futures_lite::future::block_on(async {
        let mut m = Multipart::new(Trickle(body, piece), "b");
        let mut all = Vec::new();
        while let Some(part) = m.next_part().await.ok()? {
            let mut data = Vec::new();
            while m.data(&mut data).await.ok()? > 0 {}
            all.push((part, data));
        }
        Some(all)
    })
}

fuzz_target!(|input: (u8, &[u8])| {
    let (piece, body) = input;
    let piece = usize::from(piece % 64) + 1;
    let whole = parts(body, body.len().max(1));
    let cut = parts(body, piece);
    assert_eq!(whole, cut, "the same parts however the body is cut");
    if let Some(parts_read) = whole {
        let mut again = Vec::new();
        for (i, (part, data)) in parts_read.iter().enumerate() {
            assert!(!part.name.is_empty(), "every part read has a name");
            again.extend_from_slice(
                format!("--b\r\nContent-Disposition: form-data; name=\"p{i}\"\r\n\r\n").as_bytes(),
            );
            again.extend_from_slice(data);
            again.extend_from_slice(b"\r\n");
        }
        again.extend_from_slice(b"--b--\r\n");
        let back = parts(&again, piece).expect("its own encoding reads");
        assert_eq!(back.len(), parts_read.len());
        for (i, ((a, da), (_, db))) in back.iter().zip(&parts_read).enumerate() {
            assert_eq!(da, db, "the data of part {i} reads back");
            assert_eq!(a.name, format!("p{i}"));
        }
    }
});
