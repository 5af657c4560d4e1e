"""The list parsers on the real published files (tests/data/reference) and on corrupted copies of them."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from audiobench.core.records import Event
from audiobench.core.errors import InputFormatError
from audiobench.data.lists import (
    parse_audioset_segments, parse_class_labels_indices, parse_clips, parse_dcase2017_segments,
    parse_dcase2017_strong, parse_dcase2017_weak, parse_eusipco19_strong, parse_eusipco19_weak,
    parse_sound_event_list, read_audioset_header,
)
from audiobench.data.manifests import load_manifest

SL_CLASSES = list(load_manifest("sl-dcase17").classes.inline)
CAR, TRUCK, MOTORCYCLE, CAR_ALARM = 11, 14, 15, 2


@pytest.fixture(scope="module")
def sl_splits(reference_dir):
    eu = reference_dir / "eusipco19"
    return {
        "train": parse_eusipco19_strong(eu / "train_strong_labels.csv", classes=SL_CLASSES, split="train"),
        "val": parse_eusipco19_weak(eu / "validation_set.csv", classes=SL_CLASSES, split="val"),
        "test": parse_eusipco19_weak(eu / "test_set.csv", classes=SL_CLASSES, split="test"),
    }


@pytest.fixture(scope="module")
def dcase_strong(reference_dir):
    gt = reference_dir / "dcase2017-task4" / "groundtruth_release"
    return (parse_dcase2017_strong(gt / "groundtruth_strong_label_testing_set.csv", classes=SL_CLASSES, split="a")
            + parse_dcase2017_strong(gt / "groundtruth_strong_label_evaluation_set.csv", classes=SL_CLASSES,
                                     split="b"))


@pytest.fixture(scope="module")
def audioset(reference_dir):
    a = reference_dir / "audioset"
    classes = parse_class_labels_indices(a / "class_labels_indices.csv")
    return classes, {
        "balanced": parse_audioset_segments(a / "balanced_train_segments.csv", classes=classes, split="train"),
        "eval": parse_audioset_segments(a / "eval_segments.csv", classes=classes, split="test"),
    }


# -- SL-DCASE-17 (eusipco19) ------------------------------------------------------------------------------
def test_sl_dcase17_split_sizes_match_the_paper(sl_splits):
    train = sl_splits["train"]
    assert len(train) == 1591
    assert sum(len(c.weak) for c in train) == 1955  # one file row per (recording, label)
    assert len(sl_splits["val"]) == 1638
    assert len(sl_splits["test"]) == 626
    assert all(c.events is None for c in sl_splits["val"] + sl_splits["test"])
    assert all(c.events for c in train)


def test_sl_dcase17_splits_do_not_share_a_recording(sl_splits):
    ytids = {name: {c.source_id for c in clips} for name, clips in sl_splits.items()}
    assert not ytids["train"] & ytids["val"]
    assert not ytids["train"] & ytids["test"]
    assert not ytids["val"] & ytids["test"]


def test_label_counts_per_row_of_the_weak_lists(sl_splits):
    assert Counter(len(c.weak) for c in sl_splits["test"]) == {1: 539, 2: 82, 3: 5}
    assert Counter(len(c.weak) for c in sl_splits["val"]) == {1: 1259, 2: 358, 3: 20, 4: 1}
    first = sl_splits["val"][0]  # 0  ---1_cCGK4M  0.0  10.0  """/m/0284vy3,/m/07jdr"""
    assert (first.clip_id, first.source_id, first.start, first.end, first.weak) == (
        "---1_cCGK4M_0_10000", "---1_cCGK4M", 0.0, 10.0, (0, 16))
    assert sum(c.duration < 10 for c in sl_splits["test"]) == 7
    assert sum(c.duration < 10 for c in sl_splits["val"]) == 36


def test_zero_length_rows_are_kept_as_present_but_not_localised(sl_splits):
    zero = [(c, e) for c in sl_splits["train"] for e in c.events if e.onset == e.offset]
    assert len(zero) == 185
    assert all(e.onset == 0.0 and e.class_index in c.weak for c, e in zero)


def test_events_per_recording_with_float_artefacts_rounded(sl_splits):
    train = {c.clip_id: c for c in sl_splits["train"]}
    assert sum(len(c.events) for c in train.values()) == 2390
    assert Counter(len(c.events) for c in train.values()) == {
        1: 1073, 2: 362, 3: 92, 4: 32, 5: 15, 6: 13, 7: 2, 10: 1, 12: 1}
    # line 43: l6_h_YHuTbY_30.000_40.000.wav /m/02mfyn [[1.739, 3.346], [4.888, 6.428999999999999], [7.654, 9.183]]
    assert [e for e in train["l6_h_YHuTbY_30000_40000"].events if e.class_index == CAR_ALARM] == [
        Event(CAR_ALARM, 1.739, 3.346), Event(CAR_ALARM, 4.888, 6.429), Event(CAR_ALARM, 7.654, 9.183)]
    # line 5: iMp8nODaotA_580.000_590.000.wav /m/04_sv [[0.0, 9.716000000000001]]
    assert Event(MOTORCYCLE, 0.0, 9.716) in train["iMp8nODaotA_580000_590000"].events
    assert all(list(c.events) == sorted(c.events, key=lambda e: (e.onset, e.offset, e.class_index))
               for c in train.values())


def test_every_train_recording_is_in_the_dcase2017_strong_ground_truth(sl_splits, dcase_strong):
    assert {c.clip_id for c in sl_splits["train"]} == {c.clip_id for c in dcase_strong}

    def intervals(clips):
        out: dict[tuple[str, int], set[tuple[float, float]]] = {}
        for c in clips:
            for w in c.weak:
                out[(c.clip_id, w)] = set()
            for e in c.events:
                out[(c.clip_id, e.class_index)].add((e.onset, e.offset))
        return out

    ours, dcase = intervals(sl_splits["train"]), intervals(dcase_strong)
    # eusipco dropped one (file, label) pair and one "0 10" interval; all else agrees.
    assert set(dcase) - set(ours) == {("-oCvKmNbhl0_30000_40000", TRUCK)}
    assert [k for k in ours if ours[k] != dcase[k]] == [("jZxusrD28rM_30000_40000", CAR)]
    assert dcase[("jZxusrD28rM_30000_40000", CAR)] - ours[("jZxusrD28rM_30000_40000", CAR)] == {(0.0, 10.0)}


# -- DCASE 2017 task 4 -----------------------------------------------------------------------------------
def test_dcase2017_class_list_is_the_manifest_class_list(reference_dir):
    classes = parse_sound_event_list(reference_dir / "dcase2017-task4" / "sound_event_list_17_classes.txt")
    assert classes == SL_CLASSES
    assert classes[1].name == "Air horn, truck horn"


def test_dcase2017_strong_ground_truth(reference_dir, dcase_strong):
    testing, evaluation = dcase_strong[:488], dcase_strong[488:]
    assert len(testing) == 488 and len(evaluation) == 1103
    assert sum(len(c.events) for c in testing) == 688
    assert sum(len(c.events) for c in evaluation) == 1705  # 1706 rows, one exactly repeated
    zero = Counter(e.onset == e.offset == 0 for c in testing for e in c.events)
    assert zero[True] == 36
    assert sum(e.onset == e.offset == 0 for c in evaluation for e in c.events) == 150
    first = testing[0]  # -5QrBL6MzLg_60.000_70.000.wav 0.917 2.029 Train horn
    assert first.clip_id == "-5QrBL6MzLg_60000_70000" and Event(0, 0.917, 2.029) in first.events


def test_dcase2017_v1_evaluation_file_has_onsets_after_offsets(reference_dir):
    v1 = (reference_dir / "dcase2017-task4" / "groundtruth_release"
          / "groundtruth_strong_label_evaluation_set.v1_2017-12-13.csv")
    with pytest.raises(InputFormatError) as err:
        parse_dcase2017_strong(v1, classes=SL_CLASSES, split="test")
    message = str(err.value)
    assert "groundtruth_strong_label_evaluation_set.v1_2017-12-13.csv line 109" in message
    assert "BGR0QnX4k6w_30.000_40.000.wav Skateboard: onset 0.46 after offset 0.4" in message


def test_dcase2017_weak_ground_truth_reads_the_same_with_lf_and_crlf(reference_dir):
    d = reference_dir / "dcase2017-task4"
    lf = parse_dcase2017_weak(d / "groundtruth_release" / "groundtruth_weak_label_testing_set.csv",
                              classes=SL_CLASSES, split="test")
    crlf = parse_dcase2017_weak(d / "evaluation_groundtruth" / "groundtruth_weak_label_testing_set.csv",
                                classes=SL_CLASSES, split="test")
    assert b"\r\n" in (d / "evaluation_groundtruth" / "groundtruth_weak_label_testing_set.csv").read_bytes()
    assert lf == crlf and len(lf) == 488 and sum(len(c.weak) for c in lf) == 606
    evaluation = parse_dcase2017_weak(d / "groundtruth_release" / "groundtruth_weak_label_evaluation_set.csv",
                                      classes=SL_CLASSES, split="test")
    assert len(evaluation) == 1103 and sum(len(c.weak) for c in evaluation) == 1350
    # the testing segment list (MID column) says the same as the weak ground truth
    listed = parse_dcase2017_segments(d / "testing_set.csv", classes=SL_CLASSES, split="test")
    assert {(c.clip_id, c.weak) for c in listed} == {(c.clip_id, c.weak) for c in lf}


def test_dcase2017_training_list_uses_the_mid_column(reference_dir):
    d = reference_dir / "dcase2017-task4"
    clips = parse_dcase2017_segments(d / "training_set.csv", classes=SL_CLASSES, split="train")
    assert len(clips) == 51172 and sum(len(c.weak) for c in clips) == 56131
    per_class = Counter(w for c in clips for w in c.weak)
    # training_set_num_files_per_class.csv counts (file, label) pairs: "Air horn, truck horn",1338 ...
    expected = dict(line.rsplit(",", 1) for line in
                    (d / "training_set_num_files_per_class.csv").read_text().replace('"', "").splitlines())
    assert {SL_CLASSES[i].name: n for i, n in per_class.items()} == {k: int(v) for k, v in expected.items()}


# -- AudioSet ----------------------------------------------------------------------------------------------
def test_audioset_lists_and_their_header_counts(reference_dir, audioset):
    classes, lists = audioset
    assert len(classes) == 527 and classes[0].mid == "/m/09x0r" and classes[1].name == "Male speech, man speaking"
    assert len(lists["balanced"]) == 22160 and len(lists["eval"]) == 20371
    a = reference_dir / "audioset"
    assert read_audioset_header(a / "balanced_train_segments.csv")["num_positive_labels"] == 52882
    assert read_audioset_header(a / "eval_segments.csv")["num_positive_labels"] == 51804
    assert sum(len(c.weak) for c in lists["balanced"]) == 52882
    assert sum(len(c.weak) for c in lists["eval"]) == 51804
    assert not {c.source_id for c in lists["balanced"]} & {c.source_id for c in lists["eval"]}
    first = lists["balanced"][0]  # --PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"
    assert (first.clip_id, first.start, first.end) == ("--PJHxphWEs_30000_40000", 30.0, 40.0)
    assert [classes[i].mid for i in first.weak] == ["/m/09x0r", "/t/dd00088"]


# -- corrupted copies: every error names the file and the line ------------------------------------------
def _corrupt(src: Path, dst: Path, line: int, new: str | None) -> Path:
    """Copy ``src`` with its 1-based ``line`` replaced by ``new`` (or a copy of it appended when None)."""
    data = src.read_bytes().decode()
    lines = data.splitlines(keepends=True)
    ending = "\r\n" if lines[line - 1].endswith("\r\n") else "\n"
    if new is None:
        lines.insert(line, lines[line - 1])
    else:
        lines[line - 1] = new + ending
    dst.write_text("".join(lines), newline="")
    return dst


CORRUPTIONS = [
    # (reference file, format, line, replacement, expected message part)
    ("eusipco19/train_strong_labels.csv", "eusipco19-strong", 212,
     "210\tAAAAAAAAAAA_60.000_70.000.wav\t/m/07jdr\t[[8.66, 8.25]]", "onset 8.66 after offset 8.25"),
    ("eusipco19/train_strong_labels.csv", "eusipco19-strong", 7, "5\tabc_30.000_40.000.wav\t/m/0k4j\t[[0.0, 1.0]]",
     "invalid YouTube ID 'abc'"),
    ("eusipco19/train_strong_labels.csv", "eusipco19-strong", 9, "7\tBBBBBBBBBBB_30.000_40.000.wav\t/m/0k4j\t[[0, 1]",
     "is not a non-empty list of [onset, offset] pairs"),
    ("eusipco19/train_strong_labels.csv", "eusipco19-strong", 9,
     "7\tBBBBBBBBBBB_30.000_40.000.wav\t/m/0k4j\t[[0.0, 12.5]]", "offset 12.5 beyond the 10 s segment"),
    ("eusipco19/train_strong_labels.csv", "eusipco19-strong", 2, None, "already listed on line 2"),
    ("eusipco19/validation_set.csv", "eusipco19-weak", 5, "3\t--BFPeFaj2o\t0.0\t10.0", "expected 5 tab-separated"),
    ("eusipco19/validation_set.csv", "eusipco19-weak", 5, '3\t--BFPeFaj2o\t0.0\t10.0\t"""/m/nope"""',
     "unknown class MID '/m/nope'"),
    ("eusipco19/validation_set.csv", "eusipco19-weak", 4, None, "already listed on line 4"),
    ("eusipco19/test_set.csv", "eusipco19-weak", 1, "# YTID\tstart_seconds\tend_seconds\tpositive_labels",
     "expected the header"),
    ("eusipco19/test_set.csv", "eusipco19-weak", 3, '1\t-ANxUxvGASw\t20.0\t10.0\t"""/m/07jdr"""',
     "segment start 20 is not before its end 10"),
    ("audioset/balanced_train_segments.csv", "audioset-segments", 10, '#NAME?, 30.000, 40.000, "/m/09x0r"',
     "comment line after the data rows: '#NAME?"),
    ("audioset/balanced_train_segments.csv", "audioset-segments", 10, 'abc-def, 30.000, 40.000, "/m/09x0r"',
     "invalid YouTube ID 'abc-def'"),
    ("audioset/balanced_train_segments.csv", "audioset-segments", 11, '--aaILOrkII, 200.000, "/m/09x0r"',
     "expected 4 ','-separated fields, found 3"),
    ("audioset/balanced_train_segments.csv", "audioset-segments", 12, '--aaILOrkII, 200.000, 21O.000, "/m/09x0r"',
     "end '21O.000' is not a number"),
    ("audioset/eval_segments.csv", "audioset-segments", 20, '--4gqARaEJE, 0.000, 10.000, "/m/068hy"x',
     "malformed CSV"),
    ("dcase2017-task4/groundtruth_release/groundtruth_strong_label_evaluation_set.csv", "dcase2017-strong", 3,
     "kr8ssbrDDMY_30.000_40.000.wav\t0\t0\tLorry", "unknown class name 'Lorry'"),
    ("dcase2017-task4/groundtruth_release/groundtruth_strong_label_testing_set.csv", "dcase2017-strong", 4,
     "-5QrBL6MzLg_60.000_70.000.wav 0.917 2.029 Train horn", "expected 4 tab-separated fields, found 1"),
    ("dcase2017-task4/groundtruth_weak_label_testing_set.csv", "dcase2017-weak", 2,
     "-E0shPRxAbo_30.000_40.000.wav\t20.000\t30.000\tTrain horn", "differ from the segment 30-40"),
    ("dcase2017-task4/testing_set.csv", "dcase2017-segments", 6, "-GCwoyCnYsY,0.000,10.000,Train horn",
     "expected 5 ','-separated fields, found 4"),
]


@pytest.mark.parametrize(("source", "fmt", "line", "new", "expected"), CORRUPTIONS,
                         ids=[f"{c[0].rsplit('/', 1)[-1]}:{c[2]}:{c[4][:24]}" for c in CORRUPTIONS])
def test_malformed_line_is_an_error_naming_file_and_line(reference_dir, tmp_path, source, fmt, line, new, expected):
    bad = _corrupt(reference_dir / source, tmp_path / Path(source).name, line, new)
    audioset_classes = parse_class_labels_indices(reference_dir / "audioset" / "class_labels_indices.csv")
    classes = audioset_classes if fmt == "audioset-segments" else SL_CLASSES
    with pytest.raises(InputFormatError) as err:
        parse_clips(bad, fmt, classes=classes, split="x")
    reported_line = line + 1 if new is None else line
    assert f"{bad} line {reported_line}: " in str(err.value)
    assert expected in str(err.value)


def test_truncated_audioset_list_contradicts_its_header(reference_dir, tmp_path):
    src = reference_dir / "audioset" / "eval_segments.csv"
    bad = tmp_path / "eval_segments.csv"
    bad.write_bytes(b"".join(src.read_bytes().splitlines(keepends=True)[:-5]))
    classes = parse_class_labels_indices(reference_dir / "audioset" / "class_labels_indices.csv")
    with pytest.raises(InputFormatError, match="header says num_segs=20371 but the rows give 20366"):
        parse_audioset_segments(bad, classes=classes, split="test")


def test_class_lists_reject_bad_rows(reference_dir, tmp_path):
    a = reference_dir / "audioset" / "class_labels_indices.csv"
    with pytest.raises(InputFormatError, match=r"class_labels_indices.csv line 3: index '5' out of order"):
        parse_class_labels_indices(_corrupt(a, tmp_path / a.name, 3, '5,/m/02zsn,"Female speech, woman speaking"'))
    s = reference_dir / "dcase2017-task4" / "sound_event_list_17_classes.txt"
    with pytest.raises(InputFormatError, match=r"sound_event_list_17_classes.txt line 4: expected MID<TAB>"):
        parse_sound_event_list(_corrupt(s, tmp_path / s.name, 4, "/m/02mfyn 8 Car alarm"))


def test_non_utf8_bytes_name_their_line(reference_dir, tmp_path):
    src = (reference_dir / "eusipco19" / "test_set.csv").read_bytes().splitlines(keepends=True)
    src[6] = src[6].rstrip(b"\n") + b"\xff\n"
    bad = tmp_path / "test_set.csv"
    bad.write_bytes(b"".join(src))
    with pytest.raises(InputFormatError, match=r"test_set.csv line 7: not UTF-8"):
        parse_eusipco19_weak(bad, classes=SL_CLASSES, split="test")
