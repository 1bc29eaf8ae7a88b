//! Removing location and other camera metadata from JPEGs without
//! re-encoding: the header segments are rewritten, the image data is passed
//! through untouched. Exif (APP1) — which holds GPS coordinates, camera
//! serial numbers and dates — is dropped and replaced by a minimal Exif
//! carrying only the orientation, so photos still display upright; XMP
//! (APP1), Photoshop/IPTC (APP13) and comments (COM) are dropped too.
use super::source::Source;

/// Header segments larger than this in total are refused as malformed.
const MAX_HEADER: usize = 4 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    #[error("not a well-formed JPEG header")]
    Malformed,
}

/// Read the header of the JPEG in `source` and return the source with the
/// header replaced by the stripped one. The image data follows unchanged.
pub async fn strip_metadata(mut source: Source<'_>) -> Result<Source<'_>, JpegError> {
    let io = |_| JpegError::Malformed;
    let soi = source.take(2).await.map_err(io)?;
    if soi != [0xFF, 0xD8] {
        return Err(JpegError::Malformed);
    }
    let mut out = soi;
    let mut read = 2usize;
    loop {
        let mut marker = source.take(2).await.map_err(io)?;
        if marker[0] != 0xFF {
            return Err(JpegError::Malformed);
        }
        // Fill bytes: 0xFF may repeat before the marker code.
        while marker[1] == 0xFF {
            marker[1] = source.take(1).await.map_err(io)?[0];
        }
        let code = marker[1];
        if code == 0xDA || code == 0xD9 {
            // Start of scan (or end of image): the rest passes through.
            out.extend_from_slice(&marker);
            break;
        }
        if (0xD0..=0xD7).contains(&code) || code == 0x01 {
            out.extend_from_slice(&marker);
            continue;
        }
        let len_bytes = source.take(2).await.map_err(io)?;
        let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
        if len < 2 {
            return Err(JpegError::Malformed);
        }
        read += 4 + len;
        if read > MAX_HEADER {
            return Err(JpegError::Malformed);
        }
        let payload = source.take(len - 2).await.map_err(io)?;
        match code {
            0xE1 if payload.starts_with(b"Exif\0\0") => {
                if let Some(o) = orientation(&payload[6..]).filter(|o| *o != 1) {
                    out.extend_from_slice(&minimal_exif(o));
                }
            }
            0xE1 | 0xED | 0xFE => {} // XMP and other APP1, Photoshop/IPTC, comments
            _ => {
                out.extend_from_slice(&marker);
                out.extend_from_slice(&len_bytes);
                out.extend_from_slice(&payload);
            }
        }
    }
    Ok(source.with_prefix(out))
}

/// The Orientation tag (0x0112) of IFD0 in a TIFF structure, if present.
pub fn orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(0..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b = tiff.get(i..i + 2)?;
        Some(if big { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b = tiff.get(i..i + 4)?;
        let a = [b[0], b[1], b[2], b[3]];
        Some(if big { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count.min(512)).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3).then(|| u16_at(entry + 8)).flatten()
    })
}

/// An APP1 segment with an Exif block holding only the orientation.
pub fn minimal_exif(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2A");
    tiff.extend_from_slice(&8u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&tiff);
    seg
}

/// Synthetic JPEGs for tests and benchmarks (no image library needed).
pub mod fixtures {
    /// A minimal well-formed JPEG of about `len` bytes: JFIF, a quantisation
    /// table, then `len` bytes of scan data.
    pub fn plain_jpeg(len: usize) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]);
        jpeg.extend((0..len).map(|i| (i * 31 % 251) as u8));
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        jpeg
    }

    /// A JPEG with JFIF, an Exif block (orientation + a GPS IFD holding
    /// `canary`), XMP and a comment, then scan data.
    pub fn jpeg_with_gps(canary: &str, orientation: u16) -> (Vec<u8>, Vec<u8>) {
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"II\x2A\x00");
        tiff.extend_from_slice(&8u32.to_le_bytes());
        // IFD0: Orientation, GPSInfo pointer.
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        let gps_ifd = 8 + 2 + 2 * 12 + 4;
        tiff.extend_from_slice(&0x8825u16.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&(gps_ifd as u32).to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        // GPS IFD: one ASCII tag (GPSAreaInformation) pointing at the canary.
        let text_at = gps_ifd + 2 + 12 + 4;
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x001Cu16.to_le_bytes());
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&(canary.len() as u32 + 1).to_le_bytes());
        tiff.extend_from_slice(&(text_at as u32).to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(canary.as_bytes());
        tiff.push(0);
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(&tiff);
        let segment = |code: u8, payload: &[u8]| {
            let mut s = vec![0xFF, code];
            s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            s.extend_from_slice(payload);
            s
        };
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        jpeg.extend(segment(0xE1, &exif));
        jpeg.extend(segment(0xE1, format!("http://ns.adobe.com/xap/1.0/\0<x>{canary}</x>").as_bytes()));
        jpeg.extend(segment(0xFE, canary.as_bytes()));
        jpeg.extend(segment(0xDB, &[0u8; 65]));
        let scan: Vec<u8> = [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]
            .into_iter()
            .chain((0..70_000).map(|i| (i % 250) as u8))
            .chain([0xFF, 0xD9])
            .collect();
        jpeg.extend_from_slice(&scan);
        (jpeg, scan)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::jpeg_with_gps;
    use super::*;

    async fn strip(bytes: &[u8]) -> Result<Vec<u8>, JpegError> {
        let mut input = std::io::Cursor::new(bytes.to_vec());
        let source = strip_metadata(Source::new(vec![], &mut input)).await?;
        let mut source = source;
        let mut out = vec![0u8; bytes.len() + 100];
        let n = source.fill(&mut out).await.unwrap();
        out.truncate(n);
        Ok(out)
    }

    #[rocket::async_test]
    async fn gps_xmp_and_comments_are_removed_and_the_image_data_is_untouched() {
        let (jpeg, scan) = jpeg_with_gps("GPS-CANARY-35.6812N", 6);
        let out = strip(&jpeg).await.unwrap();
        assert!(!out.windows(10).any(|w| w == b"GPS-CANARY"), "canary survived");
        assert!(out.ends_with(&scan), "scan data passes through byte for byte");
        assert!(out.windows(4).any(|w| w == b"JFIF"), "JFIF kept");
        // The orientation survives in a minimal Exif block.
        let exif_at = out.windows(6).position(|w| w == b"Exif\0\0").unwrap();
        assert_eq!(orientation(&out[exif_at + 6..]), Some(6));
    }

    #[rocket::async_test]
    async fn an_upright_photo_keeps_no_exif_at_all() {
        let (jpeg, _) = jpeg_with_gps("X", 1);
        let out = strip(&jpeg).await.unwrap();
        assert!(!out.windows(4).any(|w| w == b"Exif"));
    }

    #[rocket::async_test]
    async fn a_broken_header_is_refused() {
        assert_eq!(strip(&[0xFF, 0xD8, 0x00]).await.unwrap_err(), JpegError::Malformed);
        assert_eq!(strip(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00]).await.unwrap_err(), JpegError::Malformed);
    }
}
