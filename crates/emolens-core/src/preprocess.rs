//! The one preprocessing path. Training, evaluation, the CLI and the server all call it, so a
//! face is never prepared two ways.
//!
//! Steps, in order:
//! 1. **Decode by content** ([`decode_image`]): the format is sniffed from the bytes, never from
//!    the file name; EXIF orientation is applied; images over [`DecodeLimits`] are refused
//!    before their pixels are allocated (decompression bombs included). Animated files give their
//!    first frame.
//! 2. **Optional crop** to a face box ([`CropBox`]), clamped to the image.
//! 3. **Colour mode**: grayscale models take luma (the `image` crate's Rec. 709 weights; alpha is
//!    dropped); RGB models take RGB, with grayscale sources repeated over three channels.
//! 4. **Resize** to the model's input size with a triangle (bilinear, antialiased when
//!    downscaling) filter, skipped when the size already matches (FER2013 crops are 48x48).
//! 5. **Layout**: planar `C x H x W` u8 ([`Preprocessor::to_pixels`]); this is the form the
//!    training cache keeps and augmentation works on.
//! 6. **Normalise** ([`Preprocessor::normalise_into`]): `value = pixel * scale[c] + offset[c]`
//!    from the model file's [`Normalisation`](crate::Normalisation).

use crate::error::CoreError;
use crate::meta::{ColourMode, InputSpec};
use image::{imageops::FilterType, DynamicImage, GenericImageView, ImageDecoder, ImageReader};
use std::io::Cursor;

/// Bounds applied while decoding untrusted images.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest width or height accepted, in pixels.
    pub max_side: u32,
    /// Largest decoder allocation, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// 16,384 pixels a side and 1 GiB of decoder memory: a 4000x3000 photo passes easily, a
    /// 20,000 x 20,000 bomb is refused from its header.
    fn default() -> Self {
        DecodeLimits {
            max_side: 16_384,
            max_alloc: 1 << 30,
        }
    }
}

/// Decodes an image from its bytes, sniffing the format from the content.
/// `source_name` is used in error messages (a path, an upload's file name, `item 3`).
pub fn decode_image(
    bytes: &[u8],
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<DynamicImage, CoreError> {
    if bytes.is_empty() {
        return Err(CoreError::EmptyImage {
            source_name: source_name.to_string(),
        });
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| CoreError::Decode {
            source_name: source_name.to_string(),
            detail: e.to_string(),
        })?;
    if reader.format().is_none() {
        return Err(CoreError::UnknownFormat {
            source_name: source_name.to_string(),
            detail: "the first bytes match no image signature".into(),
        });
    }
    let mut reader = reader;
    let mut lim = image::Limits::default();
    // Width and height are checked below from the header, so the error can name them.
    lim.max_alloc = Some(limits.max_alloc);
    reader.limits(lim);

    let too_large = |w: u32, h: u32| CoreError::TooLarge {
        source_name: source_name.to_string(),
        width: w,
        height: h,
        max: limits.max_side,
        max_alloc_mib: limits.max_alloc >> 20,
    };
    let decode_err = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => too_large(0, 0),
        image::ImageError::Unsupported(u) => CoreError::UnknownFormat {
            source_name: source_name.to_string(),
            detail: u.to_string(),
        },
        other => CoreError::Decode {
            source_name: source_name.to_string(),
            detail: other.to_string(),
        },
    };
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let (w, h) = decoder.dimensions();
    if w > limits.max_side || h > limits.max_side {
        return Err(too_large(w, h));
    }
    // The pixel buffer is allocated by `from_decoder` without consulting the limits, so the
    // memory bound is checked here, from the header, before any pixel is decoded.
    if decoder.total_bytes() > limits.max_alloc {
        return Err(too_large(w, h));
    }
    if w == 0 || h == 0 {
        return Err(CoreError::Decode {
            source_name: source_name.to_string(),
            detail: format!("image has no pixels ({w}x{h})"),
        });
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(w, h),
        other => decode_err(other),
    })?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// A face box in source-image pixels. May extend past the image; it is clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// Prepares images for one model's [`InputSpec`].
#[derive(Debug, Clone)]
pub struct Preprocessor {
    spec: InputSpec,
    affine: Vec<(f32, f32)>,
}

impl Preprocessor {
    pub fn new(spec: InputSpec) -> Self {
        let affine = spec.normalisation.affine(spec.channels());
        Preprocessor { spec, affine }
    }

