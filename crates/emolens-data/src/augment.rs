//! Image augmentation on planar u8 `C x H x W` pixels, the form the training cache keeps.
//!
//! [`AugmentConfig`] holds ranges; [`AugmentConfig::sample`] draws one concrete
//! [`AugmentParams`] from a seeded RNG; [`apply_augment`] turns params + source pixels into the
//! augmented pixels, deterministically (so a balance manifest that stores params regenerates the
//! exact pixels). The geometry follows Keras' `ImageDataGenerator` (rotation, shift, shear and
//! zoom composed into one affine map about the image centre, bilinear sampling, a fill mode for
//! pixels mapped from outside the image). [`DegradeConfig`] adds what separates a clean
//! training crop from a face found in a customer's photo or webcam frame: gamma, blur, sensor
//! noise, JPEG re-compression and random erasing (occlusion), applied after the geometry.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// How pixels that map from outside the source image are filled (Keras `fill_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillMode {
    /// Repeat the edge pixel (`aaaa|abcd|dddd`), Keras' default.
    #[default]
    Nearest,
    /// Mirror at the edge (`dcba|abcd|dcba`).
    Reflect,
    /// Tile the image (`abcd|abcd|abcd`).
    Wrap,
    /// Black (value 0), Keras' `constant` with `cval=0`.
    Constant,
}

/// Ranges to draw augmentations from. Serialisable so it can go into run configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Flip left-right with probability 1/2.
    pub hflip: bool,
    /// Rotation drawn from `[-rotation_deg, rotation_deg]` degrees.
    pub rotation_deg: f32,
    /// Horizontal shift drawn from `[-width_shift, width_shift]`, as a fraction of the width.
    pub width_shift: f32,
    /// Vertical shift drawn from `[-height_shift, height_shift]`, as a fraction of the height.
    pub height_shift: f32,
    /// Zoom factors drawn independently per axis from `[1 - zoom, 1 + zoom]` (Keras `zoom_range`).
    pub zoom: f32,
    /// Shear angle drawn from `[-shear_deg, shear_deg]` degrees (Keras `shear_range`, which is in
    /// degrees).
    #[serde(default)]
    pub shear_deg: f32,
    /// Brightness factor drawn from `[lo, hi]` (pixels are multiplied by it).
    pub brightness: Option<(f32, f32)>,
    /// Contrast factor drawn from `[1 - contrast, 1 + contrast]` (deviation from the image mean
    /// is scaled by it).
    pub contrast: f32,
    pub fill: FillMode,
    /// Domain-gap degradations (off in configs saved before they existed).
    #[serde(default)]
    pub degrade: DegradeConfig,
}

/// Degradations against the gaps between training crops and production faces. Each is off at
/// its zero value. Probabilities are per image; strengths are drawn uniformly up to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DegradeConfig {
    /// Gamma drawn log-uniformly from `[1 / (1 + gamma), 1 + gamma]` (`v' = 255 (v/255)^g`):
    /// under- and over-exposed webcams.
    pub gamma: f32,
    /// Probability of a Gaussian blur with sigma drawn from `[0.3, blur_sigma]` pixels (at the
    /// model's input size): out-of-focus and upscaled small faces.
    pub blur_prob: f32,
    pub blur_sigma: f32,
    /// Probability of additive Gaussian noise with a standard deviation drawn from
    /// `[1, noise_std]` (0-255 scale): sensor noise in dim rooms.
    pub noise_prob: f32,
    pub noise_std: f32,
    /// Probability of a JPEG round trip at a quality drawn from `[jpeg_quality_min, 95]`.
    pub jpeg_prob: f32,
    pub jpeg_quality_min: u8,
    /// Probability of erasing one rectangle (2-20 % of the image, aspect 0.3-3.3) with noise
    /// (Zhong et al. 2017): hands, glasses, microphones in front of the face.
    pub erase_prob: f32,
}

impl DegradeConfig {
    /// The `wild` preset's degradations (emolens' own choice).
    pub fn wild() -> Self {
        DegradeConfig {
            gamma: 0.4,
            blur_prob: 0.2,
            blur_sigma: 1.2,
            noise_prob: 0.2,
            noise_std: 8.0,
            jpeg_prob: 0.25,
            jpeg_quality_min: 30,
            erase_prob: 0.25,
        }
    }

