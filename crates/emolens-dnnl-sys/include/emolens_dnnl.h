/*
 * emolens_dnnl.h: the C interface of emolens' oneDNN shim (csrc/common.c, csrc/layers.c,
 * csrc/plan.c), the one place its functions, handles and the post-op struct are declared. The
 * Rust bindings (src/lib.rs) are generated from this file by bindgen at build time, so the two
 * sides cannot drift apart.
 *
 * oneDNN's 2.x C API passes large descriptor structs by value; keeping them on the C side
 * means callers only see opaque handles and plain pointers, and this header does not include
 * oneDNN's. Activations are channels-last (NHWC); weights are in burn's layouts (OIHW for
 * convolutions, [in, out] for dense layers). Every function returning int returns a
 * dnnl_status_t: 0 is success, 2 (dnnl_invalid_arguments) a call that does not fit the
 * handle's state, 1 (dnnl_out_of_memory) a failed allocation, others oneDNN's own.
 */
#ifndef EMOLENS_DNNL_H
#define EMOLENS_DNNL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* The library and the CPU.                                                                   */

/** Creates the process-wide CPU engine; idempotent and thread-safe. Call before anything else. */
int emo_dnnl_init(void);
/** Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it. */
int emo_cpu_has_bf16(void);
/** Whether the CPU has 8-bit dot products (AVX512-VNNI, or AVX-VNNI on AVX2 cores). */
int emo_cpu_has_vnni(void);
/** Whether oneDNN has vectorised int8 kernels here at all (AVX2 or later). */
int emo_cpu_has_int8(void);
/** The name of the oneDNN ISA in effect (after any ONEDNN_MAX_CPU_ISA cap); a static string. */
const char *emo_cpu_isa_name(void);
/** The calling thread's OpenMP thread count (what a primitive made now would use). */
int emo_get_threads(void);
/** Sets the calling thread's OpenMP thread count. */
void emo_set_threads(int n);

/* ------------------------------------------------------------------------------------------ */
/* Layers for training and layer-by-layer inference (csrc/layers.c). Each handle owns its
 * primitives; a primitive must not run on two threads at once (the library-managed
 * scratchpad), so callers serialise the calls on one handle. */

/** A convolution or inner-product (dense) layer. */
typedef struct emo_layer emo_layer;
/** A batch normalisation over the channels of an NHWC tensor. */
typedef struct emo_bn emo_bn;
/** A pooling window (max, or average excluding padding) over NHWC. */
typedef struct emo_pool emo_pool;

/**
 * Convolution over NHWC. `dims`: n, ic, ih, iw, oc, oh, ow, kh, kw, groups; `stride` and the
 * pads as (h, w). With groups > 1 the weights are (oc, ic / groups, kh, kw) as burn stores
 * them. `training` also builds the backward primitives.
 */
int emo_conv_create(emo_layer **out, const int64_t *dims, const int64_t *stride,
                    const int64_t *pad_l, const int64_t *pad_r, int has_bias, int training);
/**
 * Inner product: y(n, oc) = x(n, ic) . w(ic, oc) + b, weights in burn's (in, out) layout,
 * taken as they are (no reorder per call).
 */
int emo_dense_create(emo_layer **out, int64_t n, int64_t ic, int64_t oc, int has_bias,
                     int training);
/** Destroys a layer; NULL is ignored. */
void emo_layer_destroy(emo_layer *c);
/** The forward pass; `bias` is read only when the layer has one. */
int emo_layer_forward(const emo_layer *c, const float *src, const float *w, const float *bias,
                      float *dst);
/** The data gradient (needs a layer made for training). */
int emo_layer_backward_data(const emo_layer *c, const float *diff_dst, const float *w,
                            float *diff_src);
/**
 * The weight gradient, in the caller's weight layout, and the bias gradient (`diff_bias` may
 * be NULL when there is no bias). Needs a layer made for training.
 */
int emo_layer_backward_weights(const emo_layer *c, const float *src, const float *diff_dst,
                               float *diff_w, float *diff_bias);
/** The name of the kernel oneDNN picked for the forward pass, owned by the layer. */
const char *emo_layer_impl(const emo_layer *c);

/** With `relu`, a ReLU is fused after the normalisation (training keeps a bit mask). */
int emo_bn_create(emo_bn **out, int64_t n, int64_t c, int64_t h, int64_t w, float eps,
                  int relu, int training);
/** Destroys a batch norm; NULL is ignored. */
void emo_bn_destroy(emo_bn *b);
/** The bytes of the workspace a training forward pass writes (0 without a fused ReLU). */
size_t emo_bn_workspace_bytes(const emo_bn *b);
/** Normalises with batch statistics: writes `dst`, the batch mean and biased variance. */
int emo_bn_forward_training(const emo_bn *b, const float *src, const float *scale,
                            const float *shift, float *dst, float *mean, float *var, void *ws);
/** Normalises with given statistics (the running ones, at inference). */
int emo_bn_forward_inference(const emo_bn *b, const float *src, const float *scale,
                             const float *shift, const float *mean, const float *var,
                             float *dst);
/** The gradients of the input, scale and shift (oneDNN 2.x checks the unused shift is passed). */
int emo_bn_backward(const emo_bn *b, const float *src, const float *mean, const float *var,
                    const float *diff_dst, const float *scale, const float *shift,
                    const void *ws, float *diff_src, float *diff_scale, float *diff_shift);

/** `dims`: n, c, ih, iw, oh, ow; kernel, stride and pads as (h, w). */
int emo_pool_create(emo_pool **out, const int64_t *dims, const int64_t *kernel,
                    const int64_t *stride, const int64_t *pad_l, const int64_t *pad_r, int max,
                    int training);
