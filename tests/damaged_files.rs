//! Damaged and hostile files give clear errors, never a panic, an abort or an allocation the
//! file cannot justify: one case for each fault the fuzz harness (`examples/fuzz`) has found.

use std::io::Write;
use std::path::Path;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig, momentum::MomentumConfig};
use burn::tensor::{Bytes, Device, Distribution, Tensor};
use rescom::Error;
use rescom::data::{Dataset, EvalLoader, ListDataset, OnUnreadable, load_idx_pair};
use rescom::data::{MAX_IMAGE_BYTES, MAX_IMAGE_SIDE};
use rescom::model::{ResComHead, ResComHeadConfig};
use rescom::run::{RunOptions, evaluate_checkpoint, fit};
use rescom::train::SectionFile;
use rescom_support::small_run;

fn assert_checkpoint_error<T>(result: rescom::Result<T>, needle: &str) {
    let Err(err) = result else {
        panic!("the damaged section must be refused (`{needle}`)");
    };
    assert!(
        matches!(err, Error::Checkpoint { .. }) && err.to_string().contains(needle),
        "{err}"
    );
}

// ----- checkpoints ------------------------------------------------------------------------

#[test]
fn a_section_count_beyond_the_file_is_refused_before_allocating() {
    // Header, then metadata `[]` and nothing else, but u32::MAX sections declared: sizing the
    // section list from the count asked for hundreds of gigabytes and aborted the process.
    let mut bytes = b"RESCOMCK".to_vec();
    bytes.extend(1u32.to_le_bytes());
    bytes.extend(u32::MAX.to_le_bytes());
    bytes.extend(2u64.to_le_bytes());
    bytes.extend(b"[]");
    let result = SectionFile::<Vec<u32>>::from_bytes(&bytes, Path::new("ck.bin"));
    assert_checkpoint_error(result, "4294967295 sections declared");
}

fn head(classes: usize, device: &Device) -> ResComHead {
    ResComHeadConfig::new(8, classes, 16, 4)
        .init(device)
        .unwrap()
}

fn sgd() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new()))
        .init()
}

/// A head after one SGD step with momentum, and the optimiser's record.
fn trained(device: &Device) -> (ResComHead, Bytes) {
    let model = head(3, device);
    let mut optimizer = sgd();
    let x = Tensor::<2>::random([4, 8], Distribution::Normal(0.0, 1.0), device);
    let out = model.forward(x);
    let grads = GradientsParams::from_grads(
        (out.logits.sum() + out.projections.sum()).backward(),
        &model,
    );
    let model = optimizer.step(0.1, model, grads);
    (model, optimizer.into_bytes().unwrap())
}

/// The optimiser record rewritten through `edit` (tensors and scalars as Burn's reader gives
/// them).
fn rewrite(
    record: Bytes,
    edit: impl FnOnce(&mut Vec<burn_pack::Tensor>, &mut Vec<(String, burn_pack::Scalar)>),
) -> Vec<u8> {
    let reader = burn_pack::Reader::from_bytes(record).unwrap();
    let mut scalars: Vec<_> = reader
        .scalars()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let metadata = reader.metadata().clone();
    let mut tensors = reader.into_tensors().unwrap();
    edit(&mut tensors, &mut scalars);
    let mut writer = burn_pack::Writer::new(tensors);
    for (k, v) in &scalars {
        writer = writer.with_scalar(k, *v);
    }
    for (k, v) in &metadata {
        writer = writer.with_metadata(k, v);
    }
    writer.into_bytes().unwrap().to_vec()
}

fn with_optimizer(bytes: Vec<u8>) -> SectionFile<()> {
    SectionFile {
        meta: (),
        sections: vec![("optimizer".into(), bytes)],
    }
}

