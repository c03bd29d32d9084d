//! Unit tests of the parent module.

use super::*;
use crate::Rng;

/// Direct evaluation of the convolution sum, the reference for the kernels.
fn direct(g: &Geometry, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
    let [in_h, in_w] = g.in_size;
    let [out_h, out_w] = g.out_size;
    let (group_in, group_out) = (g.group_in(), g.group_out());
    let mut y = vec![0.0; g.output_len()];
    for b in 0..g.batch {
        for o in 0..g.out_channels {
            let group = o / group_out;
            for oh in 0..out_h {
                for ow in 0..out_w {
                    let mut s = bias.map_or(0.0, |bias| bias[o]);
                    for i in 0..group_in {
                        let c = group * group_in + i;
                        for kh in 0..g.kernel[0] {
                            for kw in 0..g.kernel[1] {
                                let ih = (oh * g.stride[0] + kh * g.dilation[0]) as isize
                                    - g.padding[0].0 as isize;
                                let iw = (ow * g.stride[1] + kw * g.dilation[1]) as isize
                                    - g.padding[1].0 as isize;
                                if ih < 0 || iw < 0 || ih >= in_h as isize || iw >= in_w as isize {
                                    continue;
                                }
                                let xv = x[((b * g.in_channels + c) * in_h + ih as usize) * in_w
                                    + iw as usize];
                                let wv =
                                    w[((o * group_in + i) * g.kernel[0] + kh) * g.kernel[1] + kw];
                                s += xv * wv;
                            }
                        }
                    }
                    y[((b * g.out_channels + o) * out_h + oh) * out_w + ow] = s;
                }
            }
        }
    }
    y
}

fn random(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-12 * scale, "element {i}: {x} vs {y}");
    }
}

