//! The device the benches run on: `RESCOM_BENCH_DEVICE=flex` (default), `ndarray`, `vulkan`
//! or `cuda` (the last two need the crate feature of the same name).

use burn::tensor::Device;

/// The device named by `RESCOM_BENCH_DEVICE`.
pub fn bench_device() -> Device {
    let name = std::env::var("RESCOM_BENCH_DEVICE").unwrap_or_else(|_| "flex".into());
    match name.as_str() {
        "flex" => Device::flex(),
        #[allow(deprecated)]
        "ndarray" => Device::ndarray(),
        #[cfg(feature = "vulkan")]
        "vulkan" => Device::vulkan(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0),
        other => panic!(
            "RESCOM_BENCH_DEVICE={other} is not available in this build (flex, ndarray, or a GPU \
             backend compiled with --features vulkan / cuda)"
        ),
    }
}
