//! Reading the images of a request: multipart files or JSON with base64, with the size and count
//! limits applied before anything is decoded.

use crate::error::{ServerError, ServerResult};
use crate::ServerConfig;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use base64::Engine;
use serde::Deserialize;

/// One image of a request, not yet decoded.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Position in the request (0-based).
    pub index: usize,
    /// File name or `item N`, used in messages.
    pub name: String,
    pub bytes: Bytes,
    /// Set when the item was refused before decoding (too large, bad base64).
    pub rejected: Option<ServerError>,
}

/// What the request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Multipart,
    Json,
}

/// Classifies the request by its content type; anything but multipart or JSON is a 415 naming
/// what was sent and what is accepted.
pub fn body_kind(req: &Request, accepts_json: bool) -> ServerResult<BodyKind> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("multipart/form-data") {
        return Ok(BodyKind::Multipart);
    }
    if accepts_json && (ct.starts_with("application/json") || ct.ends_with("+json")) {
        return Ok(BodyKind::Json);
    }
    let want = if accepts_json {
        "multipart/form-data (field `file`) or application/json ({\"images\": [{\"b64\": ...}]})"
    } else {
        "multipart/form-data with the image in the field `file`"
    };
    let got = if ct.is_empty() {
        "no content type".to_string()
    } else {
        format!("'{ct}'")
    };
    Err(ServerError::UnsupportedMediaType(format!(
        "request body has {got}; send {want}"
    )))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ServerError {
    let text = e.body_text();
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ServerError::TooLarge(format!("request body is over the size limit: {text}"))
    } else {
        ServerError::BadRequest(format!("malformed multipart body: {text}"))
    }
}

/// Field names that carry images.
fn is_file_field(name: &str) -> bool {
    matches!(
        name,
        "file" | "files" | "files[]" | "image" | "images" | "images[]"
    )
}

/// Reads every image file of a multipart body. Too many files is a 413 for the whole request
/// (nothing has been analysed or stored yet); an oversized file is refused as its own item.
pub async fn read_multipart(req: Request, config: &ServerConfig) -> ServerResult<Vec<Upload>> {
    let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
        ServerError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    })?;
    let mut out = Vec::new();
    while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
        let field_name = field.name().unwrap_or("").to_string();
        if !is_file_field(&field_name) {
            // Other form fields (e.g. a note) are not images; drain and ignore them.
            while field.chunk().await.map_err(multipart_error)?.is_some() {}
            continue;
        }
        let index = out.len();
        if index >= config.max_files {
            return Err(ServerError::TooLarge(format!(
                "too many files: this request has more than {} (the limit); send them in smaller batches",
                config.max_files
            )));
        }
        let name = field
            .file_name()
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("item {index}"));
        let mut buf = Vec::new();
        let mut rejected = None;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if rejected.is_none() {
                if buf.len() + chunk.len() > config.max_image_bytes {
                    rejected = Some(too_large(&name, config.max_image_bytes));
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&chunk);
                }
            }
        }
        out.push(Upload {
            index,
            name,
            bytes: Bytes::from(buf),
            rejected,
        });
    }
    if out.is_empty() {
        return Err(ServerError::BadRequest(
            "no image in the request: send the image in a multipart field named `file` (or `files` for many)".into(),
        ));
    }
    Ok(out)
}

/// Reads a multipart body held in memory exactly as [`read_multipart`] reads a request's, on a
/// runtime of its own (for tools and the fuzz targets, which have no server).
pub fn read_multipart_bytes(
    body: Vec<u8>,
    content_type: &str,
    config: &ServerConfig,
) -> ServerResult<Vec<Upload>> {
    let req = Request::builder()
        .method("POST")
        .header(CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body))
        .map_err(|e| ServerError::BadRequest(format!("bad content type: {e}")))?;
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| ServerError::Internal(format!("cannot start a runtime: {e}")))?
        .block_on(read_multipart(req, config))
}

fn too_large(name: &str, limit: usize) -> ServerError {
    ServerError::TooLarge(format!(
        "{name}: file is over the limit of {} MiB per image; downscale or recompress it",
        limit >> 20
    ))
}

/// A JSON image: a base64 string or `{"name": ..., "b64": ...}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum JsonImage {
    Plain(String),
    Named {
        #[serde(default)]
        name: Option<String>,
        b64: String,
    },
}

/// The JSON form of `/v1/analyze`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeJson {
    pub images: Vec<JsonImage>,
    /// Treat each image as one face crop (skip detection).
    #[serde(default)]
    pub assume_crop: Option<bool>,
}

/// The multipart form of `POST /api/predict` (read by [`read_multipart`]; this type only
/// describes it in the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PredictForm {
    /// The image (JPEG, PNG, WebP, BMP, TIFF or GIF).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The multipart form of the image batch endpoints (read by [`read_multipart`]; this type only
