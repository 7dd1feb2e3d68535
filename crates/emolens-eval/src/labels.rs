//! Where `emolens eval` takes its true labels from: each file's class folder (the default), or
//! the FER+ majority vote for FER2013's files (`--labels ferplus:votes.csv`). For FER+ this picks
//! the rows of one usage (PrivateTest = FER+ test, PublicTest = FER+ validation, Training)
//! whose majority is one of the seven emotions, labels each file by that majority, and records
//! which rows were left out and why. The votes file itself is read by `emolens_data::ferplus`.

use crate::error::EvalError;
use crate::report::{LabelSource, LeftOut};
use emolens_core::Emotion;
use emolens_data::ferplus::{FerPlusRow, FerPlusVotes, Usage, VOTE_COLUMNS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The labels an evaluation scores against.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// The name of each file's class folder.
    Folders,
    /// The FER+ majority vote from this votes file (`votes.csv`).
    FerPlus(PathBuf),
}

impl Labels {
    /// Parses `--labels`: `folders`, or `ferplus:PATH`.
    pub fn parse(text: &str) -> Result<Labels, EvalError> {
        let t = text.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("folders") || t.eq_ignore_ascii_case("folder") {
            return Ok(Labels::Folders);
        }
        if let Some(path) = t.strip_prefix("ferplus:") {
            if !path.trim().is_empty() {
                return Ok(Labels::FerPlus(PathBuf::from(path.trim())));
            }
        }
        Err(EvalError::Input(format!(
            "--labels '{t}': use `folders` (each file's class folder) or `ferplus:VOTES_CSV` \
             (FER+ majority votes, e.g. ferplus:../shared/data/ferplus/votes.csv)"
        )))
    }
}

/// The FER2013 usage a `--split` value names when the labels are FER+'s: FER+ itself uses
/// PrivateTest as its test set, PublicTest as its validation set and Training for training.
pub fn ferplus_usage(split: &str) -> Result<Usage, EvalError> {
    let key: String = split
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    match key.as_str() {
        "test" | "privatetest" | "private" => Ok(Usage::PrivateTest),
        "valid" | "validation" | "val" | "publictest" | "public" => Ok(Usage::PublicTest),
        "train" | "training" => Ok(Usage::Training),
        _ => Err(EvalError::Input(format!(
            "--split '{split}' with FER+ labels: use test (or private-test: FER+ test), valid \
             (or public-test: FER+ validation) or train"
        ))),
    }
}

/// Why a row has no label among the seven, or `None` when it has one.
fn left_out_reason(row: &FerPlusRow) -> Option<String> {
    if row.majority().is_some() {
        return None;
    }
    let Some(votes) = row.votes else {
        return Some("no FER+ votes (FER+ dropped the row: not a face, or no image)".into());
    };
    let top = votes.iter().copied().max().unwrap_or(0);
    let at_top: Vec<usize> = (0..votes.len()).filter(|&i| votes[i] == top).collect();
    if top == 0 || at_top.len() > 1 {
        return Some("no unique plurality (a tie for the most votes)".into());
    }
    let column = match VOTE_COLUMNS.get(at_top[0]).copied() {
        Some("NF") => "NF (not a face)",
        Some(c) => c,
        None => "another column",
    };
    Some(format!(
        "plurality is {column}, not one of the seven emotions"
    ))
}

/// The files of one FER+ usage that have a majority among the seven emotions.
#[derive(Debug, Clone)]
pub struct FerPlusSelection {
    /// Each file (under the data root) with the canonical name of its majority emotion,
    /// sorted by path.
    pub files: Vec<(PathBuf, String)>,
    /// The label source for the report: candidates, and the rows left out by reason.
    pub source: LabelSource,
}

/// Picks the rows of `usage` from `votes`, resolves their files under `root` (the FER2013
/// folder `votes.csv`'s paths are relative to) and labels each by its FER+ majority.
pub fn select_ferplus(
    votes: &FerPlusVotes,
    votes_path: &Path,
    root: &Path,
    usage: Usage,
) -> Result<FerPlusSelection, EvalError> {
    let mut files = Vec::new();
    let mut left: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut candidates = 0usize;
    for row in votes.rows().filter(|r| r.usage == usage) {
        candidates += 1;
        match (row.majority(), left_out_reason(row)) {
            (Some(m), _) => {
                let emotion = Emotion::ALL.get(m).ok_or_else(|| {
                    EvalError::Input(format!(
                        "{}: row {}: FER+ majority index {m} is not one of the seven emotions",
                        votes_path.display(),
                        row.file
                    ))
                })?;
                files.push((root.join(&row.file), emotion.name().to_string()));
            }
            (None, reason) => left
                .entry(reason.unwrap_or_else(|| "no majority".into()))
                .or_default()
                .push(row.file.clone()),
        }
    }
    if files.is_empty() {
        return Err(EvalError::Input(format!(
            "{}: no {} row has a FER+ majority among the seven emotions ({candidates} rows of that \
             usage); check --split and that the votes file is FER+'s for this dataset",
            votes_path.display(),
            usage.name()
        )));
    }
    if !files.iter().any(|(p, _)| p.is_file()) {
        return Err(EvalError::Input(format!(
            "{}: none of the {} files that {} names for {} is there (e.g. {}); --data must be the \
             FER2013 folder its paths are relative to (the one holding train/ and test/)",
            root.display(),
            files.len(),
            votes_path.display(),
            usage.name(),
            files[0].0.display()
        )));
    }
    files.sort();
    let left_out = left
        .into_iter()
        .map(|(reason, mut f)| {
            f.sort();
            LeftOut {
                reason,
                count: f.len(),
                files: f,
            }
        })
        .collect();
    Ok(FerPlusSelection {
        files,
        source: LabelSource {
            kind: "ferplus".into(),
            description: format!(
                "FER+ majority vote (unique plurality of the ten vote columns, kept when it is \
                 one of the seven emotions) from `{}`, {} rows (FER+ {})",
                votes_path.display(),
                usage.name(),
                match usage {
                    Usage::PrivateTest => "test",
                    Usage::PublicTest => "validation",
                    Usage::Training => "training",
                }
            ),
            file: Some(votes_path.display().to_string()),
            fingerprint: Some(votes.fingerprint()),
            candidates,
            left_out,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_label_sources_and_ferplus_splits() {
        assert_eq!(Labels::parse("folders").unwrap(), Labels::Folders);
        assert_eq!(Labels::parse("").unwrap(), Labels::Folders);
        assert_eq!(
            Labels::parse("ferplus:/x/votes.csv").unwrap(),
            Labels::FerPlus("/x/votes.csv".into())
        );
        assert!(Labels::parse("ferplus:").is_err());
        assert!(Labels::parse("fer+").is_err());
        assert_eq!(ferplus_usage("test").unwrap().name(), "PrivateTest");
        assert_eq!(ferplus_usage("private-test").unwrap().name(), "PrivateTest");
        assert_eq!(ferplus_usage("valid").unwrap().name(), "PublicTest");
        assert_eq!(ferplus_usage("PublicTest").unwrap().name(), "PublicTest");
        assert_eq!(ferplus_usage("train").unwrap().name(), "Training");
        assert!(ferplus_usage("dev-set").is_err());
    }
}
