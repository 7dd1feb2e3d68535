//! FER+ votes for the FER2013 images: the reader of `shared/data/ferplus/votes.csv`.
//!
//! FER+ (Barsoum et al., ICMI 2016) had ten annotators vote on every FER2013 image. The file
//! gives, per FER2013 file (its path relative to the fer2013 root), FER2013's usage
//! (`Training`, `PublicTest`, `PrivateTest`) and the ten vote columns `neutral, happiness,
//! surprise, sadness, anger, disgust, fear, contempt, unknown, NF` (NF = not a face); rows FER+
//! dropped have all ten columns empty. FER+'s own splits: Training = train, PublicTest = valid,
//! PrivateTest = test. PrivateTest rows are test data: training code must never use them.
//!
//! [`FerPlusRow::seven_votes`] reorders the seven emotion columns into emolens' canonical order
//! (angry, disgust, fear, happy, neutral, sad, surprise).

use crate::error::DataError;
use emolens_core::fingerprint::sha256_hex;
use std::collections::HashMap;
use std::path::Path;

/// The header `votes.csv` must have.
pub const VOTES_HEADER: [&str; 14] = [
    "file",
    "usage",
    "ferplus_image",
    "match_rmse",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
];

/// The ten vote columns, in the file's order.
pub const VOTE_COLUMNS: [&str; 10] = [
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
];

/// Index of the `NF` (not a face) column among the ten.
pub const NOT_A_FACE: usize = 9;

/// For each of the seven canonical emotions (angry, disgust, fear, happy, neutral, sad,
/// surprise), its column among the ten votes.
const CANONICAL_TO_VOTE: [usize; 7] = [4, 5, 6, 1, 0, 3, 2];

/// FER2013's usage of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    /// FER2013's training rows (files in `train/`): FER+'s train split.
    Training,
    /// `test/PublicTest_*`: FER+'s validation split.
    PublicTest,
    /// `test/PrivateTest_*`: FER+'s test split. Never train or select on these.
    PrivateTest,
}

impl Usage {
    /// The name as `votes.csv` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Usage::Training => "Training",
            Usage::PublicTest => "PublicTest",
            Usage::PrivateTest => "PrivateTest",
        }
    }

    fn parse(s: &str) -> Option<Usage> {
        match s {
            "Training" => Some(Usage::Training),
            "PublicTest" => Some(Usage::PublicTest),
            "PrivateTest" => Some(Usage::PrivateTest),
            _ => None,
        }
    }
}

/// One file's FER+ row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FerPlusRow {
    /// Path relative to the fer2013 root, e.g. `test/angry/PrivateTest_10131363.jpg`.
    pub file: String,
    pub usage: Usage,
    /// The ten votes in the file's column order ([`VOTE_COLUMNS`]); `None` where FER+ has no row
    /// for the file (175 files).
    pub votes: Option<[u32; 10]>,
}

impl FerPlusRow {
    /// Votes for the seven emotions in canonical order (contempt, unknown, NF dropped).
    pub fn seven_votes(&self) -> Option<[u32; 7]> {
        let v = self.votes?;
        Some(CANONICAL_TO_VOTE.map(|c| v[c]))
    }

    /// The plurality class among all ten columns when it is unique and one of the seven
    /// emotions (as a canonical index); `None` otherwise (ties, contempt, unknown, not-a-face,
    /// no votes).
    pub fn majority(&self) -> Option<usize> {
        let v = self.votes?;
        let max = *v.iter().max()?;
        if max == 0 || v.iter().filter(|&&x| x == max).count() != 1 {
            return None;
        }
        let col = v.iter().position(|&x| x == max)?;
        CANONICAL_TO_VOTE.iter().position(|&c| c == col)
    }

    /// The seven-emotion vote distribution (sums to 1), `None` when the seven have no votes.
    pub fn distribution(&self) -> Option<[f32; 7]> {
        let s = self.seven_votes()?;
        let total: u32 = s.iter().sum();
        if total == 0 {
            return None;
        }
        Some(s.map(|x| x as f32 / total as f32))
    }

    /// True when not-a-face has at least as many votes as any other column (and some votes):
    /// FER+'s annotators mostly saw no face. Training drops such rows.
    pub fn not_a_face(&self) -> bool {
        match self.votes {
            Some(v) => v[NOT_A_FACE] > 0 && v.iter().all(|&x| x <= v[NOT_A_FACE]),
            None => false,
        }
    }
}

/// The FER+ votes of every FER2013 file, keyed by the path relative to the fer2013 root.
#[derive(Debug, Clone)]
pub struct FerPlusVotes {
    rows: Vec<FerPlusRow>,
    index: HashMap<String, usize>,
    sha256: String,
}

