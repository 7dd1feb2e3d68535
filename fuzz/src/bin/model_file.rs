//! AFL entry point of the `model_file` fuzz target (see fuzz/src/model_targets.rs).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        emolens_fuzz::model_targets::model_file(data);
    });
}