    fn is_none(&self) -> bool {
        self.gamma == 0.0
            && self.blur_prob == 0.0
            && self.noise_prob == 0.0
            && self.jpeg_prob == 0.0
            && self.erase_prob == 0.0
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig::none()
    }
}

impl AugmentConfig {
    /// No augmentation at all.
    pub fn none() -> Self {
        AugmentConfig {
            hflip: false,
            rotation_deg: 0.0,
            width_shift: 0.0,
            height_shift: 0.0,
            zoom: 0.0,
            shear_deg: 0.0,
            brightness: None,
            contrast: 0.0,
            fill: FillMode::Nearest,
            degrade: DegradeConfig::default(),
        }
    }

    /// The original design's training-time `ImageDataGenerator` settings.
    ///
    /// Found in the original project (public GitHub `DeusNexus/iu-emotion-classification-tensorflow`,
    /// `notebooks/model_training_iterative.ipynb` at commit
    /// `66820e204090ec4cc473e33729345b8d96e21733`, cell 2, "Data Augmentation for Training Set"):
    /// `ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)`.
    /// No rotation, shift, brightness or contrast; Keras' default `fill_mode='nearest'`. Keras'
    /// `shear_range` is in degrees, so 0.2 is a 0.2-degree shear. (`rescale` is normalisation,
    /// which the model file's [`emolens_core::Normalisation`] does, not augmentation.)
    pub fn original_preset() -> Self {
        AugmentConfig {
            hflip: true,
            zoom: 0.2,
            shear_deg: 0.2,
            fill: FillMode::Nearest,
            ..AugmentConfig::none()
        }
    }

    /// The original design's settings for generating the extra images of its balanced datasets.
    ///
    /// From the same repository, `notebooks/4_balanced_emotions.ipynb` (commit
    /// `03f61f79c2a068a9834c35b5932148d94dd78196`), the generator that filled classes up to
    /// 10,000: `ImageDataGenerator(rotation_range=40, width_shift_range=0.2,
    /// height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
    /// fill_mode='nearest')`.
    pub fn original_balance_preset() -> Self {
        AugmentConfig {
            hflip: true,
            rotation_deg: 40.0,
            width_shift: 0.2,
            height_shift: 0.2,
            zoom: 0.2,
            shear_deg: 0.2,
            fill: FillMode::Nearest,
            ..AugmentConfig::none()
        }
    }

    /// A sensible modern FER preset (emolens' own choice, not the original's): flips, small
    /// rotations (10 degrees), 10 % shifts and zoom, and mild brightness/contrast jitter. Faces
    /// are aligned crops, so large rotations and shifts mostly add label noise.
    pub fn standard() -> Self {
        AugmentConfig {
            hflip: true,
            rotation_deg: 10.0,
            width_shift: 0.1,
            height_shift: 0.1,
            zoom: 0.1,
            shear_deg: 0.0,
            brightness: Some((0.8, 1.2)),
            contrast: 0.2,
            fill: FillMode::Nearest,
            degrade: DegradeConfig::default(),
        }
    }

    /// `standard` plus the domain-gap degradations of [`DegradeConfig::wild`]: for models that
    /// must read faces found in customers' photos and webcam frames, not only clean crops.
    pub fn wild() -> Self {
        AugmentConfig {
            degrade: DegradeConfig::wild(),
            ..Self::standard()
        }
    }

