//! The scenarios compiled into the binary, from `scenarios/*.toml`; the
//! first, `default`, fills in every field another file leaves out.

/// The scenarios compiled into the binary: name, TOML text.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../scenarios/default.toml")),
    ("calm", include_str!("../../scenarios/calm.toml")),
    ("flash-sale", include_str!("../../scenarios/flash-sale.toml")),
    ("pg-trouble", include_str!("../../scenarios/pg-trouble.toml")),
    ("crash-storm", include_str!("../../scenarios/crash-storm.toml")),
    ("coupon-rush", include_str!("../../scenarios/coupon-rush.toml")),
    ("slow-network", include_str!("../../scenarios/slow-network.toml")),
    ("saga-bench", include_str!("../../scenarios/saga-bench.toml")),
];
