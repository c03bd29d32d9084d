//! A renderer for output that is not a terminal.
//!
//! burn-train draws its dashboard on a terminal; elsewhere (a log file, a pipe, CI) its plain
//! renderer prints a line of progress per batch. A run of [`fit`](super::fit) reports one line
//! per epoch with the figures instead ([`RunReport::with_epoch_lines`](super::RunReport::with_epoch_lines)),
//! so there it renders with [`SilentRenderer`]: nothing per batch.

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

/// A [`MetricsRenderer`] that draws nothing: no progress, metrics or per-iteration events.
/// burn-train's summary at the end of training or evaluation is printed as usual.
///
/// ```
/// use rescom::report::SilentRenderer;
/// use burn::train::renderer::MetricsRenderer;
///
/// let renderer: Box<dyn MetricsRenderer> = Box::new(SilentRenderer);
/// # drop(renderer);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentRenderer;

impl MetricsRendererTraining for SilentRenderer {
    fn update_train(&mut self, _state: MetricState) {}

    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for SilentRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl TrainingProgressLogger for SilentRenderer {
    fn start(
        &mut self,
        _epochs: usize,
        _start: usize,
        _items: Option<usize>,
        _label: Option<&str>,
    ) {
    }

    fn update_epoch(&mut self, _epoch: usize) {}

    fn start_split(&mut self, _split: &str, _items: usize) {}

    fn update_split(&mut self, _items_processed: usize) {}

    fn end_split(&mut self) {}

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for SilentRenderer {
    fn start_global_progress(&mut self, _tests: usize) {}

    fn start_test(&mut self, _name: &str, _items: usize) {}

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for SilentRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, _definition: MetricDefinition) {}
}
