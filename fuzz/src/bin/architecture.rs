//! AFL entry point of the `architecture` fuzz target (see fuzz/src/model_targets.rs).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        emolens_fuzz::model_targets::architecture(data);
    });
}
