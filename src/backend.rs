//! The one place where a compute device is chosen: the CPU (burn's `flex` with our kernels, or
//! libtorch with the `tch` feature) or a GPU (wgpu on Vulkan with the `gpu` feature, CUDA through
//! libtorch with `tch`), at run time, from `--device auto|cpu|gpu`.

use std::sync::OnceLock;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// Which device the user asks for (`--device`); `Auto` takes a GPU when one is found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU when the build has GPU support and one is found, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// A GPU, or an error saying why none can be used (a software Vulkan driver counts).
    Gpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            _ => Err("expected auto, cpu or gpu".into()),
        }
    }
}

/// A chosen device and how to describe it to the user (`cpu (flex, 2 threads)`,
/// `gpu (NVIDIA H200, Vulkan)`).
#[derive(Debug, Clone)]
pub struct Selected {
    /// The device tensors live on (without autodiff).
    pub device: Device,
    /// One line naming the device: kind, adapter or library, and notes.
    pub description: String,
    /// Whether it is a GPU (hardware or software).
    pub gpu: bool,
}

static SELECTED: OnceLock<std::sync::Mutex<Vec<(DeviceChoice, Selected)>>> = OnceLock::new();

/// The device `choice` names, found once per process (a GPU runtime can be initialised once).
pub fn select(choice: DeviceChoice) -> Result<Selected> {
    let cache = SELECTED.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = cache.iter().find(|(c, _)| *c == choice) {
        return Ok(s.clone());
    }
    let selected = match choice {
        DeviceChoice::Cpu => cpu(),
        DeviceChoice::Gpu => gpu(true)?.ok_or_else(|| Error::Device(no_gpu_reason()))?,
        DeviceChoice::Auto => match gpu(false)? {
            Some(g) => g,
            None => cpu(),
        },
    };
    cache.push((choice, selected.clone()));
    Ok(selected)
}

impl DeviceChoice {
    /// The choice `FASTVISION_DEVICE` names (`auto`, `cpu` or `gpu`), `Auto` when it is unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("FASTVISION_DEVICE") {
            Ok(v) if !v.is_empty() => v.parse().map_err(|_| {
                Error::Config(format!(
                    "FASTVISION_DEVICE={v:?}: expected auto, cpu or gpu"
                ))
            }),
            _ => Ok(Self::Auto),
        }
    }
}

/// The default device: the one `FASTVISION_DEVICE` names, else a hardware GPU when one is
/// found, else the CPU (an unusable setting falls back to the CPU).
pub fn device() -> Device {
    DeviceChoice::from_env()
        .and_then(select)
        .map(|s| s.device)
        .unwrap_or_else(|_| cpu().device)
}

/// The CPU device of this build: libtorch with `tch`, else flex with our kernels.
fn cpu() -> Selected {
    let threads = match rayon::current_num_threads() {
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    };
    #[cfg(feature = "tch")]
    {
        // burn 0.22 deprecates burn-tch in favour of CubeCL backends; it stays an opt-in feature.
        #[allow(deprecated)]
        let device = Device::libtorch();
        Selected {
            device,
            description: format!("cpu (libtorch, {threads})"),
            gpu: false,
        }
    }
    #[cfg(not(feature = "tch"))]
    Selected {
        device: Device::flex(),
        description: format!("cpu (flex with fastvision's kernels, {threads})"),
        gpu: false,
    }
}

/// The best GPU this build can reach: libtorch's CUDA, else a wgpu adapter on Vulkan (discrete,
/// integrated, virtual; a software one such as Mesa's llvmpipe only when `allow_software`).
fn gpu(allow_software: bool) -> Result<Option<Selected>> {
    #[cfg(feature = "tch")]
    if let Some(s) = libtorch_cuda() {
        return Ok(Some(s));
    }
    #[cfg(feature = "wgpu")]
    if let Some(s) = wgpu::select(allow_software)? {
        return Ok(Some(s));
    }
    let _ = allow_software;
    Ok(None)
}

/// Why a GPU was asked for and none was found, and what to do about it.
fn no_gpu_reason() -> String {
    let mut why = Vec::new();
    if cfg!(feature = "tch") {
        why.push(
            "libtorch reports no CUDA device (a CPU-only torch wheel, no NVIDIA driver, or \
             CUDA_VISIBLE_DEVICES hides it; build with a CUDA torch wheel: see the README)",
        );
    }
    if cfg!(feature = "wgpu") {
        why.push(
            "no Vulkan adapter was found (install the GPU's Vulkan driver and libvulkan1, or \
             Mesa's software one, mesa-vulkan-drivers)",
        );
    }
    if why.is_empty() {
        why.push(
            "this build has no GPU support: build it with the cargo feature `gpu` (Vulkan) or \
             `tch` (CUDA through libtorch)",
        );
    }
    format!("`device` gpu: {}", why.join("; "))
}

