/*
 * plan.c: inference plans (emo_plan): a whole frozen network for one batch size, built step by
 * step, finalized once, then run as a plain loop of primitive executions. See emolens_dnnl.h.
 */
#include "internal.h"

/* Inference plans: a whole frozen network for one batch size, compiled once and then run as a
 * plain loop of primitive executions. Compared with running layer by layer:
 *   - weights are reordered into each kernel's preferred layout once, when the plan is built;
 *   - batch norms arrive folded into the layer before them, or as per-channel post-ops when a
 *     ReLU sits between (Keras-style conv -> ReLU -> BN), and ReLU itself is a post-op, so no
 *     pass over memory is spent on them;
 *   - activations live in two buffers that the steps take turns writing, allocated once, and
 *     every oneDNN memory object is made once, so a run allocates nothing.
 * A plan is not safe to run on two threads at once (buffers and library-managed scratchpads);
 * the Rust side holds each one under a lock. */

#define EMO_MAX_ARGS 12

typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src_md, dst_md;
    int nconst;
    int const_arg[EMO_MAX_ARGS];
    dnnl_memory_desc_t const_md[EMO_MAX_ARGS];
    void *const_buf[EMO_MAX_ARGS]; /* owned */
    int nexec;
    dnnl_exec_arg_t exec[EMO_MAX_ARGS + 2];
} emo_step;

struct emo_plan {
    int64_t n, c, h, w; /* the current output: NHWC image, or a vector (h = w = 1, vector = 1) */
    int vector;
    int nsteps, cap;
    emo_step *steps;
    void *input, *buf[2];
    size_t input_bytes;
    dnnl_stream_t stream;
    dnnl_data_type_t fdt; /* floating-point activations and weights: f32, or bf16 (f32 sums) */
    dnnl_data_type_t dt;  /* the current activations': fdt, or u8/s8 between quantized steps */
    float scale;          /* with u8/s8 activations: real value = scale * stored integer */
    int wmax;             /* quantized weights' largest magnitude: 127, or 63 without VNNI */
    int ready;
};

void emo_plan_destroy(emo_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->nsteps; i++) {
        emo_step *s = &p->steps[i];
        if (s->prim) dnnl_primitive_destroy(s->prim);
        for (int j = 0; j < s->nconst; j++) free(s->const_buf[j]);
        for (int j = 0; j < s->nexec; j++)
            if (s->exec[j].memory) dnnl_memory_destroy(s->exec[j].memory);
    }
    free(p->steps);
    free(p->input);
    free(p->buf[0]);
    free(p->buf[1]);
    if (p->stream) dnnl_stream_destroy(p->stream);
    free(p);
}

static emo_step *push_step(emo_plan *p);
static void pop_step(emo_plan *p);

/* A step that converts between layouts or data types; a non-zero `scale` multiplies every
 * value on the way (quantizing or dequantizing), with rounding to nearest and saturation when
 * the destination is an integer type. */
static dnnl_status_t reorder_step_scaled(emo_plan *p, const dnnl_memory_desc_t *from,
                                         const dnnl_memory_desc_t *to, float scale) {
    emo_step *s = push_step(p);
    if (!s) return dnnl_out_of_memory;
    s->src_md = *from;
    s->dst_md = *to;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && scale != 0.0f)
        st = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale);
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&pd, &s->src_md, emo_engine, &s->dst_md, emo_engine,
                                                attr);
    if (st == dnnl_success) st = dnnl_primitive_create(&s->prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) pop_step(p);
    return st;
}

static dnnl_status_t reorder_step(emo_plan *p, const dnnl_memory_desc_t *from,
                                  const dnnl_memory_desc_t *to) {
    return reorder_step_scaled(p, from, to, 0.0f);
}

static int quantized(const emo_plan *p) { return p->dt == dnnl_u8 || p->dt == dnnl_s8; }

