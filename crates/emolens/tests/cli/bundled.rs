//! Which bundled model runs: `EMOLENS_BUNDLED=auto` (the default) picks the accurate model where
//! the CPU's oneDNN kernels have AVX-512 or VNNI and the fast model elsewhere; `accurate` and
//! `fast` pin one. Checked through `emolens model info` (the name of the model that would run)
//! with oneDNN capped at AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`, as an AVX2-only CPU runs it) and
//! uncapped.

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
fn the_bundled_model_is_chosen_by_cpu_and_can_be_pinned() {
    let Some(accurate) = emolens_model::BUNDLED_MODEL.map(name_of) else {
        println!("skipped: this build has no bundled model (models/default.emolens)");
        return;
    };
    let Some(fast) = emolens_model::BUNDLED_FAST_MODEL.map(name_of) else {
        // Without a fast model every choice but `fast` is the accurate one.
        println!(
            "this build has no bundled fast model (models/fast.emolens): checking the refusal"
        );
        assert_eq!(model_name(&[]).unwrap(), accurate);
        let e = model_name(&[("EMOLENS_BUNDLED", "fast")]).unwrap_err();
        assert!(e.contains("fast.emolens"), "{e}");
        return;
    };
    assert_ne!(
        accurate, fast,
        "the two bundled models carry different names"
    );
    // Pinned: the same model on every CPU.
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
        assert_eq!(model_name(&with("accurate")).unwrap(), accurate, "{cap:?}");
        assert_eq!(model_name(&with("fast")).unwrap(), fast, "{cap:?}");
    }
    // Auto: the fast model on AVX2 (capped here; without oneDNN the CPU kernels are burn's, where
    // the fast model is the right choice too)...
    assert_eq!(model_name(&[("ONEDNN_MAX_CPU_ISA", "AVX2")]).unwrap(), fast);
    // ...and on this CPU uncapped, by what its kernels have.
    let here = if emolens_model::cpu_runs_accurate_fast() {
        &accurate
    } else {
        &fast
    };
    println!(
        "this CPU's oneDNN ISA: {}; auto runs {here}",
        emolens_model::onednn::cpu_isa()
    );
    assert_eq!(&model_name(&[]).unwrap(), here);
    let e = model_name(&[("EMOLENS_BUNDLED", "quick")]).unwrap_err();
    assert!(e.contains("auto, accurate or fast"), "{e}");
}
