//! The filing bundle of a frozen round, as a ZIP: the party list (当事者目録)
//! as XLSX and as CSV (UTF-8 with BOM, for Excel), the claim list
//! (請求債権目録), the evidence index (証拠説明書) with each evidence file
//! renamed by its exhibit number (甲第N号証), each plaintiff's signed retainer
//! record, and `manifest.json` with the SHA-256 of every file. Written entry
//! by entry, to a seekable file or as a stream, so memory stays flat
//! whatever the round's size.
use std::io::{self, Seek, Write};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One plaintiff in the party list and the claim list.
#[derive(Clone, Debug, Serialize)]
pub struct Party {
    pub plaintiff_number: u32,
    pub name: String,
    pub address: String,
    /// The guardian (法定代理人) of a minor.
    pub legal_representative: Option<String>,
    pub tier: String,
    pub amount_yen: u64,
}

/// One exhibit (甲第N号証) of the evidence index.
#[derive(Clone, Debug, Serialize)]
pub struct Exhibit {
    pub number: u32,
    pub title: String,
    /// 原本 or 写し.
    pub original_or_copy: String,
    pub author: String,
    pub date: Option<NaiveDate>,
    pub purpose: String,
    /// The evidence row the file comes from.
    pub evidence_id: uuid::Uuid,
    /// File extension of the stored type (jpg, png, pdf, …).
    pub extension: String,
}

impl Exhibit {
    pub fn label(&self) -> String {
        format!("甲第{}号証", self.number)
    }
    pub fn file_name(&self) -> String {
        format!("evidence/甲第{:05}号証.{}", self.number, self.extension)
    }
}

/// What the bundle says about the round.
#[derive(Clone, Debug, Serialize)]
pub struct RoundInfo {
    pub case: String,
    pub number: i32,
    pub name: String,
    pub court: String,
    pub filing_date: NaiveDate,
    pub policy_version: i32,
    pub policy_sha256: String,
    pub result_sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Counts {
    pub plaintiffs: u64,
    pub exhibits: u64,
    pub retainers: u64,
    pub total_yen: u64,
}

/// `manifest.json`: what is in the bundle, who made it, and every file's hash.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub round: RoundInfo,
    pub counts: Counts,
    pub exported_by: String,
    pub exported_at: DateTime<Utc>,
    pub files: Vec<FileEntry>,
}

/// A spreadsheet cell that cannot run as a formula (S18): a value starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`.
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn zip_err(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e.to_string())
}

struct OpenEntry {
    name: String,
    digest: Digesting,
    size: u64,
}

/// How an entry's SHA-256 is known.
enum Digesting {
    /// Hashed as it is written.
    Here(Sha256),
    /// Hashed when the file was uploaded and authenticated since (an
    /// evidence file comes out of authenticated decryption, so its bytes are
    /// the ones hashed then); the writer checks the size.
    Known { sha256: String, size: u64 },
}

/// Writes the bundle's entries and remembers each file's hash.
pub struct BundleWriter<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    files: Vec<FileEntry>,
    open: Option<OpenEntry>,
}

/// Writes into the bundle's open entry.
struct EntryWriter<'a, W: Write + Seek>(&'a mut BundleWriter<W>);