/* The current activations' descriptor with another data type. */
static dnnl_status_t current_md(const emo_plan *p, dnnl_memory_desc_t *md, dnnl_data_type_t dt) {
    if (p->vector) {
        dnnl_dims_t d = {p->n, p->c};
        return dnnl_memory_desc_init_by_tag(md, 2, d, dt, dnnl_nc);
    }
    dnnl_dims_t d = {p->n, p->c, p->h, p->w};
    return dnnl_memory_desc_init_by_tag(md, 4, d, dt, dnnl_nhwc);
}

/* From here on activations are 8-bit: u8 (`is_signed` 0, for values >= 0) or s8, each the
 * real value divided by `scale`, rounded and saturated. */
int emo_plan_quantize(emo_plan *p, float scale, int is_signed) {
    if (quantized(p) || !(scale > 0.0f)) return dnnl_invalid_arguments;
    dnnl_data_type_t dt = is_signed ? dnnl_s8 : dnnl_u8;
    dnnl_memory_desc_t from, to;
    CHECK(current_md(p, &from, p->dt));
    CHECK(current_md(p, &to, dt));
    CHECK(reorder_step_scaled(p, &from, &to, 1.0f / scale));
    p->dt = dt;
    p->scale = scale;
    return dnnl_success;
}

/* Back to floating-point activations (the plan's f32 or bf16). */
int emo_plan_dequantize(emo_plan *p) {
    if (!quantized(p)) return dnnl_invalid_arguments;
    dnnl_memory_desc_t from, to;
    CHECK(current_md(p, &from, p->dt));
    CHECK(current_md(p, &to, p->fdt));
    CHECK(reorder_step_scaled(p, &from, &to, p->scale));
    p->dt = p->fdt;
    return dnnl_success;
}

/* Input: n images of c x h x w, channels-last f32. With `bf16`, activations and weights are
 * bfloat16 from the first step on (oneDNN accumulates in f32) and the output is converted back
 * to f32; this needs a CPU with AVX512-BF16 (or AMX) to be fast. */
int emo_plan_create(emo_plan **out, int64_t n, int64_t c, int64_t h, int64_t w, int bf16) {
    *out = NULL;
    emo_plan *p = calloc(1, sizeof(emo_plan));
    if (!p) return dnnl_out_of_memory;
    p->n = n;
    p->c = c;
    p->h = h;
    p->w = w;
    p->input_bytes = (size_t)(n * c * h * w) * sizeof(float);
    p->dt = p->fdt = bf16 ? dnnl_bf16 : dnnl_f32;
    p->wmax = emo_cpu_has_vnni() ? 127 : 63;
    dnnl_status_t s = dnnl_stream_create(&p->stream, emo_engine, dnnl_stream_default_flags);
    if (s == dnnl_success && bf16) {
        dnnl_memory_desc_t from, to;
        s = current_md(p, &from, dnnl_f32);
        if (s == dnnl_success) s = current_md(p, &to, dnnl_bf16);
        if (s == dnnl_success) s = reorder_step(p, &from, &to);
    }
    if (s != dnnl_success) {
        emo_plan_destroy(p);
        return s;
    }
    *out = p;
    return dnnl_success;
}

static void *aligned(size_t bytes) { return aligned_alloc(64, (bytes + 63) / 64 * 64); }

static emo_step *push_step(emo_plan *p) {
    if (p->ready) return NULL;
    if (p->nsteps == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        emo_step *grown = realloc(p->steps, (size_t)cap * sizeof(emo_step));
        if (!grown) return NULL;
        p->steps = grown;
        p->cap = cap;
    }
    emo_step *s = &p->steps[p->nsteps++];
    memset(s, 0, sizeof(*s));
    return s;
}

/* A constant argument (packed weights, bias, post-op operand); the step owns `buf`. */
static dnnl_status_t add_const(emo_step *s, int which, const dnnl_memory_desc_t *md, void *buf) {
    if (!buf) return dnnl_out_of_memory;
    if (s->nconst == EMO_MAX_ARGS) {
        free(buf);
        return dnnl_invalid_arguments;
    }
    s->const_arg[s->nconst] = which;
    s->const_md[s->nconst] = *md;
    s->const_buf[s->nconst] = buf;
    s->nconst++;
    return dnnl_success;
}

