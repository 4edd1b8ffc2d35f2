//! The flattened device trees (DTBs) `pb run` gives QEMU's `raspi3b` and `raspi4b` (which,
//! unlike `virt`, generate none), written with the `vm-fdt` crate.
//!
//! Each describes what the Raspberry Pi firmware would tell a kernel on the real board: memory,
//! the cores with their spin tables, the console PL011, the interrupt controller where the board
//! has a GIC, and `bootargs` in `/chosen`.
//!
//! Pure: bytes out. `vm-fdt` writes the Devicetree Specification's format (v0.4, chapter 5:
//! version 17, an empty memory reservation block, the structure and strings blocks) and refuses
//! what the format cannot hold (a NUL inside a string, properties after a child node, unbalanced
//! nodes) with a typed [`vm_fdt::Error`].

use vm_fdt::{Error, FdtWriter};

/// RAM the ARM cores of QEMU's `raspi3b` own: 1 GiB minus the 64 MiB QEMU gives the GPU (its
/// mailbox reports the same split).
pub const RASPI3B_ARM_RAM: u32 = 0x3c00_0000;

/// Where each core of a Pi polls for its entry address (the firmware's spin table): core `n` at
/// `0xd8 + 8 * n`, on the Pi 3 and the Pi 4 alike.
const SPIN_TABLE: u64 = 0xd8;

/// A Raspberry Pi machine QEMU emulates without a DTB of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Raspi {
    /// `-M raspi3b`: BCM2837, four Cortex-A53, 1 GiB, no GIC (BCM2836 local interrupts).
    Raspi3b,
    /// `-M raspi4b` (QEMU >= 9.0): BCM2711, four Cortex-A72, 2 GiB, a GIC-400, peripherals in the
    /// low-peripheral mode at 0xfe00_0000.
    Raspi4b,
}

impl Raspi {
    /// The machine a QEMU `-M` value names (`raspi4b` and `raspi4b,…` alike), if a Pi.
    pub fn from_machine(machine: &str) -> Option<Raspi> {
        match machine.split(',').next() {
            Some("raspi3b") => Some(Raspi::Raspi3b),
            Some("raspi4b") => Some(Raspi::Raspi4b),
            _ => None,
        }
    }

    fn model(self) -> &'static str {
        match self {
            Raspi::Raspi3b => "Raspberry Pi 3 Model B (QEMU raspi3b, DTB by pb)",
            Raspi::Raspi4b => "Raspberry Pi 4 Model B (QEMU raspi4b, DTB by pb)",
        }
    }

    fn compatible(self) -> [&'static str; 2] {
        match self {
            Raspi::Raspi3b => ["raspberrypi,3-model-b", "brcm,bcm2837"],
            Raspi::Raspi4b => ["raspberrypi,4-model-b", "brcm,bcm2711"],
        }
    }

    fn core(self) -> &'static str {
        match self {
            Raspi::Raspi3b => "arm,cortex-a53",
            Raspi::Raspi4b => "arm,cortex-a72",
        }
    }

    /// `reg` of `/memory@0`: (base, size) pairs. The Pi 4's 2 GiB come as two banks, the first
    /// ending where the GPU's 64 MiB start, the second above 1 GiB, as its firmware reports them.
    fn memory(self) -> &'static [u32] {
        match self {
            Raspi::Raspi3b => &[0, RASPI3B_ARM_RAM],
            Raspi::Raspi4b => &[0, 0x3c00_0000, 0x4000_0000, 0x4000_0000],
        }
    }

    /// The ARM physical address of bus address 0x7e00_0000 (the peripherals' window).
    fn peripherals(self) -> u32 {
        match self {
            Raspi::Raspi3b => 0x3f00_0000,
            Raspi::Raspi4b => 0xfe00_0000,
        }
    }
}

