//! Training-mode batch normalisation (optionally followed by a ReLU) on plain `[B, C, N]`
//! slices, in a few passes over the data: the forward pass reads the input twice (the
//! statistics, then the output) and writes the output once; the backward pass reads the input and the
//! output gradient twice (the two channel sums, then the input gradient) and writes the input
//! gradient once. The ReLU's mask is recomputed from the input, so the output is not kept.
//!
//! Sums are accumulated in `f64`, per image and channel in parallel over images, then added
//! over images in order, so the results do not depend on the number of threads.

use rayon::prelude::*;

use super::Element;
use super::simd::vectorised;

/// `[images, channels, values per channel and image]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub images: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl Layout {
    fn len(&self) -> usize {
        self.images * self.channels * self.pixels
    }

    /// Values per channel: `images * pixels`.
    fn count(&self) -> usize {
        self.images * self.pixels
    }
}

/// The per-channel map of the normalisation before the ReLU:
/// `y = (x - mean) * scale + beta` with `scale = gamma / sqrt(var + eps)`, evaluated in the
/// input's precision (as Burn does) by forward and backward alike, so the ReLU mask
/// recomputed in the backward pass is the forward pass's.
#[derive(Debug, Clone)]
struct Affine<T> {
    mean: Vec<T>,
    scale: Vec<T>,
    beta: Vec<T>,
    inv_std: Vec<f64>,
}

impl<T: Element> Affine<T> {
    fn new(gamma: &[T], beta: &[T], mean: &[T], var: &[T], epsilon: f64) -> Self {
        let c = mean.len();
        let inv_std: Vec<f64> = var[..c]
            .iter()
            .map(|&v| 1.0 / (v.to_f64() + epsilon).sqrt())
            .collect();
        Self {
            mean: mean.to_vec(),
            scale: gamma[..c]
                .iter()
                .zip(&inv_std)
                .map(|(&g, &s)| T::from_f64(g.to_f64() * s))
                .collect(),
            beta: beta[..c].to_vec(),
            inv_std,
        }
    }

    /// The gradient through the ReLU (when `relu`) of channel `c`, at input value `x`.
    #[inline(always)]
    fn gate(&self, c: usize, relu: bool) -> impl Fn(T, T) -> T + Copy {
        let map = self.channel(c);
        move |x, g| {
            if relu && map(x) <= T::ZERO {
                T::ZERO
            } else {
                g
            }
        }
    }

    /// The map of channel `c`, as a function of the input value.
    #[inline(always)]
    fn channel(&self, c: usize) -> impl Fn(T) -> T + Copy {
        let (mean, scale, beta) = (self.mean[c], self.scale[c], self.beta[c]);
        move |x| (x - mean) * scale + beta
    }
}

/// Per image and channel, `f(channel, values)` summed into one `f64` per channel, then over
/// images in order.
fn channel_sums<T: Element, const K: usize>(
    layout: Layout,
    data: &[T],
    f: impl Fn(usize, &[T], usize) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let image = layout.channels * layout.pixels;
    let partial: Vec<Vec<[f64; K]>> = data[..layout.len()]
        .par_chunks(image)
        .enumerate()
        .map(|(b, image)| {
            let mut sums = Vec::with_capacity(layout.channels);
            vectorised(
                #[inline(always)]
                || {
                    for (c, values) in image.chunks(layout.pixels).enumerate() {
                        sums.push(f(c, values, b));
                    }
                },
            );
            sums
        })
        .collect();
    let mut total = vec![[0.0; K]; layout.channels];
    for image in partial {
        for (t, p) in total.iter_mut().zip(image) {
            for k in 0..K {
                t[k] += p[k];
            }
        }
    }
    total
}