static void *copy_of(const float *src, size_t count) {
    void *b = aligned(count * sizeof(float));
    if (b) memcpy(b, src, count * sizeof(float));
    return b;
}

/* Post-ops, in order (see emo_post_kind): EMO_POST_AFFINE is a per-channel scale then shift
 * (`oc` values each, taken in turn from `scale` and `shift`: a batch norm after an
 * activation); any other is an activation. `image` picks the per-channel operand's shape. */
static dnnl_status_t post_ops(dnnl_primitive_attr_t attr, emo_step *s, const emo_post *post,
                              int64_t oc, int image, float out_mult) {
    int npost = post->n;
    const emo_post_kind *kinds = post->kinds;
    const float *scale = post->scale, *shift = post->shift;
    if (npost == 0 && out_mult == 0.0f) return dnnl_success;
    dnnl_post_ops_t po;
    CHECK(dnnl_post_ops_create(&po));
    dnnl_memory_desc_t md;
    dnnl_dims_t d4 = {1, oc, 1, 1}, d2 = {1, oc};
    dnnl_status_t st = image ? dnnl_memory_desc_init_by_tag(&md, 4, d4, dnnl_f32, dnnl_abcd)
                             : dnnl_memory_desc_init_by_tag(&md, 2, d2, dnnl_f32, dnnl_ab);
    int idx = 0, affine = 0;
    for (int i = 0; i < npost && st == dnnl_success; i++) {
        dnnl_alg_kind_t alg = dnnl_alg_kind_undef;
        float alpha = 0.0f, beta = 0.0f;
        switch (kinds[i]) {
        case EMO_POST_RELU: alg = dnnl_eltwise_relu; break;
        case EMO_POST_LEAKY_RELU: alg = dnnl_eltwise_relu; alpha = 0.2f; break;
        case EMO_POST_ELU: alg = dnnl_eltwise_elu; alpha = 1.0f; break;
        case EMO_POST_GELU: alg = dnnl_eltwise_gelu_erf; break;
        case EMO_POST_SILU: alg = dnnl_eltwise_swish; alpha = 1.0f; break;
        case EMO_POST_SIGMOID: alg = dnnl_eltwise_logistic; break;
        case EMO_POST_TANH: alg = dnnl_eltwise_tanh; break;
        case EMO_POST_RELU6: alg = dnnl_eltwise_clip_v2; alpha = 0.0f; beta = 6.0f; break;
        case EMO_POST_AFFINE: break;
        default: st = dnnl_invalid_arguments;
        }
        if (st != dnnl_success) break;
        if (kinds[i] != EMO_POST_AFFINE) {
            st = dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta);
            idx++;
            continue;
        }
        st = dnnl_post_ops_append_binary(po, dnnl_binary_mul, &md);
        if (st == dnnl_success)
            st = add_const(s, DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, &md,
                           copy_of(scale + affine * oc, (size_t)oc));
        idx++;
        if (st == dnnl_success) st = dnnl_post_ops_append_binary(po, dnnl_binary_add, &md);
        if (st == dnnl_success)
            st = add_const(s, DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, &md,
                           copy_of(shift + affine * oc, (size_t)oc));
        idx++;
        affine++;
    }
    /* A quantized output: the real result divided by the next activations' scale, last. */
    if (st == dnnl_success && out_mult != 0.0f)
        st = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, out_mult, 0.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_post_ops_destroy(po);
    return st;
}

/* Creates the step's primitive from `op` with the layer's post-ops, packs the user weights
 * (`w_user_md`, `w`) into the layout it chose and copies the bias. A quantized layer passes
 * its per-channel `oscales` (integer sums to real values) and `out_mult` (real values to the
 * output's integers); others pass NULL and 0. */
