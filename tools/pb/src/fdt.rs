//! A small flattened-device-tree (DTB) writer, and the DTB `pb run` gives QEMU's `raspi3b`
//! (which, unlike `virt`, generates none).
//!
//! Pure: bytes in, bytes out. The format is the Devicetree Specification's (v0.4, chapter 5):
//! a 40-byte header, the memory reservation block (here empty), the structure block (tokens
//! BEGIN_NODE / PROP / END_NODE / END, big-endian, 4-byte aligned) and the strings block.

use std::collections::HashMap;

const MAGIC: u32 = 0xd00d_feed;
const VERSION: u32 = 17;
const LAST_COMPATIBLE_VERSION: u32 = 16;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const END: u32 = 9;

/// Builds a DTB node by node.
#[derive(Default)]
pub struct Writer {
    structure: Vec<u8>,
    strings: Vec<u8>,
    offsets: HashMap<String, u32>,
    depth: usize,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    fn word(&mut self, w: u32) {
        self.structure.extend_from_slice(&w.to_be_bytes());
    }

    fn pad(&mut self) {
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
    }

    /// Opens a node; the root is `""`.
    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.word(BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.pad();
        self.depth += 1;
        self
    }

    pub fn end(&mut self) -> &mut Self {
        assert!(self.depth > 0, "end() without begin()");
        self.word(END_NODE);
        self.depth -= 1;
        self
    }

    fn name_offset(&mut self, name: &str) -> u32 {
        if let Some(&off) = self.offsets.get(name) {
            return off;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.offsets.insert(name.to_string(), off);
        off
    }

    /// A property with raw bytes.
    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.name_offset(name);
        self.word(PROP);
        self.word(value.len() as u32);
        self.word(off);
        self.structure.extend_from_slice(value);
        self.pad();
        self
    }

    /// A property of 32-bit cells.
    pub fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }

    /// A string (or string-list) property.
    pub fn strs(&mut self, name: &str, values: &[&str]) -> &mut Self {
        let mut bytes = Vec::new();
        for v in values {
            bytes.extend_from_slice(v.as_bytes());
            bytes.push(0);
        }
        self.prop(name, &bytes)
    }

    /// The DTB. Panics if a node is still open (a bug in the caller).
    pub fn finish(mut self) -> Vec<u8> {
        assert_eq!(self.depth, 0, "unclosed node");
        self.word(END);
        let rsvmap = [0u8; 16]; // the terminating (0, 0) entry
        let off_rsvmap = HEADER_LEN;
        let off_struct = off_rsvmap + rsvmap.len();
        let off_strings = off_struct + self.structure.len();
        let total = off_strings + self.strings.len();
        let mut out = Vec::with_capacity(total);
        for w in [
            MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsvmap as u32,
            VERSION,
            LAST_COMPATIBLE_VERSION,
            0, // boot_cpuid_phys
            self.strings.len() as u32,
            self.structure.len() as u32,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.extend_from_slice(&rsvmap);
        out.extend_from_slice(&self.structure);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// RAM the ARM cores of QEMU's `raspi3b` own: 1 GiB minus the 64 MiB QEMU gives the GPU (its
/// mailbox reports the same split).
pub const RASPI3B_ARM_RAM: u32 = 0x3c00_0000;

/// The DTB for QEMU `raspi3b`, as the Raspberry Pi firmware would describe a Pi 3: memory, four
/// Cortex-A53 with spin tables, the PL011, and `bootargs`.
pub fn raspi3b(bootargs: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin("")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .strs(
            "model",
            &["Raspberry Pi 3 Model B (QEMU raspi3b, DTB by pb)"],
        )
        .strs("compatible", &["raspberrypi,3-model-b", "brcm,bcm2837"]);
    w.begin("chosen")
        .strs("bootargs", &[bootargs])
        .strs("stdout-path", &["serial0:115200n8"])
        .end();
    w.begin("aliases")
        .strs("serial0", &["/soc/serial@7e201000"])
        .end();
    w.begin("memory@0")
        .strs("device_type", &["memory"])
        .cells("reg", &[0, RASPI3B_ARM_RAM])
        .end();
    w.begin("cpus")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[0]);
    for cpu in 0..4u32 {
        w.begin(&format!("cpu@{cpu}"))
            .strs("device_type", &["cpu"])
            .strs("compatible", &["arm,cortex-a53"])
            .cells("reg", &[cpu])
            .strs("enable-method", &["spin-table"])
            .cells("cpu-release-addr", &[0, 0xd8 + 8 * cpu])
            .end();
    }
    w.end();
    // Bus addresses 0x7e00_0000 map to the ARM's 0x3f00_0000.
    w.begin("soc")
        .strs("compatible", &["simple-bus"])
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .cells("ranges", &[0x7e00_0000, 0x3f00_0000, 0x0100_0000]);
    w.begin("serial@7e201000")
        .strs("compatible", &["arm,pl011", "arm,primecell"])
        .cells("reg", &[0x7e20_1000, 0x200])
        .end();
    w.end();
    w.end();
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raspi3b_dtb_reads_back_with_the_kernels_parser() {
        let blob = raspi3b("patchbay.clock=qemu x=1");
        let fdt = fdt::Fdt::new(&blob).expect("a valid DTB");
        assert_eq!(fdt.total_size(), blob.len());
        assert_eq!(fdt.chosen().bootargs(), Some("patchbay.clock=qemu x=1"));
        let ram = fdt.memory().regions().next().unwrap();
        assert_eq!(ram.starting_address as usize, 0);
        assert_eq!(ram.size, Some(RASPI3B_ARM_RAM as usize));
        assert_eq!(fdt.cpus().count(), 4);
        assert!(fdt.root().model().starts_with("Raspberry Pi 3 Model B"));
        let uart = fdt.find_compatible(&["arm,pl011"]).unwrap();
        assert_eq!(uart.name, "serial@7e201000");
        assert_eq!(
            fdt.find_node("/cpus/cpu@2")
                .unwrap()
                .property("cpu-release-addr")
                .unwrap()
                .value,
            [0, 0, 0, 0, 0, 0, 0, 0xe8]
        );
    }

    #[test]
    fn header_and_alignment() {
        let mut w = Writer::new();
        w.begin("")
            .strs("a", &["xyz"])
            .prop("b", &[])
            .strs("a", &["q"])
            .end();
        let blob = w.finish();
        let word = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap());
        assert_eq!(word(0), MAGIC);
        assert_eq!(word(4) as usize, blob.len());
        assert_eq!(word(20), 17);
        assert_eq!(word(8) % 4, 0, "structure block aligned");
        assert_eq!(word(32), 4, "strings deduplicated: \"a\\0b\\0\"");
        let strings = word(12) as usize;
        assert_eq!(&blob[strings..], b"a\0b\0");
    }
}
