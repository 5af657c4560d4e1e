"""Bringing clips in from elsewhere than a download: copies people already have, other audiobench roots, a folder
of your own.

One module per copy format reads its entries as a stream (``dcase2017``, ``audioset_wav``, ``panns_hdf5``,
``hf_parquet``, ``webdataset``; ``folder`` mixes them and detects the format); ``match`` resolves an entry's
name against the dataset's listed IDs, ``validate`` decides whether its audio counts, and ``adopt`` writes
what counts under ``raw/`` and marks it ``ok`` in the ledger with its origin. ``merge`` joins other roots
(sharded fetches); ``own_data`` makes a dataset of a folder and a labels table. docs/import.md has the rules.
"""
