/*
 * common.c: the library and the CPU: the process-wide engine (emo_dnnl_init), the per-thread
 * OpenMP thread count, and what oneDNN's kernels can use on this CPU. See emolens_dnnl.h.
 */
#include <pthread.h>

#include "internal.h"

dnnl_engine_t emo_engine = NULL;
static pthread_mutex_t g_engine_lock = PTHREAD_MUTEX_INITIALIZER;

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
    if (!emo_engine) status = dnnl_engine_create(&emo_engine, dnnl_cpu, 0);
    pthread_mutex_unlock(&g_engine_lock);
    return status;
}

