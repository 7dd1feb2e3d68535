//! emolens-video's tests, in one binary: videos are encoded at test time with the FFmpeg
//! libraries (through `VideoWriter`), never committed, and decoded back through `FrameSampler`.

mod sampling;
mod track;
