//! Declarations of the C shim in `csrc/emolens_dnnl.c` (built and linked by `build.rs` when
//! oneDNN's headers are present). Handles are opaque; every call returns a `dnnl_status_t`.

use std::ffi::c_char;

/// A convolution or inner-product (dense) layer.
#[repr(C)]
pub struct EmoLayer {
    _private: [u8; 0],
}
#[repr(C)]
pub struct EmoBn {
    _private: [u8; 0],
}
#[repr(C)]
pub struct EmoPool {
    _private: [u8; 0],
}
/// A layer's post-ops (`emo_post` in the shim): `n` codes, and the scales and shifts of the
/// per-channel affine ones, concatenated.
#[repr(C)]
pub struct EmoPost {
    pub n: i32,
    pub kinds: *const i32,
    pub scale: *const f32,
    pub shift: *const f32,
}

/// A compiled inference plan (see `plan.rs`).
#[repr(C)]
pub struct EmoPlan {
    _private: [u8; 0],
}

extern "C" {
    pub fn emo_dnnl_init() -> i32;
    pub fn emo_cpu_has_bf16() -> i32;
    pub fn emo_cpu_has_vnni() -> i32;
    pub fn emo_cpu_has_int8() -> i32;
    pub fn emo_cpu_isa_name() -> *const c_char;
    pub fn emo_get_threads() -> i32;
    pub fn emo_set_threads(n: i32);

    pub fn emo_conv_create(
        out: *mut *mut EmoLayer,
        dims: *const i64,
        stride: *const i64,
        pad_l: *const i64,
        pad_r: *const i64,
        has_bias: i32,
        training: i32,
    ) -> i32;
    pub fn emo_dense_create(
        out: *mut *mut EmoLayer,
        n: i64,
        ic: i64,
        oc: i64,
        has_bias: i32,
        training: i32,
    ) -> i32;
    pub fn emo_layer_destroy(c: *mut EmoLayer);
    pub fn emo_layer_forward(
        c: *const EmoLayer,
        src: *const f32,
        w: *const f32,
        bias: *const f32,
        dst: *mut f32,
    ) -> i32;
    pub fn emo_layer_backward_data(
        c: *const EmoLayer,
        diff_dst: *const f32,
        w: *const f32,
        diff_src: *mut f32,
    ) -> i32;
    pub fn emo_layer_backward_weights(
        c: *const EmoLayer,
        src: *const f32,
        diff_dst: *const f32,
        diff_w: *mut f32,
        diff_bias: *mut f32,
    ) -> i32;
    pub fn emo_layer_impl(c: *const EmoLayer) -> *const c_char;

    pub fn emo_bn_create(
        out: *mut *mut EmoBn,
        n: i64,
        c: i64,
        h: i64,
        w: i64,
        eps: f32,
        relu: i32,
        training: i32,
    ) -> i32;
    pub fn emo_bn_destroy(b: *mut EmoBn);
    pub fn emo_bn_workspace_bytes(b: *const EmoBn) -> usize;
    pub fn emo_bn_forward_training(
        b: *const EmoBn,
        src: *const f32,
        scale: *const f32,
        shift: *const f32,
        dst: *mut f32,
        mean: *mut f32,
        var: *mut f32,
        ws: *mut u8,
    ) -> i32;
    pub fn emo_bn_forward_inference(
        b: *const EmoBn,
        src: *const f32,
        scale: *const f32,
        shift: *const f32,
        mean: *const f32,
        var: *const f32,
        dst: *mut f32,
    ) -> i32;
    #[allow(clippy::too_many_arguments)]
    pub fn emo_bn_backward(
        b: *const EmoBn,
        src: *const f32,
        mean: *const f32,
        var: *const f32,
        diff_dst: *const f32,
        scale: *const f32,
        shift: *const f32,
        ws: *const u8,
        diff_src: *mut f32,
        diff_scale: *mut f32,
        diff_shift: *mut f32,
    ) -> i32;

    pub fn emo_pool_create(
        out: *mut *mut EmoPool,
        dims: *const i64,
        kernel: *const i64,
        stride: *const i64,
        pad_l: *const i64,
        pad_r: *const i64,
        max: i32,
        training: i32,
    ) -> i32;
    pub fn emo_pool_destroy(p: *mut EmoPool);
    pub fn emo_pool_workspace_bytes(p: *const EmoPool) -> usize;
    pub fn emo_pool_forward(
        p: *const EmoPool,
        src: *const f32,
        dst: *mut f32,
        ws: *mut u8,
        training: i32,
    ) -> i32;
    pub fn emo_pool_backward(
        p: *const EmoPool,
        diff_dst: *const f32,
        ws: *const u8,
        diff_src: *mut f32,
    ) -> i32;

    pub fn emo_plan_create(
        out: *mut *mut EmoPlan,
        n: i64,
        c: i64,
        h: i64,
        w: i64,
        bf16: i32,
    ) -> i32;
    pub fn emo_plan_destroy(p: *mut EmoPlan);
    #[allow(clippy::too_many_arguments)]
    pub fn emo_plan_conv(
        p: *mut EmoPlan,
        oc: i64,
        kernel: *const i64,
        stride: *const i64,
        pad_l: *const i64,
        pad_r: *const i64,
        groups: i64,
        w: *const f32,
        bias: *const f32,
        post: *const EmoPost,
        out_scale: f32,
        out_signed: i32,
    ) -> i32;
    pub fn emo_plan_quantize(p: *mut EmoPlan, scale: f32, is_signed: i32) -> i32;
    pub fn emo_plan_dequantize(p: *mut EmoPlan) -> i32;
    pub fn emo_plan_dense(
        p: *mut EmoPlan,
        oc: i64,
        w: *const f32,
        bias: *const f32,
        post: *const EmoPost,
    ) -> i32;
    pub fn emo_plan_pool(
        p: *mut EmoPlan,
        kernel: *const i64,
        stride: *const i64,
        pad_l: *const i64,
        pad_r: *const i64,
        max: i32,
        global: i32,
    ) -> i32;
    pub fn emo_plan_flatten(p: *mut EmoPlan) -> i32;
    pub fn emo_plan_finalize(p: *mut EmoPlan) -> i32;
    pub fn emo_plan_input(p: *mut EmoPlan) -> *mut f32;
    pub fn emo_plan_output(p: *const EmoPlan, rows: *mut i64, cols: *mut i64) -> *const f32;
    pub fn emo_plan_run(p: *mut EmoPlan) -> i32;
    pub fn emo_plan_run_observe(p: *mut EmoPlan, lo: *mut f32, hi: *mut f32) -> i32;
    pub fn emo_plan_steps(p: *const EmoPlan) -> i32;
    pub fn emo_plan_step_impl(p: *const EmoPlan, i: i32) -> *const c_char;
}
