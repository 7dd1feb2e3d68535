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
///
/// Palette (indexed-colour) TIFFs are decoded to RGB. A JPEG or PNG that ends before its
/// end marker (a cut-off download or upload) is refused rather than decoded with made-up pixels.
/// Messages name the file and say what to do; they never carry the decoders' own wording.
pub fn decode_image(
    bytes: &[u8],
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<DynamicImage, CoreError> {
    match sniff(bytes, source_name)? {
        Sniffed::Palette(format, p) => {
            let (decoder, w, h) = open_decoder(&p.grey_bytes, format, source_name, limits)?;
            let indices = decode_opened(decoder, w, h, format, source_name, limits)?;
            p.to_rgb(indices, source_name)
        }
        Sniffed::Plain(format) => {
            let (decoder, w, h) = open_decoder(bytes, format, source_name, limits)?;
            decode_opened(decoder, w, h, format, source_name, limits)
        }
    }
}

/// What an image's header says, read without decoding a pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    /// Bytes of the decoded picture [`decode_image`] returns.
    pub decoded_bytes: u64,
}

/// Reads an image's header as [`decode_image`] would, with the same checks and errors (format,
/// truncation, size limits), and says how large the decoded picture will be, so a caller can
/// reserve the memory before decoding.
pub fn probe_image(
    bytes: &[u8],
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<ImageInfo, CoreError> {
    let (decoded_bytes, w, h) = match sniff(bytes, source_name)? {
        Sniffed::Palette(format, p) => {
            let (_, w, h) = open_decoder(&p.grey_bytes, format, source_name, limits)?;
            // Indices, then RGB.
            (4 * w as u64 * h as u64, w, h)
        }
        Sniffed::Plain(format) => {
            let (decoder, w, h) = open_decoder(bytes, format, source_name, limits)?;
            (decoder.total_bytes(), w, h)
        }
    };
    Ok(ImageInfo {
        width: w,
        height: h,
        decoded_bytes,
    })
}

/// The format of an image's bytes (palette TIFFs apart), refusing empty, unknown and cut-off
/// files.
enum Sniffed {
    Plain(image::ImageFormat),
    Palette(image::ImageFormat, PaletteTiff),
}

fn sniff(bytes: &[u8], source_name: &str) -> Result<Sniffed, CoreError> {
    if bytes.is_empty() {
        return Err(CoreError::EmptyImage {
            source_name: source_name.to_string(),
        });
    }
    let format = image::guess_format(bytes).ok();
    let Some(format) = format else {
        return Err(CoreError::UnknownFormat {
            source_name: source_name.to_string(),
            detail: "the first bytes match no image signature".into(),
        });
    };
    if let Some(why) = truncation(bytes, format) {
        return Err(CoreError::Decode {
            source_name: source_name.to_string(),
            detail: format!("{why}; the file is incomplete (cut off while copying or uploading): upload the whole file again"),
        });
    }
    if format == image::ImageFormat::Tiff {
        if let Some(p) = palette_tiff(bytes) {
            return Ok(Sniffed::Palette(format, p));
        }
    }
    Ok(Sniffed::Plain(format))
}

/// Why a JPEG or PNG is cut short, if it is: a JPEG must have its end-of-image marker after
/// the start of its (first) scan, a PNG must reach its `IEND` chunk. Other formats are left to
/// their decoders.
fn truncation(bytes: &[u8], format: image::ImageFormat) -> Option<&'static str> {
    match format {
        image::ImageFormat::Jpeg => {
            // Walk the marker segments up to the first start-of-scan (an EXIF thumbnail with its
            // own end marker sits inside a segment and is skipped), then look for the end marker:
            // entropy-coded data never holds FF D9 (a data FF is followed by 00).
            let mut at = 2;
            loop {
                let (Some(&ff), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
                    return Some("the JPEG ends inside its headers");
                };
                if ff != 0xFF {
                    return Some("the JPEG headers are damaged");
                }
                match marker {
                    0xFF => at += 1, // fill byte
                    0xD8 | 0x01 | 0xD0..=0xD7 => at += 2,
                    0xD9 => return Some("the JPEG ends before its image data"),
                    0xDA => break,
                    _ => {
                        let Some(len) = bytes.get(at + 2..at + 4) else {
                            return Some("the JPEG ends inside its headers");
                        };
                        at += 2 + u16::from_be_bytes([len[0], len[1]]) as usize;
                    }
                }
            }
            let scan = &bytes[at..];
            (!scan.windows(2).any(|w| w == [0xFF, 0xD9]))
                .then_some("the JPEG ends before its end-of-image marker")
        }
        image::ImageFormat::Png => {
            let mut at = 8;
            loop {
                let Some(head) = bytes.get(at..at + 8) else {
                    return Some("the PNG ends before its IEND chunk");
                };
                let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
                if &head[4..8] == b"IEND" {
                    return None;
                }
                at = at.checked_add(12)?.checked_add(len)?;
            }
        }
        _ => None,
    }
}

