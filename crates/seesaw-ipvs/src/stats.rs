//! Traffic counters of a service or destination.

use netlink_packet_core::{DecodeError, DefaultNla, Emitable, NlasIterator};

use crate::constants::*;

/// Counters and rates of a service or destination, as the kernel reports
/// them in the `STATS` and `STATS64` nests. Rates are per second, as the
/// kernel's rate estimator computes them every 2 seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Connections scheduled.
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Connections per second.
    pub cps: u64,
    pub packets_in_rate: u64,
    pub packets_out_rate: u64,
    /// Incoming bytes per second.
    pub bytes_in_rate: u64,
    /// Outgoing bytes per second.
    pub bytes_out_rate: u64,
}

impl Stats {
    /// Values in attribute-id order, each with its id and its width in the
    /// 32-bit `STATS` nest, where only the byte counters are 64-bit.
    fn fields(&self) -> [(u16, u64, usize); 10] {
        [
            (STATS_ATTR_CONNS, self.connections, 4),
            (STATS_ATTR_INPKTS, self.packets_in, 4),
            (STATS_ATTR_OUTPKTS, self.packets_out, 4),
            (STATS_ATTR_INBYTES, self.bytes_in, 8),
            (STATS_ATTR_OUTBYTES, self.bytes_out, 8),
            (STATS_ATTR_CPS, self.cps, 4),
            (STATS_ATTR_INPPS, self.packets_in_rate, 4),
            (STATS_ATTR_OUTPPS, self.packets_out_rate, 4),
            (STATS_ATTR_INBPS, self.bytes_in_rate, 4),
            (STATS_ATTR_OUTBPS, self.bytes_out_rate, 4),
        ]
    }

    /// Returns the nest's attributes. In the 32-bit nest, values wider than the
    /// field are truncated, as the kernel does.
    fn attributes(&self, wide: bool) -> Vec<DefaultNla> {
        self.fields()
            .into_iter()
            .map(|(kind, value, width)| {
                let bytes = if wide || width == 8 {
                    value.to_ne_bytes().to_vec()
                } else {
                    (value as u32).to_ne_bytes().to_vec()
                };
                DefaultNla::new(kind, bytes)
            })
            .collect()
    }

    pub(crate) fn nest_len(&self, wide: bool) -> usize {
        self.attributes(wide).as_slice().buffer_len()
    }

    pub(crate) fn emit_nest(&self, wide: bool, buffer: &mut [u8]) {
        self.attributes(wide).as_slice().emit(buffer)
    }

    /// Parses a `STATS` or `STATS64` nest. Each value is read at the width
    /// it has on the wire (4 or 8 bytes), so either nest layout decodes.
    /// Missing values stay 0. Unknown attributes, padding and values of any
    /// other width are skipped.
    pub(crate) fn parse_nest(payload: &[u8], wide: bool) -> Result<Self, DecodeError> {
        let what = if wide { "STATS64" } else { "STATS" };
        let mut stats = Stats::default();
        for nla in NlasIterator::new(payload) {
            let nla = nla.map_err(|e| DecodeError::from(format!("invalid {what} nest: {e}")))?;
            let value = nla.value();
            let number = match value.len() {
                4 => u64::from(u32::from_ne_bytes([value[0], value[1], value[2], value[3]])),
                8 => crate::nla::parse_u64(value, what)?,
                _ => continue,
            };
            let field = match nla.kind() {
                STATS_ATTR_CONNS => &mut stats.connections,
                STATS_ATTR_INPKTS => &mut stats.packets_in,
                STATS_ATTR_OUTPKTS => &mut stats.packets_out,
                STATS_ATTR_INBYTES => &mut stats.bytes_in,
                STATS_ATTR_OUTBYTES => &mut stats.bytes_out,
                STATS_ATTR_CPS => &mut stats.cps,
                STATS_ATTR_INPPS => &mut stats.packets_in_rate,
                STATS_ATTR_OUTPPS => &mut stats.packets_out_rate,
                STATS_ATTR_INBPS => &mut stats.bytes_in_rate,
                STATS_ATTR_OUTBPS => &mut stats.bytes_out_rate,
                _ => continue,
            };
            *field = number;
        }
        Ok(stats)
    }
}
