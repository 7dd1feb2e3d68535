//! The metrics against scikit-learn on the same predictions (fixture made by
//! `tools/sklearn_fixture/make_fixture.py`).

use emolens_eval::metrics::{evaluate, top_k_accuracy};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn close(what: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= TOL,
        "{what}: emolens {ours} vs scikit-learn {theirs}"
    );
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number in fixture")
}

#[test]
fn metrics_match_scikit_learn() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sklearn_metrics.json"
    ))
    .expect("fixture present");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let classes: Vec<String> = serde_json::from_value(doc["classes"].clone()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let labels: Vec<usize> = serde_json::from_value(case["labels"].clone()).unwrap();
        let probs: Vec<Vec<f32>> = case["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|v| f(v) as f32).collect())
            .collect();
        let e = &case["expected"];
        let r = evaluate(&labels, &probs, &classes).unwrap();

        close(&format!("{name} accuracy"), r.accuracy, f(&e["accuracy"]));
        for (c, m) in r.per_class.iter().enumerate() {
            close(
                &format!("{name} precision[{c}]"),
                m.precision,
                f(&e["precision"][c]),
            );
            close(&format!("{name} recall[{c}]"), m.recall, f(&e["recall"][c]));
            close(&format!("{name} f1[{c}]"), m.f1, f(&e["f1"][c]));
            assert_eq!(
                m.support,
                e["support"][c].as_u64().unwrap(),
                "{name} support[{c}]"
            );
            // The classification_report dict tells the same story.
            let cr = &e["classification_report"][&classes[c]];
            close(&format!("{name} report f1[{c}]"), m.f1, f(&cr["f1-score"]));
        }
        for (avg, ours) in [
            ("macro", &r.macro_avg),
            ("weighted", &r.weighted_avg),
            ("micro", &r.micro_avg),
        ] {
            let t = &e["averages"][avg];
            close(
                &format!("{name} {avg} precision"),
                ours.precision,
                f(&t["precision"]),
            );
            close(
                &format!("{name} {avg} recall"),
                ours.recall,
                f(&t["recall"]),
            );
            close(&format!("{name} {avg} f1"), ours.f1, f(&t["f1"]));
        }
        let cm: Vec<Vec<u64>> = serde_json::from_value(e["confusion"].clone()).unwrap();
        assert_eq!(r.confusion, cm, "{name} confusion matrix");
        for (c, curve) in r.roc.per_class.iter().enumerate() {
            match (curve.auc, e["per_class_auc"][c].as_f64()) {
                (Some(a), Some(b)) => close(&format!("{name} auc[{c}]"), a, b),
                (None, None) => {}
                (a, b) => panic!("{name} auc[{c}]: emolens {a:?} vs scikit-learn {b:?}"),
            }
        }
        close(
            &format!("{name} macro auc"),
            r.roc.macro_auc.unwrap(),
            f(&e["macro_auc"]),
        );
        close(
            &format!("{name} micro auc"),
            r.roc.micro.auc.unwrap(),
            f(&e["micro_auc"]),
        );
        close(
            &format!("{name} top-2"),
            r.top2_accuracy,
            f(&e["top_k_accuracy"]["2"]),
        );
        for k in [1usize, 2, 3] {
            close(
                &format!("{name} top-{k}"),
                top_k_accuracy(&labels, &probs, k),
                f(&e["top_k_accuracy"][k.to_string()]),
            );
        }
    }
    // The first case has an empty class: zero support, zero scores, undefined AUC.
    let first = &cases[0];
    assert_eq!(first["expected"]["support"][1].as_u64(), Some(0));
}
