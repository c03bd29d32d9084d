//! Statistics over seeds: mean and sample standard deviation, paired differences.

use crate::report::summary::Summary;
use crate::stats::ShotGroup;

/// A figure of a run that a [`Comparison`](super::Comparison) summarises over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Top-1 of the last evaluation.
    Top1,
    /// Top-5 of the last evaluation.
    Top5,
    /// Many-shot top-1 of the last evaluation.
    Many,
    /// Medium-shot top-1 of the last evaluation.
    Medium,
    /// Few-shot top-1 of the last evaluation.
    Few,
    /// Expected calibration error of the last evaluation.
    Ece,
    /// Top-1 of the best evaluation (the highest top-1 of the run, the authors' protocol).
    BestTop1,
}

impl Metric {
    /// Every metric, in the order of the tables.
    pub const ALL: [Metric; 7] = [
        Metric::Top1,
        Metric::Top5,
        Metric::Many,
        Metric::Medium,
        Metric::Few,
        Metric::Ece,
        Metric::BestTop1,
    ];

    /// The metrics of the paired differences.
    pub const PAIRED: [Metric; 4] = [Metric::Top1, Metric::Many, Metric::Medium, Metric::Few];

    /// The column title, e.g. `top-1` or `best top-1`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Top1 => "top-1",
            Metric::Top5 => "top-5",
            Metric::Many => "many",
            Metric::Medium => "medium",
            Metric::Few => "few",
            Metric::Ece => "ECE",
            Metric::BestTop1 => "best top-1",
        }
    }

    /// The metric's value in `summary` (a fraction); `None` when the run has none (an empty
    /// shot group, no calibration).
    pub fn of(self, summary: &Summary) -> Option<f64> {
        let last = &summary.last;
        match self {
            Metric::Top1 => Some(last.top1),
            Metric::Top5 => Some(last.top5),
            Metric::Many => last.many,
            Metric::Medium => last.medium,
            Metric::Few => last.few,
            Metric::Ece => last.calibration.as_ref().map(|c| c.overall.ece),
            Metric::BestTop1 => Some(summary.best.top1),
        }
    }
}

/// A figure of one shot group in a run's last evaluation, for the table by shot group:
/// accuracy, calibration and the feature space of the many-, medium- and few-shot classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShotMetric {
    /// Top-1 of the group's test images.
    Top1,
    /// Expected calibration error of the group's test images.
    Ece,
    /// Negative log-likelihood of the group's test images.
    Nll,
    /// Mean cosine similarity of same-class pairs of backbone features.
    BackboneSame,
    /// Mean cosine similarity of the group's backbone features with those of other classes.
    BackboneDifferent,
    /// Mean cosine similarity of same-class pairs of projections (contrastive models).
    ProjectionSame,
    /// Mean cosine similarity of the group's projections with those of other classes.
    ProjectionDifferent,
}

impl ShotMetric {
    /// Every figure, in the order of the table.
    pub const ALL: [ShotMetric; 7] = [
        ShotMetric::Top1,
        ShotMetric::Ece,
        ShotMetric::Nll,
        ShotMetric::BackboneSame,
        ShotMetric::BackboneDifferent,
        ShotMetric::ProjectionSame,
        ShotMetric::ProjectionDifferent,
    ];

    /// The column title.
    pub fn name(self) -> &'static str {
        match self {
            ShotMetric::Top1 => "top-1",
            ShotMetric::Ece => "ECE",
            ShotMetric::Nll => "NLL",
            ShotMetric::BackboneSame => "backbone cos same",
            ShotMetric::BackboneDifferent => "backbone cos different",
            ShotMetric::ProjectionSame => "projection cos same",
            ShotMetric::ProjectionDifferent => "projection cos different",
        }
    }

    /// How the table shows a value: the factor (100 for percentages) and the decimals.
    pub(crate) fn display(self) -> (f64, usize) {
        match self {
            ShotMetric::Top1 | ShotMetric::Ece => (100.0, 2),
            _ => (1.0, 3),
        }
    }

    /// The figure of `group` in the last evaluation of `summary` (top-1 and ECE as
    /// fractions); `None` when the run has none (an empty shot group, no calibration, no
    /// feature-space diagnostics or no projection head).
    pub fn of(self, summary: &Summary, group: ShotGroup) -> Option<f64> {
        let last = &summary.last;
        let calibration = last
            .calibration
            .as_ref()
            .and_then(|c| *of_group(group, &c.many, &c.medium, &c.few));
        let space = last.feature_space.as_ref();
        let backbone = space.and_then(|s| s.backbone.group(group));
        let projection = space
            .and_then(|s| s.projection.as_ref())
            .and_then(|p| p.group(group));
        match self {
            ShotMetric::Top1 => *of_group(group, &last.many, &last.medium, &last.few),
            ShotMetric::Ece => calibration.map(|c| c.ece),
            ShotMetric::Nll => calibration.map(|c| c.nll),
            ShotMetric::BackboneSame => backbone?.same_class,
            ShotMetric::BackboneDifferent => backbone?.different_class,
            ShotMetric::ProjectionSame => projection?.same_class,
            ShotMetric::ProjectionDifferent => projection?.different_class,
        }
    }
}