impl<W: Write + Seek> Write for EntryWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_chunk(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Write> BundleWriter<zip::write::StreamWriter<S>> {
    /// A bundle written front to back into `out` (no seeking: entries carry
    /// data descriptors), so it can be sealed and stored while it is made.
    pub fn streaming(out: S) -> Self {
        Self { zip: zip::ZipWriter::new_stream(out), files: Vec::new(), open: None }
    }
}

impl<W: Write + Seek> BundleWriter<W> {
    pub fn new(out: W) -> Self {
        Self { zip: zip::ZipWriter::new(out), files: Vec::new(), open: None }
    }

    /// Start an entry (closing the one before). Images and PDFs are already
    /// compressed, so they are stored; text is deflated.
    pub fn start(&mut self, name: &str, compress: bool) -> io::Result<()> {
        self.end()?;
        let method = if compress { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let options = zip::write::SimpleFileOptions::default().compression_method(method).large_file(false);
        self.zip.start_file(name, options).map_err(zip_err)?;
        self.open = Some(OpenEntry { name: name.to_string(), digest: Digesting::Here(Sha256::new()), size: 0 });
        Ok(())
    }

    /// Start a stored entry whose SHA-256 and size are already known: an
    /// evidence file, hashed at upload and authenticated by its decryption.
    /// The entry's size is checked against `size` when it ends.
    pub fn start_known(&mut self, name: &str, sha256: &str, size: u64) -> io::Result<()> {
        self.start(name, false)?;
        if let Some(open) = self.open.as_mut() {
            open.digest = Digesting::Known { sha256: sha256.to_string(), size };
        }
        Ok(())
    }

    /// Append to the open entry.
    pub fn write_chunk(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Err(io::Error::other("no entry is open"));
        };
        self.zip.write_all(bytes)?;
        if let Digesting::Here(hasher) = &mut open.digest {
            hasher.update(bytes);
        }
        open.size += bytes.len() as u64;
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        if let Some(open) = self.open.take() {
            let sha256 = match open.digest {
                Digesting::Here(hasher) => hex::encode(hasher.finalize()),
                Digesting::Known { sha256, size } if size == open.size => sha256,
                Digesting::Known { size, .. } => {
                    return Err(io::Error::other(format!(
                        "{}: {} bytes written, {size} expected",
                        open.name, open.size
                    )))
                }
            };
            self.files.push(FileEntry { name: open.name, size: open.size, sha256 });
        }
        Ok(())
    }

    /// Write one whole entry through `body`.
    pub fn file(
        &mut self,
        name: &str,
        compress: bool,
        body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        self.start(name, compress)?;
        body(&mut EntryWriter(self))?;
        self.end()
    }

    /// The party list as CSV (UTF-8 with BOM so Excel reads the kanji).
    pub fn party_list_csv(&mut self, parties: &[Party]) -> io::Result<()> {
        self.file("当事者目録.csv", true, |out| {
            out.write_all("\u{feff}".as_bytes())?;
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(["原告番号", "氏名", "住所", "法定代理人"]).map_err(io::Error::other)?;
            for p in parties {
                csv.write_record([
                    p.plaintiff_number.to_string(),
                    neutralise(&p.name),
                    neutralise(&p.address),
                    neutralise(p.legal_representative.as_deref().unwrap_or("")),
                ])
                .map_err(io::Error::other)?;
            }
            csv.flush()
        })
    }

    /// The party list as XLSX. Every value is written as text with Excel's
    /// quote prefix, so nothing typed by a claimant can become a formula.
    pub fn party_list_xlsx(&mut self, parties: &[Party]) -> io::Result<()> {
        use rust_xlsxwriter::{Format, Workbook};
        let xerr = |e: rust_xlsxwriter::XlsxError| io::Error::other(e.to_string());
        let mut workbook = Workbook::new();
        let text = Format::new().set_quote_prefix();
        let bold = Format::new().set_bold();
        let sheet = workbook.add_worksheet();
        sheet.set_name("当事者目録").map_err(xerr)?;
        for (col, title) in ["原告番号", "氏名", "住所", "法定代理人"].iter().enumerate() {
            sheet.write_string_with_format(0, col as u16, *title, &bold).map_err(xerr)?;
        }
        for (i, p) in parties.iter().enumerate() {
            let row = i as u32 + 1;
            sheet.write_number(row, 0, f64::from(p.plaintiff_number)).map_err(xerr)?;
            sheet.write_string_with_format(row, 1, &p.name, &text).map_err(xerr)?;
            sheet.write_string_with_format(row, 2, &p.address, &text).map_err(xerr)?;
            sheet
                .write_string_with_format(row, 3, p.legal_representative.as_deref().unwrap_or(""), &text)
                .map_err(xerr)?;
        }
        sheet.set_column_width(1, 20).map_err(xerr)?;
        sheet.set_column_width(2, 50).map_err(xerr)?;
        sheet.set_column_width(3, 20).map_err(xerr)?;
        // The workbook is assembled in a temporary file, then copied in.
        let mut tmp = tempfile::tempfile()?;
        workbook.save_to_writer(&mut tmp).map_err(xerr)?;
        tmp.rewind()?;
        self.file("当事者目録.xlsx", false, |out| io::copy(&mut tmp, out).map(|_| ()))
    }

    /// The claim list: each plaintiff's tier and amount, and the total.
    pub fn claim_list_csv(&mut self, parties: &[Party]) -> io::Result<()> {
        self.file("請求債権目録.csv", true, |out| {
            out.write_all("\u{feff}".as_bytes())?;
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(["原告番号", "氏名", "等級", "請求額（円）"]).map_err(io::Error::other)?;
            for p in parties {
                csv.write_record([
                    p.plaintiff_number.to_string(),
                    neutralise(&p.name),
                    neutralise(&p.tier),
                    p.amount_yen.to_string(),
                ])
                .map_err(io::Error::other)?;
            }
            let total: u64 = parties.iter().map(|p| p.amount_yen).sum();
            csv.write_record(["", "合計", "", &total.to_string()]).map_err(io::Error::other)?;
            csv.flush()
        })
    }

    /// The evidence index (証拠説明書).
    pub fn evidence_index_csv(&mut self, exhibits: &[Exhibit]) -> io::Result<()> {
        self.file("証拠説明書.csv", true, |out| {
            out.write_all("\u{feff}".as_bytes())?;
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(["号証", "標目", "原本・写しの別", "作成者", "作成年月日", "立証趣旨", "ファイル"])
                .map_err(io::Error::other)?;
            for e in exhibits {
                csv.write_record([
                    e.label(),
                    neutralise(&e.title),
                    e.original_or_copy.clone(),
                    neutralise(&e.author),
                    e.date.map(|d| d.to_string()).unwrap_or_default(),
                    neutralise(&e.purpose),
                    e.file_name(),
                ])
                .map_err(io::Error::other)?;
            }
            csv.flush()
        })
    }

    /// Close the bundle with `manifest.json` (its own hash is not in it).
    pub fn finish(
        mut self,
        round: RoundInfo,
        counts: Counts,
        exported_by: String,
        exported_at: DateTime<Utc>,
    ) -> io::Result<(W, Manifest)> {
        self.end()?;
        let manifest = Manifest { round, counts, exported_by, exported_at, files: self.files.clone() };
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        self.zip.start_file("manifest.json", options).map_err(zip_err)?;
        self.zip.write_all(&json)?;
        let out = self.zip.finish().map_err(zip_err)?;
        Ok((out, manifest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn party(n: u32, name: &str) -> Party {
        Party {
            plaintiff_number: n,
            name: name.into(),
            address: "東京都千代田区千代田1-1".into(),
            legal_representative: None,
            tier: "B".into(),
            amount_yen: 55_000,
        }
    }

    fn round_info() -> RoundInfo {
        RoundInfo {
            case: "benesse-2014".into(),
            number: 1,
            name: "第1次提訴".into(),
            court: "東京地方裁判所".into(),
            filing_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            policy_version: 1,
            policy_sha256: "p".into(),
            result_sha256: "r".into(),
        }
    }

    #[test]
    fn cells_that_could_run_as_formulas_are_neutralised() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise("山田 花子"), "山田 花子");
        assert_eq!(neutralise(""), "");
    }

    #[test]
    fn the_bundle_unzips_and_its_manifest_hashes_match_every_file() {
        let parties = vec![party(1, "山田 花子"), party(2, "=cmd|' /C calc'!A0")];
        let exhibits = vec![Exhibit {
            number: 1,
            title: "おわびの手紙".into(),
            original_or_copy: "写し".into(),
            author: "株式会社ベネッセコーポレーション".into(),
            date: NaiveDate::from_ymd_opt(2014, 7, 10),
            purpose: "原告が漏えいの対象者であること".into(),
            evidence_id: uuid::Uuid::nil(),
            extension: "jpg".into(),
        }];
        let mut w = BundleWriter::streaming(Vec::new());
        w.party_list_xlsx(&parties).unwrap();
        w.party_list_csv(&parties).unwrap();
        w.claim_list_csv(&parties).unwrap();
        w.evidence_index_csv(&exhibits).unwrap();
        w.file(&exhibits[0].file_name(), false, |out| out.write_all(b"\xff\xd8 jpeg bytes")).unwrap();
        let round = round_info();
        let counts = Counts { plaintiffs: 2, exhibits: 1, retainers: 0, total_yen: 110_000 };
        let (out, manifest) = w.finish(round, counts, "admin@example.jp".into(), Utc::now()).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(out.into_inner())).unwrap();
        // (written as a stream, front to back, and still a readable ZIP)
        assert_eq!(zip.len(), manifest.files.len() + 1);
        for f in &manifest.files {
            let mut bytes = Vec::new();
            zip.by_name(&f.name).unwrap().read_to_end(&mut bytes).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&bytes)), f.sha256, "{}", f.name);
            assert_eq!(bytes.len() as u64, f.size);
        }
        let mut csv = String::new();
        zip.by_name("当事者目録.csv").unwrap().read_to_string(&mut csv).unwrap();
        assert!(csv.starts_with('\u{feff}'), "BOM for Excel");
        assert!(csv.contains(",'=cmd|' /C calc'!A0,"), "{csv}");
        // In the workbook the name is text (a shared string), never a formula.
        let mut xlsx = Vec::new();
        zip.by_name("当事者目録.xlsx").unwrap().read_to_end(&mut xlsx).unwrap();
        let mut book = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
        let mut sheet = String::new();
        book.by_name("xl/worksheets/sheet1.xml").unwrap().read_to_string(&mut sheet).unwrap();
        assert!(!sheet.contains("<f>"), "no formulas: {sheet}");
        let mut strings = String::new();
        book.by_name("xl/sharedStrings.xml").unwrap().read_to_string(&mut strings).unwrap();
        assert!(strings.contains("=cmd|"), "{strings}");
        let mut claims = String::new();
        zip.by_name("請求債権目録.csv").unwrap().read_to_string(&mut claims).unwrap();
        assert!(claims.contains(",合計,,110000"), "{claims}");
    }

    #[test]
    fn a_known_digest_is_recorded_and_a_short_entry_is_refused() {
        let body = b"\xff\xd8 uploaded jpeg bytes";
        let sha = hex::encode(Sha256::digest(body));
        let mut w = BundleWriter::streaming(Vec::new());
        w.start_known("evidence/a.jpg", &sha, body.len() as u64).unwrap();
        w.write_chunk(&body[..5]).unwrap();
        w.write_chunk(&body[5..]).unwrap();
        // A second entry whose bytes fall short of the recorded size.
        w.start_known("evidence/b.jpg", &sha, body.len() as u64).unwrap();
        w.write_chunk(&body[..5]).unwrap();
        let round = round_info();
        let counts = Counts { plaintiffs: 0, exhibits: 2, retainers: 0, total_yen: 0 };
        let refused = w.finish(round, counts, "admin@example.jp".into(), Utc::now());
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("evidence/b.jpg: 5 bytes written"), "{message}");

        let mut w = BundleWriter::streaming(Vec::new());
        w.start_known("evidence/a.jpg", &sha, body.len() as u64).unwrap();
        w.write_chunk(body).unwrap();
        let round = round_info();
        let counts = Counts { plaintiffs: 0, exhibits: 1, retainers: 0, total_yen: 0 };
        let (out, manifest) = w.finish(round, counts, "admin@example.jp".into(), Utc::now()).unwrap();
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].sha256, sha);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(out.into_inner())).unwrap();
        let mut bytes = Vec::new();
        zip.by_name("evidence/a.jpg").unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, body);
    }
}
