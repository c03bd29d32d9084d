//! The canvas path's products for `f32` as a direct convolution in vector registers.
//!
//! [`super::canvas`] presents every kernel tap as a shifted view of a zero-padded canvas, and
//! its generic path runs one matrix product per tap, each reading and writing the whole
//! `[out_channels, span]` result with `K = channels` (16 to 64 in a ResNet-32: skinny
//! products whose result traffic costs as much as their arithmetic). Here a block of outputs
//! (`LANES * BLOCK` consecutive canvas positions of `OUTS` output channels) stays in registers
//! while every input channel and tap is added to it: per channel and tap, `BLOCK` vector loads
//! of the canvas, `OUTS` broadcast weights and `BLOCK * OUTS` fused multiply-adds, and the
//! block is stored once.
//!
//! The weight gradient is the same sum read the other way: for a block of `OUTS` output
//! channels and 3 taps of one input channel, `OUTS * 3` vector accumulators run over a tile
//! of positions (the output gradient laid out on the canvas positions, zero at the dropped
//! ones) and are kept as vectors until the task's last chunk, then reduced to one number each.
//!
//! The kernels are AVX-512F (16 lanes, blocks of 3 x 8 vectors, 24 of the 32 registers
//! accumulating), compiled with the crate feature `x86-v4` and chosen at run time; elsewhere
//! the generic path runs. A forward output is a chain of fused multiply-adds in order of input
//! channel, then tap; a weight-gradient sum one chain per lane in order of position, the lanes
//! then added in pairs. Results thus differ from the generic path's by float32 rounding, and
//! agree to the bit from run to run, and for any thread count, on one CPU kind.

use std::mem::MaybeUninit;

use crate::kernels::simd::vectorised;

/// The instruction set of the kernels. Only AVX-512 has them: kernels of the same shape
/// for AVX2 (8 lanes, blocks of 3 x 4 vectors, 16 registers) measured slower than gemm's
/// AVX2 products they would replace, so AVX2 CPUs keep the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Isa {
    /// AVX-512F: 16 lanes, 8 output channels per block.
    Avx512,
}

impl Isa {
    /// The instruction set of the kernels this CPU has (AVX-512, with the crate feature
    /// `x86-v4`), or `None` to run the generic path.
    pub fn detect() -> Option<Self> {
        Some(Self::Avx512).filter(|isa| isa.available())
    }

    /// Whether this build has the kernels and this CPU runs them.
    pub fn available(self) -> bool {
        match self {
            #[cfg(all(target_arch = "x86_64", feature = "x86-v4"))]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(all(target_arch = "x86_64", feature = "x86-v4")))]
            Self::Avx512 => false,
        }
    }

    /// Output channels of a register block.
    fn outs(self) -> usize {
        match self {
            Self::Avx512 => 8,
        }
    }

    /// Canvas positions of a vector.
    fn lanes(self) -> usize {
        match self {
            Self::Avx512 => 16,
        }
    }
}

/// Vectors of positions per full block.
const BLOCK: usize = 3;

/// A weight packed for the kernels of one instruction set: per group and block of output
/// channels, `[in_channels / groups, taps, outs]`, the output channels missing from the last
/// block of a group zero.
#[derive(Debug, Clone)]
pub(super) struct Packed {
    isa: Isa,
    data: Vec<f32>,
    group_in: usize,
    group_out: usize,
    taps: usize,
}

impl Packed {
    /// Packs `weight` (`[groups * group_out, group_in, taps]`) for `isa`.
    ///
    /// # Panics
    /// If `isa` is not [available](Isa::available).
    pub fn new(isa: Isa, weight: &[f32], groups: usize, group_in: usize, taps: usize) -> Self {
        assert!(isa.available(), "no {isa:?} kernels here");
        let outs = isa.outs();
        let group_out = weight.len() / (groups * group_in * taps);
        let blocks = group_out.div_ceil(outs);
        let mut data = vec![0.0; groups * blocks * group_in * taps * outs];
        for group in 0..groups {
            for o in 0..group_out {
                let block = &mut data[(group * blocks + o / outs) * group_in * taps * outs..];
                for i in 0..group_in {
                    let src = &weight[((group * group_out + o) * group_in + i) * taps..][..taps];
                    for (t, &v) in src.iter().enumerate() {
                        block[(i * taps + t) * outs + o % outs] = v;
                    }
                }
            }
        }
        Self {
            isa,
            data,
            group_in,
            group_out,
            taps,
        }
    }

