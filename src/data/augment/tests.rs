//! Unit tests of the parent module.

use super::*;

#[test]
fn cutout_clips_at_the_border() {
    let mut rng = Rng::new(5);
    let mut sizes = std::collections::HashSet::new();
    for _ in 0..300 {
        let mut view = vec![1.0f32; 2 * 8 * 8];
        cutout(&mut view, 2, 8, 8, 4, &mut rng);
        let zeros = view.iter().filter(|&&v| v == 0.0).count();
        // Both channels lose the same square of at most 4x4 and at least 2x2 pixels.
        assert_eq!(zeros % 2, 0);
        assert!((2 * 4..=2 * 16).contains(&zeros), "{zeros}");
        assert_eq!(view[..64].iter().filter(|&&v| v == 0.0).count(), zeros / 2);
        sizes.insert(zeros / 2);
    }
    assert!(sizes.contains(&16) && sizes.contains(&4), "{sizes:?}");
}

#[test]
fn pipelines_validate_their_parameters() {
    assert!(Pipeline::new(Vec::new(), None, &[0.5], &[0.0], (1, 2, 2)).is_err());
    assert!(Pipeline::new(Vec::new(), None, &[0.5], &[0.5], (1, 0, 2)).is_err());
    assert!(Pipeline::new(Vec::new(), None, &[0.5, 0.5], &[0.5], (1, 2, 2)).is_err());
    let bad = Step::RandomResizedCrop {
        size: 4,
        scale: (0.5, 0.1),
        ratio: (0.75, 1.33),
    };
    assert!(Pipeline::new(vec![bad], None, &[0.5], &[0.5], (1, 4, 4)).is_err());
    assert!(Step::HorizontalFlip { p: 1.5 }.validate().is_err());
    for p in [
        Pipeline::cifar_train(),
        Pipeline::cifar_eval(),
        Pipeline::fashion_mnist_train(),
        Pipeline::fashion_mnist_eval(),
        Pipeline::imagenet_train(224),
        Pipeline::imagenet_train_with(224, RandAugmentPolicy::Torchvision),
        Pipeline::imagenet_eval(224),
    ] {
        let (mean, std) = p.normalization();
        let rebuilt =
            Pipeline::new(p.steps().to_vec(), p.cutout(), mean, std, p.output_shape()).unwrap();
        assert_eq!(rebuilt, p);
    }
    let small =
        Pipeline::autoaugment_train(28, 4, Some(14), &FASHION_MNIST_MEAN, &FASHION_MNIST_STD)
            .unwrap();
    assert_eq!(small, Pipeline::fashion_mnist_train());
    let mut buffer = vec![0.0; 5];
    let err = Pipeline::cifar_eval()
        .apply_into(&Image::filled(3, 32, 32, 0), &mut Rng::new(0), &mut buffer)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn pipelines_read_back_equal_and_behave_the_same() {
    let inaturalist = Pipeline::new(
        Pipeline::imagenet_train_with(24, RandAugmentPolicy::Torchvision)
            .steps()
            .to_vec(),
        Some(5),
        &[0.466, 0.471, 0.380],
        &[0.195, 0.194, 0.192],
        (3, 24, 24),
    )
    .unwrap();
    let pipelines = [
        Pipeline::cifar_train(),
        Pipeline::cifar_eval(),
        Pipeline::fashion_mnist_train(),
        Pipeline::fashion_mnist_eval(),
        Pipeline::imagenet_train(24),
        Pipeline::imagenet_eval(24),
        inaturalist,
    ];
    let image = Image::new(
        3,
        40,
        36,
        (0..3 * 40 * 36).map(|v| (v * 7 % 256) as u8).collect(),
    )
    .unwrap();
    let grey = Image::new(1, 28, 28, (0..784).map(|v| (v * 5 % 256) as u8).collect()).unwrap();
    for pipeline in pipelines {
        let json = serde_json::to_string(&pipeline).unwrap();
        let back: Pipeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pipeline, "{json}");
        let input = if pipeline.output_shape().0 == 1 {
            &grey
        } else {
            &image
        };
        let input = geometry::resize(input, 32, 32);
        let input = if pipeline.output_shape().1 == 28 {
            geometry::resize(&input, 28, 28)
        } else {
            input
        };
        for key in 0..4 {
            let view = |p: &Pipeline| p.apply(&input, &mut Rng::from_key(&[key, 1, 2, 0]));
            assert_eq!(view(&back).unwrap(), view(&pipeline).unwrap(), "{json}");
        }
    }
    assert_eq!(
        serde_json::to_string(&Step::ResizeShorter(256)).unwrap(),
        r#"{"resize_shorter":256}"#
    );
    // What Pipeline::new refuses is refused when read, too.
    let json = serde_json::to_string(&Pipeline::cifar_eval()).unwrap();
    let bad = json.replace("0.2023", "0.0");
    assert!(serde_json::from_str::<Pipeline>(&bad).is_err(), "{bad}");
    let bad = json.replace("[3,32,32]", "[1,32,32]");
    assert!(serde_json::from_str::<Pipeline>(&bad).is_err(), "{bad}");
}
