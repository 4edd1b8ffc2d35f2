//! The flattened device tree (DTB) `pb run` gives QEMU's `raspi3b` (which, unlike `virt`,
//! generates none), written with the `vm-fdt` crate.
//!
//! Pure: bytes out. `vm-fdt` writes the Devicetree Specification's format (v0.4, chapter 5:
//! version 17, an empty memory reservation block, the structure and strings blocks) and refuses
//! what the format cannot hold (a NUL inside a string, properties after a child node, unbalanced
//! nodes) with a typed [`vm_fdt::Error`].

use vm_fdt::{Error, FdtWriter};

/// RAM the ARM cores of QEMU's `raspi3b` own: 1 GiB minus the 64 MiB QEMU gives the GPU (its
/// mailbox reports the same split).
pub const RASPI3B_ARM_RAM: u32 = 0x3c00_0000;

/// Where each core of a Pi 3 polls for its entry address (the firmware's spin table): core `n` at
/// `0xd8 + 8 * n`.
const SPIN_TABLE: u64 = 0xd8;

/// A string-list property value (`compatible`).
fn strs(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// The DTB for QEMU `raspi3b`, as the Raspberry Pi firmware would describe a Pi 3: memory, four
/// Cortex-A53 with spin tables, the PL011, and `bootargs` in `/chosen`.
///
/// Fails only if `bootargs` holds a NUL (a DTB string cannot).
pub fn raspi3b(bootargs: &str) -> Result<Vec<u8>, Error> {
    let mut w = FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 1)?;
    w.property_string("model", "Raspberry Pi 3 Model B (QEMU raspi3b, DTB by pb)")?;
    w.property_string_list(
        "compatible",
        strs(&["raspberrypi,3-model-b", "brcm,bcm2837"]),
    )?;

    let chosen = w.begin_node("chosen")?;
    w.property_string("bootargs", bootargs)?;
    w.property_string("stdout-path", "serial0:115200n8")?;
    w.end_node(chosen)?;

    let aliases = w.begin_node("aliases")?;
    w.property_string("serial0", "/soc/serial@7e201000")?;
    w.end_node(aliases)?;

    let memory = w.begin_node("memory@0")?;
    w.property_string("device_type", "memory")?;
    w.property_array_u32("reg", &[0, RASPI3B_ARM_RAM])?;
    w.end_node(memory)?;

    let cpus = w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    for cpu in 0..4u32 {
        let node = w.begin_node(&format!("cpu@{cpu}"))?;
        w.property_string("device_type", "cpu")?;
        w.property_string("compatible", "arm,cortex-a53")?;
        w.property_u32("reg", cpu)?;
        w.property_string("enable-method", "spin-table")?;
        w.property_u64("cpu-release-addr", SPIN_TABLE + 8 * u64::from(cpu))?;
        w.end_node(node)?;
    }
    w.end_node(cpus)?;

    // Bus addresses 0x7e00_0000 map to the ARM's 0x3f00_0000.
    let soc = w.begin_node("soc")?;
    w.property_string("compatible", "simple-bus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 1)?;
    w.property_array_u32("ranges", &[0x7e00_0000, 0x3f00_0000, 0x0100_0000])?;
    let uart = w.begin_node("serial@7e201000")?;
    w.property_string_list("compatible", strs(&["arm,pl011", "arm,primecell"]))?;
    w.property_array_u32("reg", &[0x7e20_1000, 0x200])?;
    w.end_node(uart)?;
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
        let blob = raspi3b("patchbay.clock=qemu x=1").unwrap();
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
        let blob = raspi3b("patchbay.clock=qemu x=1").unwrap();
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
    fn bootargs_with_a_nul_are_refused() {
        assert_eq!(raspi3b("a\0b"), Err(Error::InvalidString));
    }
}
