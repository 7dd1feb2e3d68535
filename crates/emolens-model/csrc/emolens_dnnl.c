/*
 * A narrow C face over oneDNN (libdnnl 2.x) for emolens' CPU fast path.
 *
 * oneDNN's 2.x C API passes large descriptor structs by value; keeping them on this side means
 * the Rust side only sees opaque handles and plain pointers, so no struct layout has to be
 * mirrored in Rust. Activations are channels-last (NHWC), the layout oneDNN's AVX-512 kernels
 * run fastest on without per-layer reorders; weights stay in burn's OIHW and are reordered to
 * the kernel's preferred blocked layout on each call (they are small next to activations).
 *
 * Every function returns a dnnl_status_t (0 = success).
 */
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t g_engine = NULL;
static pthread_mutex_t g_engine_lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(x)                                                                              \
    do {                                                                                      \
        dnnl_status_t s_ = (x);                                                               \
        if (s_ != dnnl_success) return s_;                                                    \
    } while (0)

/* OpenMP's per-thread thread count: oneDNN sizes a primitive's parallel work when it is
 * created, so a primitive made (and run) under 1 runs single-threaded, with no barriers. */
extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int n);
int emo_get_threads(void) { return omp_get_max_threads(); }
void emo_set_threads(int n) { omp_set_num_threads(n); }

/* Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it. */
int emo_cpu_has_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

/* Whether the CPU has 8-bit dot products (AVX512-VNNI, or AVX-VNNI on AVX2 cores), as oneDNN
 * sees it: there int8 kernels multiply four u8 x s8 pairs per 32-bit lane and instruction, with
 * exact 32-bit sums. */
int emo_cpu_has_vnni(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni ||
           (isa & dnnl_cpu_isa_avx2_vnni) == dnnl_cpu_isa_avx2_vnni;
}

/* Whether oneDNN has vectorised int8 kernels here at all (AVX2 or later). Without VNNI they
 * multiply with vpmaddubsw, which adds two u8 x s8 products into a saturating 16-bit lane:
 * 255 * 127 * 2 overflows it, so such plans quantize weights to 7 bits (|q| <= 63, see
 * `quantize_weights`), which keeps every pair sum exact. */
int emo_cpu_has_int8(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2;
}

/* The name of the oneDNN ISA in effect (after ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA caps). */
const char *emo_cpu_isa_name(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

int emo_dnnl_init(void) {
    int status = 0;
    pthread_mutex_lock(&g_engine_lock);
    if (!g_engine) status = dnnl_engine_create(&g_engine, dnnl_cpu, 0);
    pthread_mutex_unlock(&g_engine_lock);
    return status;
}

/* A user buffer wrapped as oneDNN memory, destroyed after execution. */
static dnnl_status_t wrap(dnnl_memory_t *m, const dnnl_memory_desc_t *md, const void *ptr) {
    return dnnl_memory_create(m, md, g_engine, (void *)ptr);
}

typedef struct {
    int n;
    dnnl_exec_arg_t a[12];
} args_t;

static void arg(args_t *args, int which, dnnl_memory_t m) {
    args->a[args->n].arg = which;
    args->a[args->n].memory = m;
    args->n++;
}

static void free_args(args_t *args) {
    for (int i = 0; i < args->n; i++)
        if (args->a[i].memory) dnnl_memory_destroy(args->a[i].memory);
    args->n = 0;
}

static dnnl_status_t run(dnnl_primitive_t p, args_t *args) {
    dnnl_stream_t stream;
    dnnl_status_t s = dnnl_stream_create(&stream, g_engine, dnnl_stream_default_flags);
    if (s == dnnl_success) {
        s = dnnl_primitive_execute(p, stream, args->n, args->a);
        if (s == dnnl_success) s = dnnl_stream_wait(stream);
        dnnl_stream_destroy(stream);
    }
    free_args(args);
    return s;
}

/* Reorder `from` (desc `from_md`) into `to` (desc `to_md`). */
static dnnl_status_t reorder(const dnnl_memory_desc_t *from_md, const void *from,
                             const dnnl_memory_desc_t *to_md, void *to) {
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, from_md, g_engine, to_md, g_engine, NULL));
    dnnl_primitive_t p;
    dnnl_status_t s = dnnl_primitive_create(&p, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) return s;
    args_t args = {0};
    dnnl_memory_t a, b;
    s = wrap(&a, from_md, from);
    if (s == dnnl_success) {
        arg(&args, DNNL_ARG_FROM, a);
        s = wrap(&b, to_md, to);
        if (s == dnnl_success) {
            arg(&args, DNNL_ARG_TO, b);
            s = run(p, &args);
        }
    }
    free_args(&args);
    dnnl_primitive_destroy(p);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Layers with weights: convolution and inner product (dense). Both keep the same descriptors
 * and primitives and run through the same forward/backward functions; only their creation
 * differs. */