impl FerPlusVotes {
    /// Reads and checks `votes.csv`. A malformed row is an error naming the file and line.
    pub fn load(path: &Path) -> Result<FerPlusVotes, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            detail: format!(
                "cannot read the FER+ votes file ({e}); pass the votes.csv of shared/data/ferplus"
            ),
        })?;
        let sha256 = sha256_hex(&bytes);
        let text = std::str::from_utf8(&bytes).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            detail: format!("not UTF-8 text ({e}); expected the FER+ votes.csv"),
        })?;
        Self::parse(text, path, sha256)
    }

    fn parse(text: &str, path: &Path, sha256: String) -> Result<FerPlusVotes, DataError> {
        let bad = |line: usize, detail: String| DataError::Io {
            path: path.to_path_buf(),
            detail: format!("line {line}: {detail}"),
        };
        let mut lines = text.lines().enumerate();
        let header: Vec<&str> = match lines.next() {
            Some((_, h)) => h.trim_end_matches('\r').split(',').collect(),
            None => return Err(bad(1, "empty file; expected the FER+ votes.csv".into())),
        };
        if header != VOTES_HEADER {
            return Err(bad(
                1,
                format!(
                    "header is `{}`, expected `{}`",
                    header.join(","),
                    VOTES_HEADER.join(",")
                ),
            ));
        }
        let mut rows = Vec::new();
        let mut index = HashMap::new();
        for (i, line) in lines {
            let n = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != VOTES_HEADER.len() {
                return Err(bad(
                    n,
                    format!(
                        "{} fields, expected {} ({})",
                        f.len(),
                        VOTES_HEADER.len(),
                        VOTES_HEADER.join(",")
                    ),
                ));
            }
            let file = f[0].trim();
            if file.is_empty() {
                return Err(bad(n, "empty file column".into()));
            }
            let usage = Usage::parse(f[1].trim()).ok_or_else(|| {
                bad(
                    n,
                    format!(
                        "{file}: usage `{}` is not Training, PublicTest or PrivateTest",
                        f[1]
                    ),
                )
            })?;
            let cols = &f[4..];
            let votes = if cols.iter().all(|c| c.trim().is_empty()) {
                None
            } else {
                let mut v = [0u32; 10];
                for (k, c) in cols.iter().enumerate() {
                    v[k] = c.trim().parse().map_err(|_| {
                        bad(
                            n,
                            format!(
                                "{file}: column {} is `{c}`, expected a vote count (or all ten columns empty)",
                                VOTE_COLUMNS[k]
                            ),
                        )
                    })?;
                }
                Some(v)
            };
            if index.insert(file.to_string(), rows.len()).is_some() {
                return Err(bad(n, format!("{file} is listed twice")));
            }
            rows.push(FerPlusRow {
                file: file.to_string(),
                usage,
                votes,
            });
        }
        if rows.is_empty() {
            return Err(bad(2, "no rows after the header".into()));
        }
        Ok(FerPlusVotes {
            rows,
            index,
            sha256,
        })
    }

    /// The row of a file, by its path relative to the fer2013 root (`/`-separated).
    pub fn get(&self, rel: &str) -> Option<&FerPlusRow> {
        self.index.get(rel).map(|&i| &self.rows[i])
    }

    /// Every row, in the file's order.
    pub fn rows(&self) -> impl Iterator<Item = &FerPlusRow> {
        self.rows.iter()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// SHA-256 of the file's bytes.
    pub fn fingerprint(&self) -> String {
        self.sha256.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FerPlusVotes, DataError> {
        FerPlusVotes::parse(text, Path::new("votes.csv"), String::new())
    }

    const HEAD: &str = "file,usage,ferplus_image,match_rmse,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";

    #[test]
    fn reorders_votes_and_finds_the_majority() {
        let v = parse(&format!(
            "{HEAD}train/a.jpg,Training,fer1.png,1.0,1,6,0,0,2,0,0,0,1,0\n\
             train/b.jpg,Training,fer2.png,1.0,4,4,0,0,2,0,0,0,0,0\n\
             train/c.jpg,Training,fer3.png,1.0,1,0,0,0,0,0,0,6,3,0\n\
             train/d.jpg,Training,,,,,,,,,,,,\n\
             train/e.jpg,Training,fer4.png,1.0,1,0,0,0,0,0,0,0,0,6\n\
             train/f.jpg,Training,fer5.png,1.0,0,0,0,0,0,0,0,5,5,0\n"
        ))
        .unwrap();
        let a = v.get("train/a.jpg").unwrap();
        // canonical: angry, disgust, fear, happy, neutral, sad, surprise
        assert_eq!(a.seven_votes(), Some([2, 0, 0, 6, 1, 0, 0]));
        assert_eq!(a.majority(), Some(3));
        let d = a.distribution().unwrap();
        assert!((d[3] - 6.0 / 9.0).abs() < 1e-6 && (d.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(v.get("train/b.jpg").unwrap().majority(), None, "tie");
        assert_eq!(v.get("train/c.jpg").unwrap().majority(), None, "contempt");
        let d = v.get("train/d.jpg").unwrap();
        assert_eq!(
            (d.votes, d.majority(), d.distribution()),
            (None, None, None)
        );
        assert!(v.get("train/e.jpg").unwrap().not_a_face());
        assert!(!a.not_a_face());
        assert_eq!(v.get("train/f.jpg").unwrap().distribution(), None);
        assert_eq!(v.rows().count(), 6);
    }

    #[test]
    fn bad_rows_name_the_line() {
        let e = parse(&format!(
            "{HEAD}train/a.jpg,Training,f,1,1,0,0,0,0,0,0,0,0,0\ntrain/b.jpg,Bogus,f,1,1,0,0,0,0,0,0,0,0,0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("train/b.jpg"), "{e}");
        let e = parse(&format!(
            "{HEAD}train/a.jpg,Training,f,1,x,0,0,0,0,0,0,0,0,0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("neutral"), "{e}");
        let e = parse("a,b\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("header"), "{e}");
        let e = parse(&format!(
            "{HEAD}train/a.jpg,Training,f,1,1,0,0,0,0,0,0,0,0,0\ntrain/a.jpg,Training,f,1,1,0,0,0,0,0,0,0,0,0\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("twice"), "{e}");
    }
}
