//! burn backends and the fingerprint of the setup they run on.

use crate::{ProfileError, device_state};
use burn::tensor::Device;
#[cfg(feature = "wgpu")]
use burn::tensor::{DeviceKind, Distribution, Tensor};
use std::fmt;
use std::str::FromStr;
use tailor_cost::Fingerprint;
use tailor_spec::DType;

/// burn 0.22's version, recorded in every profile.
pub const BURN_VERSION: &str = "0.22.1";

/// A burn backend tailor can profile on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn's maintained CPU backend (default).
    Flex,
    /// burn's ndarray CPU backend (deprecated upstream, kept for comparison).
    Ndarray,
    /// wgpu: Vulkan, Metal, DX12 or WebGPU, whichever the platform has.
    Wgpu,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Flex, Backend::Ndarray, Backend::Wgpu];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
        }
    }

    /// Opens the device and runs one small computation on it, so that a missing driver
    /// surfaces here as an error rather than later as a panic.
    pub fn open(self) -> Result<Device, ProfileError> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            // Deprecated upstream in favour of flex; kept so the two CPU backends can be compared.
            #[allow(deprecated)]
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => open_guarded(|| {
                let device = Device::wgpu(DeviceKind::DefaultDevice);
                let x = Tensor::<2>::random([4, 4], Distribution::Default, &device);
                let _ = x.clone().matmul(x).into_data();
                device
            }),
            #[cfg(not(feature = "wgpu"))]
            Backend::Wgpu => Err(ProfileError::WgpuNotBuilt),
        }
    }

    /// The fingerprint of this backend on this machine.
    pub fn fingerprint(self, device: &Device) -> Fingerprint {
        #[cfg(not(feature = "wgpu"))]
        let _ = device; // CPU backends have nothing to ask the device.
        let (name, driver) = match self {
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => device
                .identity()
                .map(|id| (id.name, id.fingerprint))
                .unwrap_or_else(|| ("unknown adapter".into(), String::new())),
            _ => ("cpu".into(), String::new()),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        let allowed = device_state::allowed_cpus();
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|l| device_state::parse_cpu_list(l.trim()).ok());
        // Pinned (taskset, `--cpus`) when the process may not use every online CPU.
        let cpus = match online {
            Some(online) if !allowed.is_empty() && allowed != online => {
                device_state::format_cpu_list(&allowed)
            }
            _ => String::new(),
        };
        Fingerprint {
            backend: self.name().into(),
            device: name,
            driver,
            cpu_model: cpu_model(),
            cores,
            threads: compute_threads(self, cores),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            dtype: DType::F32,
            burn_version: BURN_VERSION.into(),
            soc: device_state::soc(),
            cpus,
            max_freq_khz: device_state::max_freq_khz(&allowed),
            cpu: tailor_cost::CpuId::read(),
        }
    }
}

/// Runs `open`, turning a panic (wgpu panics when it finds no adapter) into a clear error,
/// without the panic message reaching stderr.
pub fn open_guarded(
    open: impl FnOnce() -> Device + std::panic::UnwindSafe,
) -> Result<Device, ProfileError> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(open);
    std::panic::set_hook(hook);
    result.map_err(|e| {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown reason".into());
        ProfileError::NoAdapter {
            reason: why.lines().next().unwrap_or("").trim().to_string(),
        }
    })
}

/// Threads the CPU backends compute with: rayon's pool, which `RAYON_NUM_THREADS` sizes.
fn compute_threads(backend: Backend, cores: u32) -> u32 {
    match backend {
        Backend::Wgpu => 1,
        _ => device_state::rayon_threads_from_env().map_or(cores, |n| n as u32),
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name tailor does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend `{0}`; expected one of flex, ndarray, wgpu")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Self, UnknownBackend> {
        Self::ALL
            .iter()
            .copied()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBackend(s.to_string()))
    }
}

/// The CPU's model name (`/proc/cpuinfo` on Linux and Android), or `unknown`.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    for key in ["model name", "Hardware", "Processor", "cpu model"] {
        if let Some(line) = info.lines().find(|l| l.starts_with(key))
            && let Some((_, v)) = line.split_once(':')
            && !v.trim().is_empty()
        {
            return v.trim().to_string();
        }
    }
    "unknown".into()
}
