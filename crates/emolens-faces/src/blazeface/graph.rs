//! A small interpreter for the BlazeFace graphs converted by `tools/blazeface/convert.py`: the
//! TFLite operators those two networks use, on NHWC `f32` tensors with batch 1.
//!
//! The file format is documented in the converter: `b"EMBZ"`, `u32` version, `u32` header
//! length, a JSON header (tensors, constants, operators), then the constants' data.

use super::kernels;
use serde::Deserialize;

/// A network ready to run: constants widened to `f32` and laid out for the kernels. It is
/// fully convolutional, so it runs on any input size that is a multiple of
/// [`Graph::size_multiple`] (the heads' anchors follow the feature maps' sizes).
pub struct Graph {
    input: usize,
    input_shape: [usize; 3],
    regressors: usize,
    classificators: usize,
    /// Last axis of each tensor as converted (what a reshape keeps).
    last_dims: Vec<usize>,
    n_tensors: usize,
    steps: Vec<Step>,
    /// For each step, the activation tensors whose last reader it is (freed after it).
    frees: Vec<Vec<usize>>,
    size_multiple: usize,
}

/// An activation: data and `[H, W, C]` (reshaped heads: `[1, rows, columns]`).
type Value = (Vec<f32>, [usize; 3]);

#[derive(Deserialize)]
struct Header {
    input: usize,
    input_shape: Vec<usize>,
    outputs: Outputs,
    tensors: Vec<TensorInfo>,
    constants: Vec<ConstInfo>,
    ops: Vec<OpInfo>,
}

#[derive(Deserialize)]
struct Outputs {
    regressors: usize,
    classificators: usize,
}

#[derive(Deserialize)]
struct TensorInfo {
    shape: Vec<usize>,
}

#[derive(Deserialize)]
struct ConstInfo {
    tensor: usize,
    dtype: String,
    offset: usize,
    count: usize,
}

#[derive(Deserialize)]
struct OpInfo {
    op: String,
    inputs: Vec<i64>,
    outputs: Vec<usize>,
    #[serde(default)]
    options: Options,
}

#[derive(Deserialize, Default)]
struct Options {
    padding: Option<String>,
    stride_h: Option<usize>,
    stride_w: Option<usize>,
    dilation_h: Option<usize>,
    dilation_w: Option<usize>,
    depth_multiplier: Option<usize>,
    filter_h: Option<usize>,
    filter_w: Option<usize>,
    align_corners: Option<bool>,
    half_pixel_centers: Option<bool>,
    activation: Option<String>,
    axis: Option<i64>,
}

/// A fused activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    None,
    Relu,
    Relu6,
}

impl Act {
    fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("NONE") {
            "NONE" => Ok(Act::None),
            "RELU" => Ok(Act::Relu),
            "RELU6" => Ok(Act::Relu6),
            other => Err(format!("unsupported fused activation {other}")),
        }
    }

    pub fn apply(self, v: &mut [f32]) {
        match self {
            Act::None => {}
            Act::Relu => v.iter_mut().for_each(|x| *x = x.max(0.0)),
            Act::Relu6 => v.iter_mut().for_each(|x| *x = x.clamp(0.0, 6.0)),
        }
    }
}

/// Geometry of a windowed operator over an `[H, W, C]` input.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    /// Rows/columns of zero padding before the first input row/column (TFLite SAME: half the
    /// total, the extra one after).
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Window {
    fn new(
        in_h: usize,
        in_w: usize,
        k_h: usize,
        k_w: usize,
        stride_h: usize,
        stride_w: usize,
        same: bool,
    ) -> Self {
        let (out_h, out_w, pad_top, pad_left) = if same {
            let oh = in_h.div_ceil(stride_h);
            let ow = in_w.div_ceil(stride_w);
            let th = ((oh - 1) * stride_h + k_h).saturating_sub(in_h);
            let tw = ((ow - 1) * stride_w + k_w).saturating_sub(in_w);
            (oh, ow, th / 2, tw / 2)
        } else {
            (
                (in_h - k_h) / stride_h + 1,
                (in_w - k_w) / stride_w + 1,
                0,
                0,
            )
        };
        Window {
            in_h,
            in_w,
            out_h,
            out_w,
            k_h,
            k_w,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
        }
    }
}