    pub fn spec(&self) -> &InputSpec {
        &self.spec
    }

    /// Steps 2-5: optional crop, colour mode, resize; returns planar `C x H x W` u8.
    pub fn to_pixels(&self, img: &DynamicImage, crop: Option<CropBox>) -> Vec<u8> {
        let cropped;
        let img = match crop {
            Some(b) => {
                let (iw, ih) = img.dimensions();
                let x0 = b.x.floor().clamp(0.0, iw as f32 - 1.0) as u32;
                let y0 = b.y.floor().clamp(0.0, ih as f32 - 1.0) as u32;
                let x1 = (b.x + b.width).ceil().clamp(x0 as f32 + 1.0, iw as f32) as u32;
                let y1 = (b.y + b.height).ceil().clamp(y0 as f32 + 1.0, ih as f32) as u32;
                cropped = img.crop_imm(x0, y0, x1 - x0, y1 - y0);
                &cropped
            }
            None => img,
        };
        let (w, h) = (self.spec.width, self.spec.height);
        let plane = (w * h) as usize;
        match self.spec.colour_mode {
            ColourMode::Grayscale => {
                let mut luma = img.to_luma8();
                if luma.dimensions() != (w, h) {
                    luma = image::imageops::resize(&luma, w, h, FilterType::Triangle);
                }
                luma.into_raw()
            }
            ColourMode::Rgb => {
                let mut rgb = img.to_rgb8();
                if rgb.dimensions() != (w, h) {
                    rgb = image::imageops::resize(&rgb, w, h, FilterType::Triangle);
                }
                let raw = rgb.into_raw();
                let mut out = vec![0u8; 3 * plane];
                for (i, px) in raw.chunks_exact(3).enumerate() {
                    out[i] = px[0];
                    out[plane + i] = px[1];
                    out[2 * plane + i] = px[2];
                }
                out
            }
        }
    }

    /// Step 6: planar u8 pixels to normalised f32, written into `out` (same length).
    pub fn normalise_into(&self, pixels: &[u8], out: &mut [f32]) {
        assert_eq!(
            pixels.len(),
            out.len(),
            "pixel and output buffers differ in length"
        );
        let plane = (self.spec.width * self.spec.height) as usize;
        for (c, &(scale, offset)) in self.affine.iter().enumerate() {
            let range = c * plane..(c + 1) * plane;
            for (o, &p) in out[range.clone()].iter_mut().zip(&pixels[range]) {
                *o = p as f32 * scale + offset;
            }
        }
    }

    /// All steps on a decoded image.
    pub fn prepare(&self, img: &DynamicImage, crop: Option<CropBox>) -> Vec<f32> {
        let px = self.to_pixels(img, crop);
        let mut out = vec![0.0; px.len()];
        self.normalise_into(&px, &mut out);
        out
    }