static dnnl_status_t finish_layer(emo_step *s, const_dnnl_op_desc_t op, const emo_post *post,
                                  int image, const dnnl_memory_desc_t *w_user_md, const void *w,
                                  const dnnl_memory_desc_t *b_md, const float *bias, int64_t oc,
                                  const float *oscales, float out_mult) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && oscales)
        st = dnnl_primitive_attr_set_output_scales(attr, oc, 1 << 1, oscales);
    if (st == dnnl_success) st = post_ops(attr, s, post, oc, image, out_mult);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, op, attr, emo_engine, NULL);
    if (st == dnnl_success) {
        const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        void *packed = aligned(dnnl_memory_desc_get_size(w_md));
        st = packed ? reorder(w_user_md, w, w_md, packed) : dnnl_out_of_memory;
        if (st == dnnl_success) st = add_const(s, DNNL_ARG_WEIGHTS, w_md, packed);
        else free(packed);
    }
    if (st == dnnl_success && bias) st = add_const(s, DNNL_ARG_BIAS, b_md, copy_of(bias, (size_t)oc));
    if (st == dnnl_success) st = dnnl_primitive_create(&s->prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

static void pop_step(emo_plan *p) {
    emo_step *s = &p->steps[--p->nsteps];
    if (s->prim) dnnl_primitive_destroy(s->prim);
    for (int j = 0; j < s->nconst; j++) free(s->const_buf[j]);
}

/* Per-output-channel symmetric integer weights: q = round(w / s), s = max|w| / wmax over the
 * channel's `per_out` values (wmax 127: 8 bits; 63: 7 bits, for CPUs without VNNI, whose
 * 16-bit pair sums 2 * 255 * 63 = 32,130 then stay below 32,767). Fills `q` and `s`. */
static void quantize_weights(const float *w, int64_t oc, int64_t per_out, int wmax, int8_t *q,
                             float *s) {
    const float top = (float)wmax;
    for (int64_t o = 0; o < oc; o++) {
        const float *row = w + o * per_out;
        float most = 0.0f;
        for (int64_t i = 0; i < per_out; i++) {
            float a = row[i] < 0 ? -row[i] : row[i];
            if (a > most) most = a;
        }
        s[o] = most > 0.0f ? most / top : 1.0f;
        for (int64_t i = 0; i < per_out; i++) {
            float v = row[i] / s[o];
            v = v > top ? top : v < -top ? -top : v;
            q[o * per_out + i] = (int8_t)(v < 0 ? v - 0.5f : v + 0.5f);
        }
    }
}

/* A convolution on the current image. Weights OIHW (groups == 1) or [oc, ic/g, kh, kw]; bias
 * may be NULL. On quantized (u8/s8) activations the weights are quantized per output channel,
 * sums are exact in 32-bit integers, and the output is quantized again with `out_scale`
 * (`out_signed`: s8, else u8, for outputs that are never negative); on floating-point
 * activations `out_scale` must be 0. */
int emo_plan_conv(emo_plan *p, int64_t oc, const int64_t *kernel, const int64_t *stride,
                  const int64_t *pad_l, const int64_t *pad_r, int64_t g, const float *w,
                  const float *bias, const emo_post *post, float out_scale, int out_signed) {
    if (p->vector || g < 1 || p->c % g || oc % g) return dnnl_invalid_arguments;
    int q8 = quantized(p);
    if (q8 != (out_scale > 0.0f)) return dnnl_invalid_arguments;
    int64_t kh = kernel[0], kw = kernel[1];
    int64_t oh = (p->h + pad_l[0] + pad_r[0] - kh) / stride[0] + 1;
    int64_t ow = (p->w + pad_l[1] + pad_r[1] - kw) / stride[1] + 1;
    if (oh < 1 || ow < 1) return dnnl_invalid_arguments;
    emo_step *s = push_step(p);
    if (!s) return dnnl_out_of_memory;
    dnnl_dims_t src_dims = {p->n, p->c, p->h, p->w}, dst_dims = {p->n, oc, oh, ow},
                b_dims = {oc};
    dnnl_data_type_t out_dt = q8 ? (out_signed ? dnnl_s8 : dnnl_u8) : p->dt;
    dnnl_data_type_t w_dt = q8 ? dnnl_s8 : p->dt, w_user_dt = q8 ? dnnl_s8 : dnnl_f32;
    /* Quantized: integer weights and the scales that turn integer sums back into real values;
     * the bias joins the integer sums, so it is divided by the same scales. */
    int64_t per_out = p->c / g * kh * kw;
    int8_t *wq = NULL;
    float *oscales = NULL, *bias_q = NULL;
    const void *w_user_data = w;
    const float *b_data = bias;
    if (q8) {
        wq = malloc((size_t)(oc * per_out));
        oscales = malloc((size_t)oc * sizeof(float));
        bias_q = malloc((size_t)oc * sizeof(float));
        if (!wq || !oscales || !bias_q) {
            free(wq), free(oscales), free(bias_q);
            pop_step(p);
            return dnnl_out_of_memory;
        }
        quantize_weights(w, oc, per_out, p->wmax, wq, oscales);
        for (int64_t o = 0; o < oc; o++) {
            oscales[o] *= p->scale;
            if (bias) bias_q[o] = bias[o] / oscales[o];
        }
        w_user_data = wq;
        if (bias) b_data = bias_q;
    }
    dnnl_memory_desc_t w_user, w_any, b_md;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&s->src_md, 4, src_dims, p->dt, dnnl_nhwc);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&s->dst_md, 4, dst_dims, out_dt, dnnl_nhwc);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&b_md, 1, b_dims, dnnl_f32, dnnl_a);
    if (st == dnnl_success && g == 1) {
        dnnl_dims_t wd = {oc, p->c, kh, kw};
        st = dnnl_memory_desc_init_by_tag(&w_user, 4, wd, w_user_dt, dnnl_oihw);
        if (st == dnnl_success)
            st = dnnl_memory_desc_init_by_tag(&w_any, 4, wd, w_dt, dnnl_format_tag_any);
    } else if (st == dnnl_success) {
        dnnl_dims_t wd = {g, oc / g, p->c / g, kh, kw};
        st = dnnl_memory_desc_init_by_tag(&w_user, 5, wd, w_user_dt, dnnl_goihw);
        if (st == dnnl_success)
            st = dnnl_memory_desc_init_by_tag(&w_any, 5, wd, w_dt, dnnl_format_tag_any);
    }
    dnnl_dims_t sd = {stride[0], stride[1]}, pl = {pad_l[0], pad_l[1]}, pr = {pad_r[0], pad_r[1]};
    dnnl_convolution_desc_t cd;
    if (st == dnnl_success)
        st = dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                dnnl_convolution_direct, &s->src_md, &w_any,
                                                bias ? &b_md : NULL, &s->dst_md, sd, pl, pr);
    if (st == dnnl_success)
        st = finish_layer(s, &cd, post, 1, &w_user, w_user_data, &b_md, b_data, oc, oscales,
                          q8 ? 1.0f / out_scale : 0.0f);
    free(wq), free(oscales), free(bias_q);
    if (st != dnnl_success) {
        pop_step(p);
        return st;
    }
    p->c = oc;
    p->h = oh;
    p->w = ow;
    if (q8) {
        p->dt = out_dt;
        p->scale = out_scale;
    }
    return dnnl_success;
}