    /// A preset by name: `none`, `original`, `original-balance`, `standard`, `wild`.
    pub fn preset(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "none" | "off" => Some(Self::none()),
            "original" => Some(Self::original_preset()),
            "original-balance" => Some(Self::original_balance_preset()),
            "standard" => Some(Self::standard()),
            "wild" => Some(Self::wild()),
            _ => None,
        }
    }

    /// Checks the ranges are usable (finite, non-negative, factors positive).
    pub fn validate(&self) -> Result<(), String> {
        let nonneg = [
            ("rotation_deg", self.rotation_deg),
            ("width_shift", self.width_shift),
            ("height_shift", self.height_shift),
            ("zoom", self.zoom),
            ("shear_deg", self.shear_deg),
            ("contrast", self.contrast),
        ];
        for (name, v) in nonneg {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        if self.zoom >= 1.0 {
            return Err(format!(
                "zoom must be below 1 (factors 1 +- zoom), got {}",
                self.zoom
            ));
        }
        if self.contrast >= 1.0 {
            return Err(format!("contrast must be below 1, got {}", self.contrast));
        }
        let d = &self.degrade;
        for (name, v) in [
            ("gamma", d.gamma),
            ("blur_sigma", d.blur_sigma),
            ("noise_std", d.noise_std),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        for (name, v) in [
            ("blur_prob", d.blur_prob),
            ("noise_prob", d.noise_prob),
            ("jpeg_prob", d.jpeg_prob),
            ("erase_prob", d.erase_prob),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be a probability in [0, 1], got {v}"));
            }
        }
        if d.jpeg_prob > 0.0 && !(1..=95).contains(&d.jpeg_quality_min) {
            return Err(format!(
                "jpeg_quality_min must be in 1..=95, got {}",
                d.jpeg_quality_min
            ));
        }
        if let Some((lo, hi)) = self.brightness {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
                return Err(format!(
                    "brightness range must satisfy 0 < lo <= hi, got ({lo}, {hi})"
                ));
            }
        }
        Ok(())
    }

    /// True when the config never changes a pixel.
    pub fn is_none(&self) -> bool {
        !self.hflip
            && self.rotation_deg == 0.0
            && self.width_shift == 0.0
            && self.height_shift == 0.0
            && self.zoom == 0.0
            && self.shear_deg == 0.0
            && self.brightness.is_none()
            && self.contrast == 0.0
            && self.degrade.is_none()
    }

    /// Draws one concrete augmentation. With a seeded `rand_chacha::ChaCha8Rng` the draws are
    /// the same on every platform.
    pub fn sample(&self, rng: &mut impl Rng) -> AugmentParams {
        fn sym(rng: &mut impl Rng, r: f32) -> f32 {
            if r > 0.0 {
                rng.random_range(-r..=r)
            } else {
                0.0
            }
        }
        let flip = self.hflip && rng.random_bool(0.5);
        let rotation_deg = sym(rng, self.rotation_deg);
        let shift_x = sym(rng, self.width_shift);
        let shift_y = sym(rng, self.height_shift);
        let shear_deg = sym(rng, self.shear_deg);
        let (zoom_x, zoom_y) = if self.zoom > 0.0 {
            (1.0 + sym(rng, self.zoom), 1.0 + sym(rng, self.zoom))
        } else {
            (1.0, 1.0)
        };
        let brightness = match self.brightness {
            Some((lo, hi)) if hi > lo => rng.random_range(lo..=hi),
            Some((lo, _)) => lo,
            None => 1.0,
        };
        let contrast = 1.0 + sym(rng, self.contrast);
        // Drawn after the original fields and only when enabled, so configs without
        // degradations draw exactly the numbers they always did.
        let degrade = if self.degrade.is_none() {
            Degrade::default()
        } else {
            self.degrade.sample(rng)
        };
        AugmentParams {
            flip,
            rotation_deg,
            shift_x,
            shift_y,
            zoom_x,
            zoom_y,
            shear_deg,
            brightness,
            contrast,
            fill: self.fill,
            degrade,
        }
    }
}

impl DegradeConfig {
    fn sample(&self, rng: &mut impl Rng) -> Degrade {
        let mut hit = |p: f32| p > 0.0 && rng.random::<f32>() < p;
        let (blur, noise, jpeg, erase) = (
            hit(self.blur_prob),
            hit(self.noise_prob),
            hit(self.jpeg_prob),
            hit(self.erase_prob),
        );
        let gamma = if self.gamma > 0.0 {
            let l = (1.0 + self.gamma).ln();
            rng.random_range(-l..=l).exp()
        } else {
            1.0
        };
        let blur_sigma = if blur && self.blur_sigma > 0.3 {
            rng.random_range(0.3..=self.blur_sigma)
        } else if blur {
            self.blur_sigma
        } else {
            0.0
        };
        let noise_std = if noise && self.noise_std > 1.0 {
            rng.random_range(1.0..=self.noise_std)
        } else if noise {
            self.noise_std
        } else {
            0.0
        };
        let jpeg_quality = if jpeg {
            rng.random_range(self.jpeg_quality_min.clamp(1, 95)..=95)
        } else {
            0
        };
        let erase = erase.then(|| {
            let area = rng.random_range(0.02f32..=0.2);
            let aspect = rng.random_range(0.3f32.ln()..=3.3f32.ln()).exp();
            let (ew, eh) = (
                (area * aspect).sqrt().min(1.0),
                (area / aspect).sqrt().min(1.0),
            );
            let x = rng.random_range(0.0..=1.0 - ew);
            let y = rng.random_range(0.0..=1.0 - eh);
            [x, y, ew, eh]
        });
        Degrade {
            gamma,
            blur_sigma,
            noise_std,
            jpeg_quality,
            erase,
            seed: rng.random(),
        }
    }
}

