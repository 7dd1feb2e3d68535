/*
 * layers.c: the layers of training and layer-by-layer inference: convolution and inner
 * product (emo_layer), batch normalisation (emo_bn) and pooling (emo_pool), each a handle over
 * its forward and, for training, backward primitives. See emolens_dnnl.h.
 */
#include "internal.h"

/* Layers with weights: convolution and inner product (dense). Both keep the same descriptors
 * and primitives and run through the same forward/backward functions; only their creation
 * differs. */

struct emo_layer {
    dnnl_memory_desc_t src_md, dst_md, w_user_md, b_md;
    dnnl_memory_desc_t w_fwd_md, w_bwd_md, dw_md;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    int has_bias;
    int bwd_data_matmul; /* bwd_data is a matmul primitive (SRC/WEIGHTS/DST arguments) */
};

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
    dnnl_status_t s = dnnl_primitive_desc_create(&fpd, fwd, NULL, emo_engine, NULL);
    if (s == dnnl_success) {
        c->w_fwd_md = *dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
        s = dnnl_primitive_create(&c->fwd, fpd);
    }
    if (s == dnnl_success && bwd_data)
        s = dnnl_primitive_desc_create(&bpd, bwd_data, NULL, emo_engine, fpd);
    if (s == dnnl_success && bpd) {
        c->w_bwd_md = *dnnl_primitive_desc_query_md(bpd, dnnl_query_weights_md, 0);
        s = dnnl_primitive_create(&c->bwd_data, bpd);
    }
    if (s == dnnl_success && bwd_weights)
        s = dnnl_primitive_desc_create(&wpd, bwd_weights, NULL, emo_engine, fpd);
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
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&mpd, &md, NULL, emo_engine, NULL);
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

struct emo_bn {
    dnnl_memory_desc_t data_md, stat_md;
    dnnl_primitive_t fwd_train, fwd_infer, bwd;
    size_t ws_bytes;
    dnnl_memory_desc_t ws_md;
    int relu;
};

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
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&ipd, &d, NULL, emo_engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&b->fwd_infer, ipd);
    if (s == dnnl_success && training) {
        s = dnnl_batch_normalization_forward_desc_init(&d, dnnl_forward_training, &b->data_md,
                                                       eps, flags);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&tpd, &d, NULL, emo_engine, NULL);
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
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&bpd, &bd, NULL, emo_engine, tpd);
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

struct emo_pool {
    dnnl_memory_desc_t src_md, dst_md, ws_md;
    dnnl_primitive_t fwd_train, fwd_infer, bwd;
    size_t ws_bytes;
};

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
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&ipd, &fd, NULL, emo_engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&p->fwd_infer, ipd);
    if (s == dnnl_success && training) {
        s = dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_training, alg, &p->src_md,
                                              &p->dst_md, st, k, dil, pl, pr);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&tpd, &fd, NULL, emo_engine, NULL);
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
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&bpd, &bd, NULL, emo_engine, tpd);
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
