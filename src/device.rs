//! What the crate needs to know about a device: where its tensors live, whether it is a card
//! whose reads stall it, and whether it is flex (the backend of the crate's own kernels).

use burn::tensor::Device;
#[allow(unused_imports)]
use burn::tensor::DeviceType;

/// Whether tensors on `device` live in host memory (flex and ndarray).
pub(crate) fn is_host_device(device: &Device) -> bool {
    let device = device.clone().without_autodiff();
    let mut host: Vec<Device> = Vec::new();
    #[cfg(feature = "flex")]
    host.extend(Device::enumerate(DeviceType::Flex).into_vec());
    #[cfg(feature = "ndarray")]
    host.extend(Device::enumerate(DeviceType::NdArray).into_vec());
    host.contains(&device)
}

/// Whether `device` is a card (a GPU of the `vulkan` or `cuda` backends), where every read
/// back to the host stalls the device. CPU backends and software rasterizers are not; without
/// a GPU backend compiled in, no device is.
#[cfg_attr(not(feature = "train"), allow(dead_code))]
pub(crate) fn is_accelerator(device: &Device) -> bool {
    #[cfg(any(feature = "vulkan", feature = "cuda"))]
    {
        device.identity().is_some_and(|id| id.physical.is_some())
    }
    #[cfg(not(any(feature = "vulkan", feature = "cuda")))]
    {
        let _ = device;
        false
    }
}

/// Whether `device` is a flex device, with or without autodiff.
#[cfg(feature = "flex")]
#[cfg_attr(not(feature = "models"), allow(dead_code))]
pub(crate) fn on_flex(device: &Device) -> bool {
    use burn::backend::DispatchDevice;
    match device.as_dispatch() {
        DispatchDevice::Flex(_) => true,
        DispatchDevice::Autodiff(inner) => matches!(**inner, DispatchDevice::Flex(_)),
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "flex")]
    #[test]
    fn flex_is_a_host_device_and_no_accelerator() {
        assert!(is_host_device(&Device::flex()));
        assert!(is_host_device(&Device::flex().autodiff()));
        assert!(!is_accelerator(&Device::flex().autodiff()));
        assert!(on_flex(&Device::flex().autodiff()));
    }
}
