//! Any bytes as a ring file: the reader returns records or an error naming an offset, and
//! never panics; whatever it returns is in increasing sequence order.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = runner::sinks::ring::read_image(data) {
        for w in entries.windows(2) {
            assert!(w[0].seq < w[1].seq);
        }
    }
    // The same bytes as a data area behind a valid header, so the record scanner is reached
    // with inputs shorter than a whole ring.
    let mut image = runner::sinks::ring::header_for(runner::sinks::ring::MIN_SIZE).to_vec();
    image.extend_from_slice(data);
    let _ = runner::sinks::ring::read_image(&image);
});
