"""The contract's typed ``alignment`` and ``tta`` records (facenet_tf.models.recorded) and
``provenance.pretrained_from``: files written before them load, and what is written back has
the same shape, byte for byte."""

import dataclasses
import json

import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import AlignConfig
from facenet_tf.models.contract import ImportedFile, ModelContract
from facenet_tf.models.recorded import RecordedAlignment, RecordedTTA
from facenet_tf.serving.tta import TTAConfig

# metadata.json as `facenet-tf import-dlib` wrote it before the records (alignment and tta dicts).
IMPORTED = {
    "format": "facenet_tf/1", "architecture": "dlib_resnet_v1", "image_size": [150, 150], "embedding_dim": 128,
    "fingerprint": "0123456789abcdef", "normalized": False, "distance": "l2",
    "preprocessing": "float32 RGB pixels 0..255 of a 150x150 dlib face chip",
    "alignment": {"method": "dlib_landmarks", "detector": "dlib_hog", "hog_upsample": 1, "size": 150,
                  "padding": 0.25, "on_failure": "resize", "min_confidence": 0.9},
    "tta": {"mode": "flip"},
    "input_contract": {"image_size": [150, 150], "color": "RGB", "padding": 0.25, "distance": "l2"},
    "thresholds": {"best_accuracy": 0.6, "at_far": 0.6, "far": None, "source": "dlib's same-person threshold"},
    "margin": None, "loss": None,
    "provenance": {"training_data": None, "validation_identities": [], "config": None,
                   "pretrained_from": {"file": "dlib.dat", "sha256": "ab" * 32, "license": "CC0 (dlib)"}},
}


def _bytes(values) -> bytes:
    return json.dumps(values, indent=2, sort_keys=True).encode()  # as facenet_tf.artifacts.write_json writes


def test_an_imported_models_metadata_round_trips_byte_for_byte_and_gives_its_configs():
    contract = ModelContract.from_json(json.loads(_bytes(IMPORTED)))
    assert contract.alignment == RecordedAlignment(method="dlib_landmarks", detector="dlib_hog", hog_upsample=1,
                                                   size=150, padding=0.25, on_failure="resize", min_confidence=0.9)
    assert contract.tta == RecordedTTA(mode="flip")
    assert contract.provenance.pretrained_from == ImportedFile("dlib.dat", "ab" * 32, "CC0 (dlib)")
    assert _bytes(contract.to_json()) == _bytes(IMPORTED)
    # Keys the writer left out (face; jitters, seed) take the configs' defaults.
    assert AlignConfig.from_contract(contract) == AlignConfig(method="dlib_landmarks", detector="dlib_hog", size=150,
                                                              on_failure="resize")
    assert TTAConfig.from_contract(contract) == TTAConfig(mode="flip")


def test_a_trained_models_metadata_without_alignment_or_tta_loads_and_writes_them_as_null():
    old = {k: v for k, v in IMPORTED.items() if k not in ("alignment", "tta")}
    contract = ModelContract.from_json(old)
    assert contract.alignment is None and contract.tta is None
    assert AlignConfig.from_contract(contract) is None and TTAConfig.from_contract(contract) == TTAConfig()
    assert _bytes(contract.to_json()) == _bytes({**old, "alignment": None, "tta": None})
    assert AlignConfig.from_contract(ModelContract.from_json({**old, "alignment": {}})) is None


def test_unknown_keys_are_kept_and_written_back_but_not_applied():
    newer = {**IMPORTED, "alignment": {"method": "arcface", "tilt": [1, 2]}, "tta": {"mode": "none", "scales": 3}}
    contract = ModelContract.from_json(newer)
    assert contract.alignment.extra == (("tilt", [1, 2]),) and contract.tta.extra == (("scales", 3),)
    assert _bytes(contract.to_json()) == _bytes(newer)
    assert AlignConfig.from_contract(contract) == AlignConfig(method="arcface")


@pytest.mark.parametrize("alignment, message", [("dlib", "alignment must be an object"),
                                                ({"size": "big"}, "alignment.size must be an integer"),
                                                ({"padding": True}, "alignment.padding must be a number")])
def test_a_malformed_record_is_one_line_naming_the_field(alignment, message):
    with pytest.raises(FacenetError, match=message):
        ModelContract.from_json({**IMPORTED, "alignment": alignment}, "m/metadata.json")


@pytest.mark.parametrize("record, config", [(RecordedAlignment, AlignConfig), (RecordedTTA, TTAConfig)])
def test_each_record_holds_exactly_its_configs_fields(record, config):
    # The configs sit above models/ and cannot be imported there: this is what keeps the two in step.
    assert [f.name for f in dataclasses.fields(record) if f.name != "extra"] == \
        [f.name for f in dataclasses.fields(config)]


def test_a_pretrained_from_without_its_sha256_is_refused():
    broken = json.loads(_bytes(IMPORTED))
    del broken["provenance"]["pretrained_from"]["sha256"]
    with pytest.raises(FacenetError, match="m/metadata.json: .*sha256"):
        ModelContract.from_json(broken, "m/metadata.json")