typedef struct {
    dnnl_memory_desc_t src_md, dst_md, w_user_md, b_md;
    dnnl_memory_desc_t w_fwd_md, w_bwd_md, dw_md;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    int has_bias;
    int bwd_data_matmul; /* bwd_data is a matmul primitive (SRC/WEIGHTS/DST arguments) */
} emo_layer;

void emo_layer_destroy(emo_layer *c) {
    if (!c) return;
    if (c->fwd) dnnl_primitive_destroy(c->fwd);
    if (c->bwd_data) dnnl_primitive_destroy(c->bwd_data);
    if (c->bwd_weights) dnnl_primitive_destroy(c->bwd_weights);
    free(c);
}

/* The primitives of a layer from its operation descriptors; `bwd_data`/`bwd_weights` are NULL
 * for inference. On success `*out` owns `c`; on failure `c` is freed. */
static dnnl_status_t layer_primitives(emo_layer **out, emo_layer *c, const_dnnl_op_desc_t fwd,
                                      const_dnnl_op_desc_t bwd_data,
                                      const_dnnl_op_desc_t bwd_weights) {
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL, wpd = NULL;
    dnnl_status_t s = dnnl_primitive_desc_create(&fpd, fwd, NULL, g_engine, NULL);
    if (s == dnnl_success) {
        c->w_fwd_md = *dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
        s = dnnl_primitive_create(&c->fwd, fpd);
    }
    if (s == dnnl_success && bwd_data)
        s = dnnl_primitive_desc_create(&bpd, bwd_data, NULL, g_engine, fpd);
    if (s == dnnl_success && bpd) {
        c->w_bwd_md = *dnnl_primitive_desc_query_md(bpd, dnnl_query_weights_md, 0);
        s = dnnl_primitive_create(&c->bwd_data, bpd);
    }
    if (s == dnnl_success && bwd_weights)
        s = dnnl_primitive_desc_create(&wpd, bwd_weights, NULL, g_engine, fpd);
    if (s == dnnl_success && wpd) {
        c->dw_md = *dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0);
        s = dnnl_primitive_create(&c->bwd_weights, wpd);
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (s != dnnl_success) {
        emo_layer_destroy(c);
        return s;
    }
    *out = c;
    return dnnl_success;
}

/*
 * Convolution over NHWC. dims: n, ic, ih, iw, oc, oh, ow, kh, kw, groups; stride/pad as
 * [h, w]. With groups > 1 the weights are [oc, ic/groups, kh, kw] as burn stores them.
 * `training` also builds the backward primitives.
 */