/* A dense layer on the current vector; weights in burn's [in, out] layout. */
int emo_plan_dense(emo_plan *p, int64_t oc, const float *w, const float *bias,
                   const emo_post *post) {
    if (!p->vector || quantized(p)) return dnnl_invalid_arguments;
    emo_step *s = push_step(p);
    if (!s) return dnnl_out_of_memory;
    int64_t ic = p->c;
    dnnl_dims_t sd = {p->n, ic}, dd = {p->n, oc}, wd = {oc, ic}, bd = {oc};
    dnnl_memory_desc_t w_user, w_any, b_md;
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&s->src_md, 2, sd, p->dt, dnnl_nc);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&s->dst_md, 2, dd, p->dt, dnnl_nc);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&w_user, 2, wd, dnnl_f32, dnnl_io);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&w_any, 2, wd, p->dt, dnnl_format_tag_any);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_a);
    dnnl_inner_product_desc_t ipd;
    if (st == dnnl_success)
        st = dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, &s->src_md,
                                                  &w_any, bias ? &b_md : NULL, &s->dst_md);
    if (st == dnnl_success)
        st = finish_layer(s, &ipd, post, 0, &w_user, w, &b_md, bias, oc, NULL, 0.0f);
    if (st != dnnl_success) {
        pop_step(p);
        return st;
    }
    p->c = oc;
    return dnnl_success;
}

