"""Sound event outputs of a run: segment and attention scores in the field's file formats, the post-processing
chosen off the test split, and the DCASE event-level metrics computed from those files (docs/compare.md)."""