int emo_conv_create(emo_layer **out, const int64_t *d, const int64_t *stride,
                    const int64_t *pad_l, const int64_t *pad_r, int has_bias, int training) {
    *out = NULL;
    int64_t n = d[0], ic = d[1], ih = d[2], iw = d[3], oc = d[4], oh = d[5], ow = d[6],
            kh = d[7], kw = d[8], g = d[9];
    emo_layer *c = calloc(1, sizeof(emo_layer));
    if (!c) return dnnl_out_of_memory;
    c->has_bias = has_bias;
    dnnl_dims_t src_dims = {n, ic, ih, iw}, dst_dims = {n, oc, oh, ow}, b_dims = {oc};
    dnnl_memory_desc_t w_any;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&c->src_md, 4, src_dims, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&c->dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(&c->b_md, 1, b_dims, dnnl_f32, dnnl_a);
    if (s == dnnl_success && g == 1) {
        dnnl_dims_t w_dims = {oc, ic, kh, kw};
        s = dnnl_memory_desc_init_by_tag(&c->w_user_md, 4, w_dims, dnnl_f32, dnnl_oihw);
        if (s == dnnl_success)
            s = dnnl_memory_desc_init_by_tag(&w_any, 4, w_dims, dnnl_f32, dnnl_format_tag_any);
    } else if (s == dnnl_success) {
        dnnl_dims_t w_dims = {g, oc / g, ic / g, kh, kw};
        s = dnnl_memory_desc_init_by_tag(&c->w_user_md, 5, w_dims, dnnl_f32, dnnl_goihw);
        if (s == dnnl_success)
            s = dnnl_memory_desc_init_by_tag(&w_any, 5, w_dims, dnnl_f32, dnnl_format_tag_any);
    }
    dnnl_dims_t st = {stride[0], stride[1]}, pl = {pad_l[0], pad_l[1]}, pr = {pad_r[0], pad_r[1]};
    const dnnl_memory_desc_t *b = has_bias ? &c->b_md : NULL;
    dnnl_convolution_desc_t fd, bd, wd;
    if (s == dnnl_success)
        s = dnnl_convolution_forward_desc_init(
            &fd, training ? dnnl_forward_training : dnnl_forward_inference,
            dnnl_convolution_direct, &c->src_md, &w_any, b, &c->dst_md, st, pl, pr);
    if (s == dnnl_success && training)
        s = dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &c->src_md,
                                                     &w_any, &c->dst_md, st, pl, pr);
    if (s == dnnl_success && training)
        s = dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct,
                                                        &c->src_md, &w_any, b, &c->dst_md, st,
                                                        pl, pr);
    if (s != dnnl_success) {
        emo_layer_destroy(c);
        return s;
    }
    return layer_primitives(out, c, &fd, training ? &bd : NULL, training ? &wd : NULL);
}

/*
 * Inner product (dense layer): y[n, oc] = x[n, ic] . w[ic, oc] + b, weights in burn's [in, out]
 * layout, which is oneDNN's `io` tag. Dense weights are large (model_2_best: 9.4 M) and a
 * reorder per call would cost more than the product itself, so the kernel takes them as they are.
 */
int emo_dense_create(emo_layer **out, int64_t n, int64_t ic, int64_t oc, int has_bias,
                     int training) {
    *out = NULL;
    emo_layer *c = calloc(1, sizeof(emo_layer));
    if (!c) return dnnl_out_of_memory;
    c->has_bias = has_bias;
    dnnl_dims_t sd = {n, ic}, dd = {n, oc}, wd_dims = {oc, ic}, bd_dims = {oc};
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&c->src_md, 2, sd, dnnl_f32, dnnl_nc);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(&c->dst_md, 2, dd, dnnl_f32, dnnl_nc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&c->w_user_md, 2, wd_dims, dnnl_f32, dnnl_io);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&c->b_md, 1, bd_dims, dnnl_f32, dnnl_a);
    const dnnl_memory_desc_t *b = has_bias ? &c->b_md : NULL;
    dnnl_inner_product_desc_t fd, wd;
    if (s == dnnl_success)
        s = dnnl_inner_product_forward_desc_init(
            &fd, training ? dnnl_forward_training : dnnl_forward_inference, &c->src_md,
            &c->w_user_md, b, &c->dst_md);
    if (s == dnnl_success && training)
        s = dnnl_inner_product_backward_weights_desc_init(&wd, &c->src_md, &c->w_user_md, b,
                                                          &c->dst_md);
    if (s != dnnl_success) {
        emo_layer_destroy(c);
        return s;
    }
    s = layer_primitives(out, c, &fd, NULL, training ? &wd : NULL);
    if (s != dnnl_success || !training) return s;
    /* The data gradient dx[n, ic] = dy[n, oc] . w^T as a matmul: oneDNN 2.6's inner-product
     * backward-data kernel (gemm:jit) is slower than the brgemm matmul on every batch size
     * (bench/kernels/run.sh, model_2_best's 6400 x 2048 layer, one thread: 12.5 ms against
     * 6.5 at batch 16, 23.5 against 17.5 at 64, 67.7 against 61.2 at 256; two threads at 64:
     * 25.1 against 8.8). w^T is the `io` buffer read with swapped strides, so no copy is made. */
    dnnl_memory_desc_t wt_md;
    dnnl_dims_t wt_dims = {oc, ic};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t mpd = NULL;
    s = dnnl_memory_desc_init_by_tag(&wt_md, 2, wt_dims, dnnl_f32, dnnl_ba);
    if (s == dnnl_success) s = dnnl_matmul_desc_init(&md, &c->dst_md, &wt_md, NULL, &c->src_md);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&mpd, &md, NULL, g_engine, NULL);
    if (s == dnnl_success) {
        c->w_bwd_md = *dnnl_primitive_desc_query_md(mpd, dnnl_query_weights_md, 0);
        s = dnnl_primitive_create(&c->bwd_data, mpd);
    }
    if (mpd) dnnl_primitive_desc_destroy(mpd);
    c->bwd_data_matmul = 1;
    if (s != dnnl_success) {
        emo_layer_destroy(c);
        *out = NULL;
    }
    return s;
}