/* Max or average (excluding padding) pooling on the current image. With `global`, the window
 * is the whole image and the result a vector. */
int emo_plan_pool(emo_plan *p, const int64_t *kernel, const int64_t *stride,
                  const int64_t *pad_l, const int64_t *pad_r, int max, int global) {
    if (p->vector) return dnnl_invalid_arguments;
    int64_t k[2] = {kernel[0], kernel[1]}, st2[2] = {stride[0], stride[1]};
    int64_t l[2] = {pad_l[0], pad_l[1]}, r[2] = {pad_r[0], pad_r[1]};
    if (global) {
        k[0] = p->h, k[1] = p->w, st2[0] = st2[1] = 1;
        l[0] = l[1] = r[0] = r[1] = 0;
    }
    int64_t oh = (p->h + l[0] + r[0] - k[0]) / st2[0] + 1;
    int64_t ow = (p->w + l[1] + r[1] - k[1]) / st2[1] + 1;
    if (oh < 1 || ow < 1) return dnnl_invalid_arguments;
    emo_step *s = push_step(p);
    if (!s) return dnnl_out_of_memory;
    dnnl_dims_t sd = {p->n, p->c, p->h, p->w}, dd = {p->n, p->c, oh, ow};
    dnnl_dims_t kd = {k[0], k[1]}, sdims = {st2[0], st2[1]}, dil = {0, 0}, pl = {l[0], l[1]},
                pr = {r[0], r[1]};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&s->src_md, 4, sd, p->dt, dnnl_nhwc);
    if (st == dnnl_success) st = dnnl_memory_desc_init_by_tag(&s->dst_md, 4, dd, p->dt, dnnl_nhwc);
    dnnl_pooling_v2_desc_t pdsc;
    if (st == dnnl_success)
        st = dnnl_pooling_v2_forward_desc_init(
            &pdsc, dnnl_forward_inference,
            max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding, &s->src_md, &s->dst_md,
            sdims, kd, dil, pl, pr);
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &pdsc, NULL, emo_engine, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&s->prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        pop_step(p);
        return st;
    }
    p->h = oh;
    p->w = ow;
    if (global) p->vector = 1;
    return dnnl_success;
}

/* Flatten the current image into a vector in channels-first order (c, h, w), the order dense
 * weights were trained in. A 1x1 image needs no step. */
int emo_plan_flatten(emo_plan *p) {
    if (p->vector) return dnnl_success;
    if (p->h * p->w > 1) {
        dnnl_dims_t d = {p->n, p->c, p->h, p->w};
        dnnl_memory_desc_t from, to;
        CHECK(dnnl_memory_desc_init_by_tag(&from, 4, d, p->dt, dnnl_nhwc));
        CHECK(dnnl_memory_desc_init_by_tag(&to, 4, d, p->dt, dnnl_nchw));
        CHECK(reorder_step(p, &from, &to));
    }
    p->c = p->c * p->h * p->w;
    p->h = p->w = 1;
    p->vector = 1;
    return dnnl_success;
}

