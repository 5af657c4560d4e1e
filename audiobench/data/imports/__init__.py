"""``audiobench import``: adopt clips from copies people already have instead of downloading them.

One module per copy format reads its entries as a stream (``dcase2017``, ``audioset_wav``, ``panns_hdf5``,
``hf_parquet``, ``webdataset``; ``folder`` mixes them and detects the format); ``match`` resolves an entry's
name against the dataset's listed IDs, ``validate`` decides whether its audio counts, and ``adopt`` writes
what counts under ``raw/`` and marks it ``ok`` in the ledger with its origin. docs/import.md has the rules.
"""