/* Weights in the layout `md` wants: the user buffer itself, or a reordered copy in `*tmp`. */
static dnnl_status_t weights_for(const emo_layer *c, const dnnl_memory_desc_t *md,
                                 const float *w, const void **use, void **tmp) {
    *tmp = NULL;
    if (dnnl_memory_desc_equal(md, &c->w_user_md)) {
        *use = w;
        return dnnl_success;
    }
    *tmp = aligned_alloc(64, (dnnl_memory_desc_get_size(md) + 63) / 64 * 64);
    if (!*tmp) return dnnl_out_of_memory;
    *use = *tmp;
    return reorder(&c->w_user_md, w, md, *tmp);
}

int emo_layer_forward(const emo_layer *c, const float *src, const float *w, const float *bias,
                     float *dst) {
    const void *wu;
    void *tmp;
    dnnl_status_t s = weights_for(c, &c->w_fwd_md, w, &wu, &tmp);
    args_t args = {0};
    dnnl_memory_t m;
    if (s == dnnl_success && (s = wrap(&m, &c->src_md, src)) == dnnl_success)
        arg(&args, DNNL_ARG_SRC, m);
    if (s == dnnl_success && (s = wrap(&m, &c->w_fwd_md, wu)) == dnnl_success)
        arg(&args, DNNL_ARG_WEIGHTS, m);
    if (s == dnnl_success && c->has_bias && (s = wrap(&m, &c->b_md, bias)) == dnnl_success)
        arg(&args, DNNL_ARG_BIAS, m);
    if (s == dnnl_success && (s = wrap(&m, &c->dst_md, dst)) == dnnl_success)
        arg(&args, DNNL_ARG_DST, m);
    if (s == dnnl_success) s = run(c->fwd, &args);
    free_args(&args);
    free(tmp);
    return s;
}

int emo_layer_backward_data(const emo_layer *c, const float *diff_dst, const float *w,
                           float *diff_src) {
    if (!c->bwd_data) return dnnl_invalid_arguments;
    const void *wu;
    void *tmp;
    dnnl_status_t s = weights_for(c, &c->w_bwd_md, w, &wu, &tmp);
    args_t args = {0};
    dnnl_memory_t m;
    int mm = c->bwd_data_matmul;
    if (s == dnnl_success && (s = wrap(&m, &c->dst_md, diff_dst)) == dnnl_success)
        arg(&args, mm ? DNNL_ARG_SRC : DNNL_ARG_DIFF_DST, m);
    if (s == dnnl_success && (s = wrap(&m, &c->w_bwd_md, wu)) == dnnl_success)
        arg(&args, DNNL_ARG_WEIGHTS, m);
    if (s == dnnl_success && (s = wrap(&m, &c->src_md, diff_src)) == dnnl_success)
        arg(&args, mm ? DNNL_ARG_DST : DNNL_ARG_DIFF_SRC, m);
    if (s == dnnl_success) s = run(c->bwd_data, &args);
    free_args(&args);
    free(tmp);
    return s;
}