/// Forward pass: normalises `x` with its batch mean and biased variance per channel, scales by
/// `gamma`, shifts by `beta`, and applies a ReLU when `relu`. Returns the output, the mean and
/// the biased variance.
///
/// # Panics
/// If a slice is shorter than `layout` says.
pub(crate) fn forward<T: Element>(
    layout: Layout,
    x: &[T],
    gamma: &[T],
    beta: &[T],
    epsilon: f64,
    relu: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    assert!(x.len() >= layout.len() && gamma.len() >= layout.channels);
    assert!(beta.len() >= layout.channels);
    // One pass over the data: the sums of `x - k` and `(x - k)^2` around a shift `k`, the
    // channel's first value, which keeps the cancellation in the variance small (the
    // "shifted data" form of the two-pass algorithm).
    let n = layout.count() as f64;
    let shift: Vec<f64> = (0..layout.channels)
        .map(|c| x[c * layout.pixels].to_f64())
        .collect();
    let sums = channel_sums(
        layout,
        x,
        #[inline(always)]
        |c, v, _| {
            let k = shift[c];
            sum2(v, v, |x, _| {
                let d = x.to_f64() - k;
                [d, d * d]
            })
        },
    );
    let mean: Vec<T> = sums
        .iter()
        .zip(&shift)
        .map(|([s, _], k)| T::from_f64(k + s / n))
        .collect();
    let var: Vec<T> = sums
        .iter()
        .map(|[s, ss]| T::from_f64(((ss - s * s / n) / n).max(0.0)))
        .collect();
    let affine = Affine::new(gamma, beta, &mean, &var, epsilon);
    let mut y = Vec::with_capacity(layout.len());
    let image = layout.channels * layout.pixels;
    y.spare_capacity_mut()[..layout.len()]
        .par_chunks_mut(image)
        .zip(x[..layout.len()].par_chunks(image))
        .for_each(|(y, x)| {
            vectorised(
                #[inline(always)]
                || {
                    for (c, (y, x)) in y
                        .chunks_mut(layout.pixels)
                        .zip(x.chunks(layout.pixels))
                        .enumerate()
                    {
                        let map = affine.channel(c);
                        if relu {
                            for (y, &x) in y.iter_mut().zip(x) {
                                let v = map(x);
                                y.write(if v <= T::ZERO { T::ZERO } else { v });
                            }
                        } else {
                            for (y, &x) in y.iter_mut().zip(x) {
                                y.write(map(x));
                            }
                        }
                    }
                },
            )
        });
    // SAFETY: the loop above wrote each of the first `layout.len()` elements.
    unsafe { y.set_len(layout.len()) };
    (y, mean, var)
}

/// Independent partial sums, so that the additions of a reduction can run in parallel (and
/// in SIMD lanes) instead of waiting on one another.
const LANES: usize = 16;

/// Sums of `f(x, g)` over pairs of `x` and `g`, each accumulated in [`LANES`] partial sums.
#[inline(always)]
fn sum2<T: Element>(x: &[T], g: &[T], f: impl Fn(T, T) -> [f64; 2]) -> [f64; 2] {
    let mut acc = [[0.0; LANES]; 2];
    let mut xs = x.chunks_exact(LANES);
    let mut gs = g.chunks_exact(LANES);
    for (x, g) in (&mut xs).zip(&mut gs) {
        for (l, (&x, &g)) in x.iter().zip(g).enumerate() {
            let [a, b] = f(x, g);
            acc[0][l] += a;
            acc[1][l] += b;
        }
    }
    for (l, (&x, &g)) in xs.remainder().iter().zip(gs.remainder()).enumerate() {
        let [a, b] = f(x, g);
        acc[0][l] += a;
        acc[1][l] += b;
    }
    [acc[0].iter().sum(), acc[1].iter().sum()]
}

/// Backward pass of [`forward`] (with the same `relu`): from the input `x`, the statistics the
/// forward pass returned and the output gradient `dy`, the gradients of the input, `gamma` and
/// `beta`.
///
/// # Panics
/// If a slice is shorter than `layout` says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Element>(
    layout: Layout,
    x: &[T],
    dy: &[T],
    gamma: &[T],
    beta: &[T],
    mean: &[T],
    var: &[T],
    epsilon: f64,
    relu: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    assert!(x.len() >= layout.len() && dy.len() >= layout.len());
    let c = layout.channels;
    assert!(gamma.len() >= c && beta.len() >= c && mean.len() >= c && var.len() >= c);
    let affine = Affine::new(gamma, beta, mean, var, epsilon);
    let image = layout.channels * layout.pixels;
    let dy = &dy[..layout.len()];
    let gate = |c: usize| affine.gate(c, relu);
    // Sums of the gated gradient and of its product with the centred input.
    let sums = channel_sums(
        layout,
        x,
        #[inline(always)]
        |c, x, b| {
            let dy = &dy[b * image + c * layout.pixels..][..layout.pixels];
            let (m, gate) = (affine.mean[c], gate(c));
            sum2(x, dy, |x, g| {
                let g = gate(x, g);
                [g.to_f64(), (g * (x - m)).to_f64()]
            })
        },
    );
    let n = layout.count() as f64;
    let dbeta: Vec<T> = sums.iter().map(|s| T::from_f64(s[0])).collect();
    let dgamma: Vec<T> = sums
        .iter()
        .zip(&affine.inv_std)
        .map(|(s, i)| T::from_f64(s[1] * i))
        .collect();
    // dx = k * (g - mean(g) - xhat * mean(g * xhat)) with k = gamma / std, as
    // `a * g - b - c * (x - mean)` per channel.
    let coefficients: Vec<[T; 3]> = (0..c)
        .map(|ch| {
            let (s, i) = (sums[ch], affine.inv_std[ch]);
            let k = gamma[ch].to_f64() * i;
            [k, k * s[0] / n, k * i * i * s[1] / n].map(T::from_f64)
        })
        .collect();
    let dx = input_gradient(layout, x, dy, &affine, &coefficients, relu);
    (dx, dgamma, dbeta)
}

