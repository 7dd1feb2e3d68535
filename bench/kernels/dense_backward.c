/*
 * The data gradient of a dense layer, dx[n, ic] = dy[n, oc] . w^T with w in burn's [ic, oc]
 * layout (oneDNN's `io`), two ways: oneDNN 2.6's inner-product backward-data primitive, and
 * the brgemm matmul emolens uses (w^T read with swapped strides). Prints milliseconds per call
 * (mean of 10 after 2 warm-up calls, 3 repeats) and checks both give the same result.
 * A benchmark, not a test: bench/kernels/run.sh builds and runs it.
 *
 *   dense_backward N IC OC
 */
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHECK(x)                                                                              \
    do {                                                                                      \
        dnnl_status_t st_ = (x);                                                              \
        if (st_ != dnnl_success) {                                                            \
            fprintf(stderr, "oneDNN error %d at line %d\n", st_, __LINE__);                   \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t strm;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static float *filled(int64_t n, int mod) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    for (int64_t i = 0; i < n; i++) p[i] = (float)(i % mod) * 0.01f;
    return p;
}

/* Best of 3 repeats of the mean time of 10 calls, after 2 warm-up calls. */
static double time_it(dnnl_primitive_t prim, dnnl_exec_arg_t *args) {
    double best = 1e30;
    for (int i = 0; i < 2; i++) CHECK(dnnl_primitive_execute(prim, strm, 3, args));
    CHECK(dnnl_stream_wait(strm));
    for (int r = 0; r < 3; r++) {
        double t = now_ms();
        for (int i = 0; i < 10; i++) {
            CHECK(dnnl_primitive_execute(prim, strm, 3, args));
            CHECK(dnnl_stream_wait(strm));
        }
        double ms = (now_ms() - t) / 10;
        if (ms < best) best = ms;
    }
    return best;
}

static const char *impl(const_dnnl_primitive_desc_t pd) {
    const char *s = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s);
    return s;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s N IC OC\n", argv[0]);
        return 2;
    }
    int64_t n = atoll(argv[1]), ic = atoll(argv[2]), oc = atoll(argv[3]);
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    float *dy = filled(n * oc, 5), *w = filled(ic * oc, 3);
    float *dx_ip = filled(n * ic, 1), *dx_mm = filled(n * ic, 1);

    dnnl_memory_desc_t x_md, y_md, w_md, wt_md;
    dnnl_dims_t xd = {n, ic}, yd = {n, oc}, wd = {oc, ic};
    CHECK(dnnl_memory_desc_init_by_tag(&x_md, 2, xd, dnnl_f32, dnnl_nc));
    CHECK(dnnl_memory_desc_init_by_tag(&y_md, 2, yd, dnnl_f32, dnnl_nc));
    CHECK(dnnl_memory_desc_init_by_tag(&w_md, 2, wd, dnnl_f32, dnnl_io));
    CHECK(dnnl_memory_desc_init_by_tag(&wt_md, 2, wd, dnnl_f32, dnnl_ba));

    /* Inner product: backward data needs the forward primitive descriptor as a hint. */
    dnnl_inner_product_desc_t fd, bd;
    dnnl_primitive_desc_t fpd, bpd;
    dnnl_primitive_t ip;
    CHECK(dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &x_md, &w_md, NULL, &y_md));
    CHECK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    CHECK(dnnl_inner_product_backward_data_desc_init(&bd, &x_md, &w_md, &y_md));
    CHECK(dnnl_primitive_desc_create(&bpd, &bd, NULL, eng, fpd));
    CHECK(dnnl_primitive_create(&ip, bpd));
    dnnl_memory_t m_dy, m_w, m_dx, m_wt, m_dx2;
    CHECK(dnnl_memory_create(&m_dy, &y_md, eng, dy));
    CHECK(dnnl_memory_create(&m_w, &w_md, eng, w));
    CHECK(dnnl_memory_create(&m_dx, &x_md, eng, dx_ip));
    dnnl_exec_arg_t ip_args[3] = {
        {DNNL_ARG_DIFF_DST, m_dy}, {DNNL_ARG_WEIGHTS, m_w}, {DNNL_ARG_DIFF_SRC, m_dx}};

    /* Matmul: dy [n, oc] times w^T [oc, ic]. */
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t mpd;
    dnnl_primitive_t mm;
    CHECK(dnnl_matmul_desc_init(&md, &y_md, &wt_md, NULL, &x_md));
    CHECK(dnnl_primitive_desc_create(&mpd, &md, NULL, eng, NULL));
    CHECK(dnnl_primitive_create(&mm, mpd));
    CHECK(dnnl_memory_create(&m_wt, &wt_md, eng, w));
    CHECK(dnnl_memory_create(&m_dx2, &x_md, eng, dx_mm));
    dnnl_exec_arg_t mm_args[3] = {{DNNL_ARG_SRC, m_dy}, {DNNL_ARG_WEIGHTS, m_wt}, {DNNL_ARG_DST, m_dx2}};

    double t_ip = time_it(ip, ip_args), t_mm = time_it(mm, mm_args);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n * ic; i++) {
        worst = fmax(worst, fabs(dx_ip[i] - dx_mm[i]));
        scale = fmax(scale, fabs(dx_ip[i]));
    }
    printf("dense %ldx%ld, batch %ld: inner product %.2f ms (%s), matmul %.2f ms (%s), "
           "%.2fx; max difference %.2g of %.2g\n",
           (long)ic, (long)oc, (long)n, t_ip, impl(bpd), t_mm, impl(mpd), t_ip / t_mm, worst,
           scale);
    return worst <= 1e-4 * fmax(scale, 1.0) ? 0 : 1;
}