/* diff_w comes back in the user's OIHW layout; diff_bias may be NULL when there is no bias. */
int emo_layer_backward_weights(const emo_layer *c, const float *src, const float *diff_dst,
                              float *diff_w, float *diff_bias) {
    if (!c->bwd_weights) return dnnl_invalid_arguments;
    int same = dnnl_memory_desc_equal(&c->dw_md, &c->w_user_md);
    void *tmp = NULL;
    if (!same) {
        tmp = aligned_alloc(64, (dnnl_memory_desc_get_size(&c->dw_md) + 63) / 64 * 64);
        if (!tmp) return dnnl_out_of_memory;
    }
    args_t args = {0};
    dnnl_memory_t m;
    dnnl_status_t s;
    if ((s = wrap(&m, &c->src_md, src)) == dnnl_success) arg(&args, DNNL_ARG_SRC, m);
    if (s == dnnl_success && (s = wrap(&m, &c->dst_md, diff_dst)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_DST, m);
    if (s == dnnl_success &&
        (s = wrap(&m, &c->dw_md, same ? (void *)diff_w : tmp)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_WEIGHTS, m);
    if (s == dnnl_success && c->has_bias && (s = wrap(&m, &c->b_md, diff_bias)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_BIAS, m);
    if (s == dnnl_success) s = run(c->bwd_weights, &args);
    free_args(&args);
    if (s == dnnl_success && !same) s = reorder(&c->dw_md, tmp, &c->w_user_md, diff_w);
    free(tmp);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Batch normalisation over the channels of an NHWC tensor (or of an [N, C] matrix: h = w = 1). */

typedef struct {
    dnnl_memory_desc_t data_md, stat_md;
    dnnl_primitive_t fwd_train, fwd_infer, bwd;
    size_t ws_bytes;
    dnnl_memory_desc_t ws_md;
    int relu;
} emo_bn;

void emo_bn_destroy(emo_bn *b) {
    if (!b) return;
    if (b->fwd_train) dnnl_primitive_destroy(b->fwd_train);
    if (b->fwd_infer) dnnl_primitive_destroy(b->fwd_infer);
    if (b->bwd) dnnl_primitive_destroy(b->bwd);
    free(b);
}

/* With `relu`, a ReLU is fused after the normalisation (training keeps a bit mask). */
int emo_bn_create(emo_bn **out, int64_t n, int64_t c, int64_t h, int64_t w, float eps,
                  int relu, int training) {
    *out = NULL;
    emo_bn *b = calloc(1, sizeof(emo_bn));
    if (!b) return dnnl_out_of_memory;
    b->relu = relu;
    dnnl_dims_t dims = {n, c, h, w}, sdims = {c};
    CHECK(dnnl_memory_desc_init_by_tag(&b->data_md, 4, dims, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&b->stat_md, 1, sdims, dnnl_f32, dnnl_a));
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t d;
    dnnl_primitive_desc_t ipd = NULL, tpd = NULL, bpd = NULL;
    dnnl_status_t s = dnnl_batch_normalization_forward_desc_init(
        &d, dnnl_forward_inference, &b->data_md, eps, flags | dnnl_use_global_stats);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&ipd, &d, NULL, g_engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&b->fwd_infer, ipd);
    if (s == dnnl_success && training) {
        s = dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &b->data_md,
                                                       eps, flags);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&tpd, &d, NULL, g_engine, NULL);
        if (s == dnnl_success) {
            s = dnnl_primitive_create(&b->fwd_train, tpd);
            if (relu) {
                b->ws_md = *dnnl_primitive_desc_query_md(tpd, dnnl_query_workspace_md, 0);
                b->ws_bytes = dnnl_memory_desc_get_size(&b->ws_md);
            }
        }
        dnnl_batch_normalization_desc_t bd;
        if (s == dnnl_success)
            s = dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &b->data_md,
                                                            &b->data_md, eps, flags);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&bpd, &bd, NULL, g_engine, tpd);
        if (s == dnnl_success) s = dnnl_primitive_create(&b->bwd, bpd);
    }
    if (ipd) dnnl_primitive_desc_destroy(ipd);
    if (tpd) dnnl_primitive_desc_destroy(tpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (s != dnnl_success) {
        emo_bn_destroy(b);
        return s;
    }
    *out = b;
    return dnnl_success;
}

