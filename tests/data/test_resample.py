"""The paper recipe's 360 -> 125 Hz resampling: scipy's numbers, without importing scipy.signal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hbcore.data.resample import lowpass_taps, resample_poly

REPO = Path(__file__).resolve().parents[2]
RATIOS = [(25, 72), (125, 360), (1, 3), (3, 1), (3, 2), (7, 5), (10, 1)]


@pytest.mark.parametrize(("up", "down"), RATIOS)
@pytest.mark.parametrize("length", [1, 2, 7, 199, 10_007])
def test_resampling_gives_scipy_resample_poly_numbers(up, down, length):
    """The same filter, centring and zero padding as scipy's defaults (equal to the last bit where measured)."""
    from scipy.signal import resample_poly as scipy_resample_poly

    signal = np.random.default_rng(length * 100 + up).normal(size=length).cumsum()
    expected = scipy_resample_poly(signal, up, down)
    got = resample_poly(signal, up, down)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * max(1.0, float(np.abs(signal).max())))


def test_the_filter_is_scipys_kaiser_windowed_sinc():
    from scipy.signal import firwin

    np.testing.assert_allclose(lowpass_taps(1441, 1 / 72), firwin(1441, 1 / 72, window=("kaiser", 5.0)),
                               rtol=0, atol=1e-15)


def test_equal_rates_copy_and_bad_input_is_refused():
    signal = np.arange(5.0)
    same = resample_poly(signal, 4, 4)
    assert np.array_equal(same, signal) and same is not signal
    with pytest.raises(ValueError, match="at least 1"):
        resample_poly(signal, 0, 3)
    with pytest.raises(ValueError, match="1-D"):
        resample_poly(np.ones((2, 3)), 25, 72)


def test_a_data_build_imports_no_scipy_signal(tmp_path):
    """scipy.signal costs ~1.5 s to import: a cold demo's first build must not pay it (its own process, so
    that no other test's import counts)."""
    script = f"""
import sys
import numpy as np
import wfdb
from hbcore.data import dataset
t = np.arange(30 * 360)
beats = np.arange(100, 30 * 360 - 50, 288)
spikes = np.exp(-0.5 * ((t[:, None] - beats[None, :]) / 4.0) ** 2).sum(axis=1)
wfdb.wrsamp("900", fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=np.column_stack([spikes, spikes]),
            fmt=["212", "212"], write_dir={str(tmp_path)!r})
wfdb.wrann("900", "atr", beats, symbol=["N"] * len(beats), write_dir={str(tmp_path)!r})
built = dataset.build_record({str(tmp_path)!r}, "900")
assert len(built) == len(beats) - 1, len(built)
print(sorted(name for name in sys.modules if name.startswith("scipy.signal")))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