/* Allocates the activation buffers and binds every step's memory. No steps may follow. */
int emo_plan_finalize(emo_plan *p) {
    if (p->ready || p->nsteps == 0 || !p->vector) return dnnl_invalid_arguments;
    if (quantized(p)) CHECK(emo_plan_dequantize(p));
    if (p->dt != dnnl_f32) {
        dnnl_memory_desc_t from, to;
        CHECK(current_md(p, &from, p->dt));
        CHECK(current_md(p, &to, dnnl_f32));
        CHECK(reorder_step(p, &from, &to));
    }
    size_t most = 0;
    for (int i = 0; i < p->nsteps; i++) {
        size_t b = dnnl_memory_desc_get_size(&p->steps[i].dst_md);
        if (b > most) most = b;
    }
    p->input = aligned(p->input_bytes);
    p->buf[0] = aligned(most);
    p->buf[1] = aligned(most);
    if (!p->input || !p->buf[0] || !p->buf[1]) return dnnl_out_of_memory;
    for (int i = 0; i < p->nsteps; i++) {
        emo_step *s = &p->steps[i];
        void *src = i == 0 ? p->input : p->buf[(i - 1) & 1];
        void *dst = p->buf[i & 1];
        dnnl_memory_t m;
        CHECK(wrap(&m, &s->src_md, src));
        s->exec[s->nexec].arg = DNNL_ARG_SRC;
        s->exec[s->nexec++].memory = m;
        CHECK(wrap(&m, &s->dst_md, dst));
        s->exec[s->nexec].arg = DNNL_ARG_DST;
        s->exec[s->nexec++].memory = m;
        for (int j = 0; j < s->nconst; j++) {
            CHECK(wrap(&m, &s->const_md[j], s->const_buf[j]));
            s->exec[s->nexec].arg = s->const_arg[j];
            s->exec[s->nexec++].memory = m;
        }
    }
    p->ready = 1;
    return dnnl_success;
}

float *emo_plan_input(emo_plan *p) { return p->ready ? p->input : NULL; }

/* The output after a run: n x c values (c = the last layer's width). */
const float *emo_plan_output(const emo_plan *p, int64_t *rows, int64_t *cols) {
    *rows = p->n;
    *cols = p->vector ? p->c : p->c * p->h * p->w;
    return p->ready ? p->buf[(p->nsteps - 1) & 1] : NULL;
}

int emo_plan_run(emo_plan *p) {
    if (!p->ready) return dnnl_invalid_arguments;
    for (int i = 0; i < p->nsteps; i++)
        CHECK(dnnl_primitive_execute(p->steps[i].prim, p->stream, p->steps[i].nexec,
                                     p->steps[i].exec));
    return dnnl_stream_wait(p->stream);
}

/* A run that also widens [lo[i], hi[i]] to the range of every value step i wrote: the
 * calibration of quantized plans. Only for f32 plans. */
int emo_plan_run_observe(emo_plan *p, float *lo, float *hi) {
    if (!p->ready || p->fdt != dnnl_f32) return dnnl_invalid_arguments;
    for (int i = 0; i < p->nsteps; i++) {
        emo_step *s = &p->steps[i];
        CHECK(dnnl_primitive_execute(s->prim, p->stream, s->nexec, s->exec));
        CHECK(dnnl_stream_wait(p->stream));
        if (s->dst_md.data_type != dnnl_f32) continue;
        const float *out = p->buf[i & 1];
        size_t count = dnnl_memory_desc_get_size(&s->dst_md) / sizeof(float);
        float a = lo[i], b = hi[i];
        for (size_t j = 0; j < count; j++) {
            if (out[j] < a) a = out[j];
            if (out[j] > b) b = out[j];
        }
        lo[i] = a;
        hi[i] = b;
    }
    return dnnl_success;
}

int emo_plan_steps(const emo_plan *p) { return p->nsteps; }

const char *emo_plan_step_impl(const emo_plan *p, int i) {
    if (i < 0 || i >= p->nsteps) return "?";
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(p->steps[i].prim, &pd) != dnnl_success) return "?";
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success)
        return "?";
    return name;
}