#[cfg(feature = "tch")]
fn libtorch_cuda() -> Option<Selected> {
    use burn::tensor::DeviceType;
    // burn lists one LibTorch device per CUDA device that libtorch sees (none without CUDA).
    let cuda = Device::enumerate(DeviceType::LibTorch).into_vec();
    if cuda.is_empty() {
        return None;
    }
    #[allow(deprecated)]
    let device = Device::libtorch_cuda(0);
    Some(Selected {
        device,
        description: format!("gpu (CUDA device 0 of {}, libtorch)", cuda.len()),
        gpu: true,
    })
}

#[cfg(feature = "wgpu")]
mod wgpu {
    //! Vulkan adapters through wgpu: listed without opening a device, ranked, then opened.

    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use burn::tensor::wgpu::WgpuBackend;
    use burn::tensor::wgpu::wgpu::{Backends, DeviceType, Instance, InstanceDescriptor};
    use burn::tensor::{Device, DeviceKind};

    use super::Selected;
    use crate::error::{Error, Result};

    /// One Vulkan adapter as wgpu describes it.
    struct Adapter {
        name: String,
        kind: DeviceType,
        driver: String,
        /// Its index among the adapters of its kind (burn's `DeviceKind` numbering).
        index: usize,
    }

    /// The adapters the Vulkan loader reports (none when the loader or a driver is missing).
    fn adapters() -> Vec<Adapter> {
        let instance = Instance::new(InstanceDescriptor {
            backends: Backends::VULKAN,
            ..InstanceDescriptor::new_without_display_handle()
        });
        // Native enumeration is synchronous: the future is ready at its first poll.
        let mut future = std::pin::pin!(instance.enumerate_adapters(Backends::VULKAN));
        let found = match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(found) => found,
            Poll::Pending => Vec::new(),
        };
        let mut out: Vec<Adapter> = Vec::new();
        for a in found {
            let info = a.get_info();
            let index = out.iter().filter(|o| o.kind == info.device_type).count();
            out.push(Adapter {
                name: info.name,
                kind: info.device_type,
                driver: [info.driver, info.driver_info]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" "),
                index,
            });
        }
        out
    }

    /// The best adapter (discrete, integrated, virtual, then software if allowed), opened.
    pub(super) fn select(allow_software: bool) -> Result<Option<Selected>> {
        let rank = |k: DeviceType| match k {
            DeviceType::DiscreteGpu => Some(0),
            DeviceType::IntegratedGpu => Some(1),
            DeviceType::VirtualGpu => Some(2),
            DeviceType::Other => Some(3),
            DeviceType::Cpu if allow_software => Some(4),
            DeviceType::Cpu => None,
        };
        let Some(best) = adapters()
            .into_iter()
            .filter_map(|a| rank(a.kind).map(|r| (r, a)))
            .min_by_key(|(r, _)| *r)
            .map(|(_, a)| a)
        else {
            return Ok(None);
        };
        let kind = match best.kind {
            DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(best.index),
            DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(best.index),
            DeviceType::VirtualGpu => DeviceKind::VirtualGpu(best.index),
            DeviceType::Cpu => DeviceKind::Cpu,
            DeviceType::Other => DeviceKind::DefaultDevice,
        };
        let device = Device::wgpu_options()
            .graphics_api(WgpuBackend::Vulkan)
            .device_kind(kind)
            .init()
            .map_err(|e| Error::Device(format!("{} ({}): {e}", best.name, best.driver)))?;
        let software = best.kind == DeviceType::Cpu;
        Ok(Some(Selected {
            device,
            description: format!(
                "gpu ({}, Vulkan{}{})",
                best.name,
                if best.driver.is_empty() {
                    String::new()
                } else {
                    format!(", {}", best.driver)
                },
                if software {
                    "; a software rasteriser: far slower than the CPU backend, for testing"
                } else {
                    ""
                }
            ),
            gpu: true,
        }))
    }
}

/// The backend a device runs on, for reports: `flex`, `wgpu` or `libtorch`.
pub fn backend_of(device: &Device) -> &'static str {
    use burn::backend::DispatchDevice;
    match device.clone().without_autodiff().as_dispatch() {
        DispatchDevice::Flex(_) => "flex",
        #[cfg(feature = "tch")]
        DispatchDevice::LibTorch(_) => "libtorch",
        #[cfg(feature = "wgpu")]
        DispatchDevice::Cube(_) => "wgpu",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

/// Memory the operating system says is available to a new allocation (Linux `MemAvailable`), in
/// bytes; `None` where it is not known.
pub fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// Refuses, before anything is allocated, work that needs `need` bytes of the CPU's memory when
/// less is available (a GPU's own memory is not known here, so it is not checked): `what` says
/// what needs it, `lower` which settings to lower. A refusal beats an abort on allocation.
pub fn check_fits(device: &Device, need: f64, what: &str, lower: &str) -> Result<()> {
    if backend_of(device) != "flex" {
        return Ok(());
    }
    match available_memory() {
        Some(have) if need.partial_cmp(&have).is_none_or(|o| o.is_gt()) => {
            Err(Error::Config(format!(
                "{what} needs about {:.1} GB, but {:.1} GB of memory is free: lower {lower}",
                need / 1e9,
                have / 1e9
            )))
        }
        _ => Ok(()),
    }
}
