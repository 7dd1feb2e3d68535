//! The BlazeFace operators' kernels on NHWC `f32` data (batch 1). Plain Rust written so the
//! compiler vectorises it over channels; on x86-64 CPUs with AVX2 and FMA the same code is
//! compiled a second time for them and chosen at run time.

use super::graph::Window;

/// `a * b + c`, fused where the instance is compiled for FMA (never a libm call elsewhere).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Defines `pub fn $name(args)` that runs `$imp::<true>` in an AVX2+FMA-compiled copy when the
/// CPU has them, `$imp::<false>` otherwise.
macro_rules! dispatch {
    ($(#[$doc:meta])* $name:ident, $fast:ident, $imp:ident, ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if has_avx2_fma() {
                // SAFETY: the CPU has the features `$fast` is compiled for (checked above).
                unsafe { $fast($($arg),*) };
                return;
            }
            $imp::<false>($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $fast($($arg: $ty),*) {
            $imp::<true>($($arg),*)
        }
    };
}

dispatch!(
    /// Dense convolution: `x` is `[in_h][in_w][cin]`, `w` is `[KH][KW][cin][O padded to 8]`,
    /// `y` is `[out_h][out_w][cout]`.
    conv, conv_avx2, conv_impl,
    (x: &[f32], y: &mut [f32], win: &Window, cin: usize, cout: usize, w: &[f32], bias: &[f32])
);

dispatch!(
    /// Depthwise convolution (multiplier 1): `w` is `[KH][KW][c]`.
    depthwise, depthwise_avx2, depthwise_impl,
    (x: &[f32], y: &mut [f32], win: &Window, c: usize, w: &[f32], bias: &[f32])
);

#[inline(always)]
fn conv_impl<const FMA: bool>(
    x: &[f32],
    y: &mut [f32],
    win: &Window,
    cin: usize,
    cout: usize,
    w: &[f32],
    bias: &[f32],
) {
    let pointwise = win.k_h == 1
        && win.k_w == 1
        && win.stride_h == 1
        && win.stride_w == 1
        && win.pad_top == 0
        && win.pad_left == 0;
    if pointwise {
        pointwise_impl::<FMA>(x, y, cin, cout, w, bias);
        return;
    }
    let opad = cout.div_ceil(8) * 8;
    let mut acc = vec![0.0f32; opad];
    for oy in 0..win.out_h {
        for ox in 0..win.out_w {
            acc[..cout].copy_from_slice(&bias[..cout]);
            acc[cout..].fill(0.0);
            for ky in 0..win.k_h {
                let Some(iy) = (oy * win.stride_h + ky).checked_sub(win.pad_top) else {
                    continue;
                };
                if iy >= win.in_h {
                    continue;
                }
                for kx in 0..win.k_w {
                    let Some(ix) = (ox * win.stride_w + kx).checked_sub(win.pad_left) else {
                        continue;
                    };
                    if ix >= win.in_w {
                        continue;
                    }
                    let px = &x[(iy * win.in_w + ix) * cin..][..cin];
                    let taps = &w[(ky * win.k_w + kx) * cin * opad..][..cin * opad];
                    for (&a, row) in px.iter().zip(taps.chunks_exact(opad)) {
                        for (s, &k) in acc.iter_mut().zip(row) {
                            *s = madd::<FMA>(a, k, *s);
                        }
                    }
                }
            }
            let at = (oy * win.out_w + ox) * cout;
            y[at..at + cout].copy_from_slice(&acc[..cout]);
        }
    }
}

/// 1x1 convolution, stride 1: a `[pixels][cin] x [cin][cout]` product. Blocks of 8 pixels by
/// 8 output channels are accumulated in registers.
#[inline(always)]
fn pointwise_impl<const FMA: bool>(
    x: &[f32],
    y: &mut [f32],
    cin: usize,
    cout: usize,
    w: &[f32],
    bias: &[f32],
) {
    const PB: usize = 8;
    let opad = cout.div_ceil(8) * 8;
    let pixels = x.len() / cin;
    let mut b8 = vec![0.0f32; opad];
    b8[..cout].copy_from_slice(&bias[..cout]);
    let mut p = 0;
    while p < pixels {
        let pb = PB.min(pixels - p);
        // Rows past the end repeat the last pixel; their sums are not stored.
        let rows: [&[f32]; PB] = std::array::from_fn(|q| &x[(p + q.min(pb - 1)) * cin..][..cin]);
        for o0 in (0..opad).step_by(8) {
            let init: [f32; 8] = b8[o0..o0 + 8].try_into().expect("8 lanes");
            let mut acc = [init; PB];
            for i in 0..cin {
                let k: [f32; 8] = w[i * opad + o0..i * opad + o0 + 8]
                    .try_into()
                    .expect("8 lanes");
                for (lanes, row) in acc.iter_mut().zip(&rows) {
                    let a = row[i];
                    for (s, &kv) in lanes.iter_mut().zip(&k) {
                        *s = madd::<FMA>(a, kv, *s);
                    }
                }
            }
            let n = 8.min(cout - o0);
            for (q, a) in acc.iter().enumerate().take(pb) {
                let at = (p + q) * cout + o0;
                y[at..at + n].copy_from_slice(&a[..n]);
            }
        }
        p += pb;
    }
}

#[inline(always)]
fn depthwise_impl<const FMA: bool>(
    x: &[f32],
    y: &mut [f32],
    win: &Window,
    c: usize,
    w: &[f32],
    bias: &[f32],
) {
    for oy in 0..win.out_h {
        for ox in 0..win.out_w {
            let acc = &mut y[(oy * win.out_w + ox) * c..][..c];
            acc.copy_from_slice(&bias[..c]);
            for ky in 0..win.k_h {
                let Some(iy) = (oy * win.stride_h + ky).checked_sub(win.pad_top) else {
                    continue;
                };
                if iy >= win.in_h {
                    continue;
                }
                for kx in 0..win.k_w {
                    let Some(ix) = (ox * win.stride_w + kx).checked_sub(win.pad_left) else {
                        continue;
                    };
                    if ix >= win.in_w {
                        continue;
                    }
                    let px = &x[(iy * win.in_w + ix) * c..][..c];
                    let k = &w[(ky * win.k_w + kx) * c..][..c];
                    for ((s, &a), &b) in acc.iter_mut().zip(px).zip(k) {
                        *s = madd::<FMA>(a, b, *s);
                    }
                }
            }
        }
    }
}

/// Max pooling; padded positions are not candidates (TFLite's rule).
pub fn max_pool(x: &[f32], y: &mut [f32], win: &Window, c: usize) {
    for oy in 0..win.out_h {
        for ox in 0..win.out_w {
            let out = &mut y[(oy * win.out_w + ox) * c..][..c];
            out.fill(f32::NEG_INFINITY);
            for ky in 0..win.k_h {
                let Some(iy) = (oy * win.stride_h + ky).checked_sub(win.pad_top) else {
                    continue;
                };
                if iy >= win.in_h {
                    continue;
                }
                for kx in 0..win.k_w {
                    let Some(ix) = (ox * win.stride_w + kx).checked_sub(win.pad_left) else {
                        continue;
                    };
                    if ix >= win.in_w {
                        continue;
                    }
                    let px = &x[(iy * win.in_w + ix) * c..][..c];
                    for (m, &v) in out.iter_mut().zip(px) {
                        *m = m.max(v);
                    }
                }
            }
        }
    }
}

/// Bilinear resize of `[h][w][c]` to `[oh][ow][c]` as TFLite computes it.
#[allow(clippy::needless_range_loop)] // four corner rows indexed together
pub fn resize_bilinear(
    x: &[f32],
    [h, w, c]: [usize; 3],
    y: &mut [f32],
    [oh, ow]: [usize; 2],
    half_pixel: bool,
    align_corners: bool,
) {
    let scale = |i: usize, o: usize| {
        if align_corners && o > 1 {
            (i - 1) as f32 / (o - 1) as f32
        } else {
            i as f32 / o as f32
        }
    };
    let (sy, sx) = (scale(h, oh), scale(w, ow));
    // (lower, upper, weight of upper) per output coordinate.
    let coords = |o: usize, s: f32, n: usize| -> (usize, usize, f32) {
        let v = if half_pixel {
            (o as f32 + 0.5) * s - 0.5
        } else {
            o as f32 * s
        };
        let lo = (v.floor() as i64).max(0) as usize;
        let hi = ((v.ceil() as i64).max(0) as usize).min(n - 1);
        (lo, hi, v - lo as f32)
    };
    for oy in 0..oh {
        let (y0, y1, fy) = coords(oy, sy, h);
        for ox in 0..ow {
            let (x0, x1, fx) = coords(ox, sx, w);
            let at = |yy: usize, xx: usize| &x[(yy * w + xx) * c..][..c];
            let (a, b, cc, d) = (at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1));
            let out = &mut y[(oy * ow + ox) * c..][..c];
            for k in 0..c {
                let top = a[k] + (b[k] - a[k]) * fx;
                let bottom = cc[k] + (d[k] - cc[k]) * fx;
                out[k] = top + (bottom - top) * fy;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // the reference sums index like the formulas
mod tests {
    use super::*;

    /// The obvious convolution, for comparison.
    fn reference_conv(
        x: &[f32],
        win: &Window,
        cin: usize,
        cout: usize,
        k: &[f32], // [O][KH][KW][I], TFLite's layout
        bias: &[f32],
    ) -> Vec<f32> {
        let mut y = vec![0.0; win.out_h * win.out_w * cout];
        for oy in 0..win.out_h {
            for ox in 0..win.out_w {
                for o in 0..cout {
                    let mut s = bias[o] as f64;
                    for ky in 0..win.k_h {
                        for kx in 0..win.k_w {
                            let iy = (oy * win.stride_h + ky) as i64 - win.pad_top as i64;
                            let ix = (ox * win.stride_w + kx) as i64 - win.pad_left as i64;
                            if iy < 0 || ix < 0 || iy >= win.in_h as i64 || ix >= win.in_w as i64 {
                                continue;
                            }
                            for i in 0..cin {
                                s += x[((iy as usize) * win.in_w + ix as usize) * cin + i] as f64
                                    * k[((o * win.k_h + ky) * win.k_w + kx) * cin + i] as f64;
                            }
                        }
                    }
                    y[(oy * win.out_w + ox) * cout + o] = s as f32;
                }
            }
        }
        y
    }

    fn pseudo(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn pack(k: &[f32], cout: usize, kh: usize, kw: usize, cin: usize) -> Vec<f32> {
        let opad = cout.div_ceil(8) * 8;
        let mut w = vec![0.0; kh * kw * cin * opad];
        for o in 0..cout {
            for t in 0..kh * kw {
                for i in 0..cin {
                    w[(t * cin + i) * opad + o] = k[(o * kh * kw + t) * cin + i];
                }
            }
        }
        w
    }

    #[test]
    fn convolutions_match_the_obvious_sums() {
        // (in_h, in_w, k, stride, cin, cout, same): first layers, pointwise with odd sizes.
        for &(h, w, k, s, cin, cout, same) in &[
            (17usize, 13usize, 5usize, 2usize, 3usize, 24usize, true),
            (9, 9, 3, 1, 4, 5, true),
            (11, 7, 1, 1, 28, 37, false),
            (3, 5, 1, 1, 2, 2, false),
        ] {
            let win = Window {
                in_h: h,
                in_w: w,
                out_h: if same { h.div_ceil(s) } else { (h - k) / s + 1 },
                out_w: if same { w.div_ceil(s) } else { (w - k) / s + 1 },
                k_h: k,
                k_w: k,
                stride_h: s,
                stride_w: s,
                pad_top: if same {
                    ((h.div_ceil(s) - 1) * s + k).saturating_sub(h) / 2
                } else {
                    0
                },
                pad_left: if same {
                    ((w.div_ceil(s) - 1) * s + k).saturating_sub(w) / 2
                } else {
                    0
                },
            };
            let x = pseudo(h * w * cin, 1);
            let kern = pseudo(cout * k * k * cin, 2);
            let bias = pseudo(cout, 3);
            let want = reference_conv(&x, &win, cin, cout, &kern, &bias);
            let mut got = vec![0.0; want.len()];
            conv(
                &x,
                &mut got,
                &win,
                cin,
                cout,
                &pack(&kern, cout, k, k, cin),
                &bias,
            );
            let mut slow = vec![0.0; want.len()];
            conv_impl::<false>(
                &x,
                &mut slow,
                &win,
                cin,
                cout,
                &pack(&kern, cout, k, k, cin),
                &bias,
            );
            for (i, ((a, b), c)) in got.iter().zip(&want).zip(&slow).enumerate() {
                assert!(
                    (a - b).abs() < 1e-4 && (c - b).abs() < 1e-4,
                    "{h}x{w} k{k}: [{i}] {a} {c} vs {b}"
                );
            }
        }
    }

    #[test]
    fn depthwise_matches_the_obvious_sums() {
        let (h, w, c) = (10usize, 7usize, 13usize);
        for (s, k) in [(1usize, 3usize), (2, 3), (2, 5)] {
            let oh = h.div_ceil(s);
            let ow = w.div_ceil(s);
            let win = Window {
                in_h: h,
                in_w: w,
                out_h: oh,
                out_w: ow,
                k_h: k,
                k_w: k,
                stride_h: s,
                stride_w: s,
                pad_top: ((oh - 1) * s + k).saturating_sub(h) / 2,
                pad_left: ((ow - 1) * s + k).saturating_sub(w) / 2,
            };
            let x = pseudo(h * w * c, 4);
            let kern = pseudo(k * k * c, 5);
            let bias = pseudo(c, 6);
            let mut got = vec![0.0; oh * ow * c];
            depthwise(&x, &mut got, &win, c, &kern, &bias);
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let mut sum = bias[ch];
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as i64 - win.pad_top as i64;
                                let ix = (ox * s + kx) as i64 - win.pad_left as i64;
                                if iy >= 0 && ix >= 0 && iy < h as i64 && ix < w as i64 {
                                    sum += x[((iy as usize) * w + ix as usize) * c + ch]
                                        * kern[(ky * k + kx) * c + ch];
                                }
                            }
                        }
                        let v = got[(oy * ow + ox) * c + ch];
                        assert!(
                            (v - sum).abs() < 1e-4,
                            "s{s} k{k} ({oy},{ox},{ch}): {v} vs {sum}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn half_pixel_resize_doubles_like_tflite() {
        // 2x upsampling of [0, 1] with half-pixel centres: 0, 0.25, 0.75, 1.
        let mut y = vec![0.0; 4];
        resize_bilinear(&[0.0, 1.0], [1, 2, 1], &mut y, [1, 4], true, false);
        assert_eq!(y, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn max_pool_takes_the_window_maximum() {
        let win = Window {
            in_h: 2,
            in_w: 4,
            out_h: 1,
            out_w: 2,
            k_h: 2,
            k_w: 2,
            stride_h: 2,
            stride_w: 2,
            pad_top: 0,
            pad_left: 0,
        };
        let x = [1.0, -1.0, 5.0, 0.0, 3.0, 2.0, -7.0, 4.0];
        let mut y = vec![0.0; 2];
        max_pool(&x, &mut y, &win, 1);
        assert_eq!(y, vec![3.0, 5.0]);
    }
}