    /// Writes every `dst[o * span + p]` (`o < group_out`, `p < span`) with the sum over input
    /// channels `i` and taps `t` of `canvas[i * plane + p + offsets[t]] * weight(o, i, t)` for
    /// group `group`: `canvas` starts at the group's first channel, shifted to the first
    /// output's position.
    ///
    /// # Panics
    /// If `span` is not a multiple of 16, `offsets` does not have one offset per tap, or a
    /// read or write would leave `canvas` or `dst`.
    pub fn products(
        &self,
        group: usize,
        canvas: &[f32],
        plane: usize,
        offsets: &[usize],
        span: usize,
        dst: &mut [MaybeUninit<f32>],
    ) {
        let (outs, lanes) = (self.isa.outs(), self.isa.lanes());
        assert!(span.is_multiple_of(16) && offsets.len() == self.taps);
        let reach = offsets.iter().max().copied().unwrap_or(0);
        assert!(canvas.len() >= (self.group_in - 1) * plane + reach + span);
        assert!(dst.len() >= self.group_out * span);
        let blocks = self.group_out.div_ceil(outs);
        let block_len = self.group_in * self.taps * outs;
        let weights = &self.data[group * blocks * block_len..][..blocks * block_len];
        let step = BLOCK * lanes;
        for start in (0..span).step_by(step) {
            let vectors = ((span - start) / lanes).min(BLOCK);
            for (block, w) in weights.chunks_exact(block_len).enumerate() {
                let rows = (self.group_out - block * outs).min(outs);
                let args = Args {
                    x: canvas[start..].as_ptr(),
                    plane,
                    offsets,
                    group_in: self.group_in,
                    w: w.as_ptr(),
                    dst: dst[block * outs * span + start..].as_mut_ptr().cast(),
                    span,
                    rows,
                };
                // SAFETY: the CPU has the instruction set (`Isa::detect`); reads reach
                // `canvas[start + (group_in - 1) * plane + reach + vectors * lanes - 1]`,
                // within the length asserted above as `start + vectors * lanes <= span`;
                // writes reach `dst[(block * outs + rows - 1) * span + start + vectors *
                // lanes - 1]` < `group_out * span`; `w` holds `group_in * taps * outs`.
                unsafe { self.block(vectors, &args) }
            }
        }
    }

    /// Runs the kernel of `self.isa` on `vectors` vectors of positions.
    ///
    /// # Safety
    /// As [`Packed::products`] checks.
    unsafe fn block(&self, vectors: usize, a: &Args) {
        #[cfg(all(target_arch = "x86_64", feature = "x86-v4"))]
        // SAFETY: forwarded from the caller.
        unsafe {
            match (self.isa, vectors) {
                (Isa::Avx512, 3) => x86::forward::<3>(a),
                (Isa::Avx512, 2) => x86::forward::<2>(a),
                (Isa::Avx512, _) => x86::forward::<1>(a),
            }
        }
        #[cfg(not(all(target_arch = "x86_64", feature = "x86-v4")))]
        {
            let _ = (vectors, a);
            unreachable!("Packed::new refuses an instruction set this build has no kernels for")
        }
    }
}

/// Taps of a weight-gradient block.
const GRAD_TAPS: usize = 3;

/// Rows of the output gradient [`WeightSums::add`] reads for `group_out` output channels:
/// a whole number of blocks, the rows past `group_out` zero.
pub(super) fn gradient_rows(isa: Isa, group_out: usize) -> usize {
    group_out.next_multiple_of(isa.outs())
}

/// Positions of a weight-gradient tile: the output gradient of a block of output channels
/// over a tile stays in the first-level cache while every input channel and tap passes over
/// it.
const GRAD_TILE: usize = 512;

/// The weight gradient of one task, as vector sums: per group, block of output channels,
/// input channel and chunk of taps, `[outs, GRAD_TAPS, lanes]` (the block's output channels
/// by its taps, a vector each). Each lane runs over its positions in order, chunk after chunk
/// and tile after tile; [`WeightSums::finish`] adds the lanes in pairs.
pub(super) struct WeightSums {
    isa: Isa,
    groups: usize,
    group_in: usize,
    group_out: usize,
    taps: usize,
    /// Written by the first [`WeightSums::add`] of each group, which stores instead of adding.
    partial: Box<[MaybeUninit<f32>]>,
    /// Whether each group's sums have been written.
    started: Vec<bool>,
}