    /// All steps from encoded bytes.
    pub fn prepare_bytes(&self, bytes: &[u8], source_name: &str) -> Result<Vec<f32>, CoreError> {
        let img = decode_image(bytes, source_name, &DecodeLimits::default())?;
        Ok(self.prepare(&img, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Normalisation;
    use image::{ImageFormat, Luma, Rgb};

    fn encode(img: &DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        buf.into_inner()
    }

    /// Golden test: known PNG bytes (lossless) through every step to a known tensor.
    #[test]
    fn golden_gray_png_to_tensor() {
        let img = image::GrayImage::from_fn(48, 48, |x, y| Luma([((x * 5 + y) % 256) as u8]));
        let bytes = encode(&DynamicImage::ImageLuma8(img), ImageFormat::Png);
        let p = Preprocessor::new(InputSpec::fer(ColourMode::Grayscale));
        let t = p.prepare_bytes(&bytes, "golden.png").unwrap();
        assert_eq!(t.len(), 48 * 48);
        assert_eq!(t[0], 0.0);
        assert!((t[1] - 5.0 / 255.0).abs() < 1e-7); // x=1,y=0
        assert!((t[48] - 1.0 / 255.0).abs() < 1e-7); // x=0,y=1
        assert!((t[47 * 48 + 47] - ((47 * 5 + 47) % 256) as f32 / 255.0).abs() < 1e-7);
    }

    /// Grayscale source into an RGB model repeats the channel; standard normalisation applies.
    #[test]
    fn gray_to_rgb_and_standardise() {
        let img = image::GrayImage::from_pixel(48, 48, Luma([51]));
        let bytes = encode(&DynamicImage::ImageLuma8(img), ImageFormat::Png);
        let spec = InputSpec {
            height: 48,
            width: 48,
            colour_mode: ColourMode::Rgb,
            normalisation: Normalisation::Standard {
                mean: vec![0.2, 0.2, 0.2],
                std: vec![0.5, 0.5, 0.5],
            },
        };
        let t = Preprocessor::new(spec)
            .prepare_bytes(&bytes, "g.png")
            .unwrap();
        assert_eq!(t.len(), 3 * 48 * 48);
        assert!(t.iter().all(|v| v.abs() < 1e-6), "51/255 = 0.2 -> 0");
    }

    /// RGB to planar layout, and luma weights for a grayscale model.
    #[test]
    fn rgb_planar_and_luma() {
        let img = image::RgbImage::from_pixel(48, 48, Rgb([255, 0, 0]));
        let img = DynamicImage::ImageRgb8(img);
        let rgb = Preprocessor::new(InputSpec::fer(ColourMode::Rgb)).to_pixels(&img, None);
        assert_eq!(&rgb[..2], &[255, 255]);
        assert_eq!(rgb[48 * 48], 0);
        let gray = Preprocessor::new(InputSpec::fer(ColourMode::Grayscale)).to_pixels(&img, None);
        assert_eq!(gray[0], 54, "Rec. 709 luma of pure red is 0.2126*255");
    }

    #[test]
    fn resize_and_crop() {
        let mut img = image::GrayImage::from_pixel(200, 100, Luma([0]));
        for y in 10..60 {
            for x in 100..150 {
                img.put_pixel(x, y, Luma([200]));
            }
        }
        let img = DynamicImage::ImageLuma8(img);
        let p = Preprocessor::new(InputSpec::fer(ColourMode::Grayscale));
        let crop = CropBox {
            x: 100.0,
            y: 10.0,
            width: 50.0,
            height: 50.0,
        };
        let px = p.to_pixels(&img, Some(crop));
        assert_eq!(px.len(), 48 * 48);
        assert!(px.iter().all(|&v| v == 200));
        // A box past the image edge is clamped, not a panic.
        let px = p.to_pixels(
            &img,
            Some(CropBox {
                x: 180.0,
                y: 90.0,
                width: 500.0,
                height: 500.0,
            }),
        );
        assert_eq!(px.len(), 48 * 48);
    }

    #[test]
    fn decode_by_content_not_name() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(8, 8, Luma([7])));
        for fmt in [
            ImageFormat::Png,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
            ImageFormat::Gif,
            ImageFormat::WebP,
            ImageFormat::Jpeg,
        ] {
            // GIF and WebP encoders take RGB(A) only.
            let src = match fmt {
                ImageFormat::Gif => DynamicImage::ImageRgba8(img.to_rgba8()),
                ImageFormat::WebP => DynamicImage::ImageRgb8(img.to_rgb8()),
                _ => img.clone(),
            };
            let bytes = encode(&src, fmt);
            let d = decode_image(&bytes, "named.jpg", &DecodeLimits::default())
                .unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
            assert_eq!(d.dimensions(), (8, 8));
        }
    }

    #[test]
    fn bad_inputs_give_named_errors() {
        let l = DecodeLimits::default();
        let e = decode_image(&[], "empty.jpg", &l).unwrap_err().to_string();
        assert!(e.contains("empty.jpg") && e.contains("empty"), "{e}");
        let e = decode_image(b"hello, not an image", "notes.jpg", &l)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("notes.jpg") && e.contains("not a recognised image"),
            "{e}"
        );
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(48, 48, Luma([7])));
        let jpg = encode(&img, ImageFormat::Jpeg);
        let e = decode_image(&jpg[..jpg.len() / 2], "cut.jpg", &l);
        // A truncated JPEG either errors with its name or decodes partially; it never panics.
        if let Err(e) = e {
            assert!(e.to_string().contains("cut.jpg"));
        }
        let small = DecodeLimits {
            max_side: 16,
            max_alloc: 1 << 20,
        };
        let e = decode_image(&jpg, "big.jpg", &small)
            .unwrap_err()
            .to_string();
        assert!(e.contains("big.jpg") && e.contains("48x48"), "{e}");
    }
}