size_t emo_bn_workspace_bytes(const emo_bn *b) { return b->ws_bytes; }

/* Batch statistics: writes dst, and the batch mean and biased variance. */
int emo_bn_forward_training(const emo_bn *b, const float *src, const float *scale,
                            const float *shift, float *dst, float *mean, float *var, void *ws) {
    if (!b->fwd_train) return dnnl_invalid_arguments;
    args_t args = {0};
    dnnl_memory_t m;
    dnnl_status_t s;
    if ((s = wrap(&m, &b->data_md, src)) == dnnl_success) arg(&args, DNNL_ARG_SRC, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, scale)) == dnnl_success)
        arg(&args, DNNL_ARG_SCALE, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, shift)) == dnnl_success)
        arg(&args, DNNL_ARG_SHIFT, m);
    if (s == dnnl_success && (s = wrap(&m, &b->data_md, dst)) == dnnl_success)
        arg(&args, DNNL_ARG_DST, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, mean)) == dnnl_success)
        arg(&args, DNNL_ARG_MEAN, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, var)) == dnnl_success)
        arg(&args, DNNL_ARG_VARIANCE, m);
    if (s == dnnl_success && b->relu && (s = wrap(&m, &b->ws_md, ws)) == dnnl_success)
        arg(&args, DNNL_ARG_WORKSPACE, m);
    if (s == dnnl_success) s = run(b->fwd_train, &args);
    free_args(&args);
    return s;
}

/* Given statistics (running ones at inference). */
int emo_bn_forward_inference(const emo_bn *b, const float *src, const float *scale,
                             const float *shift, const float *mean, const float *var,
                             float *dst) {
    args_t args = {0};
    dnnl_memory_t m;
    dnnl_status_t s;
    if ((s = wrap(&m, &b->data_md, src)) == dnnl_success) arg(&args, DNNL_ARG_SRC, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, scale)) == dnnl_success)
        arg(&args, DNNL_ARG_SCALE, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, shift)) == dnnl_success)
        arg(&args, DNNL_ARG_SHIFT, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, mean)) == dnnl_success)
        arg(&args, DNNL_ARG_MEAN, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, var)) == dnnl_success)
        arg(&args, DNNL_ARG_VARIANCE, m);
    if (s == dnnl_success && (s = wrap(&m, &b->data_md, dst)) == dnnl_success)
        arg(&args, DNNL_ARG_DST, m);
    if (s == dnnl_success) s = run(b->fwd_infer, &args);
    free_args(&args);
    return s;
}