impl WeightSums {
    /// Zero sums for a weight `[groups * group_out, group_in, taps]`.
    ///
    /// # Panics
    /// If `isa` is not [available](Isa::available).
    pub fn new(isa: Isa, groups: usize, group_in: usize, group_out: usize, taps: usize) -> Self {
        assert!(isa.available(), "no {isa:?} kernels here");
        let blocks = group_out.div_ceil(isa.outs());
        let len = groups * blocks * group_in * taps.div_ceil(GRAD_TAPS) * Self::vectors(isa);
        Self {
            isa,
            groups,
            group_in,
            group_out,
            taps,
            partial: Box::new_uninit_slice(len),
            started: vec![false; groups],
        }
    }

    /// Elements of the sums of one block, input channel and chunk of taps.
    fn vectors(isa: Isa) -> usize {
        isa.outs() * GRAD_TAPS * isa.lanes()
    }

    /// Adds, for group `group`, the sum over `p < span` of `gradient[o * stride + p] *
    /// canvas[i * plane + p + offsets[t]]` to the sum of input channel `i < group_in`, output
    /// channel `o < group_out` and tap `t`: one chunk of images. `canvas` starts at the
    /// group's first channel, shifted to the first output's position; `gradient` has
    /// [`gradient_rows`] rows of `stride` elements.
    ///
    /// # Panics
    /// If `span` is not a multiple of 16, `offsets` does not have one offset per tap, or a
    /// read would leave its slice.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        group: usize,
        canvas: &[f32],
        plane: usize,
        offsets: &[usize],
        span: usize,
        gradient: &[f32],
        stride: usize,
    ) {
        let (isa, group_in) = (self.isa, self.group_in);
        assert!(span.is_multiple_of(16) && offsets.len() == self.taps && group < self.groups);
        let reach = offsets.iter().max().copied().unwrap_or(0);
        assert!(canvas.len() >= (group_in - 1) * plane + reach + span);
        let outs = isa.outs();
        assert!(stride >= span);
        assert!(gradient.len() >= (gradient_rows(isa, self.group_out) - 1) * stride + span);
        let vectors = Self::vectors(isa);
        let chunks = self.taps.div_ceil(GRAD_TAPS);
        let blocks = self.group_out.div_ceil(outs);
        let group_len = blocks * group_in * chunks * vectors;
        let partial = &mut self.partial[group * group_len..][..group_len];
        let fresh = !std::mem::replace(&mut self.started[group], true);
        for (block, partial) in partial
            .chunks_exact_mut(group_in * chunks * vectors)
            .enumerate()
        {
            let gradient = &gradient[block * outs * stride..];
            for start in (0..span).step_by(GRAD_TILE) {
                let len = (span - start).min(GRAD_TILE);
                for (i, partial) in partial.chunks_exact_mut(chunks * vectors).enumerate() {
                    let sums = partial.chunks_exact_mut(vectors);
                    for (taps, sums) in offsets.chunks(GRAD_TAPS).zip(sums) {
                        if fresh && start == 0 && taps.len() < GRAD_TAPS {
                            // The kernel writes the sums of its taps only.
                            sums.fill(MaybeUninit::new(0.0));
                        }
                        let args = GradArgs {
                            x: canvas[i * plane + start..].as_ptr(),
                            offsets: taps,
                            gradient: gradient[start..].as_ptr(),
                            stride,
                            len,
                            sums: sums.as_mut_ptr().cast(),
                            fresh: fresh && start == 0,
                        };
                        // SAFETY: `isa` is available (`new`); the reads reach `canvas[i *
                        // plane + start + reach + len - 1]` and `gradient[(outs - 1) * stride
                        // + start + len - 1]` with `start + len <= span`, within the lengths
                        // asserted above; `sums` holds `outs * GRAD_TAPS` vectors.
                        unsafe { grad_block(isa, &args) };
                    }
                }
            }
        }
    }

    /// The sums, laid out `[taps, groups, group_in, group_out]`.
    ///
    /// # Panics
    /// If a group's sums were never added to.
    pub fn finish(mut self) -> Vec<f32> {
        let (outs, lanes) = (self.isa.outs(), self.isa.lanes());
        let (group_in, group_out) = (self.group_in, self.group_out);
        let vectors = Self::vectors(self.isa);
        let chunks = self.taps.div_ceil(GRAD_TAPS);
        let mut sum = vec![0.0; self.taps * self.groups * group_in * group_out];
        assert!(self.started.iter().all(|&s| s), "a group without sums");
        // SAFETY: every group's sums were written by its first `add`.
        let partial = unsafe { self.partial.assume_init_mut() };
        // Each vector's lanes added in pairs, halving until lane 0 holds the sum.
        vectorised(
            #[inline(always)]
            || {
                let mut half = lanes;
                while half > 1 {
                    half /= 2;
                    for v in partial.chunks_exact_mut(lanes) {
                        let (low, high) = v.split_at_mut(half);
                        for (a, &b) in low.iter_mut().zip(&high[..half]) {
                            *a += b;
                        }
                    }
                }
            },
        );
        let mut partial = partial.chunks_exact(vectors);
        for group in 0..self.groups {
            for block in 0..group_out.div_ceil(outs) {
                let rows = (group_out - block * outs).min(outs);
                for i in 0..group_in {
                    for chunk in 0..chunks {
                        let Some(sums) = partial.next() else {
                            return sum;
                        };
                        let taps = (self.taps - chunk * GRAD_TAPS).min(GRAD_TAPS);
                        for k in 0..taps {
                            let t = chunk * GRAD_TAPS + k;
                            let at = ((t * self.groups + group) * group_in + i) * group_out;
                            let dst = &mut sum[at + block * outs..][..rows];
                            for (o, d) in dst.iter_mut().enumerate() {
                                *d = sums[(o * GRAD_TAPS + k) * lanes];
                            }
                        }
                    }
                }
            }
        }
        sum
    }
}

