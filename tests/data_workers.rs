//! Failures inside the loaders' worker threads: a dataset whose `image` or `label` panics, or
//! returns an error, and an image whose fields disagree, must reach the consumer as `Err`
//! items (and end the epoch), never as a panic on the caller's thread or a silently short
//! epoch.

use std::sync::Arc;

use burn::tensor::Device;
use rescom::Rng;
use rescom::data::{Dataset, EvalLoader, HostBatch, Image, LoaderConfig, Pipeline, TwoViewLoader};

/// Twelve 1x28x28 images; image `bad` misbehaves as `mode` says.
struct Faulty {
    bad: usize,
    mode: Mode,
}

#[derive(Clone, Copy)]
enum Mode {
    PanicInImage,
    PanicInLabel,
    Error,
    InconsistentImage,
}

impl Dataset for Faulty {
    fn len(&self) -> usize {
        12
    }
    fn num_classes(&self) -> usize {
        3
    }
    fn label(&self, index: usize) -> usize {
        if index == self.bad && matches!(self.mode, Mode::PanicInLabel) {
            panic!("label {index} is broken");
        }
        index % 3
    }
    fn image(&self, index: usize) -> rescom::Result<Image> {
        if index != self.bad {
            return Ok(Image::filled(1, 28, 28, index as u8));
        }
        match self.mode {
            Mode::PanicInImage => panic!("image {index} is broken"),
            Mode::PanicInLabel => Ok(Image::filled(1, 28, 28, 0)),
            Mode::Error => Err(rescom::Error::InvalidDataset(format!("image {index}"))),
            // The public fields claim 28x28 but hold fewer pixels.
            Mode::InconsistentImage => Ok(Image {
                channels: 1,
                height: 28,
                width: 28,
                pixels: vec![0; 10],
            }),
        }
    }
}

fn config(workers: usize) -> LoaderConfig {
    let mut config = LoaderConfig::new(4, 0);
    config.workers = workers;
    config.prefetch = 2;
    config
}

#[test]
fn worker_failures_come_out_as_errors() {
    let device = Device::flex();
    for mode in [
        Mode::PanicInImage,
        Mode::PanicInLabel,
        Mode::Error,
        Mode::InconsistentImage,
    ] {
        for workers in [1, 3] {
            let ds: Arc<dyn Dataset> = Arc::new(Faulty { bad: 5, mode });
            let loader = TwoViewLoader::new(
                ds.clone(),
                Pipeline::fashion_mnist_train(),
                config(workers),
                &device,
            )
            .unwrap();
            // The epoch yields good batches up to the faulty one, then exactly one error.
            let position = loader
                .epoch_batches(0)
                .iter()
                .position(|b| b.contains(&5))
                .unwrap();
            let items: Vec<Result<HostBatch, rescom::Error>> =
                loader.host_batches(0, 0).unwrap().collect();
            assert_eq!(items.len(), position + 1);
            assert!(items[..position].iter().all(Result::is_ok));
            let err = items[position].as_ref().unwrap_err();
            let text = err.to_string();
            match mode {
                Mode::PanicInImage | Mode::PanicInLabel => {
                    assert!(matches!(err, rescom::Error::WorkerPanic { .. }), "{text}");
                    assert!(text.contains("5 is broken"), "{text}");
                }
                Mode::Error => assert!(text.contains("image 5"), "{text}"),
                Mode::InconsistentImage => assert!(text.contains("10 pixels"), "{text}"),
            }
            let failed = loader.epoch(0).unwrap().find_map(Result::err);
            assert!(failed.is_some());

            let eval =
                EvalLoader::new(ds, Pipeline::fashion_mnist_eval(), config(workers), &device)
                    .unwrap();
            let results: Vec<_> = eval.batches().unwrap().collect();
            // Images 0..4 are fine; the batch of image 5 fails and ends the pass.
            assert_eq!(results.len(), 2);
            assert!(results[0].is_ok() && results[1].is_err());
        }
    }
}

#[test]
fn inconsistent_images_are_rejected_by_pipelines() {
    let broken = Image {
        channels: 3,
        height: 32,
        width: 32,
        pixels: vec![0; 100],
    };
    for pipeline in [Pipeline::cifar_train(), Pipeline::cifar_eval()] {
        let err = pipeline.apply(&broken, &mut Rng::new(0)).unwrap_err();
        assert!(err.to_string().contains("100 pixels"), "{err}");
    }
    let empty = Image {
        channels: 3,
        height: 0,
        width: 0,
        pixels: Vec::new(),
    };
    assert!(
        Pipeline::imagenet_train(8)
            .apply(&empty, &mut Rng::new(0))
            .is_err()
    );
}