/// The one of `many`, `medium` and `few` that belongs to `group`.
fn of_group<'a, T>(group: ShotGroup, many: &'a T, medium: &'a T, few: &'a T) -> &'a T {
    match group {
        ShotGroup::Many => many,
        ShotGroup::Medium => medium,
        ShotGroup::Few => few,
    }
}

/// The mean and sample standard deviation (with `n - 1`) of values over seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSd {
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation; `None` for a single value.
    pub sd: Option<f64>,
    /// The number of values.
    pub n: usize,
}

impl MeanSd {
    /// The mean and sample standard deviation of `values`; `None` when there is none.
    ///
    /// ```
    /// use rescom::report::MeanSd;
    /// let m = MeanSd::of(&[1.0, 2.0, 6.0]).unwrap();
    /// assert_eq!((m.mean, m.sd, m.n), (3.0, Some(7f64.sqrt()), 3));
    /// assert_eq!(MeanSd::of(&[0.5]).unwrap().sd, None);
    /// assert_eq!(MeanSd::of(&[]), None);
    /// ```
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (squares / (n - 1) as f64).sqrt()
        });
        Some(Self { mean, sd, n })
    }

    /// `mean ± sd` of the values times `scale` with two decimals, e.g. `61.39 ± 3.88` for
    /// `scale` 100; `61.39 ± n/a` for a single value.
    pub fn format(&self, scale: f64) -> String {
        self.format_places(scale, 2)
    }

    /// `mean ± sd` of the values times `scale` with `places` decimals.
    pub fn format_places(&self, scale: f64, places: usize) -> String {
        let sd = self
            .sd
            .map_or("n/a".into(), |sd| format!("{:.places$}", scale * sd));
        format!("{:.places$} ± {sd}", scale * self.mean)
    }
}

/// The differences of [`Metric::PAIRED`] between two groups of runs on the seeds they share.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedDifference {
    /// The group whose figures are taken.
    pub group: String,
    /// The group whose figures are subtracted.
    pub baseline: String,
    /// For each shared seed, ascending: the seed and the difference of each metric of
    /// [`Metric::PAIRED`] (`None` where either run has no value).
    pub per_seed: Vec<(u64, Vec<Option<f64>>)>,
    /// For each metric of [`Metric::PAIRED`], the mean and sample standard deviation of its
    /// differences over the seeds.
    pub mean: Vec<Option<MeanSd>>,
}

impl PairedDifference {
    /// `group − baseline`.
    pub fn name(&self) -> String {
        format!("{} − {}", self.group, self.baseline)
    }

    /// The differences of `group` minus `baseline`, each a list of `(seed, summary)` (a seed
    /// listed twice counts once, its first run); `None` when they share no seed.
    pub(crate) fn of(
        (group, runs): (&str, &[(u64, &Summary)]),
        (baseline, base_runs): (&str, &[(u64, &Summary)]),
    ) -> Option<Self> {
        let mut seeds: Vec<u64> = runs
            .iter()
            .map(|r| r.0)
            .filter(|s| base_runs.iter().any(|b| b.0 == *s))
            .collect();
        seeds.sort_unstable();
        seeds.dedup();
        if seeds.is_empty() {
            return None;
        }
        fn first<'a>(list: &[(u64, &'a Summary)], seed: u64) -> Option<&'a Summary> {
            list.iter().find(|r| r.0 == seed).map(|r| r.1)
        }
        let per_seed: Vec<(u64, Vec<Option<f64>>)> = seeds
            .iter()
            .filter_map(|&seed| {
                let (a, b) = (first(runs, seed)?, first(base_runs, seed)?);
                let diffs = Metric::PAIRED
                    .iter()
                    .map(|m| Some(m.of(a)? - m.of(b)?))
                    .collect();
                Some((seed, diffs))
            })
            .collect();
        let mean = (0..Metric::PAIRED.len())
            .map(|i| {
                let values: Vec<f64> = per_seed.iter().filter_map(|(_, d)| d[i]).collect();
                MeanSd::of(&values)
            })
            .collect();
        Some(Self {
            group: group.into(),
            baseline: baseline.into(),
            per_seed,
            mean,
        })
    }
}
