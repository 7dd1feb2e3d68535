//! The seven basic emotions and the folder-name synonyms that map onto them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the seven FER emotions, in the canonical (alphabetical folder) order that FER2013's
/// image-folder layout sorts to. A model's own output order lives in its file, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    Angry,
    Disgust,
    Fear,
    Happy,
    Neutral,
    Sad,
    Surprise,
}

impl Emotion {
    pub const ALL: [Emotion; 7] = [
        Emotion::Angry,
        Emotion::Disgust,
        Emotion::Fear,
        Emotion::Happy,
        Emotion::Neutral,
        Emotion::Sad,
        Emotion::Surprise,
    ];

    /// The canonical lower-case name, as used in folder names and model files.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Angry => "angry",
            Emotion::Disgust => "disgust",
            Emotion::Fear => "fear",
            Emotion::Happy => "happy",
            Emotion::Neutral => "neutral",
            Emotion::Sad => "sad",
            Emotion::Surprise => "surprise",
        }
    }

    /// Maps a class-folder or label name onto an emotion, accepting the common synonyms of the
    /// public datasets (MMAFEDB, FER2013, AffectNet-style names). Case and surrounding
    /// whitespace are ignored; unknown names (e.g. `contempt`) give `None`.
    pub fn from_label(label: &str) -> Option<Emotion> {
        let l = label.trim().to_ascii_lowercase();
        Some(match l.as_str() {
            "angry" | "anger" | "mad" => Emotion::Angry,
            "disgust" | "disgusted" | "disgusting" => Emotion::Disgust,
            "fear" | "fearful" | "scared" | "afraid" => Emotion::Fear,
            "happy" | "happiness" | "joy" | "happy_face" => Emotion::Happy,
            "neutral" | "calm" => Emotion::Neutral,
            "sad" | "sadness" | "unhappy" => Emotion::Sad,
            "surprise" | "surprised" | "suprise" => Emotion::Surprise,
            _ => return None,
        })
    }

    /// Sign of the emotion on the valence axis used by ad reports: +1 positive, -1 negative,
    /// 0 neutral or ambiguous (surprise can be either).
    pub fn valence(self) -> i8 {
        match self {
            Emotion::Happy => 1,
            Emotion::Angry | Emotion::Disgust | Emotion::Fear | Emotion::Sad => -1,
            Emotion::Neutral | Emotion::Surprise => 0,
        }
    }
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_map_to_the_seven() {
        assert_eq!(Emotion::from_label("Anger"), Some(Emotion::Angry));
        assert_eq!(Emotion::from_label("happiness"), Some(Emotion::Happy));
        assert_eq!(Emotion::from_label(" SADNESS "), Some(Emotion::Sad));
        assert_eq!(Emotion::from_label("fearful"), Some(Emotion::Fear));
        assert_eq!(Emotion::from_label("disgusted"), Some(Emotion::Disgust));
        assert_eq!(Emotion::from_label("surprised"), Some(Emotion::Surprise));
        assert_eq!(Emotion::from_label("contempt"), None);
        for e in Emotion::ALL {
            assert_eq!(Emotion::from_label(e.name()), Some(e));
        }
    }

    #[test]
    fn canonical_order_is_sorted_folder_order() {
        let mut names: Vec<_> = Emotion::ALL.iter().map(|e| e.name()).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort();
            s
        };
        assert_eq!(names, sorted);
        names.dedup();
        assert_eq!(names.len(), 7);
    }
}
