//! Removing location and other metadata from PNG, WebP and HEIC/HEIF
//! uploads while they stream, without decoding or re-encoding the image
//! (JPEG has its own header rewrite in `jpeg`).
//!
//! - **PNG**: the chunks that carry metadata (`eXIf`, `tEXt`, `iTXt`,
//!   `zTXt`, `tIME`) are dropped wherever they are in the file; every other
//!   chunk passes through byte for byte, CRC included.
//! - **WebP**: the `EXIF` and `XMP ` chunks keep their length (the RIFF size
//!   at the start of the file cannot change once sent) but are renamed to
//!   `JUNK` and zeroed, which decoders skip; the extended header's EXIF and
//!   XMP flags are cleared.
//! - **HEIC/HEIF**: the file is read up to the end of its `meta` box, which
//!   says where the Exif and XMP items lie (`iinf`, `iloc`); those bytes are
//!   zeroed in place as they pass, so every offset in the file stays right
//!   and the image items are untouched. A file whose `meta` box does not
//!   come within the first 4 MiB is refused.
use super::domain::SniffedType;
use super::source::Source;

/// How much of a HEIF file may be held while looking for its `meta` box.
const MAX_HEIF_HEAD: usize = 4 * 1024 * 1024;
/// How much is read from the upload per step.
const STEP: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StripError {
    #[error("not a well-formed {0} file")]
    Malformed(&'static str),
}

/// A streaming rewrite of one format: bytes in, bytes out.
#[derive(Debug)]
pub enum Filter {
    Png(Png),
    Webp(Webp),
    Heif(Heif),
}

impl Filter {
    /// The filter for a sniffed type, if it carries metadata this removes.
    pub fn for_type(kind: SniffedType) -> Option<Filter> {
        match kind {
            SniffedType::Png => Some(Filter::Png(Png::default())),
            SniffedType::Webp => Some(Filter::Webp(Webp::default())),
            SniffedType::Heic => Some(Filter::Heif(Heif::default())),
            _ => None,
        }
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), StripError> {
        match self {
            Filter::Png(f) => f.feed(input, out),
            Filter::Webp(f) => f.feed(input, out),
            Filter::Heif(f) => f.feed(input, out),
        }
    }

    /// The input ended: anything held back, or an error if the file stopped
    /// where it cannot (inside a HEIF head that never reached `meta`).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StripError> {
        match self {
            Filter::Heif(f) => f.finish(out),
            Filter::Png(_) | Filter::Webp(_) => Ok(()),
        }
    }
}

/// The upload as the store receives it: the source, through a filter.
pub struct Stripped<'a> {
    source: Source<'a>,
    filter: Option<Filter>,
    pending: Vec<u8>,
    taken: usize,
    ended: bool,
    step: Vec<u8>,
}

impl<'a> Stripped<'a> {
    pub fn new(source: Source<'a>, filter: Option<Filter>) -> Self {
        Self { source, filter, pending: Vec::new(), taken: 0, ended: false, step: Vec::new() }
    }

    /// Fill `buf` unless the input ends first; returns how many bytes were
    /// put in. A malformed file is an `InvalidData` error.
    pub async fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(filter) = self.filter.as_mut() else {
            return self.source.fill(buf).await;
        };
        let invalid = |e: StripError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        self.step.resize(STEP, 0);
        while self.pending.len() - self.taken < buf.len() && !self.ended {
            if self.taken > 0 {
                self.pending.drain(..self.taken);
                self.taken = 0;
            }
            let n = self.source.fill(&mut self.step).await?;
            if n > 0 {
                filter.feed(&self.step[..n], &mut self.pending).map_err(invalid)?;
            }
            if n < STEP {
                filter.finish(&mut self.pending).map_err(invalid)?;
                self.ended = true;
            }
        }
        let n = (self.pending.len() - self.taken).min(buf.len());
        buf[..n].copy_from_slice(&self.pending[self.taken..self.taken + n]);
        self.taken += n;
        Ok(n)
    }
}

/// Where a chunk-by-chunk filter is within the file.
#[derive(Debug)]
enum At {
    /// The fixed file header, `n` bytes still to pass.
    Header(usize),
    /// Collecting a chunk header.
    ChunkHeader,
    /// Inside a chunk's body: bytes still to come and what to do with them.
    Body { remaining: u64, action: Action },
}

/// What becomes of a chunk's body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Pass,
    Drop,
    Zero,
    /// The first byte of a WebP `VP8X` payload (the flags), then pass.
    ClearFlags,
}

