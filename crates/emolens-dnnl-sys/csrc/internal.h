/*
 * internal.h: what the shim's C files share and nobody else sees: the process-wide engine, the
 * status-check macro, and the helpers that wrap user buffers as oneDNN memory and run a
 * primitive or a reorder once. The helpers are static inline, so each file keeps its own copy
 * and none is exported from the library.
 */
#ifndef EMOLENS_DNNL_INTERNAL_H
#define EMOLENS_DNNL_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "emolens_dnnl.h"

/* The CPU engine every primitive and memory object is made on (emo_dnnl_init, common.c). */
extern dnnl_engine_t emo_engine __attribute__((visibility("hidden")));

#define CHECK(x)                                                                              \
    do {                                                                                      \
        dnnl_status_t s_ = (x);                                                               \
        if (s_ != dnnl_success) return s_;                                                    \
    } while (0)

/* A user buffer wrapped as oneDNN memory, destroyed after execution. */
static inline dnnl_status_t wrap(dnnl_memory_t *m, const dnnl_memory_desc_t *md, const void *ptr) {
    return dnnl_memory_create(m, md, emo_engine, (void *)ptr);
}

typedef struct {
    int n;
    dnnl_exec_arg_t a[12];
} args_t;

static inline void arg(args_t *args, int which, dnnl_memory_t m) {
    args->a[args->n].arg = which;
    args->a[args->n].memory = m;
    args->n++;
}

static inline void free_args(args_t *args) {
    for (int i = 0; i < args->n; i++)
        if (args->a[i].memory) dnnl_memory_destroy(args->a[i].memory);
    args->n = 0;
}

static inline dnnl_status_t run(dnnl_primitive_t p, args_t *args) {
    dnnl_stream_t stream;
    dnnl_status_t s = dnnl_stream_create(&stream, emo_engine, dnnl_stream_default_flags);
    if (s == dnnl_success) {
        s = dnnl_primitive_execute(p, stream, args->n, args->a);
        if (s == dnnl_success) s = dnnl_stream_wait(stream);
        dnnl_stream_destroy(stream);
    }
    free_args(args);
    return s;
}

/* Reorder `from` (desc `from_md`) into `to` (desc `to_md`). */
static inline dnnl_status_t reorder(const dnnl_memory_desc_t *from_md, const void *from,
                             const dnnl_memory_desc_t *to_md, void *to) {
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, from_md, emo_engine, to_md, emo_engine, NULL));
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

#endif /* EMOLENS_DNNL_INTERNAL_H */
