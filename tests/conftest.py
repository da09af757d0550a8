"""Shared fixtures: the real data folder (skips with a reason when absent) and AWS isolation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from kit.cloudkit import clients, cloud, cloud_clients  # noqa: F401  (the local cloud fixtures, see tests/kit/cloudkit.py)

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path | None:
    value = os.environ.get("HB_DATA_DIR")
    return Path(value) if value else None


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch, tmp_path_factory):
    """Dummy credentials and a private cache: no test can reach an AWS account or the user's cache."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    if "HB_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("HB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hbcache"))


@pytest.fixture(params=["this", "container"])
def container_python(request) -> str:
    """This interpreter, then the one HB_CONTAINER_PYTHON names: a Python 3.10 with the SageMaker
    scikit-learn 1.4-2 container's packages (scikit-learn 1.4.2, numpy 1.26, pandas, pyarrow 17)."""
    if request.param == "this":
        return sys.executable
    path = os.environ.get("HB_CONTAINER_PYTHON")
    if not path:
        pytest.skip("HB_CONTAINER_PYTHON is not set: no Python 3.10 with the 1.4-2 container's packages to run in")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder named by HB_DATA_DIR (laid out as shared/data), or skip."""
    path = _data_dir()
    if path is None or not path.is_dir():
        pytest.skip("real data absent: set HB_DATA_DIR to a folder laid out as shared/data (CI sets ../shared/data)")
    return path


@pytest.fixture(scope="session")
def mitdb_dir(data_dir: Path) -> Path:
    """The raw MIT-BIH WFDB records, or skip."""
    path = data_dir / "mitdb"
    if not any(path.glob("*.hea")):
        pytest.skip(f"MIT-BIH records absent: {path} holds no .hea files")
    return path


@pytest.fixture(scope="session")
def mitdb_beats(mitdb_dir: Path):
    """The full MIT-BIH beat set, built once per session without any cache (so no user cache is touched)."""
    from hbcore.data.dataset import build_beats

    return build_beats(mitdb_dir)


@pytest.fixture(scope="session")
def small_model_tar(mitdb_beats, tmp_path_factory) -> Path:
    """A real ``model.tar.gz`` trained in seconds: every 4th MIT-BIH beat, intra-patient split, a small
    network. Its ``metadata.json`` holds the figures on the held-out beats."""
    import numpy as np

    from hbcore.model.training import ModelParams, train_and_evaluate, write_model_tar

    beats = mitdb_beats.subset(np.arange(0, len(mitdb_beats), 4))
    model = train_and_evaluate(beats, "intra", ModelParams(hidden_layers=(64,), max_iter=15))
    return write_model_tar(model, tmp_path_factory.mktemp("small_model") / "model.tar.gz")


@pytest.fixture(scope="session")
def synthetic_model_tar(tmp_path_factory) -> Path:
    """A real ``model.tar.gz`` of a tiny network trained in a second on synthetic beats (no data needed)."""
    import numpy as np

    from hbcore.data.dataset import BeatSet, meta_frame
    from hbcore.model.training import ModelParams, train_model, write_model_tar

    rng = np.random.default_rng(3)
    labels = np.arange(200) % 5
    beats = np.clip(rng.normal(0.2 * labels[:, None], 0.1, (200, 187)), 0, 1).astype(np.float32)
    train = BeatSet(beats, labels.astype(np.int8), meta_frame({"record": np.full(200, "100"), "label": labels,
                                                              "rr_local_s": np.full(200, 0.8)}))
    model = train_model(train, ModelParams(hidden_layers=(8,), max_iter=3, batch_size=64))
    return write_model_tar(model, tmp_path_factory.mktemp("synthetic_model") / "model.tar.gz")


@pytest.fixture(scope="session")
def fault_rig(small_model_tar):
    """The whole pipeline deployed on a local cloud (a child process) serving the small model, with the
    fault controls of ``hbcore.bench.faultbench.FaultRig`` (tests/bench/test_faults.py and test_bad_input.py)."""
    from hbcore.bench.faultbench import FaultRig

    with FaultRig(small_model_tar) as rig:
        yield rig


@pytest.fixture(scope="session")
def kaggle_dir(data_dir: Path) -> Path:
    """The real Kaggle CSV rows, or skip."""
    path = data_dir / "kaggle_mitbih"
    if not path.is_dir():
        pytest.skip(f"Kaggle sample rows absent: {path} does not exist")
    return path


@pytest.fixture(scope="session")
def moto_url():
    """A plain moto server on a free loopback port (no local-cloud patches), for tests of boto3 callers.

    Its state is moto's process-wide state: tests name their resources uniquely.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_aws():
    """An in-process moto account (``mock_aws``) for one test; clients must be made inside it."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def fake_model_tar(tmp_path):
    """Factory: a ``model.tar.gz`` with the contract's members (for control-plane tests; not loadable)."""
    import io
    import json
    import tarfile

    def make(name: str = "model.tar.gz", version: str = "v1",
             inference_source: str = "def model_fn(model_dir):\n    return None\n") -> Path:
        members = {
            "model.npz": version.encode(),
            "metadata.json": json.dumps({"version": version}).encode(),
            "code/inference.py": inference_source.encode(),
            "code/requirements.txt": b"",
        }
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    return make
