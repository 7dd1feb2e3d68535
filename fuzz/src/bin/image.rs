//! AFL entry point of the `image` fuzz target (see fuzz/src/targets.rs).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        emolens_fuzz::targets::image(data);
    });
}