/// One concrete draw of [`DegradeConfig`] (all identity by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Degrade {
    pub gamma: f32,
    /// 0: no blur.
    pub blur_sigma: f32,
    /// 0: no noise.
    pub noise_std: f32,
    /// 0: no JPEG round trip.
    pub jpeg_quality: u8,
    /// The erased rectangle: x, y, width, height as fractions of the image.
    pub erase: Option<[f32; 4]>,
    /// Seeds the noise and the erased rectangle's fill.
    pub seed: u64,
}

impl Default for Degrade {
    fn default() -> Self {
        Degrade {
            gamma: 1.0,
            blur_sigma: 0.0,
            noise_std: 0.0,
            jpeg_quality: 0,
            erase: None,
            seed: 0,
        }
    }
}

impl Degrade {
    fn is_identity(&self) -> bool {
        self.gamma == 1.0
            && self.blur_sigma == 0.0
            && self.noise_std == 0.0
            && self.jpeg_quality == 0
            && self.erase.is_none()
    }

    /// Applies the draw to planar u8 `channels x h x w` pixels in place: gamma, blur, noise,
    /// JPEG, erasing, in that order (the order a camera and an upload pipeline degrade a face).
    fn apply(&self, px: &mut [u8], channels: usize, h: usize, w: usize) {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
        if self.gamma != 1.0 {
            let lut: Vec<u8> = (0..256)
                .map(|v| {
                    (255.0 * (v as f32 / 255.0).powf(self.gamma) + 0.5).clamp(0.0, 255.0) as u8
                })
                .collect();
            px.iter_mut().for_each(|v| *v = lut[*v as usize]);
        }
        if self.blur_sigma > 0.0 {
            gaussian_blur(px, channels, h, w, self.blur_sigma);
        }
        if self.noise_std > 0.0 {
            for v in px.iter_mut() {
                // Box-Muller from two uniforms.
                let (u1, u2): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                *v = (*v as f32 + z * self.noise_std + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
        if self.jpeg_quality > 0 {
            jpeg_round_trip(px, channels, h, w, self.jpeg_quality);
        }
        if let Some([fx, fy, fw, fh]) = self.erase {
            let (x0, y0) = ((fx * w as f32) as usize, (fy * h as f32) as usize);
            let x1 = ((fx + fw) * w as f32).ceil().min(w as f32) as usize;
            let y1 = ((fy + fh) * h as f32).ceil().min(h as f32) as usize;
            for c in 0..channels {
                for y in y0..y1 {
                    for x in x0..x1 {
                        px[c * h * w + y * w + x] = rng.random();
                    }
                }
            }
        }
    }
}

/// Separable Gaussian blur of each plane, edges clamped.
fn gaussian_blur(px: &mut [u8], channels: usize, h: usize, w: usize, sigma: f32) {
    let r = (3.0 * sigma).ceil().max(1.0) as i64;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    let k: Vec<f32> = k.iter().map(|v| v / sum).collect();
    let mut tmp = vec![0f32; h * w];
    for c in 0..channels {
        let plane = &mut px[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let xx = (x as i64 + j as i64 - r).clamp(0, w as i64 - 1) as usize;
                    acc += kv * plane[y * w + xx] as f32;
                }
                tmp[y * w + x] = acc;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let yy = (y as i64 + j as i64 - r).clamp(0, h as i64 - 1) as usize;
                    acc += kv * tmp[yy * w + x];
                }
                plane[y * w + x] = (acc + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Encodes the planar image as JPEG at `quality` and decodes it back (grayscale or RGB; other
/// channel counts are left alone).
fn jpeg_round_trip(px: &mut [u8], channels: usize, h: usize, w: usize, quality: u8) {
    use image::codecs::jpeg::JpegEncoder;
    use image::ExtendedColorType;
    let plane = h * w;
    let (interleaved, colour) = match channels {
        1 => (px.to_vec(), ExtendedColorType::L8),
        3 => (
            (0..plane)
                .flat_map(|i| [px[i], px[plane + i], px[2 * plane + i]])
                .collect(),
            ExtendedColorType::Rgb8,
        ),
        _ => return,
    };
    let mut bytes = Vec::new();
    if JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode(&interleaved, w as u32, h as u32, colour)
        .is_err()
    {
        return;
    }
    let Ok(img) = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg) else {
        return;
    };
    match channels {
        1 => {
            let g = img.to_luma8();
            px.copy_from_slice(g.as_raw());
        }
        _ => {
            let rgb = img.to_rgb8();
            for (i, p) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    px[c * plane + i] = p[c];
                }
            }
        }
    }
}

/// One concrete augmentation, as stored in balance manifests.
///
/// The geometric map sends each output pixel `p` (relative to the image centre) to the source
/// position `R(rotation) * Shear(shear) * diag(zoom_x, zoom_y) * p - shift`, as Keras does
/// (so a zoom factor above 1 samples a wider area and the face looks smaller); a flip mirrors
/// the source first. Then `v' = brightness * (mean + contrast * (v - mean))` with `mean` the
/// image's mean, rounded and clamped to 0..=255.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    pub flip: bool,
    pub rotation_deg: f32,
    /// Shift right, as a fraction of the width.
    pub shift_x: f32,
    /// Shift down, as a fraction of the height.
    pub shift_y: f32,
    pub zoom_x: f32,
    pub zoom_y: f32,
    pub shear_deg: f32,
    pub brightness: f32,
    pub contrast: f32,
    pub fill: FillMode,
    /// Degradations after the geometry and photometry (identity in manifests saved before).
    #[serde(default)]
    pub degrade: Degrade,
}

impl Default for AugmentParams {
    fn default() -> Self {
        AugmentParams::identity()
    }
}

impl AugmentParams {
    /// Params that leave the image unchanged.
    pub fn identity() -> Self {
        AugmentParams {
            flip: false,
            rotation_deg: 0.0,
            shift_x: 0.0,
            shift_y: 0.0,
            zoom_x: 1.0,
            zoom_y: 1.0,
            shear_deg: 0.0,
            brightness: 1.0,
            contrast: 1.0,
            fill: FillMode::Nearest,
            degrade: Degrade::default(),
        }
    }

    fn has_geometry(&self) -> bool {
        self.rotation_deg != 0.0
            || self.shift_x != 0.0
            || self.shift_y != 0.0
            || self.zoom_x != 1.0
            || self.zoom_y != 1.0
            || self.shear_deg != 0.0
    }

    fn has_photometry(&self) -> bool {
        self.brightness != 1.0 || self.contrast != 1.0
    }
}

/// Maps an integer coordinate that may lie outside `0..n` into it, or `None` for constant fill.
#[inline]
fn fill_index(i: i64, n: i64, fill: FillMode) -> Option<usize> {
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match fill {
        FillMode::Nearest => Some(i.clamp(0, n - 1) as usize),
        FillMode::Wrap => Some(i.rem_euclid(n) as usize),
        FillMode::Reflect => {
            // Period 2n: 0..n forward, n..2n mirrored (dcba|abcd|dcba).
            let m = i.rem_euclid(2 * n);
            Some(if m < n { m } else { 2 * n - 1 - m } as usize)
        }
        FillMode::Constant => None,
    }
}

/// Applies `params` to one image (`src`, planar u8 `channels x h x w`), writing `dst` (same
/// size). Deterministic: the same params and source always give the same pixels.
///
/// # Panics
/// If `src` or `dst` is not `channels * h * w` long (a programming error, not bad input).
pub fn apply_augment(
    params: &AugmentParams,
    src: &[u8],
    channels: usize,
    h: usize,
    w: usize,
    dst: &mut [u8],
) {
    let plane = h * w;
    assert_eq!(
        src.len(),
        channels * plane,
        "apply_augment: source is not C*H*W"
    );
    assert_eq!(
        dst.len(),
        src.len(),
        "apply_augment: destination differs in size"
    );
    if plane == 0 {
        return;
    }

    if !params.has_geometry() {
        if params.flip {
            for c in 0..channels {
                for y in 0..h {
                    let row = c * plane + y * w;
                    for x in 0..w {
                        dst[row + x] = src[row + w - 1 - x];
                    }
                }
            }
        } else {
            dst.copy_from_slice(src);
        }
    } else {
        warp(params, src, channels, h, w, dst);
    }

    if params.has_photometry() {
        let sum: u64 = dst.iter().map(|&v| v as u64).sum();
        let mean = sum as f32 / dst.len() as f32;
        let (b, c) = (params.brightness, params.contrast);
        // v' = b*(mean + c*(v - mean)) = b*c*v + b*mean*(1 - c), one multiply-add per pixel.
        let scale = b * c;
        let offset = b * mean * (1.0 - c) + 0.5;
        for v in dst.iter_mut() {
            *v = (*v as f32 * scale + offset).clamp(0.0, 255.0) as u8;
        }
    }
    if !params.degrade.is_identity() {
        params.degrade.apply(dst, channels, h, w);
    }
}

fn warp(p: &AugmentParams, src: &[u8], channels: usize, h: usize, w: usize, dst: &mut [u8]) {
    let plane = h * w;
    let (theta, shear) = (
        (p.rotation_deg as f64).to_radians(),
        (p.shear_deg as f64).to_radians(),
    );
    let (sin_t, cos_t) = theta.sin_cos();
    let (sin_s, cos_s) = shear.sin_cos();
    // M = R(theta) * [[1, -sin s], [0, cos s]] * diag(zx, zy)
    let (zx, zy) = (p.zoom_x as f64, p.zoom_y as f64);
    let r = [[cos_t, -sin_t], [sin_t, cos_t]];
    let s = [[1.0, -sin_s], [0.0, cos_s]];
    let rs = [
        [
            r[0][0] * s[0][0] + r[0][1] * s[1][0],
            r[0][0] * s[0][1] + r[0][1] * s[1][1],
        ],
        [
            r[1][0] * s[0][0] + r[1][1] * s[1][0],
            r[1][0] * s[0][1] + r[1][1] * s[1][1],
        ],
    ];
    let m = [
        [(rs[0][0] * zx) as f32, (rs[0][1] * zy) as f32],
        [(rs[1][0] * zx) as f32, (rs[1][1] * zy) as f32],
    ];
    let cx = (w as f32 - 1.0) * 0.5;
    let cy = (h as f32 - 1.0) * 0.5;
    let tx = p.shift_x * w as f32;
    let ty = p.shift_y * h as f32;
    let (wi, hi) = (w as i64, h as i64);
    for y in 0..h {
        let v = y as f32 - cy;
        for x in 0..w {
            let u = x as f32 - cx;
            let mut sx = m[0][0] * u + m[0][1] * v + cx - tx;
            let sy = m[1][0] * u + m[1][1] * v + cy - ty;
            if p.flip {
                sx = (w as f32 - 1.0) - sx;
            }
            let x0f = sx.floor();
            let y0f = sy.floor();
            let fx = sx - x0f;
            let fy = sy - y0f;
            let (x0, y0) = (x0f as i64, y0f as i64);
            let xs = [fill_index(x0, wi, p.fill), fill_index(x0 + 1, wi, p.fill)];
            let ys = [fill_index(y0, hi, p.fill), fill_index(y0 + 1, hi, p.fill)];
            let weights = [
                (1.0 - fx) * (1.0 - fy),
                fx * (1.0 - fy),
                (1.0 - fx) * fy,
                fx * fy,
            ];
            let out = y * w + x;
            for c in 0..channels {
                let base = c * plane;
                let fetch = |yy: Option<usize>, xx: Option<usize>| -> f32 {
                    match (yy, xx) {
                        (Some(a), Some(b)) => src[base + a * w + b] as f32,
                        _ => 0.0,
                    }
                };
                let val = weights[0] * fetch(ys[0], xs[0])
                    + weights[1] * fetch(ys[0], xs[1])
                    + weights[2] * fetch(ys[1], xs[0])
                    + weights[3] * fetch(ys[1], xs[1]);
                dst[base + out] = (val + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gradient(c: usize, h: usize, w: usize) -> Vec<u8> {
        (0..c * h * w).map(|i| ((i * 7) % 251) as u8).collect()
    }

    #[test]
    fn identity_is_a_copy_and_flip_mirrors() {
        let src = gradient(1, 48, 48);
        let mut dst = vec![0; src.len()];
        apply_augment(&AugmentParams::identity(), &src, 1, 48, 48, &mut dst);
        assert_eq!(src, dst);
        let flip = AugmentParams {
            flip: true,
            ..AugmentParams::identity()
        };
        apply_augment(&flip, &src, 1, 48, 48, &mut dst);
        assert_eq!(dst[0], src[47]);
        assert_eq!(dst[48 + 5], src[48 + 42]);
        let mut back = vec![0; src.len()];
        apply_augment(&flip, &dst, 1, 48, 48, &mut back);
        assert_eq!(back, src);
    }

    #[test]
    fn warp_path_with_trivial_geometry_matches_flip_path() {
        // A tiny rotation goes through the bilinear warp; at 1e-6 degrees it must reproduce the
        // source, which checks the centre/offset arithmetic.
        let src = gradient(3, 20, 30);
        let mut dst = vec![0; src.len()];
        let p = AugmentParams {
            rotation_deg: 1e-6,
            flip: true,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 3, 20, 30, &mut dst);
        let mut flipped = vec![0; src.len()];
        apply_augment(
            &AugmentParams {
                flip: true,
                ..AugmentParams::identity()
            },
            &src,
            3,
            20,
            30,
            &mut flipped,
        );
        assert_eq!(dst, flipped);
    }

    #[test]
    fn shift_moves_content_right_with_nearest_fill() {
        let (h, w) = (4, 10);
        let src: Vec<u8> = (0..h * w).map(|i| (i % w) as u8 * 10).collect();
        let mut dst = vec![0; src.len()];
        let p = AugmentParams {
            shift_x: 0.2,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 1, h, w, &mut dst);
        // Content moves 2 pixels right; the left edge repeats the first column.
        assert_eq!(&dst[..w], &[0, 0, 0, 10, 20, 30, 40, 50, 60, 70]);
        let p = AugmentParams {
            fill: FillMode::Constant,
            shift_x: -0.2,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 1, h, w, &mut dst);
        assert_eq!(&dst[..w], &[20, 30, 40, 50, 60, 70, 80, 90, 0, 0]);
        let p = AugmentParams {
            fill: FillMode::Wrap,
            shift_x: 0.2,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 1, h, w, &mut dst);
        assert_eq!(&dst[..w], &[80, 90, 0, 10, 20, 30, 40, 50, 60, 70]);
        let p = AugmentParams {
            fill: FillMode::Reflect,
            shift_x: 0.2,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 1, h, w, &mut dst);
        assert_eq!(&dst[..w], &[10, 0, 0, 10, 20, 30, 40, 50, 60, 70]);
    }

    #[test]
    fn rotation_by_90_degrees_turns_the_image() {
        let n = 5;
        let src: Vec<u8> = (0..n * n).map(|i| i as u8).collect();
        let mut dst = vec![0; src.len()];
        let p = AugmentParams {
            rotation_deg: 90.0,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 1, n, n, &mut dst);
        // Output (x, y) samples source (-v + c, u + c): a 90-degree turn, exact on a square.
        for y in 0..n {
            for x in 0..n {
                assert_eq!(dst[y * n + x], src[x * n + (n - 1 - y)], "at ({x},{y})");
            }
        }
    }

    #[test]
    fn brightness_and_contrast() {
        let src = vec![100u8, 200];
        let mut dst = vec![0; 2];
        let p = AugmentParams {
            brightness: 1.5,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 1, 1, 2, &mut dst);
        assert_eq!(dst, vec![150, 255]);
        let p = AugmentParams {
            contrast: 0.5,
            ..AugmentParams::identity()
        };
        apply_augment(&p, &src, 1, 1, 2, &mut dst);
        assert_eq!(dst, vec![125, 175]);
    }

    #[test]
    fn sampling_is_seeded_and_within_ranges() {
        let cfg = AugmentConfig::standard();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..200).map(|_| cfg.sample(&mut rng)).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        assert!(a.iter().any(|p| p.flip) && a.iter().any(|p| !p.flip));
        for p in &a {
            assert!(p.rotation_deg.abs() <= 10.0 && p.shift_x.abs() <= 0.1);
            assert!((0.9..=1.1).contains(&p.zoom_x) && (0.8..=1.2).contains(&p.brightness));
        }
        let none = AugmentConfig::none().sample(&mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(none, AugmentParams::identity());
    }

    #[test]
    fn presets_validate_and_roundtrip_through_json() {
        for name in ["none", "original", "original-balance", "standard", "wild"] {
            let cfg = AugmentConfig::preset(name).unwrap();
            cfg.validate().unwrap();
            let json = serde_json::to_string(&cfg).unwrap();
            assert_eq!(serde_json::from_str::<AugmentConfig>(&json).unwrap(), cfg);
        }
        assert!(AugmentConfig::preset("feral").is_none());
        let bad = AugmentConfig {
            zoom: 1.5,
            ..AugmentConfig::none()
        };
        assert!(bad.validate().unwrap_err().contains("zoom"));
    }

    #[test]
    fn degradations_are_deterministic_bounded_and_off_by_default() {
        let src = gradient(1, 48, 48);
        // Off: the standard preset draws no degradation, and an old config without the field
        // reads as off.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(
            AugmentConfig::standard().sample(&mut rng).degrade,
            Degrade::default()
        );
        let old = serde_json::json!({"hflip": true, "rotation_deg": 10.0, "width_shift": 0.1,
            "height_shift": 0.1, "zoom": 0.1, "brightness": [0.8, 1.2], "contrast": 0.2,
            "fill": "nearest"});
        let old: AugmentConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old, AugmentConfig::standard());
        // Every degradation on: same draw, same pixels; pixels change; the config validates.
        let all = AugmentConfig {
            degrade: DegradeConfig {
                gamma: 0.5,
                blur_prob: 1.0,
                blur_sigma: 1.5,
                noise_prob: 1.0,
                noise_std: 10.0,
                jpeg_prob: 1.0,
                jpeg_quality_min: 20,
                erase_prob: 1.0,
            },
            ..AugmentConfig::none()
        };
        all.validate().unwrap();
        let p = all.sample(&mut ChaCha8Rng::seed_from_u64(9));
        let [x, y, w, h] = p.degrade.erase.expect("erase drawn");
        assert!(x >= 0.0 && y >= 0.0 && x + w <= 1.0 + 1e-6 && y + h <= 1.0 + 1e-6);
        assert!(p.degrade.blur_sigma >= 0.3 && p.degrade.noise_std >= 1.0);
        assert!((20..=95).contains(&p.degrade.jpeg_quality));
        let (mut a, mut b) = (vec![0; src.len()], vec![0; src.len()]);
        apply_augment(&p, &src, 1, 48, 48, &mut a);
        apply_augment(&p, &src, 1, 48, 48, &mut b);
        assert_eq!(a, b);
        let changed = a.iter().zip(&src).filter(|(u, v)| u != v).count();
        assert!(changed > src.len() / 2, "{changed} pixels changed");
        // Each alone changes the image, and colour images work too.
        let rgb = gradient(3, 32, 32);
        for d in [
            Degrade {
                gamma: 0.6,
                ..Degrade::default()
            },
            Degrade {
                blur_sigma: 1.0,
                ..Degrade::default()
            },
            Degrade {
                noise_std: 5.0,
                seed: 1,
                ..Degrade::default()
            },
            Degrade {
                jpeg_quality: 30,
                ..Degrade::default()
            },
            Degrade {
                erase: Some([0.25, 0.25, 0.5, 0.5]),
                seed: 2,
                ..Degrade::default()
            },
        ] {
            let p = AugmentParams {
                degrade: d,
                ..AugmentParams::identity()
            };
            let mut out = vec![0; rgb.len()];
            apply_augment(&p, &rgb, 3, 32, 32, &mut out);
            assert_ne!(out, rgb, "{d:?} left the image unchanged");
        }
        let bad = AugmentConfig {
            degrade: DegradeConfig {
                erase_prob: 1.5,
                ..DegradeConfig::default()
            },
            ..AugmentConfig::none()
        };
        assert!(bad.validate().unwrap_err().contains("erase_prob"));
    }
}