/// One block's pointers and sizes.
#[cfg_attr(not(all(target_arch = "x86_64", feature = "x86-v4")), allow(dead_code))]
struct Args<'a> {
    /// The canvas at the block's first position, channel 0.
    x: *const f32,
    plane: usize,
    offsets: &'a [usize],
    group_in: usize,
    /// The packed weights of the block's output channels.
    w: *const f32,
    /// The result at the block's first channel and position.
    dst: *mut f32,
    span: usize,
    /// Output channels of the block to store.
    rows: usize,
}

/// One weight-gradient block's pointers and sizes.
#[cfg_attr(not(all(target_arch = "x86_64", feature = "x86-v4")), allow(dead_code))]
struct GradArgs<'a> {
    /// The canvas of one input channel at the tile's first output position.
    x: *const f32,
    /// At most [`GRAD_TAPS`] offsets.
    offsets: &'a [usize],
    /// The output gradient's first row of the block, at the tile's first position.
    gradient: *const f32,
    /// Elements between rows of the output gradient.
    stride: usize,
    /// Positions of the tile (a multiple of the lanes).
    len: usize,
    /// The block's vector sums, output channel `o` and tap `k` at `(o * GRAD_TAPS + k) *
    /// lanes`, added to.
    sums: *mut f32,
    /// Whether `sums` are still unwritten: stored to instead of added to.
    fresh: bool,
}

/// Runs the weight-gradient kernel of `isa` on `a.offsets.len()` taps.
///
/// # Safety
/// As [`WeightSums::add`] checks.
unsafe fn grad_block(isa: Isa, a: &GradArgs) {
    #[cfg(all(target_arch = "x86_64", feature = "x86-v4"))]
    // SAFETY: forwarded from the caller.
    unsafe {
        match (isa, a.offsets.len()) {
            (Isa::Avx512, 3) => x86::weight::<3>(a),
            (Isa::Avx512, 2) => x86::weight::<2>(a),
            (Isa::Avx512, _) => x86::weight::<1>(a),
        }
    }
    #[cfg(not(all(target_arch = "x86_64", feature = "x86-v4")))]
    {
        let _ = (isa, a);
        unreachable!("WeightSums::new refuses an instruction set this build has no kernels for")
    }
}

/// The AVX-512 kernels.
#[cfg(all(target_arch = "x86_64", feature = "x86-v4"))]
mod x86;