/* oneDNN 2.x checks that the shift is passed to the backward pass too, though it is unused. */
int emo_bn_backward(const emo_bn *b, const float *src, const float *mean, const float *var,
                    const float *diff_dst, const float *scale, const float *shift,
                    const void *ws, float *diff_src,
                    float *diff_scale, float *diff_shift) {
    if (!b->bwd) return dnnl_invalid_arguments;
    args_t args = {0};
    dnnl_memory_t m;
    dnnl_status_t s;
    if ((s = wrap(&m, &b->data_md, src)) == dnnl_success) arg(&args, DNNL_ARG_SRC, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, mean)) == dnnl_success)
        arg(&args, DNNL_ARG_MEAN, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, var)) == dnnl_success)
        arg(&args, DNNL_ARG_VARIANCE, m);
    if (s == dnnl_success && (s = wrap(&m, &b->data_md, diff_dst)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_DST, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, scale)) == dnnl_success)
        arg(&args, DNNL_ARG_SCALE, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, shift)) == dnnl_success)
        arg(&args, DNNL_ARG_SHIFT, m);
    if (s == dnnl_success && b->relu && (s = wrap(&m, &b->ws_md, ws)) == dnnl_success)
        arg(&args, DNNL_ARG_WORKSPACE, m);
    if (s == dnnl_success && (s = wrap(&m, &b->data_md, diff_src)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_SRC, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, diff_scale)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_SCALE, m);
    if (s == dnnl_success && (s = wrap(&m, &b->stat_md, diff_shift)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_SHIFT, m);
    if (s == dnnl_success) s = run(b->bwd, &args);
    free_args(&args);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Pooling (max, or average excluding padding) over NHWC.                                       */

typedef struct {
    dnnl_memory_desc_t src_md, dst_md, ws_md;
    dnnl_primitive_t fwd_train, fwd_infer, bwd;
    size_t ws_bytes;
} emo_pool;

void emo_pool_destroy(emo_pool *p) {
    if (!p) return;
    if (p->fwd_train) dnnl_primitive_destroy(p->fwd_train);
    if (p->fwd_infer) dnnl_primitive_destroy(p->fwd_infer);
    if (p->bwd) dnnl_primitive_destroy(p->bwd);
    free(p);
}

/* d: n, c, ih, iw, oh, ow; kernel/stride/pads as [h, w]. */
int emo_pool_create(emo_pool **out, const int64_t *d, const int64_t *kernel,
                    const int64_t *stride, const int64_t *pad_l, const int64_t *pad_r, int max,
                    int training) {
    *out = NULL;
    emo_pool *p = calloc(1, sizeof(emo_pool));
    if (!p) return dnnl_out_of_memory;
    dnnl_dims_t sd = {d[0], d[1], d[2], d[3]}, dd = {d[0], d[1], d[4], d[5]};
    CHECK(dnnl_memory_desc_init_by_tag(&p->src_md, 4, sd, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&p->dst_md, 4, dd, dnnl_f32, dnnl_nhwc));
    dnnl_dims_t k = {kernel[0], kernel[1]}, st = {stride[0], stride[1]}, dil = {0, 0},
                pl = {pad_l[0], pad_l[1]}, pr = {pad_r[0], pad_r[1]};
    dnnl_alg_kind_t alg = max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t fd;
    dnnl_primitive_desc_t ipd = NULL, tpd = NULL, bpd = NULL;
    dnnl_status_t s = dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_inference, alg,
                                                        &p->src_md, &p->dst_md, st, k, dil, pl, pr);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&ipd, &fd, NULL, g_engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&p->fwd_infer, ipd);
    if (s == dnnl_success && training) {
        s = dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_training, alg, &p->src_md,
                                              &p->dst_md, st, k, dil, pl, pr);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&tpd, &fd, NULL, g_engine, NULL);
        if (s == dnnl_success) {
            s = dnnl_primitive_create(&p->fwd_train, tpd);
            if (max) {
                p->ws_md = *dnnl_primitive_desc_query_md(tpd, dnnl_query_workspace_md, 0);
                p->ws_bytes = dnnl_memory_desc_get_size(&p->ws_md);
            }
        }
        dnnl_pooling_v2_desc_t bd;
        if (s == dnnl_success)
            s = dnnl_pooling_v2_backward_desc_init(&bd, alg, &p->src_md, &p->dst_md, st, k, dil,
                                                   pl, pr);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&bpd, &bd, NULL, g_engine, tpd);
        if (s == dnnl_success) s = dnnl_primitive_create(&p->bwd, bpd);
    }
    if (ipd) dnnl_primitive_desc_destroy(ipd);
    if (tpd) dnnl_primitive_desc_destroy(tpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (s != dnnl_success) {
        emo_pool_destroy(p);
        return s;
    }
    *out = p;
    return dnnl_success;
}

size_t emo_pool_workspace_bytes(const emo_pool *p) { return p->ws_bytes; }

