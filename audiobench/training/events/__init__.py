"""Sound event outputs of a run: segment and attention scores in the field's file formats, the post-processing
chosen off the test split, and the DCASE event-level metrics computed from those files (docs/compare.md)."""
import warnings

with warnings.catch_warnings():  # dcase_util (under sed_eval and sed_scores_eval) imports pkg_resources
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    import dcase_util  # noqa: F401  (imported once here, its warning silenced for every user)
