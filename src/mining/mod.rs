//! Supervised hard pair mining from the class-balanced queue
//! ([method](crate::method#hard-pair-mining)): the [`HardPairMiner`], and the exact host
//! top-k selection it uses on the CPU backends.

mod miner;
mod select;

pub use miner::*;