/// A file made of a fixed header and then chunks, each an 8-byte header
/// and a body: what to do with a chunk, from its header.
pub trait Chunks {
    /// Bytes of the file's own header, passed as they are.
    const FILE_HEADER: usize;
    /// From a chunk's header: the header that goes out in its place (none:
    /// the chunk is dropped), the length of the body after it (with a CRC
    /// or padding), and what becomes of the body.
    fn chunk(header: &[u8; 8]) -> Result<(Option<[u8; 8]>, u64, Action), StripError>;
}

/// A streaming filter over a chunked file.
#[derive(Debug)]
pub struct ChunkFilter<F> {
    at: At,
    header: Vec<u8>,
    format: std::marker::PhantomData<F>,
}

impl<F: Chunks> Default for ChunkFilter<F> {
    fn default() -> Self {
        Self { at: At::Header(F::FILE_HEADER), header: Vec::with_capacity(8), format: std::marker::PhantomData }
    }
}

impl<F: Chunks> ChunkFilter<F> {
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), StripError> {
        while !input.is_empty() {
            match &mut self.at {
                At::Header(n) => {
                    let k = (*n).min(input.len());
                    out.extend_from_slice(&input[..k]);
                    input = &input[k..];
                    *n -= k;
                    if *n == 0 {
                        self.at = At::ChunkHeader;
                    }
                }
                At::ChunkHeader => {
                    let k = (8 - self.header.len()).min(input.len());
                    self.header.extend_from_slice(&input[..k]);
                    input = &input[k..];
                    if let Ok(header) = <[u8; 8]>::try_from(self.header.as_slice()) {
                        let (emit, body, action) = F::chunk(&header)?;
                        out.extend_from_slice(emit.as_ref().map_or(&[][..], |h| &h[..]));
                        self.header.clear();
                        self.at = if body == 0 { At::ChunkHeader } else { At::Body { remaining: body, action } };
                    }
                }
                At::Body { remaining, action } => {
                    let mut k = (*remaining).min(input.len() as u64) as usize;
                    match *action {
                        Action::Pass => out.extend_from_slice(&input[..k]),
                        Action::Drop => {}
                        Action::Zero => out.resize(out.len() + k, 0),
                        Action::ClearFlags => {
                            out.push(input[0] & !WEBP_METADATA_FLAGS);
                            k = 1;
                            *action = Action::Pass;
                        }
                    }
                    input = &input[k..];
                    *remaining -= k as u64;
                    if *remaining == 0 {
                        self.at = At::ChunkHeader;
                    }
                }
            }
        }
        Ok(())
    }
}

/// PNG: drop the metadata chunks.
#[derive(Debug)]
pub struct PngChunks;
pub type Png = ChunkFilter<PngChunks>;

const PNG_METADATA: [&[u8; 4]; 5] = [b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"tIME"];

impl Chunks for PngChunks {
    const FILE_HEADER: usize = 8;
    fn chunk(header: &[u8; 8]) -> Result<(Option<[u8; 8]>, u64, Action), StripError> {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if len > i32::MAX as u32 {
            return Err(StripError::Malformed("PNG"));
        }
        // The body and its CRC.
        let body = u64::from(len) + 4;
        if PNG_METADATA.iter().any(|t| header[4..8] == t[..]) {
            Ok((None, body, Action::Drop))
        } else {
            Ok((Some(*header), body, Action::Pass))
        }
    }
}

/// WebP: rename the EXIF and XMP chunks to JUNK and zero them; clear the
/// extended header's flags for them.
#[derive(Debug)]
pub struct WebpChunks;
pub type Webp = ChunkFilter<WebpChunks>;

/// VP8X flags: EXIF (bit 3) and XMP (bit 2).
const WEBP_METADATA_FLAGS: u8 = 0x08 | 0x04;

impl Chunks for WebpChunks {
    const FILE_HEADER: usize = 12;
    fn chunk(header: &[u8; 8]) -> Result<(Option<[u8; 8]>, u64, Action), StripError> {
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        // Bodies are padded to an even length.
        let body = u64::from(len) + u64::from(len & 1);
        Ok(match &header[0..4] {
            b"EXIF" | b"XMP " => {
                let mut junk = *header;
                junk[0..4].copy_from_slice(b"JUNK");
                (Some(junk), body, Action::Zero)
            }
            b"VP8X" if len >= 1 => (Some(*header), body, Action::ClearFlags),
            _ => (Some(*header), body, Action::Pass),
        })
    }
}

