//! Measuring rather than testing: strategies compared on the same seeds
//! ([`compare`]), the kernel's speed against its anchors ([`bench`]), how
//! soon each planted bug is found ([`detection`]), and the simulation's
//! figures for a live run to be held against ([`live`]).

pub mod bench;
pub mod compare;
pub mod detection;
pub mod live;
