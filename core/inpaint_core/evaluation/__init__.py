"""Evaluation of inpainting methods: the survey protocol on any image set.

    from inpaint_core.evaluation import evaluate, write_reports
    evaluation = evaluate("my_images/", methods=["telea", "exemplar"], out="eval/")
    write_reports(evaluation, "eval/")
"""

from inpaint_core.evaluation.outputs import write_reports
from inpaint_core.evaluation.results import EvalRow, read_rows
from inpaint_core.evaluation.runner import Evaluation, evaluate, survey_mask_specs

__all__ = ["EvalRow", "Evaluation", "evaluate", "read_rows", "survey_mask_specs", "write_reports"]
