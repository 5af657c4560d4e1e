"""The synthetic dataset (docs/datasets.md): SL-DCASE-17's 17 classes, procedurally made, exactly labelled.

``synthesize`` writes it in the layout of a fetched dataset (ledger + 16 kHz mono FLACs), so featurize,
train and compare cannot tell it apart. The modules, in the order a clip is made:

- ``dsp``: oscillators, filters, envelopes, noise (vectorised numpy/scipy);
- ``sound``: a sound class (label, duration distribution, renderer) and ``render_event``;
- ``targets``: the 17 labelled classes; ``distractors``: unlabelled sounds and the background bed;
- ``scene``: one clip's plan (what, where, how loud) from the seed, and its rendering;
- ``dataset``: ``synthesize``, the ledger and the files; ``check``: the loudness-shortcut check.
"""
from audiobench.data.synth.dataset import CLASSES, GENERATOR_VERSION, SynthResult, synthesize
from audiobench.data.synth.scene import ClipPlan, PlacedSound, plan_clip, render_clip
from audiobench.data.synth.sound import SoundClass, render_event, sample_duration
from audiobench.data.synth.targets import TARGETS
from audiobench.data.synth.distractors import DISTRACTORS

__all__ = ["CLASSES", "DISTRACTORS", "GENERATOR_VERSION", "TARGETS", "ClipPlan", "PlacedSound", "SoundClass",
           "SynthResult", "plan_clip", "render_clip", "render_event", "sample_duration", "synthesize"]
