"""What the xdist controller hands its workers beyond the options: on the lab, the image table
naming the images the lab built (a worker reading only AIC_IMAGES would ask its real node to
pull upstream images it cannot reach), and --aic-install's helm and charts."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_aiconformance.cluster.images import Image, packaged_images
from pytest_aiconformance.cluster.profiles import default_profile
from pytest_aiconformance.run.settings import ClusterTarget, Settings


def settings(**changes: object) -> Settings:
    base = Settings(target=ClusterTarget(), version=None, profile=default_profile(),
                    allocation_mode="auto", install=False, lab=True, lab_shape=None,
                    report_dir=Path("r"), submission=None, keep_namespaces="never",
                    timeout_scale=1.0, cleanup=False, images=packaged_images())
    return base.__class__(**{**base.__dict__, **changes})


def test_the_controllers_lab_images_helm_and_charts_reach_the_worker() -> None:
    lab_images = {**packaged_images(),
                  "probe": Image("probe", "aic-lab.local/probe", "0123456789ab", None, "lab")}
    controller = settings(images=lab_images, helm=Path("/s/install/helm"),
                          charts="/s/install/charts")
    shared = json.loads(json.dumps(controller.to_worker()))  # as execnet carries it
    worker = settings().with_worker(shared)
    assert worker.image("probe") == "aic-lab.local/probe:0123456789ab"
    assert worker.images == lab_images
    assert (worker.helm, worker.charts) == (Path("/s/install/helm"), "/s/install/charts")


def test_nothing_set_stays_unset() -> None:
    worker = settings().with_worker(settings().to_worker())
    assert (worker.helm, worker.charts) == (None, None)
    assert worker.images == packaged_images()
