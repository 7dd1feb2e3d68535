#!/usr/bin/env bash
# Names the CPU a speed figure was measured on: model, cores, the SIMD extensions that decide
# emolens' kernels (AVX2/FMA, AVX-512, VNNI, bf16, AMX), and any cap on oneDNN's instruction
# set (ONEDNN_MAX_CPU_ISA=AVX2 makes an AVX-512 machine run oneDNN's AVX2 kernels, as an
# AVX2-only CPU would; emolens' own Rust code and other programs are not capped). Benchmarks
# print this line beside their figures.
set -euo pipefail
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' \
  | grep -xE 'avx2|fma|avx512f|avx512_vnni|avx_vnni|avx512_bf16|amx_tile|amx_bf16|amx_int8' \
  | tr '\n' ' ' | sed 's/ $//')
cap=${ONEDNN_MAX_CPU_ISA:-${DNNL_MAX_CPU_ISA:-}}
echo "CPU: $model, $(nproc) cores; flags: ${flags:-none of avx2/avx512}; oneDNN ISA cap: ${cap:-none}"