/// describes it in the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImagesForm {
    /// The images, one part each (any field name; up to `--max-files`).
    #[schema(value_type = Vec<String>, format = Binary)]
    pub files: Vec<Vec<u8>>,
}

/// The multipart form of the video uploads (read by [`read_video`]; this type only describes
/// it in the OpenAPI document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct VideoForm {
    /// The video (field `file` or `video`); one per request.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Decodes base64, accepting a `data:...;base64,` prefix and URL-safe or padded forms.
pub fn decode_b64(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let s = match (s.starts_with("data:"), s.find(",")) {
        (true, Some(i)) => &s[i + 1..],
        _ => s,
    };
    let cleaned: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let mut last = String::new();
    for e in engines {
        match e.decode(&cleaned) {
            Ok(b) => return Ok(b),
            Err(err) => last = err.to_string(),
        }
    }
    Err(last)
}

/// Parses a JSON body into uploads. Malformed JSON is a 400 naming the parse error.
pub fn read_json(body: &[u8], config: &ServerConfig) -> ServerResult<(Vec<Upload>, Option<bool>)> {
    if body.is_empty() {
        return Err(ServerError::BadRequest(
            "empty request body: send {\"images\": [{\"name\": \"a.jpg\", \"b64\": \"...\"}]}"
                .into(),
        ));
    }
    let parsed: AnalyzeJson = serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("malformed JSON body: {e}; expected {{\"images\": [{{\"name\": \"a.jpg\", \"b64\": \"...\"}}]}}")))?;
    if parsed.images.is_empty() {
        return Err(ServerError::BadRequest(
            "`images` is empty: send at least one image".into(),
        ));
    }
    if parsed.images.len() > config.max_files {
        return Err(ServerError::TooLarge(format!(
            "too many images: {} in this request, the limit is {}; send them in smaller batches",
            parsed.images.len(),
            config.max_files
        )));
    }
    let uploads = parsed
        .images
        .into_iter()
        .enumerate()
        .map(|(index, img)| {
            let (name, b64) = match img {
                JsonImage::Plain(b) => (None, b),
                JsonImage::Named { name, b64 } => (name, b64),
            };
            let name = name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("item {index}"));
            let (bytes, rejected) = match decode_b64(&b64) {
                Ok(b) if b.len() > config.max_image_bytes => {
                    (Vec::new(), Some(too_large(&name, config.max_image_bytes)))
                }
                Ok(b) => (b, None),
                Err(e) => (
                    Vec::new(),
                    Some(ServerError::BadRequest(format!(
                        "{name}: `b64` is not valid base64 ({e})"
                    ))),
                ),
            };
            Upload {
                index,
                name,
                bytes: Bytes::from(bytes),
                rejected,
            }
        })
        .collect();
    Ok((uploads, parsed.assume_crop))
}

/// A video received into a temporary file, deleted when this is dropped. Videos are never held
/// in memory whole: the body is streamed to disk, bounded, and hashed on the way.
#[derive(Debug)]
pub struct VideoUpload {
    pub file: tempfile::TempPath,
    /// The file name sent (multipart file name, or `?name=`), or `video`.
    pub name: String,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

/// Multipart fields that carry the video.
fn is_video_field(name: &str) -> bool {
    matches!(name, "file" | "video" | "files" | "files[]")
}

/// A file extension worth keeping on the temporary file (FFmpeg reads by content, but a known
/// extension helps the few formats without a signature).
fn safe_extension(name: &str) -> Option<String> {
    let ext = std::path::Path::new(name)
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    (!ext.is_empty() && ext.len() <= 5 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .then_some(ext)
}

/// Cleans a file name for storage and messages: the last path component, control characters
/// dropped, at most 200 characters.
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() {
        "video".to_string()
    } else {
        cleaned
    }
}

/// Writes the chunks of one stream to a new temporary file, refusing more than `max_bytes`.
struct Spool {
    path: tempfile::TempPath,
    file: tokio::fs::File,
    hasher: sha2::Sha256,
    size: u64,
    max_bytes: u64,
    name: String,
}

impl Spool {
    async fn new(name: &str, max_bytes: u64) -> ServerResult<Spool> {
        let mut b = tempfile::Builder::new();
        b.prefix("emolens-video-");
        let suffix = safe_extension(name).map(|e| format!(".{e}"));
        if let Some(s) = &suffix {
            b.suffix(s);
        }
        let tmp = b.tempfile().map_err(|e| {
            ServerError::Internal(format!(
                "cannot create a temporary file for the video in {}: {e}",
                std::env::temp_dir().display()
            ))
        })?;
        let (std_file, path) = tmp.into_parts();
        Ok(Spool {
            path,
            file: tokio::fs::File::from_std(std_file),
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            size: 0,
            max_bytes,
            name: name.to_string(),
        })
    }

