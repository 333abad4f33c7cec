"""Acceptance (issue 5): one-shot recognition of 10 ORL people the model never saw.

Train briefly on ORL people s1–s30 (s31–s40 held out as validation identities, which the
loss never sees), enrol s31–s40 with one image each through ``facenet-tf enroll``, and
identify their other 90 images with ``facenet-tf identify --json``. The run is kept short
(~1 minute on 2 CPU cores), so the bar is "clearly above chance" (1/10), not a benchmark.

The default threshold is calibrated on the held-out people's validation pairs; top-1
accuracy is scored on the nearest name, which does not depend on it.
"""

import json
import os
import shutil

import pytest

from facenet_tf.cli import main

pytestmark = pytest.mark.slow

HELD_OUT = [f"s{i}" for i in range(31, 41)]


@pytest.fixture(scope="module")
def orl_model(orl_dir, tmp_path_factory):
    from facenet_tf.data import AugmentConfig
    from facenet_tf.models import ModelConfig
    from facenet_tf.training import DataConfig, TrainConfig, train

    out = str(tmp_path_factory.mktemp("orl_model"))
    result = train(TrainConfig(
        data=DataConfig(data_dir=orl_dir, validation_identities=10, identities_per_batch=10, images_per_identity=4,
                        augment=AugmentConfig()),
        model=ModelConfig(image_size=(48, 40), embedding_dim=64),
        epochs=2, steps_per_epoch=30, warmup_steps=10, output_dir=out,
    ), verbose=0)
    assert list(result.contract.provenance.validation_identities) == HELD_OUT  # never trained on
    return out


def test_one_shot_identification_of_held_out_orl_people(orl_dir, orl_model, tmp_path, capsys):
    enrol_dir, probes, truth = tmp_path / "enrol", [], {}
    for person in HELD_OUT:
        images = sorted(os.listdir(os.path.join(orl_dir, person)), key=lambda f: int(os.path.splitext(f)[0]))
        os.makedirs(enrol_dir / person)
        shutil.copy(os.path.join(orl_dir, person, images[0]), enrol_dir / person)
        for name in images[1:]:
            probes.append(os.path.join(orl_dir, person, name))
            truth[probes[-1]] = person
    assert len(probes) == 90

    gallery = str(tmp_path / "orl.gallery")
    assert main(["enroll", "--model", orl_model, "--gallery", gallery, "--from-dir", str(enrol_dir), "--quiet"]) == 0
    assert "enrolled 10 images of 10 people" in capsys.readouterr().out

    assert main(["identify", "--model", orl_model, "--gallery", gallery, "--json", *probes]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert set(answer) == {"gallery", "distance", "threshold", "threshold_source", "results"}
    assert answer["distance"] == "squared_l2" and answer["threshold"] > 0
    assert answer["threshold_source"] == "model"  # the gallery is not calibrated, no --threshold
    results = answer["results"]
    assert [r["image"] for r in results] == probes
    for r in results:
        assert set(r) == {"image", "name", "distance", "nearest", "faces"}
        assert r["nearest"] in HELD_OUT and r["distance"] >= 0
        assert r["name"] == (r["nearest"] if r["distance"] <= answer["threshold"] else None)

    top1 = sum(r["nearest"] == truth[r["image"]] for r in results) / len(results)
    print(f"ORL one-shot top-1 over 90 probes of 10 unseen people: {top1:.3f} (chance 0.1)")
    assert top1 > 0.3
