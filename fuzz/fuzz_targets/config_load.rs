//! The config loader (`run`, `check`, the demo and admin posts share it):
//! any text is a config or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "SET").then(|| "http://127.0.0.1:1".to_owned());
    let _ = switchyard_config::load_str(text, &env);
});
