//! Synthetic rosters for tests and benchmarks (`app dev gen-roster`):
//! deterministic for a seed, plausible Japanese values, some left empty as
//! in the real notice list. The same line can be rebuilt from its number to
//! craft a claim that matches it.
use std::io::Write;

use rand::{Rng, SeedableRng};

const FAMILY: [&str; 16] = [
    "ヤマダ",
    "スズキ",
    "タナカ",
    "サトウ",
    "ワタナベ",
    "イトウ",
    "ナカムラ",
    "コバヤシ",
    "カトウ",
    "ヨシダ",
    "ヤマモト",
    "マツモト",
    "イノウエ",
    "キムラ",
    "ハヤシ",
    "シミズ",
];
const GIVEN: [&str; 16] = [
    "ハナコ",
    "タロウ",
    "ユウキ",
    "サクラ",
    "ケンタ",
    "アオイ",
    "ハルト",
    "ミサキ",
    "ソウタ",
    "ユイ",
    "リク",
    "メイ",
    "カイト",
    "ヒナ",
    "ダイキ",
    "ナナミ",
];

/// The five fields of line `index` (0-based, after the header) for `seed`.
pub fn row(seed: u64, index: u64) -> [String; 5] {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let code = if rng.gen_ratio(19, 20) { format!("{:04X}{:08}", index % 0xFFFF, index) } else { String::new() };
    let kana = format!("{} {}", FAMILY[rng.gen_range(0..16)], GIVEN[rng.gen_range(0..16)]);
    let birth = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default()
        + chrono::Duration::days(rng.gen_range(0..22_000));
    let postal = format!("{:03}-{:04}", rng.gen_range(100..1000), rng.gen_range(0..10_000));
    let phone = if rng.gen_ratio(9, 10) {
        format!("0{}-{:04}-{:04}", rng.gen_range(70..91), rng.gen_range(0..10_000), rng.gen_range(0..10_000))
    } else {
        String::new()
    };
    [code, kana, birth.to_string(), postal, phone]
}

/// Write a roster of `rows` lines (plus the header); `bad_every` > 0 spoils
/// every n-th line so imports have something to reject. Calls `tick` every
/// 100,000 lines.
pub fn write(
    out: &mut impl Write,
    seed: u64,
    rows: u64,
    bad_every: u64,
    mut tick: impl FnMut(u64),
) -> std::io::Result<()> {
    writeln!(out, "{}", super::domain::COLUMNS.join(","))?;
    for i in 0..rows {
        let [code, kana, birth, postal, phone] = row(seed, i);
        if bad_every > 0 && i % bad_every == bad_every - 1 {
            writeln!(out, "{code},山田 花子,{birth},{postal},{phone}")?;
        } else {
            writeln!(out, "{code},{kana},{birth},{postal},{phone}")?;
        }
        if i % 100_000 == 99_999 {
            tick(i + 1);
        }
    }
    tick(rows);
    out.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_deterministic_valid_and_distinct() {
        assert_eq!(super::row(7, 42), super::row(7, 42));
        assert_ne!(super::row(7, 42), super::row(7, 43));
        for i in 0..500 {
            let fields = super::row(1, i);
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            assert!(super::super::domain::parse_row(&refs).is_ok(), "{fields:?}");
        }
    }
}
