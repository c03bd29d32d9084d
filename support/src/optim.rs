//! The optimiser of the benchmarked training steps: SGD with momentum 0.9 (no dampening) and
//! weight decay 5e-4, as in the CIFAR recipe.

use burn::optim::{SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig};

pub fn sgd() -> burn::optim::ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new().with_momentum(0.9).with_dampening(0.0),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
}