/// Kernel size, strides and padding of a windowed operator; its [`Window`] follows from the
/// input size at run time.
#[derive(Debug, Clone, Copy)]
struct Geo {
    k_h: usize,
    k_w: usize,
    stride_h: usize,
    stride_w: usize,
    same: bool,
}

impl Geo {
    fn window(&self, in_h: usize, in_w: usize) -> Window {
        Window::new(
            in_h,
            in_w,
            self.k_h,
            self.k_w,
            self.stride_h,
            self.stride_w,
            self.same,
        )
    }
}

enum Step {
    /// Dense convolution; `weights` are `[KH][KW][I][O padded to 8]`.
    Conv {
        x: usize,
        out: usize,
        geo: Geo,
        cin: usize,
        cout: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        act: Act,
    },
    /// Depthwise convolution (multiplier 1); `weights` are `[KH][KW][C]`.
    Depthwise {
        x: usize,
        out: usize,
        geo: Geo,
        c: usize,
        weights: Vec<f32>,
        bias: Vec<f32>,
        act: Act,
    },
    MaxPool {
        x: usize,
        out: usize,
        geo: Geo,
    },
    Add {
        a: usize,
        b: usize,
        out: usize,
        act: Act,
    },
    Relu {
        x: usize,
        out: usize,
    },
    /// Zero padding of an `[H, W, C]` tensor: `(before, after)` per axis.
    Pad {
        x: usize,
        out: usize,
        pads: [(usize, usize); 3],
    },
    /// Upsampling by an integer factor (the ratio of the converted shapes).
    ResizeBilinear {
        x: usize,
        out: usize,
        factor: [usize; 2],
        half_pixel: bool,
        align_corners: bool,
    },
    /// Reshape to `[1, rows, last]`, or concatenation along the outermost non-unit axis: the
    /// data is copied in order.
    Copy {
        xs: Vec<usize>,
        out: usize,
        last: usize,
    },
}

const MAGIC: &[u8; 4] = b"EMBZ";

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = m as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

