//! The parts every fused optimiser shares: Flex `f32` buffers (which tensors can take the fused
//! path, reading them, writing them in place, new state buffers), the parallel loops over a
//! parameter, its gradient and its state, and the conversion between burn's state types and
//! their mirrors here.

use emolens_model::burn;

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::Flex;
use burn::optim::{LearningRate, RecordState, StateSink, StateSource};
use burn::tensor::{Bytes, DType, Device, Tensor};
use rayon::prelude::*;

/// Elements per rayon task: 64 KiB of each buffer, enough to amortise the task.
const CHUNK: usize = 1 << 14;
/// Tensors smaller than this are updated on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Whether `t` can take the fused path: a Flex `f32` tensor stored contiguously.
pub(super) fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32
        && t.clone()
            .try_into_primitive::<Flex>()
            .is_ok_and(|p| p.as_slice::<f32>().is_some())
}

/// The Flex primitive of a tensor [`fusable`] accepted.
pub(super) fn into_flex<const D: usize>(t: Tensor<D>) -> FlexTensor {
    t.try_into_primitive::<Flex>()
        .expect("checked by `fusable`")
}

pub(super) fn from_flex<const D: usize>(t: FlexTensor) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(t)
}

fn len(t: &FlexTensor) -> usize {
    t.layout().num_elements()
}

pub(super) fn read(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("checked by `fusable`")
}

/// The elements of `t` to write, in place when `t` is the only holder of its buffer; a shared
/// buffer (someone else still holds the tensor) is first copied so that holder sees no change.
pub(super) fn write(t: &mut FlexTensor) -> &mut [f32] {
    if t.try_storage_mut::<f32>().is_none() {
        *t = FlexTensor::new(
            Bytes::from_elems(read(t).to_vec()),
            Layout::contiguous(t.layout().shape().clone()),
            DType::F32,
        );
    }
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("checked by `fusable`");
    &mut t.try_storage_mut::<f32>().expect("owned after the copy")[start..end]
}

/// A new state buffer shaped like `like`. Zeroed memory comes from the allocator's zero pages,
/// so this costs no pass of its own.
pub(super) fn new_buffer(like: &FlexTensor) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(vec![0f32; len(like)]),
        Layout::contiguous(like.layout().shape().clone()),
        DType::F32,
    )
}

fn sequential() -> bool {
    rayon::current_num_threads() == 1
}

/// Runs `f` over matching chunks of a parameter and its gradient, on rayon's pool when large.
pub(super) fn zip2(p: &mut [f32], g: &[f32], f: impl Fn(&mut [f32], &[f32]) + Sync) {
    if p.len() < PARALLEL_MIN || sequential() {
        return f(p, g);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .for_each(|(p, g)| f(p, g));
}

/// [`zip2`] with one state buffer.
pub(super) fn zip3(
    p: &mut [f32],
    g: &[f32],
    a: &mut [f32],
    f: impl Fn(&mut [f32], &[f32], &mut [f32]) + Sync,
) {
    if p.len() < PARALLEL_MIN || sequential() {
        return f(p, g, a);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(a.par_chunks_mut(CHUNK))
        .for_each(|((p, g), a)| f(p, g, a));
}

/// [`zip2`] with two state buffers.
pub(super) fn zip4(
    p: &mut [f32],
    g: &[f32],
    a: &mut [f32],
    b: &mut [f32],
    f: impl Fn(&mut [f32], &[f32], &mut [f32], &mut [f32]) + Sync,
) {
    if p.len() < PARALLEL_MIN || sequential() {
        return f(p, g, a, b);
    }
    p.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(a.par_chunks_mut(CHUNK))
        .zip(b.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), a), b)| f(p, g, a, b));
}

/// Moves a state between two types with the same record layout (burn's state and our mirror
/// of it), through the same flatten/unflatten a save and load would do.
pub(super) fn convert<A: RecordState, B: RecordState>(state: &A, device: &Device) -> B {
    let mut sink = StateSink::default();
    state.state_flatten("s", &mut sink);
    let mut source = StateSource::new(sink.scalars.into_iter().collect());
    for (name, data) in sink.tensors {
        source.insert_tensor(name, data);
    }
    B::state_unflatten("s", &mut source, device).expect("the two state types share a layout")
}

/// The learning rate as burn's Flex kernels apply a scalar to `f32` data.
pub(super) fn lr32(lr: LearningRate) -> f32 {
    lr as f32
}