/// HEIF: hold the head until the `meta` box is whole, then zero the Exif
/// and XMP items' bytes wherever they are.
#[derive(Debug, Default)]
pub struct Heif {
    head: Vec<u8>,
    /// Byte ranges `[start, end)` of the file to zero; known once `meta` is read.
    blank: Option<Vec<(u64, u64)>>,
    /// How many bytes of the file have gone out.
    pos: u64,
}

impl Heif {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), StripError> {
        if self.blank.is_some() {
            self.emit(input, out);
            return Ok(());
        }
        self.head.extend_from_slice(input);
        if let Some(ranges) = heif_metadata_ranges(&self.head)? {
            self.blank = Some(ranges);
            let head = std::mem::take(&mut self.head);
            self.emit(&head, out);
        } else if self.head.len() > MAX_HEIF_HEAD {
            return Err(StripError::Malformed("HEIF"));
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), StripError> {
        if self.blank.is_none() {
            return Err(StripError::Malformed("HEIF"));
        }
        Ok(())
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(bytes);
        let (from, to) = (self.pos, self.pos + bytes.len() as u64);
        for &(a, b) in self.blank.iter().flatten() {
            let (a, b) = (a.max(from), b.min(to));
            if a < b {
                out[start + (a - from) as usize..start + (b - from) as usize].fill(0);
            }
        }
        self.pos = to;
    }
}

/// A box: its type, where its payload starts and where it ends.
struct BoxAt {
    kind: [u8; 4],
    payload: usize,
    end: usize,
}

/// The box at `at` within `data[..limit]`, `Ok(None)` if not all of its
/// header is there yet. `end` may lie beyond `limit` (a box not yet whole).
fn box_at(data: &[u8], at: usize, file_end: Option<usize>) -> Result<Option<BoxAt>, StripError> {
    let bad = StripError::Malformed("HEIF");
    let Some(header) = data.get(at..at + 8) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
    let kind = [header[4], header[5], header[6], header[7]];
    let (size, payload) = match size {
        1 => {
            let Some(large) = data.get(at + 8..at + 16) else {
                return Ok(None);
            };
            (u64::from_be_bytes(large.try_into().map_err(|_| StripError::Malformed("HEIF"))?), at + 16)
        }
        0 => match file_end {
            Some(end) => ((end - at) as u64, at + 8),
            // "To the end of the file" before `meta` was seen: not a layout this reads.
            None => return Err(bad),
        },
        n => (n, at + 8),
    };
    let end = usize::try_from(size).ok().and_then(|s| at.checked_add(s)).ok_or(StripError::Malformed("HEIF"))?;
    if end < payload {
        return Err(bad);
    }
    Ok(Some(BoxAt { kind, payload, end }))
}

/// Once the top-level `meta` box of `head` is whole: the ranges of the file
/// that hold Exif or XMP items. `Ok(None)` while more is needed.
fn heif_metadata_ranges(head: &[u8]) -> Result<Option<Vec<(u64, u64)>>, StripError> {
    let mut at = 0;
    loop {
        let Some(b) = box_at(head, at, None)? else {
            return Ok(None);
        };
        if b.kind == *b"meta" {
            if b.end > head.len() {
                return Ok(None);
            }
            return meta_ranges(head, &b).map(Some);
        }
        at = b.end;
    }
}