    async fn push(&mut self, chunk: &[u8]) -> ServerResult<()> {
        use tokio::io::AsyncWriteExt;
        self.size += chunk.len() as u64;
        if self.size > self.max_bytes {
            return Err(video_too_large(&self.name, self.max_bytes));
        }
        sha2::Digest::update(&mut self.hasher, chunk);
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| ServerError::Internal(format!("cannot write the video to disk: {e}")))
    }

    async fn finish(mut self) -> ServerResult<VideoUpload> {
        use tokio::io::AsyncWriteExt;
        self.file
            .flush()
            .await
            .map_err(|e| ServerError::Internal(format!("cannot write the video to disk: {e}")))?;
        if self.size == 0 {
            return Err(ServerError::BadRequest(format!(
                "{}: the video is empty (0 bytes); send the file's content",
                self.name
            )));
        }
        Ok(VideoUpload {
            file: self.path,
            name: self.name,
            size: self.size,
            sha256: hex::encode(sha2::Digest::finalize(self.hasher)),
        })
    }
}

fn video_too_large(name: &str, max_bytes: u64) -> ServerError {
    ServerError::TooLarge(format!(
        "{name}: the video is over the limit of {} MiB per video (--max-video-mib); cut it to the ad's length or recompress it (e.g. `ffmpeg -i IN -vf scale=1280:-2 -crf 28 OUT.mp4`)",
        max_bytes >> 20
    ))
}

/// Reads one video from a request: a multipart field `file` (or `video`), or the raw body with
/// a `video/*`, `audio/*` or `application/octet-stream` content type (`name` then names it).
/// The body is streamed to a temporary file; more than `max_bytes` is a 413 as soon as it is
/// seen (a `Content-Length` over the limit before anything is read).
pub async fn read_video(
    req: Request,
    max_bytes: u64,
    name: Option<&str>,
) -> ServerResult<VideoUpload> {
    use http_body_util::BodyExt;
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let given = clean_file_name(name.unwrap_or("video"));
    // Multipart framing adds a few hundred bytes around the file.
    if declared.is_some_and(|n| n > max_bytes + 64 * 1024) {
        return Err(video_too_large(&given, max_bytes));
    }
    if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &()).await.map_err(|e| {
            ServerError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
        })?;
        let mut out: Option<VideoUpload> = None;
        while let Some(mut field) = mp.next_field().await.map_err(multipart_error)? {
            let field_name = field.name().unwrap_or("").to_string();
            if !is_video_field(&field_name) {
                while field.chunk().await.map_err(multipart_error)?.is_some() {}
                continue;
            }
            if out.is_some() {
                return Err(ServerError::BadRequest(
                    "one reaction video per request: send each video in its own request (each becomes its own job)".into(),
                ));
            }
            let file_name = clean_file_name(
                field
                    .file_name()
                    .filter(|s| !s.is_empty())
                    .or(name)
                    .unwrap_or("video"),
            );
            let mut spool = Spool::new(&file_name, max_bytes).await?;
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                spool.push(&chunk).await?;
            }
            out = Some(spool.finish().await?);
        }
        return out.ok_or_else(|| {
            ServerError::BadRequest(
                "no video in the request: send the video in a multipart field named `file` (or the raw bytes with Content-Type: video/mp4)".into(),
            )
        });
    }
    let raw = ct.starts_with("video/")
        || ct.starts_with("audio/")
        || ct.starts_with("application/octet-stream");
    if !raw {
        let got = if ct.is_empty() {
            "no content type".to_string()
        } else {
            format!("'{ct}'")
        };
        return Err(ServerError::UnsupportedMediaType(format!(
            "request body has {got}; send the video as multipart/form-data (field `file`) or as the raw body with Content-Type video/* (e.g. video/mp4) or application/octet-stream"
        )));
    }
    let mut spool = Spool::new(&given, max_bytes).await?;
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ServerError::BadRequest(format!("the request body could not be read: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            spool.push(&data).await?;
        }
    }
    spool.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_forms() {
        assert_eq!(decode_b64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_b64("aGk").unwrap(), b"hi");
        assert_eq!(decode_b64("data:image/png;base64,aGk=").unwrap(), b"hi");
        assert!(decode_b64("not base64 !!").is_err());
    }

    #[test]
    fn json_limits_and_errors() {
        let c = ServerConfig {
            max_files: 2,
            ..Default::default()
        };
        assert!(matches!(
            read_json(b"", &c),
            Err(ServerError::BadRequest(_))
        ));
        assert!(matches!(
            read_json(b"{nope", &c),
            Err(ServerError::BadRequest(_))
        ));
        let three = br#"{"images": ["aGk=", "aGk=", "aGk="]}"#;
        assert!(matches!(
            read_json(three, &c),
            Err(ServerError::TooLarge(_))
        ));
        let (u, _) = read_json(
            br#"{"images": [{"name": "x.png", "b64": "%%"}, "aGk="]}"#,
            &c,
        )
        .unwrap();
        assert!(u[0].rejected.is_some() && u[0].name == "x.png");
        assert_eq!(&u[1].bytes[..], b"hi");
    }
}
