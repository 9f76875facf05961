"""The one evaluation harness: the split registry, equal-budget tuning on validation, paired per-case results with
bootstrap confidence intervals, the broken-baseline guard and computed target statements (``targets.json``), and
the run's provenance. Used by ``benchmarks/*.py`` and the bundles' evaluate configs."""

from monai_diffrecon.evaluation.results import Results
from monai_diffrecon.evaluation.run_info import run_info
from monai_diffrecon.evaluation.splits import SEEDS, SPLITS, seed_base, seeds
from monai_diffrecon.evaluation.stats import Estimate, bootstrap_auc_difference, bootstrap_mean, paired_difference, share_within, unpaired_difference
from monai_diffrecon.evaluation.targets import (AgreementTarget, AUCTarget, DropTarget, RankTarget, Target, baseline_guard, bootstrap_rank_correlation, check_rank_target, check_target,
                                                check_agreement_target, check_auc_target, check_drop_target, evaluate_results_doc, spearman, target_spec, targets_section, update_targets_json)
from monai_diffrecon.evaluation.tuning import Tuned, grid_search

__all__ = ["Results", "run_info", "SEEDS", "SPLITS", "seed_base", "seeds", "Estimate", "bootstrap_mean", "paired_difference",
           "Target", "baseline_guard", "check_target", "evaluate_results_doc", "target_spec", "targets_section", "update_targets_json", "Tuned", "grid_search",
           "RankTarget", "spearman", "bootstrap_rank_correlation", "check_rank_target", "unpaired_difference", "bootstrap_auc_difference",
           "share_within", "AUCTarget", "check_auc_target", "AgreementTarget", "check_agreement_target", "DropTarget", "check_drop_target"]