enum Const {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Graph {
    /// Parses a converted network.
    pub fn parse(bytes: &[u8]) -> Result<Graph, String> {
        if bytes.len() < 12 || &bytes[..4] != MAGIC {
            return Err("not an emolens BlazeFace file (bad magic)".into());
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let version = word(4);
        if version != 1 {
            return Err(format!("BlazeFace file version {version}, expected 1"));
        }
        let hlen = word(8) as usize;
        let blob_start = 12 + hlen;
        if bytes.len() < blob_start {
            return Err("BlazeFace file truncated in its header".into());
        }
        let header: Header = serde_json::from_slice(&bytes[12..blob_start])
            .map_err(|e| format!("BlazeFace header: {e}"))?;
        let blob = &bytes[blob_start..];

        let n = header.tensors.len();
        let mut consts: Vec<Option<Const>> = (0..n).map(|_| None).collect();
        for c in &header.constants {
            let width = if c.dtype == "f16" { 2 } else { 4 };
            let end = c.offset + c.count * width;
            let data = blob
                .get(c.offset..end)
                .ok_or_else(|| format!("constant of tensor {} is outside the file", c.tensor))?;
            let slot = consts
                .get_mut(c.tensor)
                .ok_or_else(|| format!("constant of unknown tensor {}", c.tensor))?;
            *slot = Some(match c.dtype.as_str() {
                "f16" => Const::F32(
                    data.chunks_exact(2)
                        .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                        .collect(),
                ),
                "f32" => Const::F32(
                    data.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                "i32" => Const::I32(
                    data.chunks_exact(4)
                        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                other => return Err(format!("unsupported constant type {other}")),
            });
        }
        let shapes: Vec<Vec<usize>> = header.tensors.iter().map(|t| t.shape.clone()).collect();
        let hwc = |t: usize| -> Result<[usize; 3], String> {
            match shapes.get(t).map(|s| s.as_slice()) {
                Some([1, h, w, c]) => Ok([*h, *w, *c]),
                other => Err(format!("tensor {t}: expected [1,H,W,C], got {other:?}")),
            }
        };
        let input_shape = match header.input_shape.as_slice() {
            [1, h, w, 3] => [*h, *w, 3],
            other => return Err(format!("input shape {other:?}, expected [1,H,W,3]")),
        };
        let fconst = |t: i64| -> Result<&Vec<f32>, String> {
            match consts.get(t as usize) {
                Some(Some(Const::F32(v))) => Ok(v),
                _ => Err(format!("tensor {t} should be a float constant")),
            }
        };
        let iconst = |t: i64| -> Result<&Vec<i32>, String> {
            match consts.get(t as usize) {
                Some(Some(Const::I32(v))) => Ok(v),
                _ => Err(format!("tensor {t} should be an integer constant")),
            }
        };

        let last_dim = |t: usize| shapes[t].last().copied().unwrap_or(1);
        // The deepest downsampling (input side over the smallest feature map): inputs must be a
        // multiple of it so the upsampled feature maps meet the ones they are added to.
        let activations: std::collections::HashSet<usize> = header
            .ops
            .iter()
            .flat_map(|o| o.outputs.iter().copied())
            .collect();
        let total_stride = shapes
            .iter()
            .enumerate()
            .filter(|(t, _)| activations.contains(t))
            .filter_map(|(_, s)| match s[..] {
                [1, h, w, _] if h > 0 && w > 0 => {
                    Some((input_shape[0] / h).max(input_shape[1] / w))
                }
                _ => None,
            })
            .max()
            .unwrap_or(1);
        let mut steps = Vec::with_capacity(header.ops.len());
        for op in &header.ops {
            let o = &op.options;
            let arg = |i: usize| -> Result<usize, String> {
                op.inputs
                    .get(i)
                    .filter(|&&t| t >= 0 && (t as usize) < n)
                    .map(|&t| t as usize)
                    .ok_or_else(|| format!("{}: missing input {i}", op.op))
            };
            let out = *op
                .outputs
                .first()
                .filter(|&&t| t < n)
                .ok_or_else(|| format!("{}: missing output", op.op))?;
            let act = Act::parse(o.activation.as_deref())?;
            let same = match o.padding.as_deref() {
                None | Some("SAME") => true,
                Some("VALID") => false,
                Some(p) => return Err(format!("{}: unsupported padding {p}", op.op)),
            };
            let (sh, sw) = (o.stride_h.unwrap_or(1), o.stride_w.unwrap_or(1));
            let geo = |k_h: usize, k_w: usize| Geo {
                k_h,
                k_w,
                stride_h: sh,
                stride_w: sw,
                same,
            };
            if o.dilation_h.unwrap_or(1) != 1 || o.dilation_w.unwrap_or(1) != 1 {
                return Err(format!("{}: dilated convolutions are not supported", op.op));
            }
            let step = match op.op.as_str() {
                "CONV_2D" => {
                    let x = arg(0)?;
                    let [_, _, cin] = hwc(x)?;
                    let kshape = &shapes[arg(1)?];
                    let [cout, kh, kw, kin] = kshape[..] else {
                        return Err(format!("conv kernel shape {kshape:?}"));
                    };
                    if kin != cin {
                        return Err(format!("conv kernel {kshape:?} on {cin} channels"));
                    }
                    let k = fconst(op.inputs[1])?;
                    let bias = match op.inputs.get(2) {
                        Some(&b) if b >= 0 => fconst(b)?.clone(),
                        _ => vec![0.0; cout],
                    };
                    let opad = cout.div_ceil(8) * 8;
                    // [O][KH][KW][I] -> [KH][KW][I][O padded]
                    let mut weights = vec![0.0f32; kh * kw * cin * opad];
                    for oc in 0..cout {
                        for y in 0..kh {
                            for xk in 0..kw {
                                for ic in 0..cin {
                                    weights[((y * kw + xk) * cin + ic) * opad + oc] =
                                        k[((oc * kh + y) * kw + xk) * cin + ic];
                                }
                            }
                        }
                    }
                    Step::Conv {
                        x,
                        out,
                        geo: geo(kh, kw),
                        cin,
                        cout,
                        weights,
                        bias,
                        act,
                    }
                }
                "DEPTHWISE_CONV_2D" => {
                    let x = arg(0)?;
                    let [_, _, c] = hwc(x)?;
                    if o.depth_multiplier.unwrap_or(1) != 1 {
                        return Err("depthwise multiplier other than 1".into());
                    }
                    let kshape = &shapes[arg(1)?];
                    let [1, kh, kw, kc] = kshape[..] else {
                        return Err(format!("depthwise kernel shape {kshape:?}"));
                    };
                    if kc != c {
                        return Err(format!("depthwise kernel {kshape:?} on {c} channels"));
                    }
                    let bias = match op.inputs.get(2) {
                        Some(&b) if b >= 0 => fconst(b)?.clone(),
                        _ => vec![0.0; c],
                    };
                    Step::Depthwise {
                        x,
                        out,
                        geo: geo(kh, kw),
                        c,
                        weights: fconst(op.inputs[1])?.clone(),
                        bias,
                        act,
                    }
                }
                "MAX_POOL_2D" => {
                    let x = arg(0)?;
                    hwc(x)?;
                    let (kh, kw) = (o.filter_h.unwrap_or(1), o.filter_w.unwrap_or(1));
                    if act != Act::None {
                        return Err("fused activation on a pool".into());
                    }
                    Step::MaxPool {
                        x,
                        out,
                        geo: geo(kh, kw),
                    }
                }
                "ADD" => {
                    let (a, b) = (arg(0)?, arg(1)?);
                    if shapes[a] != shapes[b] {
                        return Err(format!("ADD of {:?} and {:?}", shapes[a], shapes[b]));
                    }
                    Step::Add { a, b, out, act }
                }
                "RELU" => Step::Relu { x: arg(0)?, out },
                "PAD" => {
                    let x = arg(0)?;
                    hwc(x)?;
                    let p = iconst(op.inputs[1])?;
                    if p.len() != 8 || p[0] != 0 || p[1] != 0 || p.iter().any(|&v| v < 0) {
                        return Err(format!("unsupported paddings {p:?}"));
                    }
                    let u = |i: usize| p[i] as usize;
                    Step::Pad {
                        x,
                        out,
                        pads: [(u(2), u(3)), (u(4), u(5)), (u(6), u(7))],
                    }
                }
                "RESIZE_BILINEAR" => {
                    let x = arg(0)?;
                    let [h, w, _] = hwc(x)?;
                    let [oh, ow, _] = hwc(out)?;
                    if oh % h != 0 || ow % w != 0 {
                        return Err(format!(
                            "resize {h}x{w} -> {oh}x{ow} is no integer upsampling"
                        ));
                    }
                    Step::ResizeBilinear {
                        x,
                        out,
                        factor: [oh / h, ow / w],
                        half_pixel: o.half_pixel_centers.unwrap_or(false),
                        align_corners: o.align_corners.unwrap_or(false),
                    }
                }
                "RESHAPE" => Step::Copy {
                    xs: vec![arg(0)?],
                    out,
                    last: last_dim(out),
                },
                "CONCATENATION" => {
                    let xs: Vec<usize> = (0..op.inputs.len()).map(arg).collect::<Result<_, _>>()?;
                    // Copying in order is a concatenation when every axis before the joined one
                    // has size 1 (the BlazeFace heads: [1, anchors, k] along axis 1).
                    let rank = shapes[out].len() as i64;
                    let axis = o.axis.unwrap_or(0);
                    let axis = if axis < 0 { axis + rank } else { axis };
                    if !(0..rank).contains(&axis) {
                        return Err(format!("concatenation axis {axis} of rank {rank}"));
                    }
                    for &t in &xs {
                        let s = &shapes[t];
                        if s.len() as i64 != rank || s[..axis as usize].iter().any(|&d| d != 1) {
                            return Err(format!(
                                "unsupported concatenation of {s:?} on axis {axis}"
                            ));
                        }
                    }
                    Step::Copy {
                        xs,
                        out,
                        last: last_dim(out),
                    }
                }
                other => return Err(format!("unsupported operator {other}")),
            };
            steps.push(step);
        }

        // Free each activation after its last reader.
        let mut last = vec![usize::MAX; n];
        for (i, s) in steps.iter().enumerate() {
            for t in step_inputs(s) {
                last[t] = i;
            }
        }
        let keep = [header.outputs.regressors, header.outputs.classificators];
        let mut frees = vec![Vec::new(); steps.len()];
        for (t, &i) in last.iter().enumerate() {
            if i != usize::MAX && !keep.contains(&t) {
                frees[i].push(t);
            }
        }
        Ok(Graph {
            input: header.input,
            input_shape,
            regressors: header.outputs.regressors,
            classificators: header.outputs.classificators,
            last_dims: shapes
                .iter()
                .map(|s| s.last().copied().unwrap_or(1))
                .collect(),
            n_tensors: n,
            steps,
            frees,
            size_multiple: total_stride,
        })
    }

    /// `[H, W, 3]` of the input the network was trained on.
    pub fn input_shape(&self) -> [usize; 3] {
        self.input_shape
    }

    /// Input sides must be multiples of this (the product of the strides).
    pub fn size_multiple(&self) -> usize {
        self.size_multiple
    }

    /// Runs the network on an `[h, w, 3]` input (values -1..1; `h` and `w` multiples of
    /// [`Graph::size_multiple`]); returns the regressors (`anchors x 16`) and the score logits
    /// (`anchors`), anchors in the heads' order.
    pub fn run(&self, input: &[f32], h: usize, w: usize) -> (Vec<f32>, Vec<f32>) {
        assert_eq!(input.len(), h * w * 3, "BlazeFace input size");
        assert!(
            h % self.size_multiple == 0 && w % self.size_multiple == 0 && h > 0 && w > 0,
            "BlazeFace input {h}x{w} is not a multiple of {}",
            self.size_multiple
        );
        let mut vals: Vec<Option<Value>> = (0..self.n_tensors).map(|_| None).collect();
        vals[self.input] = Some((input.to_vec(), [h, w, 3]));
        for (step, frees) in self.steps.iter().zip(&self.frees) {
            let get = |t: usize| -> (&[f32], [usize; 3]) {
                let v = vals[t]
                    .as_ref()
                    .unwrap_or_else(|| panic!("BlazeFace tensor {t} read before it is written"));
                (&v.0, v.1)
            };
            let (out, value) = match step {
                Step::Conv {
                    x,
                    out,
                    geo,
                    cin,
                    cout,
                    weights,
                    bias,
                    act,
                } => {
                    let (src, [h, w, c]) = get(*x);
                    assert_eq!(c, *cin, "conv input channels");
                    let win = geo.window(h, w);
                    let mut y = vec![0.0f32; win.out_h * win.out_w * cout];
                    kernels::conv(src, &mut y, &win, *cin, *cout, weights, bias);
                    act.apply(&mut y);
                    (*out, (y, [win.out_h, win.out_w, *cout]))
                }
                Step::Depthwise {
                    x,
                    out,
                    geo,
                    c,
                    weights,
                    bias,
                    act,
                } => {
                    let (src, [h, w, _]) = get(*x);
                    let win = geo.window(h, w);
                    let mut y = vec![0.0f32; win.out_h * win.out_w * c];
                    kernels::depthwise(src, &mut y, &win, *c, weights, bias);
                    act.apply(&mut y);
                    (*out, (y, [win.out_h, win.out_w, *c]))
                }
                Step::MaxPool { x, out, geo } => {
                    let (src, [h, w, c]) = get(*x);
                    let win = geo.window(h, w);
                    let mut y = vec![0.0f32; win.out_h * win.out_w * c];
                    kernels::max_pool(src, &mut y, &win, c);
                    (*out, (y, [win.out_h, win.out_w, c]))
                }
                Step::Add { a, b, out, act } => {
                    let (sa, da) = get(*a);
                    let (sb, db) = get(*b);
                    assert_eq!(da, db, "ADD of different shapes");
                    let mut y = sa.to_vec();
                    for (v, &u) in y.iter_mut().zip(sb) {
                        *v += u;
                    }
                    act.apply(&mut y);
                    (*out, (y, da))
                }
                Step::Relu { x, out } => {
                    let (src, d) = get(*x);
                    let mut y = src.to_vec();
                    Act::Relu.apply(&mut y);
                    (*out, (y, d))
                }
                Step::Pad { x, out, pads } => {
                    let (src, [h, w, c]) = get(*x);
                    let (oh, ow, oc) = (
                        h + pads[0].0 + pads[0].1,
                        w + pads[1].0 + pads[1].1,
                        c + pads[2].0 + pads[2].1,
                    );
                    let mut y = vec![0.0f32; oh * ow * oc];
                    for yy in 0..h {
                        for xx in 0..w {
                            let d = ((yy + pads[0].0) * ow + xx + pads[1].0) * oc + pads[2].0;
                            let s = (yy * w + xx) * c;
                            y[d..d + c].copy_from_slice(&src[s..s + c]);
                        }
                    }
                    (*out, (y, [oh, ow, oc]))
                }
                Step::ResizeBilinear {
                    x,
                    out,
                    factor,
                    half_pixel,
                    align_corners,
                } => {
                    let (src, [h, w, c]) = get(*x);
                    let (oh, ow) = (h * factor[0], w * factor[1]);
                    let mut y = vec![0.0f32; oh * ow * c];
                    kernels::resize_bilinear(
                        src,
                        [h, w, c],
                        &mut y,
                        [oh, ow],
                        *half_pixel,
                        *align_corners,
                    );
                    (*out, (y, [oh, ow, c]))
                }
                Step::Copy { xs, out, last } => {
                    let mut y = Vec::new();
                    for &t in xs {
                        y.extend_from_slice(get(t).0);
                    }
                    let rows = y.len() / last;
                    (*out, (y, [1, rows, *last]))
                }
            };
            vals[out] = Some(value);
            for &t in frees {
                vals[t] = None;
            }
        }
        let take = |v: &mut Option<Value>| v.take().map(|(d, _)| d).unwrap_or_default();
        let regressors = take(&mut vals[self.regressors]);
        let scores = take(&mut vals[self.classificators]);
        debug_assert_eq!(self.last_dims[self.classificators], 1);
        (regressors, scores)
    }
}

fn step_inputs(s: &Step) -> Vec<usize> {
    match s {
        Step::Conv { x, .. }
        | Step::Depthwise { x, .. }
        | Step::MaxPool { x, .. }
        | Step::Relu { x, .. }
        | Step::Pad { x, .. }
        | Step::ResizeBilinear { x, .. } => vec![*x],
        Step::Add { a, b, .. } => vec![*a, *b],
        Step::Copy { xs, .. } => xs.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_widening_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn same_padding_matches_tflite() {
        // 128 -> 64 with a 5x5 stride-2 kernel: 3 rows of padding, 1 before and 2 after.
        let w = Window::new(128, 128, 5, 5, 2, 2, true);
        assert_eq!((w.out_h, w.pad_top), (64, 1));
        // 64 -> 32 with 3x3 stride 2: 1 row, after.
        let w = Window::new(64, 64, 3, 3, 2, 2, true);
        assert_eq!((w.out_h, w.pad_top), (32, 0));
        let w = Window::new(16, 16, 3, 3, 1, 1, true);
        assert_eq!((w.out_h, w.pad_top), (16, 1));
        let w = Window::new(16, 16, 1, 1, 1, 1, false);
        assert_eq!((w.out_h, w.pad_top), (16, 0));
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(Graph::parse(b"nope").is_err());
        assert!(Graph::parse(b"EMBZ\x02\0\0\0\0\0\0\0").is_err());
        assert!(Graph::parse(b"EMBZ\x01\0\0\0\xff\0\0\0{}").is_err());
    }
}