/// Geometries covering every branch: canvas (stride 1, enough channels), unrolled (few
/// channels, strides), pointwise, transposed and scattered input gradients (padding beyond
/// the kernel's reach), groups, dilation, asymmetric padding, several images per chunk.
fn geometries() -> Vec<Geometry> {
    let cases: [([usize; 4], [usize; 4], ConvOptions<2>); 14] = [
        (
            [2, 8, 5, 5],
            [4, 8, 1, 1],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [2, 3, 5, 6],
            [4, 3, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [3, 4, 7, 7],
            [6, 4, 3, 3],
            ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
        ),
        (
            [1, 6, 4, 5],
            [4, 6, 1, 1],
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        ),
        (
            [2, 6, 5, 5],
            [4, 6, 1, 1],
            ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
        ),
        (
            [2, 4, 6, 6],
            [8, 1, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 4),
        ),
        (
            [1, 3, 11, 9],
            [2, 3, 7, 7],
            ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
        ),
        (
            [2, 2, 7, 8],
            [2, 2, 3, 2],
            ConvOptions::new([1, 2], [0, 1], [2, 1], 1),
        ),
        (
            [1, 2, 5, 5],
            [3, 2, 2, 2],
            ConvOptions::new_with_padding([1, 1], [(0, 1), (1, 0)], [1, 1], 1),
        ),
        (
            [1, 2, 4, 4],
            [2, 2, 2, 2],
            ConvOptions::new([1, 1], [2, 2], [1, 1], 1),
        ),
        (
            [2, 2, 7, 7],
            [2, 2, 3, 3],
            ConvOptions::new([1, 1], [2, 1], [2, 2], 1),
        ),
        (
            [5, 8, 4, 5],
            [9, 8, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [3, 16, 5, 4],
            [8, 8, 3, 2],
            ConvOptions::new([1, 1], [2, 1], [1, 2], 2),
        ),
        (
            [2, 9, 6, 7],
            [10, 9, 2, 3],
            ConvOptions::new_with_padding([1, 1], [(1, 0), (0, 2)], [2, 1], 1),
        ),
    ];
    cases
        .iter()
        .map(|(x, w, o)| Geometry::new(*x, *w, o).expect("valid test geometry"))
        .collect()
}

#[test]
fn kernels_match_the_direct_sum_and_its_adjoints() {
    let mut rng = Rng::new(3);
    for g in geometries() {
        let x = random(&mut rng, g.input_len());
        let w = random(&mut rng, g.weight_len());
        let bias = random(&mut rng, g.out_channels);
        let dy = random(&mut rng, g.output_len());
        let y = forward(&g, &x, &w, Some(&bias));
        close(&y, &direct(&g, &x, &w, Some(&bias)));
        // The gradients are the adjoints of the (linear) forward map:
        // <dy, conv(x, w)> = <input_grad(w, dy), x> = <weight_grad(x, dy), w>.
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
        let dx = input_grad(&g, &w, &dy);
        let dw = weight_grad(&g, &x, &dy);
        // Check each gradient element against the direct sum's derivative.
        for (i, d) in dx.iter().enumerate() {
            let mut unit = vec![0.0; x.len()];
            unit[i] = 1.0;
            let expected = dot(&dy, &direct(&g, &unit, &w, None));
            assert!(
                (d - expected).abs() < 1e-10,
                "{g:?} dx[{i}]: {d} vs {expected}"
            );
        }
        for (i, d) in dw.iter().enumerate() {
            let mut unit = vec![0.0; w.len()];
            unit[i] = 1.0;
            let expected = dot(&dy, &direct(&g, &x, &unit, None));
            assert!(
                (d - expected).abs() < 1e-10,
                "{g:?} dw[{i}]: {d} vs {expected}"
            );
        }
        let db = bias_grad(g.out_channels, g.out_pixels(), &dy);
        let pixels = g.out_pixels();
        for (o, d) in db.iter().enumerate() {
            let expected: f64 = (0..g.batch)
                .flat_map(|b| &dy[(b * g.out_channels + o) * pixels..][..pixels])
                .sum();
            assert!((d - expected).abs() < 1e-10);
        }
    }
}

#[test]
fn invalid_shapes_have_no_geometry() {
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    // Channels differ, kernel larger than the padded input, empty batch.
    assert!(Geometry::new([1, 3, 4, 4], [2, 2, 3, 3], &options).is_none());
    assert!(Geometry::new([1, 3, 2, 2], [2, 3, 3, 3], &options).is_none());
    assert!(Geometry::new([0, 3, 4, 4], [2, 3, 3, 3], &options).is_none());
    let grouped = ConvOptions::new([1, 1], [0, 0], [1, 1], 2);
    assert!(Geometry::new([1, 4, 4, 4], [3, 2, 1, 1], &grouped).is_none());
    assert!(Geometry::new([1, 4, 4, 4], [4, 2, 1, 1], &grouped).is_some());
}

/// Canvas geometries for the float32 kernels.
fn canvas_geometries() -> Vec<Geometry> {
    // Canvas geometries: output channels that leave a partial register block (9, 10, 12),
    // groups, dilation, spans that end in a partial block of positions, padding beyond the
    // kernel's reach (output rows that share canvas positions).
    let cases: [([usize; 4], [usize; 4], ConvOptions<2>); 7] = [
        (
            [2, 8, 5, 5],
            [9, 8, 1, 1],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [3, 8, 5, 6],
            [16, 8, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [2, 16, 6, 6],
            [16, 8, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 2),
        ),
        (
            [3, 8, 5, 6],
            [9, 8, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [2, 16, 6, 7],
            [16, 16, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
        (
            [2, 16, 5, 4],
            [10, 8, 3, 2],
            ConvOptions::new([1, 1], [2, 1], [1, 2], 2),
        ),
        (
            [5, 32, 4, 4],
            [12, 32, 3, 3],
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        ),
    ];
    cases
        .iter()
        .map(|(x, w, o)| Geometry::new(*x, *w, o).expect("valid test geometry"))
        .collect()
}

#[test]
fn f32_kernels_match_float64_on_every_instruction_set() {
    let isas = [None, Some(direct::Isa::Avx512)];
    let mut rng = Rng::new(11);
    let mut joint = 0;
    for g in canvas_geometries() {
        assert!(g.uses_canvas());
        let x = random(&mut rng, g.input_len());
        let w = random(&mut rng, g.weight_len());
        let bias = random(&mut rng, g.out_channels);
        let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<f64>>();
        let (x, w, bias) = (f32s(&x), f32s(&w), f32s(&bias));
        let expected = direct(&g, &f64s(&x), &f64s(&w), Some(&f64s(&bias)));
        // Each output sums `terms` rounded products: its error is within `terms` units of
        // float32 rounding of the sum of the magnitudes.
        let abs = |v: &[f32]| v.iter().map(|v| v.abs() as f64).collect::<Vec<f64>>();
        let magnitude = direct(&g, &abs(&x), &abs(&w), Some(&abs(&bias)));
        let terms = (g.patch_len() + 1) as f64;
        // The weight gradient likewise, against the float64 kernels (exact to 1e-12 above).
        let dy = f32s(&random(&mut rng, g.output_len()));
        let expected_dw = weight_grad(&g, &f64s(&x), &f64s(&dy));
        let magnitude_dw = weight_grad(&g, &abs(&x), &abs(&dy));
        let terms_dw = (g.batch * g.out_pixels()) as f64;
        let within = |what: &str, got: &[f32], expected: &[f64], magnitude: &[f64], terms: f64| {
            assert_within(&format!("{what} {g:?}"), got, expected, magnitude, terms)
        };
        for isa in isas
            .into_iter()
            .filter(|isa| isa.is_none_or(|i| i.available()))
        {
            let y = forward_on(&g, &x, &w, Some(&bias), isa);
            within(
                &format!("{isa:?} forward"),
                &y,
                &expected,
                &magnitude,
                terms,
            );
            let dw = weight_grad_on(&g, &x, &dy, isa);
            let what = format!("{isa:?} weight gradient");
            within(&what, &dw, &expected_dw, &magnitude_dw, terms_dw);
            joint += usize::from(joint_matches_one_at_a_time(&g, &x, &w, &dy, &dw, isa));
        }
    }
    // Where the CPU has the direct kernels, the joint pass ran on the cases it takes.
    let available = direct::Isa::Avx512.available();
    assert_eq!(joint, if available { 3 } else { 0 });
}

/// Asserts each element of `got` within `terms` units of float32 rounding of `magnitude`
/// from `expected`.
fn assert_within(what: &str, got: &[f32], expected: &[f64], magnitude: &[f64], terms: f64) {
    assert_eq!(got.len(), expected.len());
    for (i, ((&v, e), m)) in got.iter().zip(expected).zip(magnitude).enumerate() {
        let bound = terms * f32::EPSILON as f64 * m;
        assert!(
            (v as f64 - e).abs() <= bound,
            "{what} element {i}: {v} vs {e} (bound {bound})"
        );
    }
}

/// Both gradients at once on `isa`: the numbers of one at a time (`dw` the weight gradient),
/// to the bit, and the input gradient within float32 rounding of float64's. Returns whether
/// the joint pass took the case.
fn joint_matches_one_at_a_time(
    g: &Geometry,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dw: &[f32],
    isa: Option<direct::Isa>,
) -> bool {
    let (dx, dw_joint) = joint::backward_on(g, x, w, dy, isa);
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
    assert_eq!(
        bits(&dw_joint),
        bits(dw),
        "{isa:?} joint weight gradient {g:?}"
    );
    let dx_alone = match isa.zip(g.transposed()) {
        Some((isa, t)) => forward_on(&t, dy, &flip_transpose(g, w), None, Some(isa)),
        None => input_grad(g, w, dy),
    };
    assert_eq!(
        bits(&dx),
        bits(&dx_alone),
        "{isa:?} joint input gradient {g:?}"
    );
    let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let abs = |v: &[f32]| v.iter().map(|v| v.abs() as f64).collect::<Vec<f64>>();
    let expected = input_grad(g, &f64s(w), &f64s(dy));
    let magnitude = input_grad(g, &abs(w), &abs(dy));
    let terms = (g.group_out() * g.taps()) as f64;
    let what = format!("{isa:?} input gradient {g:?}");
    assert_within(&what, &dx, &expected, &magnitude, terms);
    let shared = isa.zip(g.transposed());
    shared.is_some_and(|(isa, t)| canvas::shares_canvas(g, &t, isa))
}