/* `ws` (emo_pool_workspace_bytes) is written in training for max pooling; NULL otherwise. */
int emo_pool_forward(const emo_pool *p, const float *src, float *dst, void *ws, int training) {
    args_t args = {0};
    dnnl_memory_t m;
    dnnl_status_t s;
    const dnnl_primitive_t prim = training ? p->fwd_train : p->fwd_infer;
    if (!prim) return dnnl_invalid_arguments;
    if ((s = wrap(&m, &p->src_md, src)) == dnnl_success) arg(&args, DNNL_ARG_SRC, m);
    if (s == dnnl_success && (s = wrap(&m, &p->dst_md, dst)) == dnnl_success)
        arg(&args, DNNL_ARG_DST, m);
    if (s == dnnl_success && training && p->ws_bytes &&
        (s = wrap(&m, &p->ws_md, ws)) == dnnl_success)
        arg(&args, DNNL_ARG_WORKSPACE, m);
    if (s == dnnl_success) s = run(prim, &args);
    free_args(&args);
    return s;
}

int emo_pool_backward(const emo_pool *p, const float *diff_dst, const void *ws, float *diff_src) {
    if (!p->bwd) return dnnl_invalid_arguments;
    args_t args = {0};
    dnnl_memory_t m;
    dnnl_status_t s;
    if ((s = wrap(&m, &p->dst_md, diff_dst)) == dnnl_success) arg(&args, DNNL_ARG_DIFF_DST, m);
    if (s == dnnl_success && p->ws_bytes && (s = wrap(&m, &p->ws_md, ws)) == dnnl_success)
        arg(&args, DNNL_ARG_WORKSPACE, m);
    if (s == dnnl_success && (s = wrap(&m, &p->src_md, diff_src)) == dnnl_success)
        arg(&args, DNNL_ARG_DIFF_SRC, m);
    if (s == dnnl_success) s = run(p->bwd, &args);
    free_args(&args);
    return s;
}

/* The name of the kernel oneDNN picked for a layer's forward pass (for logs/benches). */
const char *emo_layer_impl(const emo_layer *c) {
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(c->fwd, &pd) != dnnl_success) return "?";
    const char *name = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success)
        return "?";
    return name;
}

/* ------------------------------------------------------------------------------------------ */
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

typedef struct {
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
} emo_plan;

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
        st = dnnl_reorder_primitive_desc_create(&pd, &s->src_md, g_engine, &s->dst_md, g_engine,
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
    dnnl_status_t s = dnnl_stream_create(&p->stream, g_engine, dnnl_stream_default_flags);
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

/* A layer's post-ops as the Rust side passes them: see `post_ops`. */
typedef struct {
    int n;
    const int *kinds;
    const float *scale, *shift;
} emo_post;

/* Post-ops, in order. kinds[i]: 2 is a per-channel scale then shift (`oc` values each, taken in
 * turn from `scale` and `shift`: a batch norm after an activation); any other is an activation
 * (1 ReLU, 3 leaky ReLU with slope 0.2 as burn's, 4 ELU, 5 GELU, 6 SiLU, 7 sigmoid, 8 tanh,
 * 9 ReLU6). `image` picks the per-channel operand's shape. */
static dnnl_status_t post_ops(dnnl_primitive_attr_t attr, emo_step *s, const emo_post *post,
                              int64_t oc, int image, float out_mult) {
    int npost = post->n;
    const int *kinds = post->kinds;
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
        case 1: alg = dnnl_eltwise_relu; break;
        case 3: alg = dnnl_eltwise_relu; alpha = 0.2f; break;
        case 4: alg = dnnl_eltwise_elu; alpha = 1.0f; break;
        case 5: alg = dnnl_eltwise_gelu_erf; break;
        case 6: alg = dnnl_eltwise_swish; alpha = 1.0f; break;
        case 7: alg = dnnl_eltwise_logistic; break;
        case 8: alg = dnnl_eltwise_tanh; break;
        case 9: alg = dnnl_eltwise_clip_v2; alpha = 0.0f; beta = 6.0f; break;
        case 2: break;
        default: st = dnnl_invalid_arguments;
        }
        if (st != dnnl_success) break;
        if (kinds[i] != 2) {
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
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, op, attr, g_engine, NULL);
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
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &pdsc, NULL, g_engine, NULL);
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