/// A palette TIFF seen as a greyscale one (its photometric interpretation rewritten from
/// "RGB palette" to "black is zero", so the decoder yields the 8-bit indices) with its colour map.
struct PaletteTiff {
    grey_bytes: Vec<u8>,
    colours: Vec<[u8; 3]>,
}

impl PaletteTiff {
    fn to_rgb(&self, indices: DynamicImage, source_name: &str) -> Result<DynamicImage, CoreError> {
        let DynamicImage::ImageLuma8(idx) = indices else {
            return Err(CoreError::Decode {
                source_name: source_name.to_string(),
                detail: "this palette TIFF has more than 8 bits per colour index, which emolens does not read; convert it to PNG or JPEG".into(),
            });
        };
        let black = [0, 0, 0];
        let rgb = image::RgbImage::from_fn(idx.width(), idx.height(), |x, y| {
            image::Rgb(
                *self
                    .colours
                    .get(idx.get_pixel(x, y).0[0] as usize)
                    .unwrap_or(&black),
            )
        });
        Ok(DynamicImage::ImageRgb8(rgb))
    }
}

/// Reads the first directory of a classic (not Big) TIFF; `Some` only for an 8-bit palette image
/// with a complete colour map.
fn palette_tiff(bytes: &[u8]) -> Option<PaletteTiff> {
    let le = match bytes.get(0..4)? {
        [b'I', b'I', 42, 0] => true,
        [b'M', b'M', 0, 42] => false,
        _ => return None,
    };
    let u16_at = |o: usize| {
        bytes.get(o..o + 2).map(|b| {
            if le {
                u16::from_le_bytes([b[0], b[1]])
            } else {
                u16::from_be_bytes([b[0], b[1]])
            }
        })
    };
    let u32_at = |o: usize| {
        bytes.get(o..o + 4).map(|b| {
            let a = [b[0], b[1], b[2], b[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    const SHORT: u16 = 3;
    let ifd = u32_at(4)? as usize;
    let entries = u16_at(ifd)? as usize;
    let (mut photometric_at, mut bits, mut samples, mut colour_map) = (None, 1, 1, None);
    for i in 0..entries {
        let e = ifd + 2 + 12 * i;
        let (tag, kind, count) = (u16_at(e)?, u16_at(e + 2)?, u32_at(e + 4)?);
        match (tag, kind, count) {
            // PhotometricInterpretation, 3 = RGB palette.
            (262, SHORT, 1) if u16_at(e + 8)? == 3 => photometric_at = Some(e + 8),
            (262, _, _) => return None,
            (258, SHORT, 1) => bits = u16_at(e + 8)?,
            (277, SHORT, 1) => samples = u16_at(e + 8)?,
            (320, SHORT, n) => colour_map = Some((n as usize, u32_at(e + 8)? as usize)),
            _ => {}
        }
    }
    let at = photometric_at?;
    let (n, offset) = colour_map?;
    if bits != 8 || samples != 1 || n != 3 * 256 {
        return None;
    }
    // The map holds every red, then every green, then every blue, 16 bits each.
    let channel = |c: usize, i: usize| u16_at(offset + 2 * (c * 256 + i)).map(|v| (v >> 8) as u8);
    let colours = (0..256)
        .map(|i| Some([channel(0, i)?, channel(1, i)?, channel(2, i)?]))
        .collect::<Option<Vec<_>>>()?;
    let mut grey_bytes = bytes.to_vec();
    let one = if le {
        1u16.to_le_bytes()
    } else {
        1u16.to_be_bytes()
    };
    grey_bytes[at..at + 2].copy_from_slice(&one);
    Some(PaletteTiff {
        grey_bytes,
        colours,
    })
}

/// The decoders' own messages (library types, internal states) stay out of what users read.
fn decode_error(
    e: image::ImageError,
    format: image::ImageFormat,
    source_name: &str,
    too_large: CoreError,
) -> CoreError {
    let kind = format!("{format:?}").to_uppercase();
    match e {
        image::ImageError::Limits(_) => too_large,
        image::ImageError::Unsupported(_) => CoreError::Decode {
            source_name: source_name.to_string(),
            detail: format!("this {kind} file uses a colour type or compression emolens does not read; convert it to PNG or JPEG"),
        },
        _ => CoreError::Decode {
            source_name: source_name.to_string(),
            detail: format!("the {kind} data is damaged or incomplete; export or upload the file again"),
        },
    }
}

fn too_large(source_name: &str, w: u32, h: u32, limits: &DecodeLimits) -> CoreError {
    CoreError::TooLarge {
        source_name: source_name.to_string(),
        width: w,
        height: h,
        max: limits.max_side,
        max_alloc_mib: limits.max_alloc >> 20,
    }
}

/// Opens a decoder on bytes of a known format and checks its header against the limits.
fn open_decoder<'a>(
    bytes: &'a [u8],
    format: image::ImageFormat,
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<(Box<dyn ImageDecoder + 'a>, u32, u32), CoreError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut lim = image::Limits::default();
    // Width and height are checked below from the header, so the error can name them.
    lim.max_alloc = Some(limits.max_alloc);
    reader.limits(lim);
    let decoder = reader
        .into_decoder()
        .map_err(|e| decode_error(e, format, source_name, too_large(source_name, 0, 0, limits)))?;
    let (w, h) = decoder.dimensions();
    if w > limits.max_side || h > limits.max_side {
        return Err(too_large(source_name, w, h, limits));
    }
    // The pixel buffer is allocated by `from_decoder` without consulting the limits, so the
    // memory bound is checked here, from the header, before any pixel is decoded.
    if decoder.total_bytes() > limits.max_alloc {
        return Err(too_large(source_name, w, h, limits));
    }
    if w == 0 || h == 0 {
        return Err(CoreError::Decode {
            source_name: source_name.to_string(),
            detail: format!("image has no pixels ({w}x{h})"),
        });
    }
    let decoder: Box<dyn ImageDecoder + 'a> = Box::new(decoder);
    Ok((decoder, w, h))
}

/// Decodes the pixels of an opened decoder and applies its EXIF orientation.
fn decode_opened(
    mut decoder: Box<dyn ImageDecoder + '_>,
    w: u32,
    h: u32,
    format: image::ImageFormat,
    source_name: &str,
    limits: &DecodeLimits,
) -> Result<DynamicImage, CoreError> {
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| decode_error(e, format, source_name, too_large(source_name, w, h, limits)))?;
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
        // Cut-off files are refused, whole ones (even with bytes after the end) are not.
        let png = encode(&img, ImageFormat::Png);
        for (bytes, name) in [
            (&jpg[..jpg.len() / 2], "cut.jpg"),
            (&jpg[..jpg.len() - 2], "no-end.jpg"),
            (&jpg[..40], "headers.jpg"),
            (&png[..png.len() / 2], "cut.png"),
            (&png[..png.len() - 12], "no-iend.png"),
        ] {
            let e = decode_image(bytes, name, &l).unwrap_err();
            assert!(matches!(e, CoreError::Decode { .. }), "{name}: {e:?}");
            let e = e.to_string();
            assert!(e.contains(name) && e.contains("incomplete"), "{e}");
        }
        for (whole, name) in [(&jpg, "tail.jpg"), (&png, "tail.png")] {
            let mut tail = whole.clone();
            tail.extend_from_slice(b"trailing bytes");
            decode_image(&tail, name, &l).unwrap_or_else(|e| panic!("{name}: {e}"));
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

    /// A minimal uncompressed 8-bit palette TIFF, written field by field (little- or big-endian).
    fn palette_tiff_bytes(le: bool, w: u16, h: u16, idx: &[u8], map: &[[u16; 3]; 256]) -> Vec<u8> {
        let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let u32b = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut b: Vec<u8> = if le { b"II".to_vec() } else { b"MM".to_vec() };
        b.extend(u16b(42));
        let data_at = 8u32;
        let map_at = data_at + idx.len() as u32;
        let ifd_at = map_at + 2 * 768;
        b.extend(u32b(ifd_at));
        b.extend_from_slice(idx);
        for c in 0..3 {
            for e in map.iter() {
                b.extend(u16b(e[c]));
            }
        }
        // (tag, type, count, value): SHORT = 3, LONG = 4.
        let entries: [(u16, u16, u32, u32); 10] = [
            (256, 3, 1, w as u32),
            (257, 3, 1, h as u32),
            (258, 3, 1, 8),
            (259, 3, 1, 1),
            (262, 3, 1, 3),
            (273, 4, 1, data_at),
            (277, 3, 1, 1),
            (278, 3, 1, h as u32),
            (279, 4, 1, idx.len() as u32),
            (320, 3, 768, map_at),
        ];
        b.extend(u16b(entries.len() as u16));
        for (tag, kind, count, value) in entries {
            b.extend(u16b(tag));
            b.extend(u16b(kind));
            b.extend(u32b(count));
            if kind == 3 && count == 1 {
                b.extend(u16b(value as u16));
                b.extend([0, 0]);
            } else {
                b.extend(u32b(value));
            }
        }
        b.extend(u32b(0));
        b
    }

    #[test]
    fn palette_tiff_decodes_to_rgb() {
        let mut map = [[0u16; 3]; 256];
        map[1] = [0xFFFF, 0, 0];
        map[2] = [0, 0x8000, 0xFFFF];
        let idx: Vec<u8> = (0..12).map(|i| (i % 3) as u8).collect();
        for le in [true, false] {
            let bytes = palette_tiff_bytes(le, 4, 3, &idx, &map);
            let img = decode_image(&bytes, "palette.tif", &DecodeLimits::default())
                .unwrap_or_else(|e| panic!("little-endian {le}: {e}"));
            let rgb = img.as_rgb8().expect("palette images decode to RGB");
            assert_eq!(rgb.dimensions(), (4, 3));
            assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
            assert_eq!(rgb.get_pixel(1, 0).0, [255, 0, 0]);
            assert_eq!(rgb.get_pixel(2, 0).0, [0, 128, 255]);
            assert_eq!(rgb.get_pixel(3, 0).0, [0, 0, 0]);
        }
    }
}

/// Planar (`C x H x W`) images of `width` columns, each row reversed: the mirror images that
/// flip test-time augmentation classifies and its tuning measures (pixels or normalised
/// values alike). The one mirror of the workspace.
pub fn mirror_rows<T: Copy>(planar: &[T], width: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(planar.len());
    for row in planar.chunks(width.max(1)) {
        out.extend(row.iter().rev());
    }
    out
}

#[cfg(test)]
mod mirror_tests {
    #[test]
    fn mirror_reverses_each_row_of_each_channel() {
        // 2 channels of 2x3.
        let px: Vec<u8> = (0..12).collect();
        assert_eq!(
            super::mirror_rows(&px, 3),
            [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9]
        );
    }
}
