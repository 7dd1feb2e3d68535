//! Which bundled model runs: the accurate one on every CPU unless `EMOLENS_BUNDLED=fast` asks
//! for the fast one (never picked silently: two models' numbers are not comparable). Checked
//! through `emolens model info` (the name of the model that would run), uncapped and with
//! oneDNN capped at AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`, as an AVX2-only CPU runs it).

use std::process::Command;

fn model_name(envs: &[(&str, &str)]) -> Result<String, String> {
    let mut c = Command::new(env!("CARGO_BIN_EXE_emolens"));
    c.env("EMOLENS_LOG", "warn").args(["model", "info"]);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(v["name"].as_str().unwrap().to_string())
}

fn name_of(bytes: &[u8]) -> String {
    emolens_model::ModelFile::decode(bytes, "bundled")
        .unwrap()
        .meta
        .name
}

#[test]
fn the_accurate_model_runs_on_every_cpu_and_the_fast_one_when_asked() {
    let Some(accurate) = emolens_model::BUNDLED_MODEL.map(name_of) else {
        println!("skipped: this build has no bundled model (models/default.emolens)");
        return;
    };
    for cap in [None, Some("AVX2")] {
        let mut env = vec![];
        if let Some(c) = cap {
            env.push(("ONEDNN_MAX_CPU_ISA", c));
        }
        let with = |choice: &'static str| {
            let mut e = env.clone();
            e.push(("EMOLENS_BUNDLED", choice));
            e
        };
        assert_eq!(model_name(&env).unwrap(), accurate, "default, cap {cap:?}");
        assert_eq!(model_name(&with("accurate")).unwrap(), accurate, "{cap:?}");
        match emolens_model::BUNDLED_FAST_MODEL.map(name_of) {
            Some(fast) => {
                assert_ne!(
                    accurate, fast,
                    "the two bundled models carry different names"
                );
                assert_eq!(model_name(&with("fast")).unwrap(), fast, "{cap:?}");
            }
            None => {
                println!("this build has no bundled fast model (models/fast.emolens): checking the refusal");
                let e = model_name(&with("fast")).unwrap_err();
                assert!(e.contains("fast.emolens"), "{e}");
            }
        }
    }
    let e = model_name(&[("EMOLENS_BUNDLED", "quick")]).unwrap_err();
    assert!(e.contains("quick"), "{e}");
}
