//! Binding a dataset's class folders to a model's output classes, by name.

use crate::error::EvalError;
use emolens_core::Emotion;

/// Parses `--class-map a=b,c=d` (dataset class = model class) into pairs.
pub fn parse_class_map(text: &str) -> Result<Vec<(String, String)>, EvalError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (a, b) = item.split_once('=').ok_or_else(|| {
            EvalError::Input(format!(
                "class map entry '{item}' is not DATASET_CLASS=MODEL_CLASS (e.g. contempt=neutral)"
            ))
        })?;
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() || b.is_empty() {
            return Err(EvalError::Input(format!(
                "class map entry '{item}' has an empty side; write DATASET_CLASS=MODEL_CLASS"
            )));
        }
        out.push((a.to_string(), b.to_string()));
    }
    Ok(out)
}

fn same_class(a: &str, b: &str) -> bool {
    if a.trim().eq_ignore_ascii_case(b.trim()) {
        return true;
    }
    matches!((Emotion::from_label(a), Emotion::from_label(b)), (Some(x), Some(y)) if x == y)
}

/// For each dataset class, the index of the model class it is scored as: an explicit map entry
/// first, else the same emotion by name (synonyms included). A dataset class with no model
/// class is an error naming it, the model's classes and the flag to use.
pub fn map_classes(
    dataset_classes: &[String],
    model_classes: &[String],
    explicit: &[(String, String)],
) -> Result<Vec<usize>, EvalError> {
    dataset_classes
        .iter()
        .map(|d| {
            if let Some((_, target)) = explicit.iter().find(|(a, _)| a.eq_ignore_ascii_case(d)) {
                return model_classes
                    .iter()
                    .position(|m| same_class(m, target))
                    .ok_or_else(|| {
                        EvalError::Input(format!(
                            "--class-map sends dataset class '{d}' to '{target}', which the model does not have (model classes: {})",
                            model_classes.join(", ")
                        ))
                    });
            }
            model_classes.iter().position(|m| same_class(m, d)).ok_or_else(|| {
                EvalError::Input(format!(
                    "dataset class '{d}' matches none of the model's classes ({}); map it with --class-map {d}=MODEL_CLASS or remove that folder",
                    model_classes.join(", ")
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn maps_by_emotion_name_and_synonym() {
        // A model whose outputs are in the original API's order and synonyms.
        let model = s(&[
            "anger",
            "disgust",
            "fear",
            "happiness",
            "sadness",
            "surprise",
            "neutral",
        ]);
        let data = s(&[
            "angry", "disgust", "fear", "happy", "neutral", "sad", "surprise",
        ]);
        assert_eq!(
            map_classes(&data, &model, &[]).unwrap(),
            vec![0, 1, 2, 3, 6, 4, 5]
        );
    }

    #[test]
    fn unknown_class_needs_a_map() {
        let model = s(&["angry", "happy", "neutral"]);
        let data = s(&["happy", "contempt"]);
        let err = map_classes(&data, &model, &[]).unwrap_err().to_string();
        assert!(
            err.contains("'contempt'") && err.contains("--class-map"),
            "{err}"
        );
        let map = parse_class_map("contempt=neutral").unwrap();
        assert_eq!(map_classes(&data, &model, &map).unwrap(), vec![1, 2]);
        let bad = parse_class_map("contempt=joyful").unwrap();
        assert!(map_classes(&data, &model, &bad).is_err());
        assert!(parse_class_map("contempt").is_err());
        assert!(parse_class_map("=x").is_err());
    }
}
