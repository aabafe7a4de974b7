//! The stream's structure, checked without decoding a pixel: for JPEG every marker segment from
//! the first scan to the end-of-image marker (scan headers, Huffman and quantisation tables
//! well-formed, entropy-coded data skipped at memory speed), for PNG every chunk from IHDR to
//! IEND. This is what the capture path can afford (a few ms for a 12 MP photo, no allocation);
//! what only a decode can find (corrupt entropy data, a short zlib stream) is found when the
//! upload rendition is made.

use super::MediaError;

fn incomplete() -> MediaError {
    MediaError::undecodable("the file is incomplete: it ends before the end-of-image marker")
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_be_bytes([s[0], s[1]])))
}

/// The payload of the segment whose length field is at `pos`, and where the next one starts.
fn segment(b: &[u8], pos: usize) -> Result<(&[u8], usize), MediaError> {
    let len = be16(b, pos).ok_or_else(incomplete)?;
    if len < 2 {
        return Err(MediaError::undecodable(
            "a header segment has an invalid length",
        ));
    }
    let end = pos + len;
    let payload = b.get(pos + 2..end).ok_or_else(incomplete)?;
    Ok((payload, end))
}

/// Checks a frame header (SOFn payload, `marker` C0..CF) for what the decoder supports.
pub(super) fn frame_header(marker: u8, payload: &[u8]) -> Result<(), MediaError> {
    match marker {
        0xC3 | 0xC7 | 0xCB | 0xCF => {
            return Err(MediaError::undecodable(
                "lossless JPEG is not supported; use a normal (baseline or progressive) JPEG",
            ))
        }
        0xC5 | 0xC6 | 0xCD | 0xCE => {
            return Err(MediaError::undecodable(
                "hierarchical JPEG is not supported; use a normal (baseline or progressive) JPEG",
            ))
        }
        0xC9 | 0xCA => return Err(MediaError::undecodable(
            "arithmetic-coded JPEG is not supported; use a normal (baseline or progressive) JPEG",
        )),
        _ => {}
    }
    let malformed = || MediaError::undecodable("the frame header is malformed");
    let precision = *payload.first().ok_or_else(malformed)?;
    if precision != 8 {
        return Err(MediaError::undecodable(format!(
            "{precision}-bit JPEG is not supported; use a normal 8-bit JPEG"
        )));
    }
    let components = usize::from(*payload.get(5).ok_or_else(malformed)?);
    if !matches!(components, 1 | 3 | 4) || payload.len() != 6 + 3 * components {
        return Err(malformed());
    }
    for c in payload[6..].chunks_exact(3) {
        let (h, v) = (c[1] >> 4, c[1] & 0x0F);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(malformed());
        }
    }
    Ok(())
}

/// Checks a DHT payload: each table's class and id, its 16 code counts (at most 256 codes in
/// all) and that its symbols fit in the segment.
pub(super) fn huffman_tables(mut p: &[u8]) -> Result<(), MediaError> {
    let malformed = || MediaError::undecodable("a Huffman table is malformed");
    while !p.is_empty() {
        let tc = p[0];
        if tc >> 4 > 1 || tc & 0x0F > 3 {
            return Err(malformed());
        }
        let counts = p.get(1..17).ok_or_else(malformed)?;
        let total: usize = counts.iter().map(|&n| usize::from(n)).sum();
        if total == 0 || total > 256 {
            return Err(malformed());
        }
        p = p.get(17 + total..).ok_or_else(malformed)?;
    }
    Ok(())
}

/// Checks a DQT payload: each table's precision and id, and that its values fit.
pub(super) fn quantisation_tables(mut p: &[u8]) -> Result<(), MediaError> {
    let malformed = || MediaError::undecodable("a quantisation table is malformed");
    while !p.is_empty() {
        let pq = p[0] >> 4;
        if pq > 1 || p[0] & 0x0F > 3 {
            return Err(malformed());
        }
        let size = 1 + 64 * (usize::from(pq) + 1);
        p = p.get(size..).ok_or_else(malformed)?;
    }
    Ok(())
}

fn scan_header(payload: &[u8]) -> Result<(), MediaError> {
    let components = usize::from(payload.first().copied().unwrap_or(0));
    if !(1..=4).contains(&components) || payload.len() != 4 + 2 * components {
        return Err(MediaError::undecodable("a scan header is malformed"));
    }
    Ok(())
}

/// The index of the first 0xFF at or after `from` (memchr: SIMD where the CPU has it; a 12 MP
/// photo's entropy data holds a 0xFF every few hundred bytes).
fn next_ff(b: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(0xFF, b.get(from..)?).map(|p| from + p)
}

/// Walks a JPEG from its first scan header (the SOS payload's length field at `pos`) to the
/// end-of-image marker: every scan's entropy-coded data is skipped (stuffed bytes and restart
/// markers inside it), every segment between scans is well-formed, and EOI is reached before
/// the data ends. Bytes after EOI (camera trailers) are not looked at.
pub(super) fn jpeg_scans(b: &[u8], mut pos: usize) -> Result<(), MediaError> {
    let (payload, end) = segment(b, pos)?;
    scan_header(payload)?;
    pos = end;
    loop {
        // Entropy-coded data: up to a 0xFF that is not a stuffed zero, a restart or a fill.
        let marker = loop {
            let ff = next_ff(b, pos).ok_or_else(incomplete)?;
            let mut next = ff + 1;
            while b.get(next) == Some(&0xFF) {
                next += 1;
            }
            match *b.get(next).ok_or_else(incomplete)? {
                0x00 | 0xD0..=0xD7 => pos = next + 1,
                marker => {
                    pos = next + 1;
                    break marker;
                }
            }
        };
        match marker {
            0xD9 => return Ok(()),
            0xD8 => return Err(MediaError::undecodable("a second start-of-image marker")),
            0x01 => continue,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return Err(MediaError::undecodable("more than one frame header"))
            }
            _ => {}
        }
        let (payload, end) = segment(b, pos)?;
        match marker {
            0xDA => scan_header(payload)?,
            0xC4 => huffman_tables(payload)?,
            0xDB => quantisation_tables(payload)?,
            _ => {}
        }
        pos = end;
    }
}

/// Walks a PNG's chunks from the first (IHDR, already read) to IEND: every chunk fits in the
/// file, image data (IDAT) comes before IEND, and the file does not end before IEND.
pub(super) fn png_chunks(b: &[u8]) -> Result<(), MediaError> {
    let incomplete =
        || MediaError::undecodable("the file is incomplete: it ends before the end-of-image chunk");
    let mut pos = 8usize;
    let mut image_data = false;
    loop {
        let head = b.get(pos..pos + 8).ok_or_else(incomplete)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = &head[4..8];
        if len > 0x7FFF_FFFF || !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(MediaError::undecodable("a PNG chunk is malformed"));
        }
        // Data and CRC.
        let end = pos + 8 + len as usize + 4;
        if end > b.len() {
            return Err(incomplete());
        }
        match kind {
            b"IDAT" => image_data = true,
            b"IEND" if !image_data => {
                return Err(MediaError::undecodable("the PNG has no image data (IDAT)"))
            }
            b"IEND" => return Ok(()),
            _ => {}
        }
        pos = end;
    }
}
