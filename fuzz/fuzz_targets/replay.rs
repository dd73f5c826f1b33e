//! portdial::replay::decode on arbitrary bytes as a capture file. It must
//! never panic (its documented contract), and the report must hold
//! together: one line per frame, errors numbered within the frames, and
//! both outputs (text and JSON) must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portdial::replay;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = replay::decode(data) else {
        return;
    };
    assert_eq!(report.lines.len() as u64, report.frames);
    assert!(report.malformed <= report.frames);
    for error in &report.errors {
        assert!(error.frame >= 1 && error.frame <= report.frames + 1);
    }
    for error in &report.file_errors {
        assert!(report.errors.contains(error));
    }
    let frame_errors = report.errors.len() - report.file_errors.len();
    assert!(frame_errors as u64 >= report.malformed);
    for (index, line) in report.lines.iter().enumerate() {
        assert_eq!(line.number, index as u64 + 1);
    }

    let mut text = Vec::new();
    replay::write_text(&report, &mut text).expect("writing to a Vec does not fail");
    assert!(std::str::from_utf8(&text).is_ok());
    let json = serde_json::to_string(&report).expect("the report serializes");
    let value: serde_json::Value = serde_json::from_str(&json).expect("the JSON parses back");
    assert_eq!(value["frames"].as_u64(), Some(report.frames));
});