#[test]
fn optimizer_records_are_checked_against_the_model() {
    let device = Device::flex().autodiff();
    let (model, record) = trained(&device);
    let path = Path::new("ck.bin");

    // The record as written restores.
    let intact = with_optimizer(record.to_vec());
    assert!(
        intact
            .load_optimizer("optimizer", sgd(), &model, path)
            .is_ok()
    );

    // State tensors without a parameter id: Burn's reader panicked.
    let no_ids = rewrite(record.clone(), |tensors, _| {
        for t in tensors.iter_mut() {
            t.param_id = None;
        }
    });
    let result = with_optimizer(no_ids).load_optimizer("optimizer", sgd(), &model, path);
    assert_checkpoint_error(result, "belongs to no parameter");

    // A recorded rank Burn has no state type for: it panicked while loading.
    let rank = rewrite(record.clone(), |_, scalars| {
        for (k, v) in scalars.iter_mut() {
            if k.ends_with(".__rank") {
                *v = burn_pack::Scalar::from(9usize);
            }
        }
    });
    let result = with_optimizer(rank).load_optimizer("optimizer", sgd(), &model, path);
    assert_checkpoint_error(result, "matches no parameter");

    // State of the wrong shape: it loaded, then the first step panicked.
    let shape = rewrite(record.clone(), |tensors, _| {
        for t in tensors.iter_mut() {
            let (name, dtype, _, id, _) = t.clone().into_parts().unwrap();
            *t =
                burn_pack::Tensor::new(name, dtype, vec![1], id, Bytes::from_bytes_vec(vec![0; 4]));
        }
    });
    let result = with_optimizer(shape).load_optimizer("optimizer", sgd(), &model, path);
    assert_checkpoint_error(result, "its parameter is");

    // The state of one parameter (with its id and shape) named for another parameter of
    // another shape: Burn files a state under its name, and panicked.
    let misfiled = rewrite(record.clone(), |tensors, _| {
        let first = tensors.remove(0);
        let (name, ..) = first.into_parts().unwrap();
        let (_, dtype, shape, id, bytes) = tensors[0].clone().into_parts().unwrap();
        tensors[0] = burn_pack::Tensor::new(name, dtype, shape, id, bytes);
    });
    let result = with_optimizer(misfiled).load_optimizer("optimizer", sgd(), &model, path);
    assert_checkpoint_error(result, "named for another");

    // The state of another model (a head with more classes).
    let other = head(5, &device);
    let result = intact.load_optimizer("optimizer", sgd(), &other, path);
    assert_checkpoint_error(result, "matches no parameter");

    // NaN in the momentum.
    let nan = rewrite(record, |tensors, _| {
        let (name, dtype, shape, id, bytes) = tensors[0].clone().into_parts().unwrap();
        let mut bytes = bytes.to_vec();
        bytes[..4].copy_from_slice(&f32::NAN.to_le_bytes());
        tensors[0] = burn_pack::Tensor::new(name, dtype, shape, id, Bytes::from_bytes_vec(bytes));
    });
    let result = with_optimizer(nan).load_optimizer("optimizer", sgd(), &model, path);
    assert_checkpoint_error(result, "NaN or infinite");

    // No section at all.
    let result = SectionFile {
        meta: (),
        sections: Vec::new(),
    }
    .load_optimizer("optimizer", sgd(), &model, path);
    assert_checkpoint_error(result, "missing section `optimizer`");
}