/// `dx = a * gate(x, dy) - b - slope * (x - mean)` with the `[a, b, slope]` of each channel.
fn input_gradient<T: Element>(
    layout: Layout,
    x: &[T],
    dy: &[T],
    affine: &Affine<T>,
    coefficients: &[[T; 3]],
    relu: bool,
) -> Vec<T> {
    let image = layout.channels * layout.pixels;
    let mut dx = Vec::with_capacity(layout.len());
    dx.spare_capacity_mut()[..layout.len()]
        .par_chunks_mut(image)
        .zip(
            x[..layout.len()]
                .par_chunks(image)
                .zip(dy.par_chunks(image)),
        )
        .for_each(|(dx, (x, dy))| {
            vectorised(
                #[inline(always)]
                || {
                    let pixels = layout.pixels;
                    let channels = dx
                        .chunks_mut(pixels)
                        .zip(x.chunks(pixels).zip(dy.chunks(pixels)));
                    for (ch, (dx, (x, dy))) in channels.enumerate() {
                        let [a, b, slope] = coefficients[ch];
                        let (m, gate) = (affine.mean[ch], affine.gate(ch, relu));
                        for (d, (&x, &g)) in dx.iter_mut().zip(x.iter().zip(dy)) {
                            d.write(a * gate(x, g) - b - slope * (x - m));
                        }
                    }
                },
            )
        });
    // SAFETY: the loop above wrote each of the first `layout.len()` elements.
    unsafe { dx.set_len(layout.len()) };
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    /// Direct evaluation of the normalisation (and ReLU), the reference for the kernels.
    fn direct(l: Layout, x: &[f64], gamma: &[f64], beta: &[f64], eps: f64, relu: bool) -> Vec<f64> {
        let n = l.count() as f64;
        let mut y = vec![0.0; l.len()];
        for c in 0..l.channels {
            let idx = |b: usize, p: usize| (b * l.channels + c) * l.pixels + p;
            let all = || (0..l.images).flat_map(move |b| (0..l.pixels).map(move |p| (b, p)));
            let m = all().map(|(b, p)| x[idx(b, p)]).sum::<f64>() / n;
            let v = all().map(|(b, p)| (x[idx(b, p)] - m).powi(2)).sum::<f64>() / n;
            for (b, p) in all() {
                let out = (x[idx(b, p)] - m) / (v + eps).sqrt() * gamma[c] + beta[c];
                y[idx(b, p)] = if relu { out.max(0.0) } else { out };
            }
        }
        y
    }

    #[test]
    fn forward_and_backward_match_the_direct_formula_and_its_derivatives() {
        let mut rng = Rng::new(8);
        let layout = |images, channels, pixels| Layout {
            images,
            channels,
            pixels,
        };
        // The last case has a mean a hundred thousand times its spread.
        for (layout, relu, spread, offset) in [
            (layout(3, 4, 5), false, 2.0, 0.5),
            (layout(2, 3, 7), true, 2.0, 0.5),
            (layout(6, 2, 1), true, 2.0, 0.5),
            (layout(4, 2, 9), false, 0.01, 1000.0),
        ] {
            let x: Vec<f64> = (0..layout.len())
                .map(|_| rng.normal() * spread + offset)
                .collect();
            let gamma: Vec<f64> = (0..layout.channels).map(|_| rng.normal()).collect();
            let beta: Vec<f64> = (0..layout.channels).map(|_| rng.normal() * 0.3).collect();
            let dy: Vec<f64> = (0..layout.len()).map(|_| rng.normal()).collect();
            let eps = 1e-5;
            let (y, mean, var) = forward(layout, &x, &gamma, &beta, eps, relu);
            let expected = direct(layout, &x, &gamma, &beta, eps, relu);
            for (a, e) in y.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-9, "{a} vs {e}");
            }
            let (dx, dgamma, dbeta) =
                backward(layout, &x, &dy, &gamma, &beta, &mean, &var, eps, relu);
            // Central differences of <dy, y> with respect to every input.
            let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| -> f64 {
                direct(layout, x, gamma, beta, eps, relu)
                    .iter()
                    .zip(&dy)
                    .map(|(a, b)| a * b)
                    .sum()
            };
            let h = 1e-6;
            let check = |analytic: &[f64], perturb: &dyn Fn(usize, f64) -> f64| {
                for (i, a) in analytic.iter().enumerate() {
                    let numeric = (perturb(i, h) - perturb(i, -h)) / (2.0 * h);
                    let tolerance = 1e-5 * (1.0 + numeric.abs());
                    assert!((a - numeric).abs() < tolerance, "{i}: {a} vs {numeric}");
                }
            };
            check(&dx, &|i, d| {
                let mut x = x.clone();
                x[i] += d;
                loss(&x, &gamma, &beta)
            });
            check(&dgamma, &|i, d| {
                let mut g = gamma.clone();
                g[i] += d;
                loss(&x, &g, &beta)
            });
            check(&dbeta, &|i, d| {
                let mut b = beta.clone();
                b[i] += d;
                loss(&x, &gamma, &b)
            });
        }
    }
}
