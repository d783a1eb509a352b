//! The machine the numbers come from, recorded with every run (as `environment` in
//! results.json). The cluster a suite runs against is a [`crate::provider::Environment`].

use sysinfo::{CpuRefreshKind, RefreshKind, System};

use crate::results::Machine;

/// Reads OS, kernel, CPU and memory.
pub fn describe() -> Machine {
    let system = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(sysinfo::MemoryRefreshKind::nothing().with_ram()),
    )
    .ok();
    let cpus = system.as_ref().map(|s| s.cpus().len()).unwrap_or(0);
    let cpu_model = system
        .as_ref()
        .and_then(|s| s.cpus().first().map(|c| c.brand().trim().to_string()))
        .unwrap_or_default();
    Machine {
        os: System::long_os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
        cpu_model,
        cpus: if cpus > 0 {
            cpus
        } else {
            std::thread::available_parallelism().map_or(0, usize::from)
        },
        memory_bytes: system.as_ref().map_or(0, System::total_memory),
        kubernetes_version: None,
        git_server_version: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn describes_this_machine() {
        let machine = super::describe();
        assert!(machine.cpus >= 1);
        assert!(machine.memory_bytes > 0);
        assert!(!machine.kernel.is_empty());
        assert!(!machine.arch.is_empty());
    }
}