#[test]
fn module_records_keep_shapes_types_and_finite_values() {
    let device = Device::flex();
    let model = head(3, &device);
    let record = model.clone().into_record().into_bytes().unwrap();
    let path = Path::new("ck.bin");
    let checkpoint = |bytes: Vec<u8>| SectionFile {
        meta: (),
        sections: vec![("model".into(), bytes)],
    };

    let restored = checkpoint(record.to_vec())
        .load_module("model", head(3, &device), path)
        .unwrap();
    let x = Tensor::<2>::random([2, 8], Distribution::Normal(0.0, 1.0), &device);
    let logits = |m: &ResComHead| m.logits(x.clone()).into_data();
    assert_eq!(logits(&restored), logits(&model));

    // A parameter of another shape (a head with more classes).
    let result = checkpoint(record.to_vec()).load_module("model", head(5, &device), path);
    assert_checkpoint_error(result, "section `model`");

    // A parameter recorded as f64: the model would silently change its float type.
    let widened = rewrite(record.clone(), |tensors, _| {
        let (name, _, shape, id, bytes) = tensors[0].clone().into_parts().unwrap();
        let wide: Vec<u8> = bytes
            .chunks_exact(4)
            .flat_map(|b| (f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).to_le_bytes())
            .collect();
        tensors[0] = burn_pack::Tensor::new(
            name,
            burn::tensor::DType::F64,
            shape,
            id,
            Bytes::from_bytes_vec(wide),
        );
    });
    let result = checkpoint(widened).load_module("model", head(3, &device), path);
    assert_checkpoint_error(result, "the module needs");

    // A float parameter recorded as 32-bit integers (the same bytes): checking its values
    // for NaN panicked.
    let integers = rewrite(record.clone(), |tensors, _| {
        let (name, _, shape, id, bytes) = tensors[0].clone().into_parts().unwrap();
        tensors[0] = burn_pack::Tensor::new(name, burn::tensor::DType::I32, shape, id, bytes);
    });
    let result = checkpoint(integers).load_module("model", head(3, &device), path);
    assert_checkpoint_error(result, "the module needs");

    // Two parameters with one id: gradients and optimiser state are keyed by id.
    let shared = rewrite(record.clone(), |tensors, _| {
        let id = tensors[0].param_id;
        tensors[1].param_id = id;
    });
    let result = checkpoint(shared).load_module("model", head(3, &device), path);
    assert_checkpoint_error(result, "share the id");

    // An infinity in a weight.
    let inf = rewrite(record, |tensors, _| {
        let (name, dtype, shape, id, bytes) = tensors[0].clone().into_parts().unwrap();
        let mut bytes = bytes.to_vec();
        bytes[..4].copy_from_slice(&f32::INFINITY.to_le_bytes());
        tensors[0] = burn_pack::Tensor::new(name, dtype, shape, id, Bytes::from_bytes_vec(bytes));
    });
    let result = checkpoint(inf).load_module("model", head(3, &device), path);
    assert_checkpoint_error(result, "NaN or infinite");

    // Bytes that are no record.
    let result = checkpoint(b"not a record".to_vec()).load_module("model", head(3, &device), path);
    assert_checkpoint_error(result, "section `model`");
}

// ----- IDX ----------------------------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn a_gzip_stream_inflates_no_further_than_its_header_declares() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.gz");
    let labels = dir.path().join("labels.gz");
    let mut image_file = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2];
    image_file.extend([7u8; 12]);
    std::fs::write(&images, gzip(&image_file)).unwrap();

    // Three labels declared, then 64 MiB of zeros (64 KiB compressed): the whole stream used
    // to be inflated before its length was compared with the header.
    let mut bomb = vec![0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 0];
    bomb.resize(bomb.len() + (64 << 20), 0);
    std::fs::write(&labels, gzip(&bomb)).unwrap();
    let err = load_idx_pair(&images, &labels, 10).unwrap_err();
    assert!(
        matches!(err, Error::CorruptData { .. })
            && err
                .to_string()
                .contains("holds more than the 11 bytes its header declares"),
        "{err}"
    );

    // Fewer bytes than declared, a header cut short, and the well-formed pair.
    std::fs::write(&labels, gzip(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2])).unwrap();
    let err = load_idx_pair(&images, &labels, 10).unwrap_err();
    assert!(err.to_string().contains("need 3 bytes of data"), "{err}");
    std::fs::write(&labels, gzip(&[0, 0, 8, 1, 0, 0])).unwrap();
    let err = load_idx_pair(&images, &labels, 10).unwrap_err();
    assert!(err.to_string().contains("truncated header"), "{err}");
    std::fs::write(&labels, gzip(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 0])).unwrap();
    assert_eq!(
        load_idx_pair(&images, &labels, 10).unwrap().labels(),
        [1, 2, 0]
    );
}

// ----- images -------------------------------------------------------------------------------

/// A 1x1 PNG whose header is rewritten to `width x height` (with its checksum fixed).
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    bytes
}

/// An 8x8 JPEG whose frame header is rewritten to `width x height`.
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::new(8, 8)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let sof = bytes.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

