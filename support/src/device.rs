//! Devices by name, for the benches and the examples: `flex` (the default), `ndarray`,
//! `vulkan` or `cuda` (the last two need the crate feature of the same name).
//!
//! [`open`] refuses a device that does not exist with a message instead of a panic: GPU
//! devices are looked up first (no Vulkan loader or driver, no CUDA driver, only a software
//! Vulkan rasterizer), then every device computes one small sum, with any panic of the backend
//! caught and turned into the error.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::{Device, Tensor};

/// The device named by `RESCOM_BENCH_DEVICE` (default `flex`), for the benches.
///
/// # Panics
/// When that device is unknown, not compiled in, or absent: a bench cannot run without it.
pub fn bench_device() -> Device {
    let name = bench_device_name();
    match open(&name) {
        Ok(device) => device,
        Err(e) => panic!("RESCOM_BENCH_DEVICE={name}: {e}"),
    }
}

/// The name in `RESCOM_BENCH_DEVICE`, `flex` when unset.
pub fn bench_device_name() -> String {
    std::env::var("RESCOM_BENCH_DEVICE").unwrap_or_else(|_| "flex".into())
}

/// Whether the backend called `name` runs on a GPU.
pub fn is_gpu(name: &str) -> bool {
    matches!(name, "vulkan" | "cuda")
}

/// The device called `name`, checked to compute; the error says why there is none.
pub fn open(name: &str) -> Result<Device, String> {
    open_at(name, 0)
}

/// Device `index` of the backend called `name` (the CPU backends have one device, index 0;
/// GPUs are counted in the order the backend lists them, software rasterizers left out),
/// checked to compute; the error says why there is none.
pub fn open_at(name: &str, index: usize) -> Result<Device, String> {
    let single = |device: Device| {
        if index == 0 {
            Ok(device)
        } else {
            Err(format!(
                "the {name} backend has one device; device {index} does not exist"
            ))
        }
    };
    let device = match name {
        "flex" => single(Device::flex())?,
        #[allow(deprecated)]
        "ndarray" => single(Device::ndarray())?,
        #[cfg(feature = "vulkan")]
        "vulkan" => vulkan(index)?,
        #[cfg(feature = "cuda")]
        "cuda" => cuda(index)?,
        #[allow(unreachable_patterns)]
        "vulkan" | "cuda" => {
            return Err(format!(
                "the {name} backend is not compiled in; rebuild with `--features {name}`"
            ));
        }
        other => {
            return Err(format!(
                "unknown backend `{other}` (flex, ndarray, vulkan, cuda)"
            ));
        }
    };
    probe(&device, name)?;
    Ok(device)
}

/// The `index`-th Vulkan device that is not a software rasterizer.
#[cfg(feature = "vulkan")]
fn vulkan(index: usize) -> Result<Device, String> {
    use burn::tensor::{DeviceKind, DeviceType};
    let found = Device::enumerate(DeviceType::Vulkan).into_vec();
    if found.is_empty() {
        return Err(
            "no Vulkan device found: the Vulkan loader (libvulkan.so.1, package \
             libvulkan1) or a GPU driver's Vulkan ICD is missing; check \
             `ldconfig -p | grep libvulkan`, and point VK_DRIVER_FILES at the driver's \
             ICD file (e.g. nvidia_icd.json) when the loader does not find it"
                .into(),
        );
    }
    let software = Device::vulkan(DeviceKind::Cpu);
    let gpus: Vec<Device> = found.into_iter().filter(|d| *d != software).collect();
    if gpus.is_empty() {
        return Err(
            "the only Vulkan device is a software rasterizer (such as Mesa's lavapipe), \
             which is not supported: Burn's compute kernels fail on it; use `flex` on this \
             machine"
                .into(),
        );
    }
    let count = gpus.len();
    gpus.into_iter()
        .nth(index)
        .ok_or_else(|| format!("{count} Vulkan GPU(s) found; Vulkan device {index} does not exist"))
}

/// The `index`-th CUDA device.
#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, String> {
    use burn::tensor::DeviceType;
    let found = Device::enumerate(DeviceType::Cuda).into_vec();
    if found.is_empty() {
        return Err(
            "no CUDA device found: no NVIDIA driver (libcuda.so) or no NVIDIA GPU on this \
             machine"
                .into(),
        );
    }
    let count = found.len();
    found
        .into_iter()
        .nth(index)
        .ok_or_else(|| format!("{count} CUDA device(s) found; CUDA device {index} does not exist"))
}

/// Computes `1 + 2 + 3` on `device`; a panic of the backend (it failed to create the device,
/// compile a kernel, or allocate) becomes the error, without a backtrace.
fn probe(device: &Device, name: &str) -> Result<(), String> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(|| {
        Tensor::<1>::from_floats([1.0, 2.0, 3.0], device)
            .sum()
            .try_into_scalar::<f32>()
    }));
    std::panic::set_hook(previous);
    match result {
        Ok(Ok(6.0)) => Ok(()),
        Ok(Ok(sum)) => Err(format!(
            "the {name} device computed 1 + 2 + 3 = {sum}; it is not usable"
        )),
        Ok(Err(e)) => Err(format!("the {name} device could not be read: {e:?}")),
        Err(payload) => Err(format!(
            "the {name} device could not be used: {}",
            panic_message(payload.as_ref())
        )),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a panic without a message)".into())
}
