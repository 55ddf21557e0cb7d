//! What an image's first bytes say: whether it is a JPEG, PNG, WebP or GIF (the
//! only files shown inline), and its size in pixels, so that a page can keep its
//! room before it loads. Read from the bytes alone, never from a name or a type a
//! sender claimed.

/// The images served inline, by their first bytes.
pub fn sniff_image(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// An image's width and height from its first bytes, where they say.
pub fn dimensions(head: &[u8]) -> Option<(u32, u32)> {
    let be16 =
        |b: &[u8], i: usize| Some(u32::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])));
    let le16 =
        |b: &[u8], i: usize| Some(u32::from(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?])));
    let be32 = |b: &[u8], i: usize| Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let le24 = |b: &[u8], i: usize| {
        Some(
            u32::from(*b.get(i)?)
                | u32::from(*b.get(i + 1)?) << 8
                | u32::from(*b.get(i + 2)?) << 16,
        )
    };
    match sniff_image(head)? {
        "image/png" => Some((be32(head, 16)?, be32(head, 20)?)),
        "image/gif" => Some((le16(head, 6)?, le16(head, 8)?)),
        "image/webp" => match head.get(12..16)? {
            b"VP8X" => Some((le24(head, 24)? + 1, le24(head, 27)? + 1)),
            b"VP8L" => {
                let b = u32::from_le_bytes(head.get(21..25)?.try_into().ok()?);
                Some(((b & 0x3fff) + 1, ((b >> 14) & 0x3fff) + 1))
            }
            b"VP8 " => Some((le16(head, 26)? & 0x3fff, le16(head, 28)? & 0x3fff)),
            _ => None,
        },
        _ => {
            // JPEG: the first start-of-frame marker holds the size.
            let mut i = 2;
            while i + 9 < head.len() {
                if head[i] != 0xff {
                    return None;
                }
                let marker = head[i + 1];
                let len = be16(head, i + 2)? as usize;
                let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
                if sof {
                    return Some((be16(head, i + 7)?, be16(head, i + 5)?));
                }
                i += 2 + len;
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes_with_their_size() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x06\x40\0\0\x04\xb0rest";
        assert_eq!(sniff_image(png), Some("image/png"));
        assert_eq!(dimensions(png), Some((1600, 1200)));
        let gif = b"GIF89a\x40\x06\xb0\x04";
        assert_eq!(dimensions(gif), Some((1600, 1200)));
        // A JPEG with an APP0 segment before its frame.
        let jpeg = b"\xff\xd8\xff\xe0\0\x04ab\xff\xc0\0\x11\x08\x04\xb0\x06\x40\x03";
        assert_eq!(sniff_image(jpeg), Some("image/jpeg"));
        assert_eq!(dimensions(jpeg), Some((1600, 1200)));
        let webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0\x3f\x06\0\xaf\x04\0";
        assert_eq!(dimensions(webp), Some((1600, 1200)));
        for other in [
            &b"<svg xmlns"[..],
            b"<!doctype html>",
            b"%PDF-1.7",
            b"\xff\xd8",
            b"",
        ] {
            assert_eq!(sniff_image(other), None, "{other:?}");
        }
        // Cut anywhere, never a panic.
        for cut in 0..jpeg.len() {
            let _ = dimensions(&jpeg[..cut]);
            let _ = dimensions(&webp[..cut.min(webp.len())]);
        }
    }
}