/// A string-list property value (`compatible`).
fn strs(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// The DTB for a QEMU Raspberry Pi machine, as the firmware would describe that Pi.
///
/// Fails only if `bootargs` holds a NUL (a DTB string cannot).
pub fn raspi(pi: Raspi, bootargs: &str) -> Result<Vec<u8>, Error> {
    let mut w = FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 1)?;
    w.property_string("model", pi.model())?;
    w.property_string_list("compatible", strs(&pi.compatible()))?;

    let chosen = w.begin_node("chosen")?;
    w.property_string("bootargs", bootargs)?;
    w.property_string("stdout-path", "serial0:115200n8")?;
    w.end_node(chosen)?;

    let aliases = w.begin_node("aliases")?;
    w.property_string("serial0", "/soc/serial@7e201000")?;
    w.end_node(aliases)?;

    let memory = w.begin_node("memory@0")?;
    w.property_string("device_type", "memory")?;
    w.property_array_u32("reg", pi.memory())?;
    w.end_node(memory)?;

    let cpus = w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    for cpu in 0..4u32 {
        let node = w.begin_node(&format!("cpu@{cpu}"))?;
        w.property_string("device_type", "cpu")?;
        w.property_string("compatible", pi.core())?;
        w.property_u32("reg", cpu)?;
        w.property_string("enable-method", "spin-table")?;
        w.property_u64("cpu-release-addr", SPIN_TABLE + 8 * u64::from(cpu))?;
        w.end_node(node)?;
    }
    w.end_node(cpus)?;

    // Bus addresses 0x7e00_0000 map to the ARM's peripheral window; on the Pi 4 the ARM-local
    // block (the GIC-400 among it) is at bus 0x4000_0000 = ARM 0xff80_0000.
    let soc = w.begin_node("soc")?;
    w.property_string("compatible", "simple-bus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 1)?;
    match pi {
        Raspi::Raspi3b => {
            w.property_array_u32("ranges", &[0x7e00_0000, pi.peripherals(), 0x0100_0000])?
        }
        Raspi::Raspi4b => w.property_array_u32(
            "ranges",
            &[
                0x7e00_0000,
                pi.peripherals(),
                0x0180_0000,
                0x4000_0000,
                0xff80_0000,
                0x0080_0000,
            ],
        )?,
    }
    let uart = w.begin_node("serial@7e201000")?;
    w.property_string_list("compatible", strs(&["arm,pl011", "arm,primecell"]))?;
    w.property_array_u32("reg", &[0x7e20_1000, 0x200])?;
    w.end_node(uart)?;
    if pi == Raspi::Raspi4b {
        // GICv2 (GIC-400): distributor, CPU interface, virtual interface control, virtual CPU.
        let gic = w.begin_node("interrupt-controller@40041000")?;
        w.property_string("compatible", "arm,gic-400")?;
        w.property_null("interrupt-controller")?;
        w.property_u32("#interrupt-cells", 3)?;
        w.property_array_u32(
            "reg",
            &[
                0x4004_1000,
                0x1000,
                0x4004_2000,
                0x2000,
                0x4004_4000,
                0x2000,
                0x4004_6000,
                0x2000,
            ],
        )?;
        w.end_node(gic)?;
    }
    w.end_node(soc)?;

    w.end_node(root)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Big-endian cells, as the expected values are written independently of the writer.
    fn cells(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    /// NUL-terminated strings, back to back.
    fn strings(values: &[&str]) -> Vec<u8> {
        values.iter().flat_map(|v| v.bytes().chain([0])).collect()
    }

    /// Every node (by path) and its properties in the order the blob holds them.
    fn flatten(node: fdt::node::FdtNode, path: &str, out: &mut Vec<(String, String, Vec<u8>)>) {
        for p in node.properties() {
            out.push((path.to_string(), p.name.to_string(), p.value.to_vec()));
        }
        for child in node.children() {
            let sub = format!("{}/{}", path.trim_end_matches('/'), child.name);
            flatten(child, &sub, out);
        }
    }

    #[test]
    fn raspi3b_dtb_has_every_node_and_property() {
        let blob = raspi(Raspi::Raspi3b, "patchbay.clock=qemu x=1").unwrap();
        let fdt = fdt::Fdt::new(&blob).expect("a valid DTB");
        let word = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap());
        assert_eq!(
            (word(20), word(24)),
            (17, 16),
            "version, last compatible version"
        );
        assert_eq!(word(28), 0, "boot CPU 0");
        assert_eq!(fdt.total_size(), blob.len());
        assert_eq!(fdt.memory_reservations().count(), 0);

        let mut expected: Vec<(&str, &str, Vec<u8>)> = vec![
            ("/", "#address-cells", cells(&[1])),
            ("/", "#size-cells", cells(&[1])),
            (
                "/",
                "model",
                strings(&["Raspberry Pi 3 Model B (QEMU raspi3b, DTB by pb)"]),
            ),
            (
                "/",
                "compatible",
                strings(&["raspberrypi,3-model-b", "brcm,bcm2837"]),
            ),
            ("/chosen", "bootargs", strings(&["patchbay.clock=qemu x=1"])),
            ("/chosen", "stdout-path", strings(&["serial0:115200n8"])),
            ("/aliases", "serial0", strings(&["/soc/serial@7e201000"])),
            ("/memory@0", "device_type", strings(&["memory"])),
            ("/memory@0", "reg", cells(&[0, 0x3c00_0000])),
            ("/cpus", "#address-cells", cells(&[1])),
            ("/cpus", "#size-cells", cells(&[0])),
        ];
        let cpu_paths = ["/cpus/cpu@0", "/cpus/cpu@1", "/cpus/cpu@2", "/cpus/cpu@3"];
        for (n, path) in cpu_paths.into_iter().enumerate() {
            let n = n as u32;
            expected.extend([
                (path, "device_type", strings(&["cpu"])),
                (path, "compatible", strings(&["arm,cortex-a53"])),
                (path, "reg", cells(&[n])),
                (path, "enable-method", strings(&["spin-table"])),
                (path, "cpu-release-addr", cells(&[0, 0xd8 + 8 * n])),
            ]);
        }
        expected.extend([
            ("/soc", "compatible", strings(&["simple-bus"])),
            ("/soc", "#address-cells", cells(&[1])),
            ("/soc", "#size-cells", cells(&[1])),
            (
                "/soc",
                "ranges",
                cells(&[0x7e00_0000, 0x3f00_0000, 0x0100_0000]),
            ),
            (
                "/soc/serial@7e201000",
                "compatible",
                strings(&["arm,pl011", "arm,primecell"]),
            ),
            ("/soc/serial@7e201000", "reg", cells(&[0x7e20_1000, 0x200])),
        ]);
        let mut got = Vec::new();
        flatten(fdt.find_node("/").unwrap(), "/", &mut got);
        let got: Vec<(&str, &str, Vec<u8>)> = got
            .iter()
            .map(|(path, name, value)| (path.as_str(), name.as_str(), value.clone()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn raspi3b_dtb_reads_back_with_the_kernels_parser() {
        let blob = raspi(Raspi::Raspi3b, "patchbay.clock=qemu x=1").unwrap();
        let fdt = fdt::Fdt::new(&blob).expect("a valid DTB");
        assert_eq!(fdt.chosen().bootargs(), Some("patchbay.clock=qemu x=1"));
        let ram = fdt.memory().regions().next().unwrap();
        assert_eq!(ram.starting_address as usize, 0);
        assert_eq!(ram.size, Some(RASPI3B_ARM_RAM as usize));
        assert_eq!(fdt.cpus().count(), 4);
        assert!(fdt.root().model().starts_with("Raspberry Pi 3 Model B"));
        let uart = fdt.find_compatible(&["arm,pl011"]).unwrap();
        assert_eq!(uart.name, "serial@7e201000");
    }

    #[test]
    fn raspi4b_dtb_describes_a_pi_4() {
        let blob = raspi(Raspi::Raspi4b, "patchbay.clock=qemu-icount").unwrap();
        let fdt = fdt::Fdt::new(&blob).expect("a valid DTB");
        assert_eq!(fdt.chosen().bootargs(), Some("patchbay.clock=qemu-icount"));
        assert!(fdt.root().model().starts_with("Raspberry Pi 4 Model B"));
        let banks: Vec<(usize, Option<usize>)> = fdt
            .memory()
            .regions()
            .map(|r| (r.starting_address as usize, r.size))
            .collect();
        assert_eq!(
            banks,
            vec![(0, Some(0x3c00_0000)), (0x4000_0000, Some(0x4000_0000))]
        );
        assert_eq!(fdt.cpus().count(), 4);
        for (n, cpu) in fdt.cpus().enumerate() {
            assert_eq!(
                cpu.property("compatible").unwrap().as_str(),
                Some("arm,cortex-a72")
            );
            let release = cpu.property("cpu-release-addr").unwrap().as_usize();
            assert_eq!(release, Some(0xd8 + 8 * n));
        }
        let uart = fdt.find_compatible(&["arm,pl011"]).unwrap();
        assert_eq!(uart.name, "serial@7e201000");
        let gic = fdt
            .find_compatible(&["arm,gic-400"])
            .expect("a GIC-400 node");
        let regs: Vec<usize> = gic
            .reg()
            .unwrap()
            .map(|r| r.starting_address as usize)
            .collect();
        // Bus 0x4004_1000.. (translated by /soc's ranges to ARM 0xff84_1000..).
        assert_eq!(
            regs,
            vec![0x4004_1000, 0x4004_2000, 0x4004_4000, 0x4004_6000]
        );
        let soc_ranges = fdt
            .find_node("/soc")
            .unwrap()
            .property("ranges")
            .unwrap()
            .value;
        assert_eq!(
            soc_ranges,
            &cells(&[
                0x7e00_0000,
                0xfe00_0000,
                0x0180_0000,
                0x4000_0000,
                0xff80_0000,
                0x0080_0000
            ])[..]
        );
    }

    #[test]
    fn machines_are_recognised_by_name() {
        assert_eq!(Raspi::from_machine("raspi3b"), Some(Raspi::Raspi3b));
        assert_eq!(Raspi::from_machine("raspi4b,foo=on"), Some(Raspi::Raspi4b));
        assert_eq!(Raspi::from_machine("virt"), None);
    }

    #[test]
    fn bootargs_with_a_nul_are_refused() {
        for pi in [Raspi::Raspi3b, Raspi::Raspi4b] {
            assert_eq!(raspi(pi, "a\0b"), Err(Error::InvalidString));
        }
    }
}
