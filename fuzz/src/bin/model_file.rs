//! AFL entry point of the `model_file` fuzz target (see fuzz/src/targets.rs).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        emolens_fuzz::targets::model_file(data);
    });
}