#[test]
fn images_beyond_the_decoding_limits_are_refused_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "img 0\n").unwrap();
    let open = |policy| ListDataset::open(&list, dir.path(), 1, policy);
    let side = MAX_IMAGE_SIDE + 1;
    // Square images within the side limit whose RGB pixels exceed the byte limit.
    let square = ((MAX_IMAGE_BYTES / 3) as f64).sqrt() as u32 + 1;
    assert!(square <= MAX_IMAGE_SIDE);
    for (what, bytes) in [
        ("wide PNG", png_claiming(side, 1)),
        ("huge PNG", png_claiming(u32::MAX >> 1, u32::MAX >> 1)),
        ("square PNG", png_claiming(square, square)),
        ("tall JPEG", jpeg_claiming(8, side as u16)),
        ("square JPEG", jpeg_claiming(square as u16, square as u16)),
    ] {
        std::fs::write(dir.path().join("img"), bytes).unwrap();
        let err = open(OnUnreadable::Fail).unwrap_err();
        assert!(
            matches!(err, Error::Image { .. })
                && (err.to_string().contains("beyond the limits")
                    || err.to_string().contains("limit")),
            "{what}: {err}"
        );
        let skipping = open(OnUnreadable::Skip).unwrap();
        assert_eq!((skipping.len(), skipping.skipped().len()), (0, 1), "{what}");
    }
    // Within the limits, the header opens and the missing pixel data is a clear error.
    std::fs::write(dir.path().join("img"), png_claiming(64, 64)).unwrap();
    let ds = open(OnUnreadable::Fail).unwrap();
    let err = ds.image(0).unwrap_err();
    assert!(matches!(err, Error::Image { .. }), "{err}");
}

// ----- a run directory read back ----------------------------------------------------------

use small_run::{Small, eval_loader, run_config, run_data};

fn test_loader() -> EvalLoader {
    eval_loader(&Device::flex()).unwrap()
}

fn config() -> rescom::train::TrainConfig {
    run_config(2, "synthetic")
}

fn silent(out: &Path) -> RunOptions {
    let mut options = RunOptions::new(out, Device::flex().autodiff());
    options.renderer = Some(Box::new(rescom::report::SilentRenderer));
    options
}

#[test]
fn class_counts_of_run_json_that_do_not_fit_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let device = Device::flex().autodiff();
    let mut options = silent(out);
    options.stop_after = Some(1);
    fit(
        &config(),
        Small::new(&device),
        run_data(&device).unwrap(),
        options,
    )
    .unwrap();

    let path = out.join("run.json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // A class without samples (which the effective number refuses), one class too many, one
    // too few, none at all: `--eval-only` stopped with an error that named no file, or blamed
    // the model record (whose queue no longer fitted the objective built from the counts).
    for counts in [vec![0, 4, 2], vec![8, 4, 2, 1], vec![8, 4], vec![]] {
        let mut damaged = original.clone();
        damaged["config"]["loss"]["class_counts"] = serde_json::json!(counts);
        std::fs::write(&path, serde_json::to_vec(&damaged).unwrap()).unwrap();
        let result = evaluate_checkpoint(Small::new(&device), test_loader(), out);
        assert_checkpoint_error(result, "class counts");
    }
}

#[test]
fn a_queue_of_run_json_larger_than_its_record_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let device = Device::flex().autodiff();
    let mut options = silent(out);
    options.stop_after = Some(1);
    fit(
        &config(),
        Small::new(&device),
        run_data(&device).unwrap(),
        options,
    )
    .unwrap();

    let path = out.join("run.json");
    let mut damaged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // 3 classes x 10^9 keys x 10^6 dimensions: 12 PB of keys, which used to be drawn (and the
    // process aborted) before the checkpoint was read.
    damaged["config"]["loss"]["queue_per_class"] = serde_json::json!(1_000_000_000u64);
    damaged["config"]["loss"]["projection_dim"] = serde_json::json!(1_000_000u64);
    std::fs::write(&path, serde_json::to_vec(&damaged).unwrap()).unwrap();
    let result = evaluate_checkpoint(Small::new(&device), test_loader(), out);
    assert_checkpoint_error(result, "parameter values");
    // Resuming with that configuration: the same error, from the model record.
    let damaged_config: rescom::train::TrainConfig =
        serde_json::from_value(damaged["config"].clone()).unwrap();
    let mut options = silent(out);
    options.resume = true;
    let result = fit(
        &damaged_config,
        Small::new(&device),
        run_data(&device).unwrap(),
        options,
    );
    assert_checkpoint_error(result, "parameter values");
}
