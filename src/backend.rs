//! The one place where a compute backend is chosen, by cargo feature.

use burn::tensor::Device;

/// The device fastvision computes on: Vulkan GPU with the `vulkan` feature, libtorch CPU with
/// `tch`, else burn's pure-Rust `flex` CPU backend.
pub fn device() -> Device {
    #[cfg(feature = "vulkan")]
    {
        Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)
    }
    #[cfg(all(feature = "tch", not(feature = "vulkan")))]
    {
        // burn 0.22 deprecates burn-tch in favour of CubeCL backends; on the CPU it is still the
        // fastest route here (see the README's benchmark), so it stays an opt-in feature.
        #[allow(deprecated)]
        Device::libtorch()
    }
    #[cfg(not(any(feature = "tch", feature = "vulkan")))]
    {
        Device::flex()
    }
}

/// A short name of the backend in use, for reports.
pub fn backend_name() -> &'static str {
    if cfg!(feature = "vulkan") {
        "vulkan (wgpu)"
    } else if cfg!(feature = "tch") {
        "tch (libtorch)"
    } else {
        "flex (CPU)"
    }
}