/** Destroys a pooling layer; NULL is ignored. */
void emo_pool_destroy(emo_pool *p);
/** The bytes of the workspace a training forward pass writes (max pooling's argmax). */
size_t emo_pool_workspace_bytes(const emo_pool *p);
/** `ws` (emo_pool_workspace_bytes) is written in training for max pooling; NULL otherwise. */
int emo_pool_forward(const emo_pool *p, const float *src, float *dst, void *ws, int training);
/** The data gradient, from the workspace of the training forward pass. */
int emo_pool_backward(const emo_pool *p, const float *diff_dst, const void *ws,
                      float *diff_src);

/* ------------------------------------------------------------------------------------------ */
/* Inference plans (csrc/plan.c): a whole frozen network for one batch size, built step by step
 * (emo_plan_create, then emo_plan_conv / dense / pool / flatten / quantize / dequantize), then
 * finalized once (emo_plan_finalize) and run any number of times. A plan is not safe to use on
 * two threads at once (its buffers and the library-managed scratchpads). */

/** A compiled inference plan. */
typedef struct emo_plan emo_plan;

/**
 * The kinds of a layer's post-ops, applied in order after the layer's sum. EMO_POST_AFFINE is
 * a per-channel scale then shift (a batch norm after an activation); the others are
 * activations.
 */
typedef enum emo_post_kind {
    EMO_POST_RELU = 1,
    EMO_POST_AFFINE = 2,
    /** Leaky ReLU with slope 0.2, as burn's. */
    EMO_POST_LEAKY_RELU = 3,
    EMO_POST_ELU = 4,
    /** GELU, the exact (erf) form. */
    EMO_POST_GELU = 5,
    EMO_POST_SILU = 6,
    EMO_POST_SIGMOID = 7,
    EMO_POST_TANH = 8,
    EMO_POST_RELU6 = 9
} emo_post_kind;

/**
 * A layer's post-ops: `n` kinds, and the scales and shifts of the EMO_POST_AFFINE ones
 * concatenated in order (`oc` values each, the layer's output channels). The plan copies what
 * it keeps.
 */
typedef struct emo_post {
    int n;
    const emo_post_kind *kinds;
    const float *scale;
    const float *shift;
} emo_post;

/**
 * A plan for n images of c x h x w, channels-last f32. With `bf16`, activations and weights
 * are bfloat16 from the first step on (oneDNN accumulates in f32) and the output is converted
 * back to f32; this needs AVX512-BF16 (or AMX) to be fast.
 */
int emo_plan_create(emo_plan **out, int64_t n, int64_t c, int64_t h, int64_t w, int bf16);
/** Destroys a plan, built or not; NULL is ignored. */
void emo_plan_destroy(emo_plan *p);
/**
 * A convolution on the current image. Weights OIHW (groups == 1) or (oc, ic / g, kh, kw);
 * `bias` may be NULL. On 8-bit activations the weights are quantized per output channel and
 * the output is quantized again with `out_scale` (`out_signed`: s8, else u8); on
 * floating-point activations `out_scale` must be 0.
 */
int emo_plan_conv(emo_plan *p, int64_t oc, const int64_t *kernel, const int64_t *stride,
                  const int64_t *pad_l, const int64_t *pad_r, int64_t groups, const float *w,
                  const float *bias, const emo_post *post, float out_scale, int out_signed);
/**
 * From here on activations are 8-bit: u8 (`is_signed` 0, for values >= 0) or s8, each the
 * real value divided by `scale`, rounded and saturated.
 */
int emo_plan_quantize(emo_plan *p, float scale, int is_signed);
/** Back to floating-point activations (the plan's f32 or bf16). */
int emo_plan_dequantize(emo_plan *p);
/** A dense layer on the current vector; weights in burn's (in, out) layout. */
int emo_plan_dense(emo_plan *p, int64_t oc, const float *w, const float *bias,
                   const emo_post *post);
/**
 * Max or average (excluding padding) pooling on the current image. With `global` the window is
 * the whole image (kernel, stride and pads are ignored) and the result a vector.
 */
int emo_plan_pool(emo_plan *p, const int64_t *kernel, const int64_t *stride,
                  const int64_t *pad_l, const int64_t *pad_r, int max, int global);
/** Flattens the current image into a vector in channels-first order (c, h, w). */
int emo_plan_flatten(emo_plan *p);
/** Allocates the buffers and binds every step's memory; no steps may follow. */
int emo_plan_finalize(emo_plan *p);
/** A finalized plan's input buffer (n x h x w x c floats); NULL before emo_plan_finalize. */
float *emo_plan_input(emo_plan *p);
/**
 * The output (rows x cols floats, valid after a run) and its shape; the pointer is NULL before
 * emo_plan_finalize.
 */
const float *emo_plan_output(const emo_plan *p, int64_t *rows, int64_t *cols);
/** Runs a finalized plan on its input buffer. */
int emo_plan_run(emo_plan *p);
/**
 * A run that also widens (lo(i), hi(i)) to the range of every f32 value step i wrote, one pair
 * per plan step: the calibration of quantized plans. Only for f32 plans.
 */
int emo_plan_run_observe(emo_plan *p, float *lo, float *hi);
/** The number of oneDNN steps so far (a network layer adds none, one or two). */
int emo_plan_steps(const emo_plan *p);
/** The name of the kernel oneDNN picked for step `i`, owned by the plan ("?" out of range). */
const char *emo_plan_step_impl(const emo_plan *p, int i);

#ifdef __cplusplus
}
#endif

#endif /* EMOLENS_DNNL_H */
