//! An owned 8-bit image in channel-major (CHW) layout.
//!
//! Readers produce [`Image`]s and every transform in [`crate::data::augment`] maps images to
//! images. Pixel `(c, y, x)` lives at `pixels[(c * height + y) * width + x]`: each channel is
//! one contiguous row-major plane, which is also the layout of the `f32` views the loaders
//! stack into `[rows, C, H, W]` batches.

use crate::error::{Error, Result};

/// An 8-bit image stored channel by channel: `pixels[(c * height + y) * width + x]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Number of channels (1 or 3).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `channels * height * width` values, CHW.
    pub pixels: Vec<u8>,
}

impl Image {
    /// An image from CHW pixels; errors when a dimension is zero or the length does not match.
    pub fn new(channels: usize, height: usize, width: usize, pixels: Vec<u8>) -> Result<Self> {
        if channels == 0 || height == 0 || width == 0 {
            return Err(Error::InvalidDataset(format!(
                "an image of {channels}x{height}x{width} has no pixels"
            )));
        }
        let image = Self {
            channels,
            height,
            width,
            pixels,
        };
        image.validate()?;
        Ok(image)
    }

    /// Checks that the dimensions are non-zero and `pixels` holds exactly
    /// `channels * height * width` values (the fields are public, so an [`Image`] built by
    /// hand may disagree with itself); [`crate::data::Pipeline::apply`] checks every input.
    ///
    /// ```
    /// use rescom::data::Image;
    /// assert!(Image::filled(3, 2, 2, 0).validate().is_ok());
    /// let broken = Image { channels: 3, height: 2, width: 2, pixels: vec![0; 5] };
    /// assert!(broken.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let expected = self
            .channels
            .checked_mul(self.height)
            .and_then(|n| n.checked_mul(self.width));
        match expected {
            Some(n) if n > 0 && n == self.pixels.len() => Ok(()),
            _ => Err(Error::InvalidDataset(format!(
                "a {}x{}x{} image holds {} pixels (it needs channels x height x width, none \
                 zero)",
                self.channels,
                self.height,
                self.width,
                self.pixels.len()
            ))),
        }
    }

    /// A constant image (callers pass non-zero dimensions).
    pub fn filled(channels: usize, height: usize, width: usize, value: u8) -> Self {
        Self {
            channels,
            height,
            width,
            pixels: vec![value; channels * height * width],
        }
    }

    /// `(channels, height, width)`.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.channels, self.height, self.width)
    }

    /// Number of pixels per channel.
    pub fn area(&self) -> usize {
        self.height * self.width
    }

    /// The pixel of channel `c` at row `y`, column `x`.
    ///
    /// # Panics
    /// When the position lies outside the image.
    pub fn get(&self, c: usize, y: usize, x: usize) -> u8 {
        self.pixels[(c * self.height + y) * self.width + x]
    }

    /// One channel's plane.
    ///
    /// # Panics
    /// When `c >= channels`.
    pub fn plane(&self, c: usize) -> &[u8] {
        let area = self.area();
        &self.pixels[c * area..(c + 1) * area]
    }

    /// One channel's plane, mutable.
    ///
    /// # Panics
    /// When `c >= channels`.
    pub fn plane_mut(&mut self, c: usize) -> &mut [u8] {
        let area = self.area();
        &mut self.pixels[c * area..(c + 1) * area]
    }

    /// Converts an interleaved (HWC) buffer, as image decoders produce, to CHW.
    pub fn from_interleaved(
        channels: usize,
        height: usize,
        width: usize,
        hwc: &[u8],
    ) -> Result<Self> {
        let expected = channels
            .checked_mul(height)
            .and_then(|n| n.checked_mul(width));
        if expected.is_none_or(|n| n == 0 || n != hwc.len()) {
            return Err(Error::InvalidDataset(format!(
                "interleaved buffer of {} bytes for a {channels}x{height}x{width} image",
                hwc.len()
            )));
        }
        let area = height * width;
        let mut pixels = vec![0u8; hwc.len()];
        for (i, px) in hwc.chunks_exact(channels).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                pixels[c * area + i] = v;
            }
        }
        Ok(Self {
            channels,
            height,
            width,
            pixels,
        })
    }

    /// ITU-R 601-2 luma (`L = R * 299/1000 + G * 587/1000 + B * 114/1000`, as PIL's
    /// `convert("L")`) of each pixel; the plane itself for a one-channel image.
    pub fn luma(&self) -> Vec<u8> {
        if self.channels < 3 {
            return self.plane(0).to_vec();
        }
        let (r, g, b) = (self.plane(0), self.plane(1), self.plane(2));
        (0..self.area())
            .map(|i| {
                ((r[i] as u32 * 19595 + g[i] as u32 * 38470 + b[i] as u32 * 7471 + 0x8000) >> 16)
                    as u8
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_to_planar() {
        let img = Image::from_interleaved(3, 1, 2, &[1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(img.pixels, vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(img.get(2, 0, 1), 6);
        assert!(Image::new(3, 2, 2, vec![0; 11]).is_err());
        assert!(Image::new(3, 0, 2, Vec::new()).is_err());
        assert!(Image::from_interleaved(3, 2, 0, &[]).is_err());
        let gray = Image::from_interleaved(3, 1, 1, &[255, 255, 255]).unwrap();
        assert_eq!(gray.luma(), vec![255]);
    }
}