/// Read a big-endian unsigned number of `size` bytes (0, 4 or 8).
fn uint(data: &[u8], at: &mut usize, size: usize) -> Result<u64, StripError> {
    let bytes = data.get(*at..*at + size).ok_or(StripError::Malformed("HEIF"))?;
    *at += size;
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn meta_ranges(data: &[u8], meta: &BoxAt) -> Result<Vec<(u64, u64)>, StripError> {
    let bad = || StripError::Malformed("HEIF");
    // `meta` is a full box: version and flags first.
    let mut at = meta.payload + 4;
    let (mut iinf, mut iloc, mut idat) = (None, None, None);
    while at < meta.end {
        let b = box_at(&data[..meta.end], at, Some(meta.end))?.ok_or_else(bad)?;
        if b.end > meta.end {
            return Err(bad());
        }
        match &b.kind {
            b"iinf" => iinf = Some((b.payload, b.end)),
            b"iloc" => iloc = Some((b.payload, b.end)),
            b"idat" => idat = Some(b.payload),
            _ => {}
        }
        at = b.end;
    }
    let targets = match iinf {
        Some((start, end)) => metadata_items(&data[..end], start)?,
        None => Vec::new(),
    };
    let Some((start, end)) = iloc.filter(|_| !targets.is_empty()) else {
        return Ok(Vec::new());
    };
    item_extents(&data[..end], start, &targets, idat)
}

/// The ids of the items that are Exif or XMP, from `iinf`'s payload.
fn metadata_items(data: &[u8], payload: usize) -> Result<Vec<u64>, StripError> {
    let bad = || StripError::Malformed("HEIF");
    let version = *data.get(payload).ok_or_else(bad)?;
    let mut at = payload + 4;
    let count = uint(data, &mut at, if version == 0 { 2 } else { 4 })?;
    let mut out = Vec::new();
    for _ in 0..count {
        let b = box_at(data, at, Some(data.len()))?.ok_or_else(bad)?;
        if b.end > data.len() {
            return Err(bad());
        }
        if b.kind == *b"infe" {
            let body = &data[b.payload..b.end];
            let v = *body.first().ok_or_else(bad)?;
            let mut i = 4;
            let id = uint(body, &mut i, if v == 3 { 4 } else { 2 })?;
            i += 2; // protection index
            let is_metadata = if v >= 2 {
                let kind = body.get(i..i + 4).ok_or_else(bad)?;
                let rest = &body[i + 4..];
                kind == b"Exif" || (kind == b"mime" && contains(rest, b"rdf+xml"))
            } else {
                contains(&body[i..], b"rdf+xml")
            };
            if is_metadata {
                out.push(id);
            }
        }
        at = b.end;
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The file ranges of `targets`' extents, from `iloc`'s payload.
fn item_extents(
    data: &[u8],
    payload: usize,
    targets: &[u64],
    idat: Option<usize>,
) -> Result<Vec<(u64, u64)>, StripError> {
    let bad = || StripError::Malformed("HEIF");
    let version = *data.get(payload).ok_or_else(bad)?;
    let mut at = payload + 4;
    let sizes = uint(data, &mut at, 1)?;
    let (offset_size, length_size) = ((sizes >> 4) as usize, (sizes & 0xF) as usize);
    let sizes = uint(data, &mut at, 1)?;
    let base_offset_size = (sizes >> 4) as usize;
    let index_size = if version >= 1 { (sizes & 0xF) as usize } else { 0 };
    let wide = if version < 2 { 2 } else { 4 };
    let count = uint(data, &mut at, wide)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let id = uint(data, &mut at, wide)?;
        let method = if version >= 1 { uint(data, &mut at, 2)? & 0xF } else { 0 };
        at += 2; // data reference index
        let base = uint(data, &mut at, base_offset_size)?;
        let extents = uint(data, &mut at, 2)?;
        for _ in 0..extents {
            at += index_size;
            let offset = uint(data, &mut at, offset_size)?;
            let length = uint(data, &mut at, length_size)?;
            if !targets.contains(&id) {
                continue;
            }
            let origin = match method {
                0 => 0,
                1 => idat.ok_or_else(bad)? as u64,
                // Construction from other items: nothing of its own to blank.
                _ => continue,
            };
            let start = origin.checked_add(base).and_then(|s| s.checked_add(offset)).ok_or_else(bad)?;
            // A length of 0 means "to the end of the file".
            let end = if length == 0 { u64::MAX } else { start.checked_add(length).ok_or_else(bad)? };
            out.push((start, end));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = include_bytes!("../../../tests/fixtures/metadata/gps.png");
    const WEBP: &[u8] = include_bytes!("../../../tests/fixtures/metadata/gps.webp");
    const HEIC: &[u8] = include_bytes!("../../../tests/fixtures/metadata/gps.heic");

    /// Run a filter over `input` fed in pieces of `step` bytes.
    fn run(kind: SniffedType, input: &[u8], step: usize) -> Result<Vec<u8>, StripError> {
        let mut filter = Filter::for_type(kind).expect("a filter");
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            filter.feed(piece, &mut out)?;
        }
        filter.finish(&mut out)?;
        Ok(out)
    }

    /// The chunk types of a PNG, each checked against its CRC.
    fn png_chunks(png: &[u8]) -> Vec<String> {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut at = 8;
        let mut out = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(&png[at + 4..at + 8 + len]), crc, "CRC of {}", String::from_utf8_lossy(kind));
            out.push(String::from_utf8_lossy(kind).into_owned());
            at += 12 + len;
        }
        assert_eq!(at, png.len());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// The chunk types of a WebP; the RIFF size must match the file.
    fn webp_chunks(webp: &[u8]) -> Vec<String> {
        assert_eq!((&webp[..4], &webp[8..12]), (&b"RIFF"[..], &b"WEBP"[..]));
        assert_eq!(u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize + 8, webp.len());
        let mut at = 12;
        let mut out = Vec::new();
        while at < webp.len() {
            let len = u32::from_le_bytes(webp[at + 4..at + 8].try_into().unwrap()) as usize;
            out.push(String::from_utf8_lossy(&webp[at..at + 4]).into_owned());
            at += 8 + len + (len & 1);
        }
        assert_eq!(at, webp.len());
        out
    }

    #[test]
    fn png_metadata_chunks_are_dropped_wherever_they_are_and_the_rest_is_kept_byte_for_byte() {
        assert_eq!(png_chunks(PNG), ["IHDR", "tEXt", "iTXt", "eXIf", "IDAT", "IEND"]);
        // A text chunk after the image data too.
        let mut late = PNG[..PNG.len() - 12].to_vec();
        let text = b"tEXtComment\0Home: 1-2-3 Shiba-koen";
        late.extend_from_slice(&((text.len() - 4) as u32).to_be_bytes());
        late.extend_from_slice(text);
        late.extend_from_slice(&crc32(text).to_be_bytes());
        late.extend_from_slice(&PNG[PNG.len() - 12..]);
        assert_eq!(png_chunks(&late), ["IHDR", "tEXt", "iTXt", "eXIf", "IDAT", "tEXt", "IEND"]);
        for step in [1, 7, 64, 1 << 20] {
            let out = run(SniffedType::Png, &late, step).unwrap();
            assert_eq!(png_chunks(&out), ["IHDR", "IDAT", "IEND"], "step {step}");
            assert!(!contains(&out, b"Shiba") && !contains(&out, b"GPS") && !contains(&out, b"MM\0*"));
            // IHDR and IDAT as they were.
            let idat = PNG.windows(4).position(|w| w == b"IDAT").unwrap() - 4;
            assert!(contains(&out, &PNG[idat..PNG.len()]), "the image data is untouched");
        }
    }

    #[test]
    fn webp_metadata_chunks_become_junk_and_the_flags_are_cleared() {
        assert_eq!(webp_chunks(WEBP), ["VP8X", "VP8 ", "EXIF", "XMP "]);
        assert_ne!(WEBP[20] & WEBP_METADATA_FLAGS, 0, "the sample says it has metadata");
        for step in [1, 5, 4096] {
            let out = run(SniffedType::Webp, WEBP, step).unwrap();
            assert_eq!(out.len(), WEBP.len());
            assert_eq!(webp_chunks(&out), ["VP8X", "VP8 ", "JUNK", "JUNK"], "step {step}");
            assert_eq!(out[20] & WEBP_METADATA_FLAGS, 0);
            assert!(!contains(&out, b"GPS") && !contains(&out, b"MM\0*") && !contains(&out, b"II*\0"));
            let vp8 = WEBP.windows(4).position(|w| w == b"VP8 ").unwrap();
            let len = u32::from_le_bytes(WEBP[vp8 + 4..vp8 + 8].try_into().unwrap()) as usize;
            assert_eq!(out[vp8..vp8 + 8 + len], WEBP[vp8..vp8 + 8 + len], "the image data is untouched");
        }
    }

    #[test]
    fn heif_exif_and_xmp_items_are_zeroed_in_place_and_nothing_else_changes() {
        let ranges = heif_metadata_ranges(HEIC).unwrap().expect("meta is whole");
        assert_eq!(ranges.len(), 2, "the Exif item and the XMP item: {ranges:?}");
        assert!(contains(HEIC, b"GPS") || contains(HEIC, b"MM\0*") || contains(HEIC, b"II*\0"));
        for step in [1, 100, 1 << 20] {
            let out = run(SniffedType::Heic, HEIC, step).unwrap();
            assert_eq!(out.len(), HEIC.len());
            for (i, (a, b)) in HEIC.iter().zip(&out).enumerate() {
                let blanked = ranges.iter().any(|(s, e)| (*s..*e).contains(&(i as u64)));
                assert_eq!(*b, if blanked { 0 } else { *a }, "byte {i}, step {step}");
            }
            assert!(!contains(&out, b"GPS") && !contains(&out, b"MM\0*") && !contains(&out, b"II*\0"));
        }
        // Cut short before its meta box ends, it is refused.
        assert!(run(SniffedType::Heic, &HEIC[..200], 64).is_err());
    }
}
