"""`--devices N` starts torchrun with OMP_NUM_THREADS=1 unless set (torchrun's own default,
which it announced in a four-line warning banner on every run)."""

from __future__ import annotations

from megalith.training.distributed import launch_env


def test_several_processes_get_one_omp_thread_unless_set() -> None:
    assert launch_env(2, {"PATH": "/bin"}) == {"PATH": "/bin", "OMP_NUM_THREADS": "1"}
    assert launch_env(2, {"OMP_NUM_THREADS": "4"})["OMP_NUM_THREADS"] == "4"
    assert "OMP_NUM_THREADS" not in launch_env(1, {})  # torchrun sets none for one process
