//! AFL entry point of the `request` fuzz target (see fuzz/src/targets.rs).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        emolens_fuzz::targets::request(data);
    });
}
