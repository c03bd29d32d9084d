//! An image of any size and channel count, made into what a pipeline takes: the run's channels
//! and, when the pipeline does not resize by itself, its input size.

use super::{Pipeline, Step, geometry};
use crate::data::image::Image;
use crate::error::{Error, Result};

impl Pipeline {
    /// Whether a step of the pipeline resizes the image to its own size (a resize, or a random
    /// resized crop).
    pub(crate) fn resizes(&self) -> bool {
        self.steps()
            .iter()
            .any(|s| matches!(s, Step::ResizeShorter(_) | Step::RandomResizedCrop { .. }))
    }

    /// `image` as the pipeline takes it: grey replicated to RGB or RGB converted to grey (PIL's
    /// `convert("L")`) to the pipeline's channels, then, when no step of the pipeline resizes,
    /// scaled (PIL's bilinear resize) until it covers the output `H x W` with its aspect
    /// ratio kept and centre-cropped to it (for a square output, torchvision's `Resize(side)`
    /// then `CenterCrop(side)`). An image that already has the output shape is unchanged.
    ///
    /// # Errors
    /// [`Error::InvalidDataset`] for an inconsistent image ([`Image::validate`]);
    /// [`Error::Shape`] for a channel count other than 1 or 3 that is not the pipeline's.
    pub(crate) fn conform(&self, image: &Image) -> Result<Image> {
        image.validate()?;
        let (channels, height, width) = self.output_shape();
        let image = match (image.channels, channels) {
            (have, want) if have == want => image.clone(),
            (1, 3) => Image::new(3, image.height, image.width, image.pixels.repeat(3))?,
            (3, 1) => Image::new(1, image.height, image.width, image.luma())?,
            (have, want) => {
                return Err(Error::Shape {
                    name: "image",
                    actual: vec![have, image.height, image.width],
                    expected: format!("[1 or 3 channels, H, W] (the pipeline takes {want})"),
                });
            }
        };
        if self.resizes() {
            return Ok(image);
        }
        Ok(cover_and_crop(&image, height, width))
    }
}

/// `image` resized (bilinear, aspect ratio kept, the covering side truncated as torchvision's
/// `Resize` does) until it covers `height x width`, then centre-cropped to it with
/// round-half-to-even offsets (torchvision's `CenterCrop`).
fn cover_and_crop(image: &Image, height: usize, width: usize) -> Image {
    if (image.height, image.width) == (height, width) {
        return image.clone();
    }
    let (h, w) = (image.height, image.width);
    let scaled = |target: usize, this: usize, other: usize| {
        ((target as f64 * this as f64 / other as f64) as usize).max(1)
    };
    // The side whose ratio to the target is smaller sets the scale.
    let (new_h, new_w) = if height * w >= width * h {
        (height, scaled(height, w, h).max(width))
    } else {
        (scaled(width, h, w).max(height), width)
    };
    let resized = geometry::resize(image, new_h, new_w);
    let offset = |have: usize, want: usize| ((have - want) as f64 / 2.0).round_ties_even() as isize;
    geometry::crop(
        &resized,
        offset(new_h, height),
        offset(new_w, width),
        height,
        width,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(channels: usize, height: usize, width: usize) -> Image {
        let n = channels * height * width;
        Image::new(
            channels,
            height,
            width,
            (0..n).map(|v| (v * 13 % 256) as u8).collect(),
        )
        .unwrap()
    }

    #[test]
    fn square_outputs_resize_the_shorter_side_then_crop_the_centre() {
        let pipeline = Pipeline::cifar_eval();
        for (h, w) in [(40, 64), (64, 40), (17, 17), (32, 33), (100, 20)] {
            let image = ramp(3, h, w);
            let expected = geometry::center_crop(&geometry::resize_shorter(&image, 32), 32);
            assert_eq!(pipeline.conform(&image).unwrap(), expected, "{h}x{w}");
        }
        let exact = ramp(3, 32, 32);
        assert_eq!(pipeline.conform(&exact).unwrap(), exact);
    }

    #[test]
    fn channels_follow_the_pipeline() {
        let grey = ramp(1, 28, 28);
        let rgb = Pipeline::cifar_eval().conform(&ramp(1, 32, 32)).unwrap();
        assert_eq!(rgb.channels, 3);
        assert!(rgb.plane(0) == rgb.plane(1) && rgb.plane(1) == rgb.plane(2));
        let colour = ramp(3, 28, 28);
        let fashion = Pipeline::fashion_mnist_eval();
        assert_eq!(fashion.conform(&grey).unwrap(), grey);
        assert_eq!(fashion.conform(&colour).unwrap().pixels, colour.luma());
        let rgba = ramp(4, 28, 28);
        assert!(matches!(fashion.conform(&rgba), Err(Error::Shape { .. })));
        // A pipeline that resizes by itself takes the image at its own size.
        let imagenet = Pipeline::imagenet_eval(24);
        assert_eq!(
            imagenet.conform(&ramp(1, 50, 40)).unwrap().shape(),
            (3, 50, 40)
        );
    }

    #[test]
    fn other_outputs_are_covered_then_cropped() {
        let pipeline = Pipeline::normalize_only((1, 8, 16), &[0.5], &[0.5]).unwrap();
        for (h, w) in [(8, 16), (16, 16), (9, 40), (30, 20), (3, 5)] {
            let out = pipeline.conform(&ramp(1, h, w)).unwrap();
            assert_eq!(out.shape(), (1, 8, 16), "{h}x{w}");
        }
    }
}
