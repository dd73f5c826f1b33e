//! pap::Repr and chap::Repr parsed from arbitrary control packets. What
//! parses formats without panicking (PAP's Debug hides the password) and
//! emits a packet that parses back to the same Repr.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portdial_protocol::{chap, control, pap};

fuzz_target!(|data: &[u8]| {
    let Ok(control) = control::Repr::parse_bytes(data) else {
        return;
    };

    if let Ok(repr) = pap::Repr::parse(&control) {
        assert_eq!(repr.code(), u8::from(control.code));
        let _ = (repr.name(), repr.to_string());
        if let pap::Repr::AuthenticateRequest { peer_id, .. } = repr {
            // The password never shows: Debug and Display are the same
            // whatever the password is.
            let other = pap::Repr::AuthenticateRequest {
                peer_id,
                password: b"not-the-password",
            };
            assert_eq!(format!("{repr:?}"), format!("{other:?}"));
            assert_eq!(repr.to_string(), other.to_string());
        } else {
            let _ = format!("{repr:?}");
        }
        let mut body = Vec::new();
        repr.emit_data(&mut body);
        assert_eq!(body.len(), repr.buffer_len());
        let packet = repr.to_packet(control.identifier);
        let again = control::Repr::parse_bytes(&packet).expect("emitted PAP parses");
        assert_eq!(again.identifier, control.identifier);
        assert_eq!(pap::Repr::parse(&again), Ok(repr));
        assert!(body.len() <= control.data.len() + 1);
    }

    if let Ok(repr) = chap::Repr::parse(&control) {
        assert_eq!(repr.code(), u8::from(control.code));
        let _ = (repr.name(), repr.to_string(), format!("{repr:?}"));
        let mut body = Vec::new();
        repr.emit_data(&mut body);
        assert_eq!(body.len(), repr.buffer_len());
        // CHAP's fields are the whole data: it comes back byte for byte.
        assert_eq!(body, control.data);
        let packet = repr.to_packet(control.identifier);
        let length = control.data.len() + control::HEADER_LEN;
        assert_eq!(&packet[..], &data[..length]);
        let again = control::Repr::parse_bytes(&packet).expect("emitted CHAP parses");
        assert_eq!(chap::Repr::parse(&again), Ok(repr));
    }

    // The quoting helper takes any bytes.
    let _ = pap::Quoted(control.data).to_string();
});
